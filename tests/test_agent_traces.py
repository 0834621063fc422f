"""The agent traces API (seed 001) over multi-agent sessions sent by the OpenTelemetry SDK.

Expected events, metrics and findings are written out by hand from the scenario in
`agent_scenario.py` (span by span), not computed with the bridge's own code.
"""

from __future__ import annotations

import csv
import io
import json
import typing
from collections.abc import Iterator
from typing import Any

import pytest

from session_bridge.api.agent_models import EventTypeName
from session_bridge.api.analysis import decision_anomalies, error_signature, percentile
from session_bridge.api.event_export import EXPORT_COLUMNS
from session_bridge.model import EventType
from tests import agent_scenario as scenario
from tests.conftest import RunningBridge

P = "/api/projects/default/sessions"


@pytest.fixture(scope="module", params=scenario.BACKENDS)
def agents(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(
        request, tmp_path_factory.mktemp("a"), transport="grpc"
    ) as bridge:
        yield bridge


def get(bridge: RunningBridge, path: str, **params: Any) -> Any:
    response = bridge.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def all_events(bridge: RunningBridge, session: str, **params: Any) -> list[dict[str, Any]]:
    return list(get(bridge, f"{P}/{session}/traces", limit=1000, **params)["events"])


def brief(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["type"], e["name"], e["turnIndex"]) for e in events]


# (type, span name, turn) of support-1's events, in time order; see agent_scenario.SUPPORT
SUPPORT_EVENTS = [
    ("guardrail_eval", "guardrail pii", 0),
    ("llm_call", "chat gpt-4o", 0),
    ("decision", "handoff triage -> billing", 0),
    ("handoff", "handoff triage -> billing", 0),
    ("llm_call", "chat gpt-4o", 0),
    ("tool_call", "execute_tool lookup_order", 0),
    ("tool_result", "execute_tool lookup_order", 0),
    ("tool_call", "execute_tool refund", 0),
    ("tool_result", "execute_tool refund", 0),
    ("error", "execute_tool refund", 0),
    ("tool_call", "execute_tool refund", 0),
    ("tool_result", "execute_tool refund", 0),
    ("error", "execute_tool refund", 0),
    ("state_change", "update_memory order", 0),
    ("decision", "route escalation", 0),
    ("decision", "handoff billing -> triage", 0),
    ("handoff", "handoff billing -> triage", 0),
    ("response", "invoke_agent triage", 0),
    ("llm_call", "chat gpt-4o", 1),
    ("decision", "handoff triage -> billing", 1),
    ("handoff", "handoff triage -> billing", 1),
    ("decision", "handoff billing -> support", 1),
    ("handoff", "handoff billing -> support", 1),
    ("decision", "handoff support -> triage", 1),
    ("handoff", "handoff support -> triage", 1),
    ("guardrail_eval", "guardrail toxicity", 1),
    ("response", "invoke_agent triage", 1),
    ("guardrail_eval", "Refund guard", 2),
    ("tool_call", "execute_tool lookup_order", 2),
    ("tool_result", "execute_tool lookup_order", 2),
    ("error", "Support agent", 2),
]


def test_event_types_are_the_nine_of_the_model() -> None:
    assert set(typing.get_args(EventTypeName)) == {t.value for t in EventType} - {"span"}


def test_events_in_time_order_with_turns_agents_and_sequence(agents: RunningBridge) -> None:
    events = all_events(agents, "support-1")
    assert brief(events) == SUPPORT_EVENTS
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert len({e["id"] for e in events}) == len(events)
    agents_by_name = {(e["name"], e["agentName"]) for e in events}
    assert ("chat gpt-4o", "triage") in agents_by_name
    assert ("execute_tool refund", "billing") in agents_by_name
    assert ("Refund guard", "support") in agents_by_name  # OpenInference graph.node.id
    roots = [e for e in events if e["type"] == "response"]
    assert all(e["parentSpanId"] is None for e in roots)
    assert {e["sessionId"] for e in events} == {"support-1"}
    assert len({e["traceId"] for e in events}) == 3


