"""Hostile and unusual input to the query APIs: session ids holding `/`, `%`, spaces or
unicode read back on every API; tampered cursors, unknown query parameters and searches
beyond the documented bounds answered 400 naming the problem (never 500); the largest
search within the bounds answered, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests import agent_scenario as scenario
from tests.agent_scenario import S, Session, chat
from tests.conftest import RunningBridge, sdk_provider

ODD_IDS = ["a/b", "50%", "with space", "ünï/cødé", "../x", "x/traces", "%2F"]
P = "/api/projects/default/sessions"
SEARCH = "/v2/projects/default/sessions/search"
TRACE_HEX, SPAN_HEX = "ab" * 16, "cd" * 8


def _session(session_id: str, start_ms: int) -> Session:
    turn = S("turn", {}, 0, 50, [chat(10, 40, (5, 7))])
    return Session(session_id, start_ms, [turn])


@pytest.fixture(scope="module", params=scenario.BACKENDS)
def odd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    """A bridge holding one session per id of `ODD_IDS`, and `a` (the first segment of
    `a/b`), sent by the SDK's OTLP exporter."""
    with scenario.running_bridge(request, tmp_path_factory.mktemp("odd")) as bridge:
        provider = sdk_provider(bridge, "http", scenario.RESOURCE)
        scenario.send(provider, [_session(s, i * 1000) for i, s in enumerate([*ODD_IDS, "a"])])
        provider.shutdown()
        yield bridge


def ok(bridge: RunningBridge, path: str, **params: Any) -> Any:
    response = bridge.client.get(path, params=params)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def bad(bridge: RunningBridge, path: str, params: Any = None, body: Any = None) -> str:
    if body is None:
        response = bridge.client.get(path, params=params)
    else:
        response = bridge.client.post(path, params=params, json=body)
    assert response.status_code == 400, (path, response.text)
    message: str = response.json()["message"]
    return message


# -- session ids in the path -----------------------------------------------------------------


@pytest.mark.parametrize("session_id", ODD_IDS)
def test_odd_session_ids_read_back_on_every_api(odd: RunningBridge, session_id: str) -> None:
    q = quote(session_id, safe="")  # `/` as %2F, `%` as %25, ...
    assert ok(odd, f"/api/v1/sessions/{q}")["session.id"] == session_id
    langfuse = ok(odd, f"/api/public/sessions/{q}")
    assert langfuse["id"] == session_id and len(langfuse["traces"]) == 1
    assert langfuse["traces"][0]["sessionId"] == session_id
    traces = ok(odd, f"{P}/{q}/traces", include="metrics")
    assert traces["sessionId"] == session_id
    assert [e["type"] for e in traces["events"]] == ["llm_call"]
    assert {e["sessionId"] for e in traces["events"]} == {session_id}
    assert traces["metrics"]["turnCount"] == 1
    root = traces["events"][0]["parentSpanId"]
    children = ok(odd, f"{P}/{q}/traces/{root}/children")
    assert children["sessionId"] == session_id and len(children["events"]) == 1
    assert ok(odd, f"{P}/{q}/metrics")["sessionId"] == session_id
    assert ok(odd, f"{P}/{q}/analysis")["slowSpans"] == []
    export = odd.client.get(f"{P}/export", params={"format": "jsonl", "sessionId": session_id})
    assert {json.loads(line)["sessionId"] for line in export.text.splitlines()} == {session_id}


def test_a_slash_in_the_path_is_not_part_of_an_id(odd: RunningBridge) -> None:
    """Only an encoded slash is part of an id: `a/b` unencoded is no session's path."""
    assert odd.client.get("/api/v1/sessions/a/b").status_code == 404
    assert ok(odd, "/api/v1/sessions/a")["session.id"] == "a"
    response = odd.client.get(f"{P}/{quote('no/such', safe='')}/metrics")
    assert response.status_code == 404
    assert response.json()["message"] == "session 'no/such' not found"


