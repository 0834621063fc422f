"""The read APIs behind the sessions page: a session's spans (`…/sessions/{id}/spans`), a
project's usage over time (`…/usage`) and the projects a key may read (`/api/v1/projects`),
against a bridge fed through the official OTLP exporter."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from session_bridge.api.span_tree import plain
from session_bridge.api.usage import bucket_seconds
from tests import agent_scenario as scenario
from tests.conftest import RunningBridge
from tests.test_api_auth import (
    ACME_BEARER,
    GLOBEX_BEARER,
    two_project_bridge,
)

SPANS = "/api/projects/default/sessions/{}/spans"


@pytest.fixture(scope="module", params=scenario.BACKENDS)
def bridge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(request, tmp_path_factory.mktemp("page-apis")) as running:
        yield running


def get(bridge: RunningBridge, path: str, **params: Any) -> dict[str, Any]:
    response = bridge.client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_spans_give_each_turn_as_a_tree_timed_from_the_sessions_start(
    bridge: RunningBridge,
) -> None:
    body = get(bridge, SPANS.format("support-1"))
    assert body["sessionId"] == "support-1" and body["truncated"] is False
    assert body["session"]["session.id"] == "support-1" and body["session"]["user.id"] == "u-1"
    assert [t["turnIndex"] for t in body["traces"]] == [0, 1, 2]
    assert [t["name"] for t in body["traces"]] == [
        "invoke_agent triage", "invoke_agent triage", "Support agent",
    ]  # fmt: skip
    assert [t["offsetMs"] for t in body["traces"]] == [0, 10_000, 20_000]
    assert [t["durationMs"] for t in body["traces"]] == [1_000, 500, 2_000]
    spans = [s for t in body["traces"] for s in t["spans"]]
    assert len(spans) == body["session"]["span_count"] == 21
    # every span's parent is in its trace, and only the roots have none
    for trace in body["traces"]:
        ids = {s["spanId"] for s in trace["spans"]}
        roots = [s for s in trace["spans"] if s["parentSpanId"] is None]
        assert len(roots) == 1 and roots[0]["offsetMs"] == trace["offsetMs"]
        assert all(s["parentSpanId"] in ids for s in trace["spans"] if s is not roots[0])
        assert [s["offsetMs"] for s in trace["spans"]] == sorted(
            s["offsetMs"] for s in trace["spans"]
        )
    root = body["traces"][0]["spans"][0]
    assert root["input"] == {"query": "refund my order A1"}
    assert root["output"] == "Your refund is on its way"
    assert root["attributes"]["langfuse.release"] == "r-42"
    assert root["resource"]["service.version"] == "1.2.3" and root["kind"] == "INTERNAL"


def test_spans_carry_llm_cost_and_its_source_tool_calls_and_errors(
    bridge: RunningBridge,
) -> None:
    body = get(bridge, SPANS.format("support-1"))
    spans = {(s["name"], s["offsetMs"]): s for t in body["traces"] for s in t["spans"]}
    reported = spans[("chat gpt-4o", 10)]["llm"]
    assert reported["costUsd"] == 0.0125 and reported["costSource"] == "reported"
    estimated = spans[("chat gpt-4o", 140)]["llm"]
    assert estimated["costSource"] == "estimated" and estimated["costUsd"] > 0
    assert (estimated["inputTokens"], estimated["outputTokens"]) == (200, 30)
    assert (body["reportedCostCalls"], body["estimatedCostCalls"]) == (1, 2)
    assert spans[("chat gpt-4o", 10)]["input"] == [
        {"role": "user", "parts": [{"type": "text", "content": "Where is A1?"}]}
    ]
    tool = spans[("execute_tool lookup_order", 250)]["tool"]
    assert tool == {
        "toolName": "lookup_order",
        "toolCallId": "call-1",
        "arguments": {"order": "A1"},
        "result": {"status": "shipped"},
    }
    failed = spans[("execute_tool refund", 270)]
    assert (
        failed["status"] == "error" and failed["error"]["message"] == "gateway 503 for order 12345"
    )
    assert [e["name"] for e in failed["events"]] == ["exception"]
    event = failed["events"][0]
    assert event["attributes"]["exception.type"] == "RuntimeError" and event["offsetMs"] >= 270
    assert "exception.stacktrace" in event["attributes"]
    assert (
        spans[("guardrail pii", 1)]["llm"] is None and spans[("guardrail pii", 1)]["tool"] is None
    )


def test_spans_of_an_unknown_session_are_404(bridge: RunningBridge) -> None:
    response = bridge.client.get(SPANS.format("nope"))
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "session 'nope' not found"}


def test_values_are_sent_as_json_can_carry_them() -> None:
    assert plain({"big": 2**60, "small": 7, "nan": math.nan, "inf": -math.inf, "raw": b"\x01"}) == {
        "big": str(2**60),
        "small": 7,
        "nan": "nan",
        "inf": "-inf",
        "raw": "AQ==",
    }
    assert plain([True, None, 1.5, ("a", 2**53)]) == [True, None, 1.5, ["a", str(2**53)]]


def test_usage_counts_sessions_tokens_and_cost_over_time(bridge: RunningBridge) -> None:
    body = get(bridge, "/api/projects/default/usage")
    totals = body["totals"]
    assert totals["sessions"] == 8 and totals["traces"] == 10 and totals["users"] == 2
    assert (totals["inputTokens"], totals["outputTokens"]) == (690, 91)
    assert totals["errorSessions"] == 1 and totals["unpricedCalls"] == 0
    # the scenario spans 14:13:20 to 16:13:20 UTC: five-minute buckets
    assert body["bucketSeconds"] == 300
    assert body["start"] == "2026-09-21T14:10:00.000000Z"
    assert sum(b["sessions"] for b in body["buckets"]) == 8
    assert [b["sessions"] for b in body["buckets"][:2]] == [2, 4]
    assert sum(b["costUsd"] for b in body["buckets"]) == pytest.approx(totals["costUsd"])
    models = {m["model"]: m for m in body["byModel"]}
    assert {k: m["calls"] for k, m in models.items()} == {"gpt-4o": 9, "claude-haiku-4-5": 1}
    assert sum(models["gpt-4o"]["tokenSeries"]) == 690 - 10 + 91 - 1
    assert len(models["gpt-4o"]["costSeries"]) == len(body["buckets"])
    environments = {e["environment"]: e["sessions"] for e in body["byEnvironment"]}
    assert environments == {"production": 7, "staging": 1}
    users = {u["userId"]: u for u in body["byUser"]}
    assert users["u-1"]["sessions"] == 7 and users["u-2"]["sessions"] == 1
    assert users["u-1"]["errorSessions"] == 1


def test_usage_of_one_user_and_a_time_range(bridge: RunningBridge) -> None:
    body = get(bridge, "/api/projects/default/usage", **{"user.id": "u-2"})
    assert body["totals"]["sessions"] == 1
    assert [m["model"] for m in body["byModel"]] == ["claude-haiku-4-5"]
    ranged = get(
        bridge,
        "/api/projects/default/usage",
        **{"from": "2026-09-21T14:13:00", "to": "2026-09-21T14:14:30", "bucket": 60},
    )
    assert ranged["totals"]["sessions"] == 2 and ranged["bucketSeconds"] == 60
    assert [b["start"][11:19] for b in ranged["buckets"]] == ["14:13:00", "14:14:00"]
    assert [b["sessions"] for b in ranged["buckets"]] == [1, 1]
    empty = get(bridge, "/api/projects/default/usage", **{"from": "2030-01-01T00:00:00"})
    assert empty["totals"]["sessions"] == 0 and empty["byUser"] == []
    backwards = bridge.client.get(
        "/api/projects/default/usage",
        params={"from": "2026-09-22T00:00:00", "to": "2026-09-21T00:00:00"},
    )
    assert backwards.status_code == 400 and "'from'" in backwards.json()["message"]


def test_bucket_widths_are_round() -> None:
    minute = 60 * 10**9
    assert bucket_seconds(0) == 60 and bucket_seconds(59 * minute) == 60
    assert bucket_seconds(2 * 60 * minute) == 300
    assert bucket_seconds(30 * 24 * 60 * minute) == 86400


@pytest.fixture(scope="module")
def keyed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with two_project_bridge(request, tmp_path_factory.mktemp("keyed-page")) as bridge:
        yield bridge


def test_projects_are_those_the_key_may_read(keyed: RunningBridge, bridge: RunningBridge) -> None:
    assert get(bridge, "/api/v1/projects") == {"projects": ["default"], "open": True}
    assert keyed.client.get("/api/v1/projects").status_code == 401
    answer = keyed.client.get("/api/v1/projects", headers=ACME_BEARER)
    assert answer.json() == {"projects": ["acme"], "open": False}
    assert keyed.client.get("/api/v1/projects", headers=GLOBEX_BEARER).json()["projects"] == [
        "globex"
    ]


def test_a_missing_key_is_explained_in_plain_words(keyed: RunningBridge) -> None:
    answer = keyed.client.get("/api/projects/acme/usage").json()
    assert answer == {
        "error": "unauthorized",
        "message": "a valid API key is required: send Authorization: Bearer <secret key>",
    }
    search = keyed.client.post("/v2/projects/acme/sessions/search", json={}).json()["message"]
    assert search.endswith("Galileo-API-Key: <secret key> or Authorization: Bearer <secret key>")
    basic = keyed.client.get("/api/public/sessions").json()["message"]
    assert basic.endswith("Authorization: Basic base64(public_key:secret_key)")


@pytest.mark.parametrize(
    "path", ["/api/projects/acme/sessions/acme-1/spans", "/api/projects/acme/usage"]
)
def test_page_apis_need_the_projects_key(keyed: RunningBridge, path: str) -> None:
    assert keyed.client.get(path).status_code == 401
    assert keyed.client.get(path, headers=GLOBEX_BEARER).status_code == 404
    assert keyed.client.get(path, headers=ACME_BEARER).status_code == 200