def test_payload_blocks(agents: RunningBridge) -> None:
    events = all_events(agents, "support-1")
    blocks = {"llm", "tool", "decision", "handoff", "guardrail", "stateChange", "error", "response"}
    for event in events:
        assert len(blocks & set(event)) == 1, event
    first_llm = next(e for e in events if e["type"] == "llm_call")["llm"]
    assert first_llm == {
        "model": "gpt-4o",
        "provider": "openai",
        "inputTokens": 100,
        "outputTokens": 20,
        "totalTokens": 120,
        "cacheReadTokens": 0,
        "reasoningTokens": 0,
        "latencyMs": 100.0,
        "ttftMs": 42.5,
        "finishReason": "tool_calls",
        "promptName": "triage-prompt",
        "promptVersion": "3",
        "costUsd": 0.0125,
    }
    call, result = [e["tool"] for e in events if e["name"] == "execute_tool lookup_order"][:2]
    assert call == {
        "toolName": "lookup_order",
        "toolCallId": "call-1",
        "arguments": {"order": "A1"},
    }
    assert result == {
        "toolName": "lookup_order",
        "toolCallId": "call-1",
        "output": {"status": "shipped"},
        "isError": False,
        "errorMessage": None,
    }
    failed = next(e for e in events if e["type"] == "tool_result" and e["status"] == "error")
    assert failed["tool"]["isError"] is True
    assert failed["tool"]["errorMessage"] == "gateway 503 for order 12345"
    error = next(e for e in events if e["type"] == "error")["error"]
    assert error["errorType"] == "RuntimeError"
    assert error["message"] == "gateway 503 for order 12345"
    assert "RuntimeError" in error["stack"]  # exception.stacktrace
    handoff = next(e for e in events if e["type"] == "handoff")["handoff"]
    assert handoff == {"fromAgent": "triage", "toAgent": "billing"}
    decisions = [e["decision"] for e in events if e["type"] == "decision"]
    assert decisions[0]["decisionKind"] == "handoff" and decisions[0]["targets"] == ["billing"]
    escalate = next(d for d in decisions if d["decisionKind"] == "escalate")
    assert escalate == {
        "decisionKind": "escalate",
        "fromAgent": "billing",
        "target": "human",
        "targets": ["human"],
        "ruleName": None,
        "reason": "refund failed twice",
        "confidence": None,
    }
    guardrails = [
        (
            e["guardrail"]["guardrailName"],
            e["guardrail"]["stage"],
            e["guardrail"]["verdict"],
            e["guardrail"]["triggered"],
        )
        for e in events
        if e["type"] == "guardrail_eval"
    ]
    assert guardrails == [
        ("pii", "input", "pass", False),
        ("toxicity", "output", "block", True),
        ("Refund guard", None, "block", True),  # its agent stopped on a tripwire
    ]
    state = next(e for e in events if e["type"] == "state_change")["stateChange"]
    assert state == {
        "scope": "session",
        "path": "order.status",
        "oldValue": "shipped",
        "newValue": "refund_pending",
    }
    responses = [e["response"]["content"] for e in events if e["type"] == "response"]
    assert responses == ["Your refund is on its way", None]


def test_filters(agents: RunningBridge) -> None:
    def types(**params: Any) -> list[tuple[str, str, int]]:
        return brief(all_events(agents, "support-1", **params))

    decisions = [e for e in SUPPORT_EVENTS if e[0] == "decision"]
    assert types(eventType="decision") == decisions
    assert types(eventType=["handoff", "guardrail_eval"]) == [
        e for e in SUPPORT_EVENTS if e[0] in ("handoff", "guardrail_eval")
    ]
    assert types(decisionKind="handoff") == [e for e in decisions if e[1].startswith("handoff")]
    assert types(decisionKind="escalate") == [("decision", "route escalation", 0)]
    assert types(decisionKind="fan_out") == []
    assert types(eventType="llm_call", decisionKind="handoff") == []


def test_cursor_pagination_walks_the_whole_timeline(agents: RunningBridge) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = get(agents, f"{P}/support-1/traces", **params)
        seen += page["events"]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 5
    assert brief(seen) == SUPPORT_EVENTS
    filtered = get(agents, f"{P}/support-1/traces", limit=2, eventType="handoff")
    rest = get(
        agents,
        f"{P}/support-1/traces",
        limit=10,
        eventType="handoff",
        cursor=filtered["nextCursor"],
    )
    assert len(filtered["events"]) + len(rest["events"]) == 5 and rest["nextCursor"] is None