# -- unknown query parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "unknown", "accepted"),
    [
        ("/api/v1/sessions", {"user_id": "u-1"}, "user.id"),
        ("/api/v1/sessions/a", {"verbose": "1"}, "none"),
        ("/api/public/sessions", {"env": "production", "pageSize": "2"}, "environment"),
        ("/api/public/sessions/a", {"fields": "traces"}, "none"),
        (f"{P}/export", {"session_id": "a"}, "sessionId"),
        (f"{P}/generations", {"page": "2"}, "cursor"),
        (f"{P}/a/traces", {"event_type": "llm_call"}, "eventType"),
        (f"{P}/a/metrics", {"include": "metrics"}, "none"),
        (f"{P}/a/analysis", {"x": ""}, "none"),
        (f"{P}/a/traces/{SPAN_HEX}/children", {"limit": "5"}, "eventType"),
    ],
)
def test_unknown_query_parameters_are_400_naming_them(
    odd: RunningBridge, path: str, unknown: dict[str, str], accepted: str
) -> None:
    message = bad(odd, path, {**unknown})
    for name in unknown:
        assert repr(name) in message, message
    assert accepted in message, message


def test_unknown_query_parameter_of_the_search_is_400(odd: RunningBridge) -> None:
    message = bad(odd, SEARCH, {"limit": "5"}, body={})
    assert "'limit'" in message and "takes none" in message


def test_repeated_and_known_parameters_and_the_page_still_work(odd: RunningBridge) -> None:
    langfuse = ok(odd, "/api/public/sessions", environment=["production", "staging"], limit=100)
    assert len(langfuse["data"]) == len(ODD_IDS) + 1
    export = odd.client.get(f"{P}/export", params={"format": "csv", "sessionId": ["a", "a/b"]})
    assert export.status_code == 200 and len(export.text.splitlines()) == 3
    ok(odd, f"{P}/a/traces", eventType=["llm_call", "tool_call"])
    assert ok(odd, "/api/v1/sessions", **{"user.id": "u-1", "page_size": 1})["has_more"] is True
    assert odd.client.get("/ui/", params={"session": "a/b"}).status_code == 200
    assert odd.client.get("/healthz", params={"probe": "k8s"}).status_code == 200
    assert odd.client.get("/openapi.json").status_code == 200


# -- cursors ------------------------------------------------------------------------------


def cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


BEYOND_INT64 = 2**63


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/api/v1/sessions", cursor(["n", BEYOND_INT64, "a"])),
        ("/api/v1/sessions", cursor(["p", -BEYOND_INT64 - 1, "a"])),
        ("/api/v1/sessions", cursor(["x", 1, "a"])),
        ("/api/v1/sessions", cursor(["n", 1.5, "a"])),
        ("/api/v1/sessions", cursor(["n", True, "a"])),
        ("/api/v1/sessions", base64.urlsafe_b64encode(b'["n", 1e999, "a"]').decode()),
        (
            "/api/v1/sessions",
            base64.urlsafe_b64encode(b'["n", 1' + b"0" * 5000 + b', "a"]').decode(),
        ),
        (f"{P}/generations", cursor([BEYOND_INT64, TRACE_HEX, SPAN_HEX])),
        (f"{P}/generations", cursor([1, "zz" * 16, SPAN_HEX])),
        (f"{P}/generations", cursor([1, TRACE_HEX, "c"])),
        (f"{P}/generations", cursor([1, TRACE_HEX, SPAN_HEX + "00"])),
        (f"{P}/a/traces", cursor([BEYOND_INT64, TRACE_HEX, SPAN_HEX, 0])),
        (f"{P}/a/traces", cursor([1, "not hex", SPAN_HEX, 0])),
        (f"{P}/a/traces", cursor([1, TRACE_HEX, SPAN_HEX])),
    ],
)
def test_tampered_cursors_are_400(odd: RunningBridge, path: str, value: str) -> None:
    message = bad(odd, path, {"cursor": value})
    assert "'cursor'" in message and "not a cursor returned by this API" in message


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/public/sessions", {"page": str(BEYOND_INT64)}, "page"),
        ("/api/public/sessions", {"limit": str(BEYOND_INT64)}, "limit"),
        ("/api/v1/sessions", {"page_size": str(BEYOND_INT64)}, "page_size"),
        (f"{P}/generations", {"limit": "1" + "0" * 30}, "limit"),
        ("/api/public/sessions", {"environment": [f"e{i}" for i in range(501)]}, "environment"),
        (f"{P}/export", {"sessionId": [f"s{i}" for i in range(501)]}, "sessionId"),
    ],
)
def test_out_of_range_paging_and_lists_are_400(
    odd: RunningBridge, path: str, params: dict[str, Any], named: str
) -> None:
    assert named in bad(odd, path, params)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"starting_token": BEYOND_INT64}, "starting_token"),
        ({"limit": BEYOND_INT64}, "limit"),
        ({"previous_last_row_id": "no/such"}, "previous_last_row_id"),
    ],
)
def test_out_of_range_search_paging_is_400(
    odd: RunningBridge, body: dict[str, Any], named: str
) -> None:
    assert named in bad(odd, SEARCH, body=body)


