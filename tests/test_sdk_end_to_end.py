"""The official OpenTelemetry Python SDK and OTLP exporters -> bridge -> sessions API.

The scenario is described as plain data; the expected rollups are computed from
that description here, independently of the bridge's own rollup code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from tests.conftest import RunningBridge, sdk_provider

BASE_NS = 1_790_000_000_000_000_000
MS = 1_000_000


@dataclass
class LlmCall:
    provider: str
    request_model: str
    response_model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


@dataclass
class ToolCall:
    name: str
    ok: bool = True


@dataclass
class Turn:
    start_ms: int
    llm_calls: list[LlmCall]
    tools: list[ToolCall] = field(default_factory=list)

    @property
    def span_count(self) -> int:
        return 1 + len(self.llm_calls) + len(self.tools)

    @property
    def end_ms(self) -> int:
        return self.start_ms + 10 * (len(self.llm_calls) + len(self.tools)) + 5


@dataclass
class SessionPlan:
    session_id: str
    user_id: str
    client_ip: str
    user_agent: str
    turns: list[Turn]


PLANS = [
    SessionPlan(
        session_id="sess-alpha",
        user_id="user-1",
        client_ip="203.0.113.7",
        user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
        turns=[
            Turn(
                0,
                [LlmCall("openai", "gpt-4o", "gpt-4o-2024-08-06", 1200, 150, 800)],
                [ToolCall("search")],
            ),
            Turn(
                1_000,
                [
                    LlmCall("openai", "gpt-4o", "gpt-4o-2024-08-06", 2000, 300),
                    LlmCall(
                        "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 900, 80
                    ),
                ],
                [ToolCall("lookup_order", ok=False), ToolCall("lookup_order")],
            ),
            Turn(5_000, [LlmCall("openai", "gpt-4o-mini", "gpt-4o-mini", 300, 40)]),
        ],
    ),
    SessionPlan(
        session_id="sess-beta",
        user_id="user-2",
        client_ip="198.51.100.20",
        user_agent="python-httpx/0.28.1",
        turns=[Turn(200, [LlmCall("anthropic", "claude-3-5-haiku", "claude-3-5-haiku", 50, 5)])],
    ),
]


def _send(bridge: RunningBridge, transport: str, plans: list[SessionPlan]) -> None:
    frontend = sdk_provider(
        bridge,
        transport,
        {"service.name": "web-frontend", "deployment.environment.name": "production"},
    )
    worker = sdk_provider(
        bridge,
        transport,
        {"service.name": "agent-worker", "deployment.environment.name": "production"},
    )
    front_tracer = frontend.get_tracer("tests.frontend")
    work_tracer = worker.get_tracer("tests.worker")
    for plan in plans:
        for turn in plan.turns:
            t = BASE_NS + turn.start_ms * MS
            root = front_tracer.start_span(
                "invoke_agent support",
                start_time=t,
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "support",
                    "session.id": plan.session_id,
                    "user.id": plan.user_id,
                    "client.address": plan.client_ip,
                    "user_agent.original": plan.user_agent,
                    # an agent span repeats its children's usage: it must not count twice
                    "gen_ai.usage.input_tokens": sum(c.input_tokens for c in turn.llm_calls),
                    "gen_ai.usage.output_tokens": sum(c.output_tokens for c in turn.llm_calls),
                    "gen_ai.request.model": turn.llm_calls[0].request_model,
                },
            )
            ctx = trace.set_span_in_context(root)
            offset = t
            for call in turn.llm_calls:
                span = work_tracer.start_span(
                    f"chat {call.request_model}",
                    context=ctx,
                    start_time=offset + MS,
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": call.provider,
                        "gen_ai.request.model": call.request_model,
                        "gen_ai.response.model": call.response_model,
                        "gen_ai.usage.input_tokens": call.input_tokens,
                        "gen_ai.usage.output_tokens": call.output_tokens,
                        "gen_ai.usage.cache_read.input_tokens": call.cached_tokens,
                        "gen_ai.request.temperature": 0.2,
                        "gen_ai.response.finish_reasons": ["stop"],
                    },
                )
                span.end(end_time=offset + 9 * MS)
                offset += 10 * MS
            for tool in turn.tools:
                span = work_tracer.start_span(
                    f"execute_tool {tool.name}",
                    context=ctx,
                    start_time=offset + MS,
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": tool.name,
                        "gen_ai.tool.call.id": f"call-{offset}",
                    },
                )
                if not tool.ok:
                    span.record_exception(RuntimeError("order service timed out"))
                    span.set_status(Status(StatusCode.ERROR, "order service timed out"))
                span.end(end_time=offset + 9 * MS)
                offset += 10 * MS
            root.end(end_time=BASE_NS + turn.end_ms * MS)
    for provider in (worker, frontend):
        assert provider.force_flush(10_000)
        provider.shutdown()


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _expected(plan: SessionPlan) -> dict[str, object]:
    calls = [c for t in plan.turns for c in t.llm_calls]
    start = BASE_NS + min(t.start_ms for t in plan.turns) * MS
    end = BASE_NS + max(t.end_ms for t in plan.turns) * MS
    return {
        "session.id": plan.session_id,
        "user.id": plan.user_id,
        "start_time": _iso(start),
        "end_time": _iso(end),
        "duration_ms": (end - start) // MS,
        "trace_count": len(plan.turns),
        "span_count": sum(t.span_count for t in plan.turns),
        "error_count": sum(1 for t in plan.turns for tool in t.tools if not tool.ok),
        "services": ["agent-worker", "web-frontend"],
        "environment": "production",
        "state": "ended",
        "client_ip": plan.client_ip,
        "user_agent": plan.user_agent,
        "request_count": len(calls),
        "total_input_tokens": sum(c.input_tokens for c in calls),
        "total_output_tokens": sum(c.output_tokens for c in calls),
        "cache_read_input_tokens": sum(c.cached_tokens for c in calls),
        "models_used": sorted({c.response_model for c in calls}),
        "providers_used": sorted({c.provider for c in calls}),
    }


def _actual(session: dict[str, object]) -> dict[str, object]:
    usage = session["genai_usage"]
    client = session["client"]
    assert isinstance(usage, dict) and isinstance(client, dict)
    keys = (
        "session.id", "user.id", "start_time", "end_time", "duration_ms", "trace_count",
        "span_count", "error_count", "services", "environment", "state",
    )  # fmt: skip
    return {
        **{k: session[k] for k in keys},
        "client_ip": client["ip"],
        "user_agent": client["user_agent"],
        **{
            k: usage[k]
            for k in (
                "request_count",
                "total_input_tokens",
                "total_output_tokens",
                "cache_read_input_tokens",
                "models_used",
                "providers_used",
            )
        },
    }


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_sessions_round_trip(bridge: RunningBridge, transport: str) -> None:
    _send(bridge, transport, PLANS)
    sessions = bridge.all_sessions()
    assert set(sessions) == {p.session_id for p in PLANS}
    for plan in PLANS:
        assert _actual(sessions[plan.session_id]) == _expected(plan)
        assert _actual(bridge.get_session(plan.session_id)) == _expected(plan)


def test_same_sessions_over_both_transports_are_counted_once_each(bridge: RunningBridge) -> None:
    # the same plan sent twice yields new trace/span ids: two deliveries, twice the traces
    _send(bridge, "grpc", PLANS[1:])
    _send(bridge, "http", PLANS[1:])
    session = bridge.get_session("sess-beta")
    assert session["trace_count"] == 2
    assert session["genai_usage"]["request_count"] == 2