EXPECTED_METRICS = {
    "sessionId": "support-1",
    "totalLatencyMs": 3500.0,  # 1000 + 500 + 2000 ms root spans
    "wallClockMs": 22000.0,
    "turnCount": 3,
    "tokens": {"input": 380, "output": 60, "total": 440},
    "toolCallCount": 4,
    "toolSuccessCount": 2,
    "toolSuccessRate": 0.5,
    "guardrailEvalCount": 3,
    "guardrailBlockCount": 2,
    "guardrailBlockRate": 0.6667,
}


def test_metrics(agents: RunningBridge) -> None:
    metrics = get(agents, f"{P}/support-1/metrics")
    assert {k: metrics[k] for k in EXPECTED_METRICS} == EXPECTED_METRICS
    turns = [
        (t["turnIndex"], t["latencyMs"], t["llmMs"], t["toolMs"], t["guardrailMs"])
        for t in metrics["turns"]
    ]
    assert turns == [
        (0, 1000.0, 200.0, 70.0, 4.0),
        (1, 500.0, 49.0, 0.0, 10.0),
        (2, 2000.0, 0.0, 1500.0, 4.0),
    ]
    calls = [
        (
            c["turnIndex"],
            c["model"],
            c["inputTokens"],
            c["outputTokens"],
            c["totalTokens"],
            c["latencyMs"],
        )
        for c in metrics["llmCalls"]
    ]
    assert calls == [
        (0, "gpt-4o", 100, 20, 120, 100.0),
        (0, "gpt-4o", 200, 30, 230, 100.0),
        (1, "gpt-4o", 80, 10, 90, 49.0),
    ]
    with_events = get(agents, f"{P}/support-1/traces", include="metrics", limit=1)
    assert with_events["metrics"] == metrics
    assert "metrics" not in get(agents, f"{P}/support-1/traces", limit=1)


def test_rates_are_null_without_tools_or_guardrails(agents: RunningBridge) -> None:
    metrics = get(agents, f"{P}/staging-1/metrics")
    assert metrics["toolCallCount"] == 0 and metrics["toolSuccessRate"] is None
    assert metrics["guardrailEvalCount"] == 0 and metrics["guardrailBlockRate"] is None


def test_children_are_the_events_nested_under_a_span(agents: RunningBridge) -> None:
    events = all_events(agents, "support-1")
    billing = next(e for e in events if e["agentName"] == "billing")["parentSpanId"]
    children = get(agents, f"{P}/support-1/traces/{billing}/children")
    assert children["spanId"] == billing
    assert brief(children["events"]) == SUPPORT_EVENTS[4:17]
    only_tools = get(
        agents, f"{P}/support-1/traces/{billing.upper()}/children", eventType="tool_call"
    )
    assert [e["name"] for e in only_tools["events"]] == [
        "execute_tool lookup_order",
        "execute_tool refund",
        "execute_tool refund",
    ]
    leaf = next(e for e in events if e["type"] == "llm_call")["spanId"]
    assert get(agents, f"{P}/support-1/traces/{leaf}/children")["events"] == []


# -- analysis: each rule ---------------------------------------------------------------------


def test_analysis_slow_spans_against_project_baseline(agents: RunningBridge) -> None:
    analysis = get(agents, f"{P}/support-1/analysis")
    slow = {
        (s["name"], s["durationMs"], s["baselineMs"], s["sampleCount"])
        for s in analysis["slowSpans"]
    }
    # baseline: the other 7 sessions; lookup_order: 6 x 10 ms; triage: 6 x 100 + 50 ms; chat gpt-4o: 6 x 39 ms
    assert slow == {
        ("execute_tool lookup_order", 1500.0, 10.0, 6),
        ("invoke_agent triage", 1000.0, 100.0, 7),
        ("invoke_agent triage", 500.0, 100.0, 7),
        ("chat gpt-4o", 100.0, 39.0, 6),
        ("chat gpt-4o", 49.0, 39.0, 6),
    }
    top = analysis["slowSpans"][0]
    assert top["type"] == "tool_call" and top["percentile"] == 100.0 and "p95" in top["reason"]


def test_analysis_without_enough_baseline_finds_nothing_slow(agents: RunningBridge) -> None:
    analysis = get(agents, f"{P}/staging-1/analysis")  # claude chat: no other samples
    assert all(s["name"] != "chat claude-haiku-4-5" for s in analysis["slowSpans"])


