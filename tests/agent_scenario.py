"""Multi-agent sessions, described as data and sent through the OpenTelemetry SDK.

`SESSIONS` is a project's worth of agent sessions: six short `baseline-*`
sessions (the project's history: fast `lookup_order` tools, triage -> billing
handoffs), then `support-1`, a three-turn session with handoffs (a ping-pong and
a loop), guardrails (one passing, one triggered, one tripwire in the OpenAI
Agents SDK's OpenInference form), failing tools, a state change, a decision, a
repeated identical LLM call and a slow tool; and `staging-1` in another
environment. Every span has explicit times, so everything derived is exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from tests import pg
from tests.conftest import RunningBridge, make_config, sdk_provider

BASE_NS = 1_790_000_000_000_000_000
MS = 1_000_000
RESOURCE = {
    "service.name": "agent-worker",
    "deployment.environment.name": "production",
    "service.version": "1.2.3",
}


@dataclass
class S:
    """One span: name, attributes, start/end in ms from its session's start, children."""

    name: str
    attrs: dict[str, Any]
    start_ms: int
    end_ms: int
    children: list[S] = field(default_factory=list)
    error: str | None = None  # exception message: status ERROR + an exception event
    status_error: str | None = None  # status ERROR with this description, no exception
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, attributes)


@dataclass
class Session:
    session_id: str
    start_ms: int  # from BASE_NS
    turns: list[S]
    environment: str | None = "production"  # None: no span names one
    user_id: str = "u-1"


def agent(name: str, start: int, end: int, children: list[S], **attrs: Any) -> S:
    return S(
        f"invoke_agent {name}",
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name, **attrs},
        start,
        end,
        children,
    )


def chat(
    start: int,
    end: int,
    tokens: tuple[int, int],
    model: str = "gpt-4o",
    provider: str = "openai",
    **attrs: Any,
) -> S:
    return S(
        f"chat {model}",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            **attrs,
        },
        start,
        end,
    )


def tool(
    name: str, start: int, end: int, call_id: str, error: str | None = None, **attrs: Any
) -> S:
    return S(
        f"execute_tool {name}",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            **attrs,
        },
        start,
        end,
        error=error,
    )


def handoff(source: str, target: str, start: int) -> S:
    return S(
        f"handoff {source} -> {target}",
        {
            "gen_ai.operation.name": "agent_handoff",
            "gen_ai.handoff.from_agent": source,
            "gen_ai.handoff.to_agent": target,
        },
        start,
        start + 1,
    )


def guardrail(name: str, stage: str, triggered: bool, start: int, end: int) -> S:
    return S(
        f"guardrail {name}",
        {
            "gen_ai.operation.name": "guardrail_check",
            "gen_ai.guardrail.name": name,
            "gen_ai.guardrail.stage": stage,
            "gen_ai.guardrail.triggered": triggered,
        },
        start,
        end,
    )


QUESTION = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is A1?"}]}])
TRIAGE_CHAT: dict[str, Any] = {
    "gen_ai.response.finish_reasons": ["tool_calls"],
    "ai.response.msToFirstChunk": 42.5,
    "gen_ai.input.messages": QUESTION,
    "langfuse.observation.prompt.name": "triage-prompt",
    "langfuse.observation.prompt.version": 3,
    "gen_ai.usage.cost": 0.0125,
}


def _baseline(index: int) -> Session:
    return Session(
        f"baseline-{index}",
        index * 60_000,
        [
            agent(
                "triage",
                0,
                100,
                [
                    chat(1, 40, (50, 5)),
                    tool("lookup_order", 41, 51, f"b{index}"),
                    handoff("triage", "billing", 60),
                ],
            )
        ],
    )


