"""Aggregated metrics of one session (`…/sessions/{id}/metrics` of the agent-traces API).

A turn is one trace; its latency is its root span's duration (without a root
span, the trace's extent), split into the summed durations of its LLM, tool and
guardrail spans. Total session latency is the sum of the turn latencies; the
wall-clock duration is reported beside it. Tool success rate = tool spans that
did not fail / tool calls; guardrail block rate = evaluations whose verdict is
`block` / evaluations; both are null when there is nothing to divide.
"""

from __future__ import annotations

from session_bridge.api.agent_models import (
    LlmCallMetrics,
    SessionMetrics,
    TokenTotals,
    TurnMetrics,
)
from session_bridge.api.timeline import SessionTimeline, SpanNode, guardrail_block, ms
from session_bridge.mapping.events import GuardrailVerdict
from session_bridge.model import EventType
from session_bridge.rollup.usage import counted_records
from session_bridge.timefmt import iso_from_ns


def session_metrics(timeline: SessionTimeline) -> SessionMetrics:
    nodes = timeline.nodes
    turns = [_turn(timeline, index) for index in range(len(timeline.traces))]
    # the calls whose usage counts: the session's totals follow the same rule
    counted = counted_records(n.record for n in nodes)
    llm_calls = [
        LlmCallMetrics(
            span_id=n.record.span_id.hex(),
            turn_index=n.turn_index,
            model=n.record.llm.model,
            input_tokens=n.record.llm.input_tokens,
            output_tokens=n.record.llm.output_tokens,
            total_tokens=n.record.llm.input_tokens + n.record.llm.output_tokens,
            latency_ms=ms(n.duration_ns),
        )
        for n in nodes
        if n.record.llm is not None and (n.record.trace_id, n.record.span_id) in counted
    ]
    tools = _of_type(nodes, EventType.TOOL_CALL)
    tool_ok = sum(1 for n in tools if not n.record.is_error)
    guardrails = _of_type(nodes, EventType.GUARDRAIL_EVAL)
    blocks = sum(1 for n in guardrails if guardrail_block(n).verdict is GuardrailVerdict.BLOCK)
    start = min(t.rollup.start_ns or 0 for t in timeline.traces)
    end = max(t.rollup.end_ns or 0 for t in timeline.traces)
    tokens_in = sum(c.input_tokens for c in llm_calls)
    tokens_out = sum(c.output_tokens for c in llm_calls)
    return SessionMetrics(
        session_id=timeline.session_id,
        total_latency_ms=round(sum(t.latency_ms for t in turns), 3),
        wall_clock_ms=ms(end - start),
        turn_count=len(turns),
        turns=turns,
        llm_calls=llm_calls,
        tokens=TokenTotals(input=tokens_in, output=tokens_out, total=tokens_in + tokens_out),
        tool_call_count=len(tools),
        tool_success_count=tool_ok,
        tool_success_rate=_rate(tool_ok, len(tools)),
        guardrail_eval_count=len(guardrails),
        guardrail_block_count=blocks,
        guardrail_block_rate=_rate(blocks, len(guardrails)),
    )


def turn_latency_ns(timeline: SessionTimeline, turn_index: int) -> int:
    trace = timeline.traces[turn_index]
    root = next(
        (
            n
            for n in timeline.nodes
            if n.record.trace_id == trace.trace_id and n.record.parent_span_id is None
        ),
        None,
    )
    if root is not None:
        return root.duration_ns
    return (trace.rollup.end_ns or 0) - (trace.rollup.start_ns or 0)


def _turn(timeline: SessionTimeline, index: int) -> TurnMetrics:
    trace = timeline.traces[index]
    spans = [n for n in timeline.nodes if n.turn_index == index]

    def total(event_type: EventType) -> float:
        return ms(sum(n.duration_ns for n in _of_type(spans, event_type)))

    return TurnMetrics(
        turn_index=index,
        trace_id=trace.trace_id.hex(),
        start_time=iso_from_ns(trace.rollup.start_ns or 0),
        end_time=iso_from_ns(trace.rollup.end_ns or 0),
        latency_ms=ms(turn_latency_ns(timeline, index)),
        llm_ms=total(EventType.LLM_CALL),
        tool_ms=total(EventType.TOOL_CALL),
        guardrail_ms=total(EventType.GUARDRAIL_EVAL),
    )


def _of_type(nodes: list[SpanNode], event_type: EventType) -> list[SpanNode]:
    return [n for n in nodes if n.record.event_type is event_type]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