def test_analysis_error_patterns(agents: RunningBridge) -> None:
    patterns = get(agents, f"{P}/support-1/analysis")["errorPatterns"]
    assert [(p["signature"], p["count"], len(p["spanIds"])) for p in patterns] == [
        ("RuntimeError: gateway <n> for order <n>", 2, 2),
        ("Error: Guardrail tripwire triggered", 1, 1),
    ]
    assert patterns[0]["exampleMessage"] == "gateway 503 for order 12345"


def test_analysis_decision_anomalies(agents: RunningBridge) -> None:
    anomalies = get(agents, f"{P}/support-1/analysis")["decisionAnomalies"]
    found = [(a["anomaly"], a["detail"]) for a in anomalies]
    assert found == [
        ("unexpected_target", "target 'human' was never chosen in this project before"),
        ("unexpected_target", "target 'triage' was never chosen in this project before"),
        ("ping_pong", "triage handed off to billing, which handed straight back"),
        ("unexpected_target", "target 'support' was never chosen in this project before"),
        ("loop", "handoff loop: triage -> billing -> support -> triage"),
    ]
    # the project's first session has no history: nothing is unexpected
    first = get(agents, f"{P}/baseline-0/analysis")
    assert (
        first["decisionAnomalies"] == [] and first["slowSpans"] == [] and first["suggestions"] == []
    )


def test_analysis_suggestions_follow_the_findings(agents: RunningBridge) -> None:
    analysis = get(agents, f"{P}/support-1/analysis")
    suggestions = [
        (s["category"], s["severity"], len(s["relatedSpanIds"])) for s in analysis["suggestions"]
    ]
    assert suggestions == [
        ("caching", "medium", 3),  # three calls to gpt-4o with the same input messages
        ("latency", "high", 1),  # lookup_order: 1500 of 2000 ms, nothing beside it
        ("reliability", "medium", 2),
        ("orchestration", "medium", 1),
        ("orchestration", "medium", 1),
    ]
    assert "75% of turn 2" in analysis["suggestions"][1]["message"]


def test_percentile_and_signature_rules() -> None:
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50) == 5
    assert percentile([7], 95) == 7
    assert error_signature(
        None, "id 123e4567-e89b-12d3-a456-426614174000 at 0xff, 'x'  took 3.5s"
    ) == ("Error: id <uuid> at <hex>, <str> took <n>s")
    assert error_signature("E", "req 3f2a9c1b77aa failed") == "E: req <hex> failed"
    assert decision_anomalies([], set()) == []


# -- export --------------------------------------------------------------------------------


def export(bridge: RunningBridge, **params: Any) -> str:
    response = bridge.client.get(f"{P}/export", params=params)
    assert response.status_code == 200, response.text
    return response.text


def test_export_csv_has_the_documented_header_and_one_row_per_event(agents: RunningBridge) -> None:
    text = export(agents, format="csv", sessionId="support-1")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(EXPORT_COLUMNS)
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [(r["event_type"], r["name"], int(r["turn_index"])) for r in records] == SUPPORT_EVENTS
    llm = next(r for r in records if r["event_type"] == "llm_call")
    assert (llm["model"], llm["input_tokens"], llm["total_tokens"], llm["cost_usd"]) == (
        "gpt-4o",
        "100",
        "120",
        "0.0125",
    )
    failed = next(r for r in records if r["event_type"] == "error")
    assert (failed["error_type"], failed["error_message"]) == (
        "RuntimeError",
        "gateway 503 for order 12345",
    )
    verdicts = [r["guardrail_verdict"] for r in records if r["event_type"] == "guardrail_eval"]
    assert verdicts == ["pass", "block", "block"]


def test_export_jsonl_and_filters(agents: RunningBridge) -> None:
    response = agents.client.get(
        f"{P}/export", params={"format": "jsonl", "sessionId": ["support-1", "staging-1"]}
    )
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [e["id"] for e in lines[: len(SUPPORT_EVENTS)]] == [
        e["id"] for e in all_events(agents, "support-1")
    ]
    assert len(lines) == len(SUPPORT_EVENTS) + 2
    everything = export(agents, format="jsonl")
    assert (
        len(everything.splitlines()) == 6 * 6 + len(SUPPORT_EVENTS) + 2
    )  # 6 events per baseline session
    turn_one = export(
        agents,
        format="csv",
        sessionId="support-1",
        **{"from": "2026-09-21T15:13:30Z", "to": "2026-09-21T15:13:30.5Z"},
    )
    assert len(turn_one.splitlines()) == 1 + 9  # header + turn 1's events
    assert export(agents, format="csv", sessionId="nobody").splitlines() == [
        ",".join(EXPORT_COLUMNS)
    ]