def test_cursors_still_walk_every_page(odd: RunningBridge) -> None:
    seen: list[str] = []
    page = ok(odd, "/api/v1/sessions", page_size=3)
    while True:
        seen += [s["session.id"] for s in page["items"]]
        if page["next_cursor"] is None:
            break
        page = ok(odd, "/api/v1/sessions", page_size=3, cursor=page["next_cursor"])
    assert sorted(seen) == sorted([*ODD_IDS, "a"])
    spans: list[str] = []
    generations = ok(odd, f"{P}/generations", limit=3)
    while True:
        spans += [g["spanId"] for g in generations["items"]]
        if generations["nextCursor"] is None:
            break
        generations = ok(odd, f"{P}/generations", limit=3, cursor=generations["nextCursor"])
    assert len(set(spans)) == len(ODD_IDS) + 1


# -- search bounds ---------------------------------------------------------------------------


def leaf(kind: str, column: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    filter_ = {"type": kind, "column_id": column, "operator": operator, "value": value}
    return {"filter": {**filter_, **extra}}


def fakes(count: int, *real: str) -> list[str]:
    return [*real, *(f"nope-{i}" for i in range(count - len(real)))]


def nested(node: dict[str, Any], nots: int) -> dict[str, Any]:
    for _ in range(nots):
        node = {"not": node}
    return node


def found(bridge: RunningBridge, body: dict[str, Any]) -> list[str]:
    response = bridge.client.post(SEARCH, json={"limit": 1000, **body})
    assert response.status_code == 200, response.text
    return sorted(r["id"] for r in response.json()["records"])


ID_A = leaf("id", "id", "eq", "a")


@pytest.mark.parametrize(
    ("body", "named", "bound"),
    [
        ({"filter_tree": nested(ID_A, 17)}, "filter_tree", "16 levels"),
        ({"filter_tree": nested(ID_A, 50)}, "filter_tree", "16 levels"),
        ({"filter_tree": nested({"or": [ID_A]}, 16)}, "filter_tree", "16 levels"),
        ({"filter_tree": {"or": [ID_A] * 257}}, "filter_tree", "at most 256"),
        ({"filter_tree": {"or": [ID_A] * 5000}}, "filter_tree", "at most 256"),
        ({"filters": [ID_A["filter"]] * 257}, "filters", "at most 256"),
        (
            {"filters": [ID_A["filter"]] * 200, "filter_tree": {"and": [ID_A] * 57}},
            "filter_tree.and[56].filter",
            "more than 256 filters",
        ),
        (
            {"filter_tree": leaf("collection", "services", "eq", fakes(2000))},
            "filter_tree.filter.value",
            "at most 500",
        ),
        (
            {"filters": [leaf("id", "id", "one_of", fakes(501))["filter"]]},
            "filters[0]",
            "at most 500",
        ),
        (
            {"filters": [leaf("text", "user_id", "not_in", fakes(500))["filter"]] * 11},
            "filters[10].value",
            "more than 5000 values",
        ),
    ],
)
def test_searches_beyond_the_bounds_are_400_saying_so(
    odd: RunningBridge, body: dict[str, Any], named: str, bound: str
) -> None:
    message = bad(odd, SEARCH, body=body)
    assert named in message and bound in message, message


def test_the_largest_search_within_the_bounds_runs(odd: RunningBridge) -> None:
    """16 levels, 256 filters, 4,747 values, 500 in each list: on both databases."""
    lists = [
        leaf("id", "id", "one_of", fakes(500, "a/b")),
        leaf("text", "user_id", "not_in", fakes(500)),
        leaf("text", "environment", "one_of", fakes(500, "PRODUCTION"), case_sensitive=False),
        leaf("collection", "services", "one_of", fakes(500, "agent-worker")),
        leaf("collection", "models_used", "not_in", fakes(500)),
        {"not": leaf("collection", "providers_used", "eq", fakes(500, "openai"))},
        leaf("collection", "models_used", "one_of", fakes(500, "GPT-4O"), case_sensitive=False),
        leaf("text", "country_code", "not_in", fakes(500)),
        leaf("text", "device_type", "not_in", fakes(500)),
    ]
    singles = [leaf("id", "id", "ne", f"nope-{i}") for i in range(247)]
    tree = nested({"or": [{"and": lists + singles}]}, 12)  # 12 + or + and + not: 15 above a filter
    assert found(odd, {"filter_tree": tree}) == ["a/b"]
    assert found(odd, {"filter_tree": nested(ID_A, 16)}) == ["a"]
    everyone = leaf("collection", "services", "eq", fakes(500, "agent-worker"))
    assert found(odd, {"filter_tree": everyone}) == []
    exact = leaf("collection", "services", "eq", ["agent-worker", "AGENT-WORKER"])
    assert found(odd, {"filter_tree": exact}) == []
    assert (
        len(
            found(
                odd,
                {"filter_tree": {**exact, "filter": {**exact["filter"], "case_sensitive": False}}},
            )
        )
        == 8
    )


# -- NUL characters (no PostgreSQL text can hold one) --------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/v1/sessions/a%00b", {}, "session_id"),
        ("/api/public/sessions/a%00b", {}, "sessionId"),
        (f"{P}/a%00b/traces", {}, "sessionId"),
        (f"{P}/a%2F%00/metrics", {}, "sessionId"),
        ("/api/v1/sessions", {"user.id": "u\x001"}, "user.id"),
        ("/api/public/sessions", {"environment": ["production", "prod\x00"]}, "environment"),
        (f"{P}/export", {"sessionId": "a\x00"}, "sessionId"),
        (f"{P}/generations", {"model": "gpt\x00"}, "model"),
        ("/api/v1/sessions", {"cursor": cursor(["n", 1, "a\x00"])}, "cursor"),
    ],
)
def test_nul_characters_in_the_url_are_400(
    odd: RunningBridge, path: str, params: dict[str, Any], named: str
) -> None:
    assert f"'{named}'" in bad(odd, path, params)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"filters": [leaf("text", "user_id", "eq", "u\x001")["filter"]]}, "filters[0].value"),
        (
            {"filter_tree": {"or": [ID_A, leaf("collection", "services", "one_of", ["a\x00"])]}},
            "filter_tree.or[1].filter.value",
        ),
        ({"previous_last_row_id": "a\x00"}, "previous_last_row_id"),
    ],
)
def test_nul_characters_in_a_search_are_400(
    odd: RunningBridge, body: dict[str, Any], named: str
) -> None:
    assert f"'{named}'" in bad(odd, SEARCH, body=body)
