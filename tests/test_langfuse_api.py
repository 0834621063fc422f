"""The Langfuse-style sessions API (seed 000) over sessions sent by the OpenTelemetry SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import agent_scenario as scenario
from tests.conftest import RunningBridge, sdk_provider

# a session sent without any environment, with OpenLLMetry-style input/output and Langfuse keys
BARE = scenario.Session(
    "bare-1",
    9_000_000,
    [
        scenario.S(
            "workflow",
            {
                "traceloop.span.kind": "workflow",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "hi",
                "traceloop.entity.output": '{"answer": 42}',
                "langfuse.trace.public": "true",
                "langfuse.trace.tags": "alpha, beta",
                "langfuse.trace.metadata": '{"team": "search", "tier": 2}',
            },
            0,
            10,
            [
                scenario.S(
                    "step", {"langfuse.version": "v7", "langfuse.trace.tags": '["gamma"]'}, 1, 5
                )
            ],
        )
    ],
    environment=None,
)


@pytest.fixture(scope="module", params=scenario.BACKENDS)
def langfuse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(request, tmp_path_factory.mktemp("langfuse")) as bridge:
        bare = sdk_provider(bridge, "http", {"service.name": "bare"})
        scenario.send(bare, [BARE])  # its spans name no environment: Langfuse's "default"
        bare.shutdown()
        yield bridge


def sessions(bridge: RunningBridge, **params: Any) -> dict[str, Any]:
    response = bridge.client.get("/api/public/sessions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [s["id"] for s in page["data"]]


NEWEST_FIRST = ["bare-1", "staging-1", "support-1", *(f"baseline-{i}" for i in reversed(range(6)))]


def test_list_with_defaults(langfuse: RunningBridge) -> None:
    page = sessions(langfuse)
    assert ids(page) == NEWEST_FIRST
    assert page["meta"] == {"page": 1, "limit": 50, "totalItems": 9, "totalPages": 1}
    assert page["data"][2] == {
        "id": "support-1",
        "createdAt": "2026-09-21T15:13:20.000Z",
        "projectId": "default",
        "environment": "production",
    }


def test_pages(langfuse: RunningBridge) -> None:
    pages = [sessions(langfuse, page=n, limit=4) for n in (1, 2, 3, 4)]
    assert [ids(p) for p in pages] == [NEWEST_FIRST[:4], NEWEST_FIRST[4:8], NEWEST_FIRST[8:], []]
    assert pages[2]["meta"] == {"page": 3, "limit": 4, "totalItems": 9, "totalPages": 3}


def test_time_and_environment_filters(langfuse: RunningBridge) -> None:
    support_start = "2026-09-21T15:13:20Z"
    assert ids(sessions(langfuse, fromTimestamp=support_start)) == NEWEST_FIRST[:3]
    assert ids(sessions(langfuse, toTimestamp=support_start)) == NEWEST_FIRST[2:]
    assert ids(sessions(langfuse, fromTimestamp=support_start, toTimestamp=support_start)) == [
        "support-1"
    ]
    assert ids(sessions(langfuse, environment="staging")) == ["staging-1"]
    assert ids(sessions(langfuse, environment="default")) == ["bare-1"]
    both = sessions(langfuse, environment=["staging", "default"])
    assert ids(both) == ["bare-1", "staging-1"] and both["meta"]["totalItems"] == 2
    assert sessions(langfuse, environment="bare-1")["data"] == []


def test_session_with_its_traces(langfuse: RunningBridge) -> None:
    response = langfuse.client.get("/api/public/sessions/support-1")
    assert response.status_code == 200
    session = response.json()
    assert {k: session[k] for k in ("id", "createdAt", "projectId", "environment")} == {
        "id": "support-1",
        "createdAt": "2026-09-21T15:13:20.000Z",
        "projectId": "default",
        "environment": "production",
    }
    first, second, third = session["traces"]
    assert len(first["id"]) == 32
    del first["id"]
    assert first == {
        "timestamp": "2026-09-21T15:13:20.000Z",
        "name": "invoke_agent triage",  # the root span's name
        "userId": "u-1",
        "sessionId": "support-1",
        "metadata": {"channel": "web"},
        "tags": ["refunds", "vip"],
        "release": "r-42",
        "version": "1.2.3",  # the resource's service.version
        "projectId": "default",
        "environment": "production",
        "public": False,
        "bookmarked": False,
        "input": {"query": "refund my order A1"},
        "output": "Your refund is on its way",
        "createdAt": "2026-09-21T15:13:20.000Z",
        "updatedAt": "2026-09-21T15:13:21.000Z",
    }
    assert second["name"] == "second-turn"  # langfuse.trace.name wins
    assert (second["input"], second["output"], second["tags"], second["metadata"]) == (
        None,
        None,
        [],
        None,
    )
    assert third["name"] == "Support agent" and third["updatedAt"] == "2026-09-21T15:13:42.000Z"


def test_langfuse_keys_on_any_span_of_the_trace(langfuse: RunningBridge) -> None:
    (trace,) = langfuse.client.get("/api/public/sessions/bare-1").json()["traces"]
    assert trace["environment"] == "default"
    assert trace["input"] == [{"role": "user", "content": "hi"}]  # flattened gen_ai.prompt.N.*
    assert trace["output"] == {"answer": 42}
    assert trace["public"] is True
    assert trace["tags"] == ["alpha", "beta", "gamma"]
    assert trace["metadata"] == {"team": "search", "tier": 2}
    assert trace["version"] == "v7" and trace["release"] is None


def test_unknown_session_is_404(langfuse: RunningBridge) -> None:
    response = langfuse.client.get("/api/public/sessions/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "session 'nope' not found"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"page": 0}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"fromTimestamp": "last week"}, "fromTimestamp"),
        ({"toTimestamp": "2026-13-45"}, "toTimestamp"),
        ({"fromTimestamp": "9999-01-01T00:00:00Z"}, "fromTimestamp"),  # past 64-bit nanoseconds
    ],
)
def test_bad_parameters_are_named(
    langfuse: RunningBridge, params: dict[str, Any], named: str
) -> None:
    response = langfuse.client.get("/api/public/sessions", params=params)
    assert response.status_code == 400
    assert named in response.json()["message"]