# -- generations ---------------------------------------------------------------------------


def test_generations_across_sessions(agents: RunningBridge) -> None:
    page = get(agents, f"{P}/generations", limit=100)
    items = page["items"]
    assert len(items) == 10 and page["nextCursor"] is None  # 6 baseline + 3 support + 1 staging
    assert [i["startTime"] for i in items] == sorted((i["startTime"] for i in items), reverse=True)
    assert items[0]["model"] == "claude-haiku-4-5" and items[0]["provider"] == "anthropic"
    first_support = next(i for i in items if i["promptName"] == "triage-prompt")
    assert {
        k: first_support[k]
        for k in (
            "sessionId",
            "agentName",
            "inputTokens",
            "outputTokens",
            "totalTokens",
            "latencyMs",
            "ttftMs",
            "finishReason",
            "promptVersion",
            "costUsd",
        )
    } == {
        "sessionId": "support-1",
        "agentName": "triage",
        "inputTokens": 100,
        "outputTokens": 20,
        "totalTokens": 120,
        "latencyMs": 100.0,
        "ttftMs": 42.5,
        "finishReason": "tool_calls",
        "promptVersion": "3",
        "costUsd": 0.0125,
    }


def test_generations_filters_and_cursor(agents: RunningBridge) -> None:
    assert [
        i["sessionId"] for i in get(agents, f"{P}/generations", model="claude-haiku-4-5")["items"]
    ] == ["staging-1"]
    assert len(get(agents, f"{P}/generations", provider="openai")["items"]) == 9
    window = get(
        agents,
        f"{P}/generations",
        **{"from": "2026-09-21T15:13:20Z", "to": "2026-09-21T15:13:30.001Z"},
    )
    assert [i["sessionId"] for i in window["items"]] == ["support-1"] * 3
    seen: list[str] = []
    cursor = None
    while True:
        page = get(agents, f"{P}/generations", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [i["spanId"] for i in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [i["spanId"] for i in get(agents, f"{P}/generations", limit=100)["items"]]


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/support-1/traces", {"eventType": "bogus"}, "eventType"),
        ("/support-1/traces", {"decisionKind": "maybe"}, "decisionKind"),
        ("/support-1/traces", {"include": "everything"}, "include"),
        ("/support-1/traces", {"limit": 0}, "limit"),
        ("/support-1/traces", {"cursor": "not-a-cursor"}, "cursor"),
        ("/support-1/traces/xyz/children", {}, "spanId"),
        ("/export", {"format": "xml"}, "format"),
        ("/export", {"from": "yesterday"}, "from"),
        ("/generations", {"limit": 5000}, "limit"),
        ("/generations", {"cursor": "WzFd"}, "cursor"),
        ("/generations", {"to": "never"}, "to"),
    ],
)
def test_bad_parameters_are_named(
    agents: RunningBridge, path: str, params: dict[str, Any], named: str
) -> None:
    response = agents.client.get(P + path, params=params)
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]


def test_bad_project_id_is_named(agents: RunningBridge) -> None:
    response = agents.client.get("/api/projects/bad project!/sessions/support-1/metrics")
    assert response.status_code == 400 and "projectId" in response.json()["message"]


@pytest.mark.parametrize(
    "suffix", ["traces", "metrics", "analysis", "traces/0123456789abcdef/children"]
)
def test_unknown_session_or_span_is_404(agents: RunningBridge, suffix: str) -> None:
    response = agents.client.get(f"{P}/no-such-session/{suffix}")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert agents.client.get(f"{P}/support-1/traces/0123456789abcdef/children").status_code == 404
    assert agents.client.get(f"/api/projects/other/sessions/support-1/{suffix}").status_code == 404


def test_a_project_without_data_has_empty_listings(agents: RunningBridge) -> None:
    assert get(agents, "/api/projects/empty/sessions/generations") == {
        "items": [],
        "nextCursor": None,
    }
    response = agents.client.get("/api/projects/empty/sessions/export")
    assert response.text.splitlines() == [",".join(EXPORT_COLUMNS)]
