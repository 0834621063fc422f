"""The Galileo-style session search (seed 003): every filter type and operator, the
filter tree, sort, both paginations, records, errors; and that filters compile to
parameterised SQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from session_bridge.store.search import (
    SESSION_COLUMNS,
    SQLITE,
    AllOf,
    Condition,
    Negation,
    Op,
    SessionSearch,
    UnknownColumnError,
    count_sql,
    select_sql,
)
from tests import agent_scenario as scenario
from tests.conftest import RunningBridge

URL = "/v2/projects/default/sessions/search"
BASELINES = [f"baseline-{i}" for i in range(6)]
NEWEST_FIRST = ["staging-1", "support-1", *reversed(BASELINES)]
SUPPORT_START = "2026-09-21T15:13:20Z"


@pytest.fixture(scope="module", params=scenario.BACKENDS)
def search(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(request, tmp_path_factory.mktemp("search")) as bridge:
        yield bridge


def post(bridge: RunningBridge, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = bridge.client.post(URL, json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def found(bridge: RunningBridge, *filters: dict[str, Any], **body: Any) -> list[str]:
    return [r["id"] for r in post(bridge, {"filters": list(filters), **body})["records"]]


def f(kind: str, column: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "column_id": column, "operator": operator, "value": value, **extra}


def test_default_is_newest_first(search: RunningBridge) -> None:
    page = post(search, {})
    assert [r["id"] for r in page["records"]] == NEWEST_FIRST
    assert page["num_records"] == 8 and page["next_starting_token"] is None
    assert page["paginated"] is False and page["last_row_id"] == "baseline-0"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (f("id", "id", "eq", "support-1"), ["support-1"]),
        (f("id", "id", "ne", "support-1"), ["staging-1", *reversed(BASELINES)]),
        (f("id", "id", "contains", "baseline"), list(reversed(BASELINES))),
        (f("id", "id", "one_of", ["support-1", "staging-1", "x"]), ["staging-1", "support-1"]),
        (f("id", "id", "not_in", BASELINES), ["staging-1", "support-1"]),
        (f("text", "user_id", "eq", "u-2"), ["staging-1"]),
        (f("text", "user_id", "eq", "U-2"), []),
        (f("text", "user_id", "eq", "U-2", case_sensitive=False), ["staging-1"]),
        (f("text", "user_id", "ne", "u-1"), ["staging-1"]),
        (f("text", "user_id", "contains", "-2"), ["staging-1"]),
        (f("text", "environment", "contains", "STAG", case_sensitive=False), ["staging-1"]),
        (f("text", "environment", "one_of", ["staging", "qa"]), ["staging-1"]),
        (f("text", "environment", "not_in", ["production"]), ["staging-1"]),
        (f("text", "state", "eq", "ended"), NEWEST_FIRST),
        (f("date", "created_at", "eq", SUPPORT_START), ["support-1"]),
        (f("date", "created_at", "ne", SUPPORT_START), ["staging-1", *reversed(BASELINES)]),
        (f("date", "created_at", "gt", SUPPORT_START), ["staging-1"]),
        (f("date", "created_at", "gte", SUPPORT_START), ["staging-1", "support-1"]),
        (f("date", "created_at", "lt", "2026-09-21T14:14:20Z"), ["baseline-0"]),
        (f("date", "created_at", "lte", "2026-09-21T14:14:20Z"), ["baseline-1", "baseline-0"]),
        (f("date", "updated_at", "eq", "2026-09-21T15:13:42Z"), ["support-1"]),
        (f("number", "trace_count", "eq", 3), ["support-1"]),
        (f("number", "trace_count", "ne", 1), ["support-1"]),
        (f("number", "total_input_tokens", "gt", 55), ["support-1"]),
        (f("number", "total_input_tokens", "gte", 50), ["support-1", *reversed(BASELINES)]),
        (f("number", "total_output_tokens", "lt", 5), ["staging-1"]),
        (f("number", "total_output_tokens", "lte", 5), ["staging-1", *reversed(BASELINES)]),
        (
            f("number", "duration_ns", "between", [50_000_000, 100_000_000]),
            NEWEST_FIRST[:1] + list(reversed(BASELINES)),
        ),
        (f("number", "error_count", "gt", 0), ["support-1"]),
        (f("number", "estimated_cost_usd", "gt", 0.01), ["support-1"]),
        (f("boolean", "has_errors", "eq", True), ["support-1"]),
        (f("boolean", "has_errors", "ne", True), ["staging-1", *reversed(BASELINES)]),
        (f("boolean", "is_active", "eq", False), NEWEST_FIRST),
        (f("collection", "models_used", "contains", "claude-haiku-4-5"), ["staging-1"]),
        (
            f("collection", "models_used", "contains", "GPT-4O", case_sensitive=False),
            ["support-1", *reversed(BASELINES)],
        ),
        (f("collection", "models_used", "eq", ["claude-haiku-4-5"]), ["staging-1"]),
        (f("collection", "models_used", "eq", "gpt-4o"), ["support-1", *reversed(BASELINES)]),
        (f("collection", "providers_used", "eq", ["openai", "anthropic"]), []),
        (f("collection", "providers_used", "one_of", ["anthropic", "mistral"]), ["staging-1"]),
        (f("collection", "providers_used", "not_in", ["openai"]), ["staging-1"]),
        (f("collection", "services", "contains", "agent-worker"), NEWEST_FIRST),
    ],
)
def test_filter_types_and_operators(
    search: RunningBridge, flt: dict[str, Any], expected: list[str]
) -> None:
    assert found(search, flt) == expected


def test_filters_combine_with_and(search: RunningBridge) -> None:
    assert found(search, f("id", "id", "contains", "-1"), f("text", "user_id", "eq", "u-1")) == [
        "support-1",
        "baseline-1",
    ]


def test_filter_tree(search: RunningBridge) -> None:
    def leaf(flt: dict[str, Any]) -> dict[str, Any]:
        return {"filter": flt}

    either = {
        "or": [leaf(f("id", "id", "eq", "support-1")), leaf(f("id", "id", "eq", "staging-1"))]
    }
    assert found(search, filter_tree=either) == ["staging-1", "support-1"]
    tree = {
        "and": [
            leaf(f("id", "id", "contains", "baseline")),
            {
                "not": {
                    "or": [
                        leaf(f("id", "id", "eq", "baseline-0")),
                        leaf(f("id", "id", "eq", "baseline-5")),
                    ]
                }
            },
        ]
    }
    assert found(search, filter_tree=tree) == [
        "baseline-4",
        "baseline-3",
        "baseline-2",
        "baseline-1",
    ]
    assert found(search, filter_tree={"not": leaf(f("boolean", "has_errors", "eq", False))}) == [
        "support-1"
    ]
    assert found(search, f("text", "user_id", "eq", "u-1"), filter_tree=either) == ["support-1"]
    assert found(search, filter_tree={"and": []}) == NEWEST_FIRST
    assert found(search, filter_tree={"or": []}) == []


def test_sort(search: RunningBridge) -> None:
    def ordered(column: str, ascending: bool) -> list[str]:
        return found(
            search, sort={"column_id": column, "ascending": ascending, "sort_type": "column"}
        )

    assert ordered("created_at", True) == list(reversed(NEWEST_FIRST))
    assert ordered("trace_count", False)[0] == "support-1"
    assert ordered("total_input_tokens", True)[0] == "staging-1"
    assert ordered("user_id", False)[0] == "staging-1"
    assert ordered("country_code", True) == sorted(NEWEST_FIRST)  # all null: ties by id


def test_offset_and_keyset_pagination(search: RunningBridge) -> None:
    by_offset: list[str] = []
    by_keyset: list[str] = []
    token: int | None = 0
    last: str | None = None
    while token is not None:
        page = post(search, {"starting_token": token, "limit": 3})
        by_offset += [r["id"] for r in page["records"]]
        assert page["paginated"] is True and page["num_records"] == 8
        keyset = post(search, {"starting_token": token, "limit": 3, "previous_last_row_id": last})
        by_keyset += [r["id"] for r in keyset["records"]]
        assert keyset["next_starting_token"] == page["next_starting_token"]
        token, last = page["next_starting_token"], page["last_row_id"]
    assert by_offset == by_keyset == NEWEST_FIRST
    sorted_page = post(
        search,
        {
            "limit": 2,
            "previous_last_row_id": "support-1",
            "starting_token": 2,
            "sort": {"column_id": "trace_count", "ascending": False},
        },
    )
    assert len(sorted_page["records"]) == 2 and "support-1" not in [
        r["id"] for r in sorted_page["records"]
    ]


def test_records(search: RunningBridge) -> None:
    (record,) = post(
        search, {"filters": [f("id", "id", "eq", "support-1")], "include_counts": True}
    )["records"]
    assert record == {
        "type": "session",
        "id": "support-1",
        "session_id": "support-1",
        "project_id": "default",
        "run_id": "default",
        "name": "invoke_agent triage",
        "input": '{"query": "refund my order A1"}',
        "output": "",
        "created_at": "2026-09-21T15:13:20.000000Z",
        "updated_at": "2026-09-21T15:13:42.000000Z",
        "tags": ["refunds", "vip"],
        "user_metadata": {"user_id": "u-1", "environment": "production"},
        "status_code": 500,
        "metrics": {
            "duration_ns": 22_000_000_000,
            "cost": record["metrics"]["cost"],
            "num_input_tokens": 380,
            "num_output_tokens": 60,
            "num_total_tokens": 440,
        },
        "has_children": True,
        "num_traces": 3,
        "is_complete": True,
    }
    assert record["metrics"]["cost"] > 0.0125
    without = post(search, {"filters": [f("id", "id", "eq", "support-1")], "truncate_fields": True})
    assert without["records"][0]["num_traces"] is None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"filters": [f("text", "colour", "eq", "red")]}, "filters[0].column_id"),
        ({"filters": [f("number", "user_id", "eq", 1)]}, "filters[0].type"),
        ({"filters": [f("number", "trace_count", "between", [3])]}, "filters[0].value"),
        ({"filters": [f("number", "trace_count", "between", [3, 1])]}, "filters[0].value"),
        ({"filters": [f("text", "user_id", "one_of", "u-1")]}, "filters[0].value"),
        ({"filters": [f("text", "user_id", "eq", ["u-1"])]}, "filters[0].value"),
        ({"filters": [f("text", "user_id", "between", "u-1")]}, "filters.0"),
        ({"filters": [{"column_id": "id", "operator": "eq", "value": "x"}]}, "filters.0"),
        ({"filters": [f("date", "created_at", "gt", "tomorrow")]}, "filters.0"),
        (
            {"filters": [f("date", "created_at", "gt", "0001-01-01T00:00:00Z")]},
            "filters.0.date.value",
        ),
        (
            {"filter_tree": {"and": [{"filter": f("id", "nope", "eq", "x")}]}},
            "filter_tree.and[0].filter.column_id",
        ),
        ({"filter_tree": {"xor": []}}, "filter_tree"),
        ({"sort": {"column_id": "colour"}}, "sort.column_id"),
        ({"sort": {"column_id": "models_used"}}, "sort.column_id"),
        ({"limit": 0}, "limit"),
        ({"starting_token": -1}, "starting_token"),
        ({"previous_last_row_id": "no-such-session"}, "previous_last_row_id"),
    ],
)
def test_bad_requests_name_the_parameter(
    search: RunningBridge, body: dict[str, Any], named: str
) -> None:
    message = post(search, body, status=400)["message"]
    assert named in message, message


def test_unknown_column_lists_the_valid_ones(search: RunningBridge) -> None:
    message = post(search, {"filters": [f("text", "colour", "eq", "red")]}, status=400)["message"]
    for column in (
        "user_id",
        "created_at",
        "updated_at",
        "duration_ns",
        "total_input_tokens",
        "total_output_tokens",
        "estimated_cost_usd",
        "error_count",
        "trace_count",
        "models_used",
        "providers_used",
        "services",
        "country_code",
        "device_type",
        "state",
        "environment",
    ):
        assert column in SESSION_COLUMNS and column in message


def test_hostile_values_are_only_data(search: RunningBridge) -> None:
    hostile = "x' OR '1'='1'; DROP TABLE sessions; --"
    assert found(search, f("text", "user_id", "eq", hostile)) == []
    assert found(search, f("collection", "services", "one_of", [hostile])) == []
    assert found(search, f("text", "environment", "contains", "%")) == []
    assert post(
        search, {"filters": [f("text", "user_id; DROP TABLE sessions", "eq", "x")]}, status=400
    )
    assert len(found(search)) == 8


def test_compiled_sql_binds_every_value() -> None:
    hostile = "'); DROP TABLE sessions; --"
    search = SessionSearch(
        "p'1",
        active_since_ns=123,
        where=AllOf(
            (
                Condition("user_id", Op.EQ, hostile, case_sensitive=False),
                Negation(Condition("models_used", Op.EQ, [hostile, "b"])),
                Condition("state", Op.ONE_OF, [hostile]),
                Condition("duration_ns", Op.BETWEEN, [1, 2]),
            )
        ),
    )
    for fragment in (select_sql(search, SQLITE, "session_id"), count_sql(search, SQLITE)):
        assert hostile not in fragment.sql and "p'1" not in fragment.sql
        assert fragment.sql.count("?") == len(fragment.params)
        assert hostile in fragment.params and "p'1" in fragment.params
    with pytest.raises(UnknownColumnError):
        select_sql(SessionSearch("p", 0, where=Condition("id) OR (1=1", Op.EQ, "x")), SQLITE, "*")