SUPPORT = Session(
    "support-1",
    3_600_000,
    [
        # turn 0: pass guardrail, a handoff triage -> billing and straight back (ping-pong)
        agent(
            "triage",
            0,
            1_000,
            [
                guardrail("pii", "input", False, 1, 5),
                chat(
                    10,
                    110,
                    (100, 20),
                    **TRIAGE_CHAT,
                ),
                handoff("triage", "billing", 120),
                agent(
                    "billing",
                    130,
                    900,
                    [
                        chat(140, 240, (200, 30), **{"gen_ai.input.messages": QUESTION}),
                        tool(
                            "lookup_order",
                            250,
                            260,
                            "call-1",
                            **{
                                "gen_ai.tool.call.arguments": '{"order": "A1"}',
                                "gen_ai.tool.call.result": '{"status": "shipped"}',
                            },
                        ),
                        tool("refund", 270, 300, "call-2", error="gateway 503 for order 12345"),
                        tool("refund", 310, 340, "call-3", error="gateway 503 for order 67890"),
                        S(
                            "update_memory order",
                            {
                                "gen_ai.operation.name": "update_memory",
                                "state.key": "order.status",
                                "state.scope": "session",
                                "state.old_value": "shipped",
                                "state.new_value": "refund_pending",
                            },
                            350,
                            355,
                        ),
                        S(
                            "route escalation",
                            {
                                "gen_ai.operation.name": "route",
                                "decision.kind": "escalate",
                                "decision.target": "human",
                                "decision.reason": "refund failed twice",
                            },
                            360,
                            362,
                        ),
                        handoff("billing", "triage", 800),
                    ],
                ),
            ],
            **{
                "langfuse.trace.tags": ["vip", "refunds"],
                "langfuse.release": "r-42",
                "langfuse.trace.metadata.channel": "web",
                "input.value": '{"query": "refund my order A1"}',
                "output.value": "Your refund is on its way",
            },
        ),
        # turn 1: triggered output guardrail, identical LLM calls, a loop triage->billing->support->triage
        agent(
            "triage",
            10_000,
            10_500,
            [
                chat(10_001, 10_050, (80, 10), **{"gen_ai.input.messages": QUESTION}),
                handoff("triage", "billing", 10_100),
                handoff("billing", "support", 10_200),
                handoff("support", "triage", 10_300),
                guardrail("toxicity", "output", True, 10_400, 10_410),
            ],
            **{"langfuse.trace.name": "second-turn"},
        ),
        # turn 2: OpenInference (OpenAI Agents SDK) tripwire and a slow tool on the critical path
        S(
            "Support agent",
            {"openinference.span.kind": "AGENT", "graph.node.id": "support"},
            20_000,
            22_000,
            [
                S("Refund guard", {"openinference.span.kind": "GUARDRAIL"}, 20_001, 20_005),
                tool("lookup_order", 20_010, 21_510, "call-9"),
            ],
            status_error="Guardrail tripwire triggered",
        ),
    ],
)

STAGING = Session(
    "staging-1",
    7_200_000,
    [agent("triage", 0, 50, [chat(1, 20, (10, 1), "claude-haiku-4-5", "anthropic")])],
    environment="staging",
    user_id="u-2",
)

SESSIONS = [*(_baseline(i) for i in range(6)), SUPPORT, STAGING]


def walk(span: S) -> Iterator[S]:
    yield span
    for child in span.children:
        yield from walk(child)


def send(provider: TracerProvider, sessions: list[Session]) -> None:
    tracer = provider.get_tracer("tests.agents")
    for session in sessions:
        names = {"session.id": session.session_id, "user.id": session.user_id}
        if session.environment is not None:
            names["deployment.environment.name"] = session.environment
        for turn in session.turns:
            _emit(tracer, turn, BASE_NS + session.start_ms * MS, None, names)
    assert provider.force_flush(10_000)


def _emit(
    tracer: trace.Tracer,
    span: S,
    base_ns: int,
    parent: trace.Span | None,
    extra: dict[str, Any] | None = None,
) -> None:
    context = trace.set_span_in_context(parent) if parent is not None else None
    started = tracer.start_span(
        span.name,
        context=context,
        start_time=base_ns + span.start_ms * MS,
        attributes={**span.attrs, **(extra or {})},
    )
    for child in span.children:
        _emit(tracer, child, base_ns, started)
    for name, attributes in span.events:
        started.add_event(name, attributes, timestamp=base_ns + span.end_ms * MS)
    if span.error is not None:
        started.record_exception(RuntimeError(span.error))
        started.set_status(Status(StatusCode.ERROR, span.error))
    elif span.status_error is not None:
        started.set_status(Status(StatusCode.ERROR, span.status_error))
    started.end(end_time=base_ns + span.end_ms * MS)


BACKENDS = ["sqlite", "postgres"]


@contextmanager
def running_bridge(
    request: pytest.FixtureRequest,
    data_dir: Path,
    backend: str | None = None,
    **sections: dict[str, Any],
) -> Iterator[RunningBridge]:
    """A bridge on `backend`, by default the one `request.param` names (a module-scoped
    fixture's param)."""
    config = make_config(data_dir, **sections)
    dsn = schema = None
    if (backend or request.param) == "postgres":
        dsn, schema = request.getfixturevalue("pg_dsn"), pg.new_schema_name()
        config.storage.backend = "postgres"
        config.storage.postgres.dsn = dsn
        config.storage.postgres.schema = schema
    bridge = RunningBridge(config)
    try:
        yield bridge
    finally:
        bridge.stop()
        if dsn is not None and schema is not None:
            pg.drop_schema(dsn, schema)


@contextmanager
def populated_bridge(
    request: pytest.FixtureRequest,
    data_dir: Path,
    backend: str | None = None,
    transport: str = "http",
) -> Iterator[RunningBridge]:
    """`running_bridge` with `SESSIONS` sent to it by the SDK's OTLP exporter."""
    with running_bridge(request, data_dir, backend) as bridge:
        provider = sdk_provider(bridge, transport, RESOURCE)
        send(provider, SESSIONS)
        provider.shutdown()
        yield bridge
