"""A session's timeline: its spans, read back with their raw payloads, as agent events.

Each trace of the session is one turn (`turnIndex` = its position by start time).
A span's agent is the nearest agent named on it or on an ancestor. Which events a
span yields, and when, are the rules of `mapping/events.py`; their payloads are
read from the raw span by `mapping/payloads.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from session_bridge.api.agent_models import (
    DecisionBlock,
    ErrorBlock,
    GuardrailBlock,
    HandoffBlock,
    LlmBlock,
    ResponseBlock,
    StateChangeBlock,
    ToolBlock,
    TraceEvent,
)
from session_bridge.mapping.events import (
    DecisionKind,
    GuardrailVerdict,
    decision_kind,
    guardrail_verdict,
    happens_at_end,
    is_tripwire,
    timeline_events,
)
from session_bridge.mapping.payloads import (
    RawSpan,
    agent_name,
    decision_details,
    decode_span,
    error_details,
    guardrail_details,
    handoff_agents,
    llm_details,
    span_io,
    state_details,
    tool_details,
    workflow_name,
)
from session_bridge.model import EventType, SpanRecord
from session_bridge.store.base import SessionReader, TraceRow
from session_bridge.timefmt import iso_from_ns

SortKey = tuple[int, str, str, int]  # (time_ns, trace id hex, span id hex, rank in span)


@dataclass(slots=True)
class SpanNode:
    record: SpanRecord
    raw: RawSpan
    turn_index: int
    agent: str | None = None
    parent: SpanNode | None = None

    @property
    def duration_ns(self) -> int:
        return max(self.record.end_ns - self.record.start_ns, 0)


@dataclass(slots=True)
class Entry:
    key: SortKey
    event: TraceEvent
    node: SpanNode


@dataclass(slots=True)
class SessionTimeline:
    session_id: str
    traces: list[TraceRow]
    nodes: list[SpanNode]
    entries: list[Entry]


def load_nodes(
    store: SessionReader, project_id: str, trace_ids: Sequence[bytes], turns: dict[bytes, int]
) -> list[SpanNode]:
    """The spans of these traces, decoded, linked to their parents and agents."""
    records = store.trace_spans(project_id, trace_ids)
    resources = store.resources(sorted({r.resource_key for r in records}))
    nodes = [
        SpanNode(r, decode_span(r.otlp_span, resources.get(r.resource_key)), turns[r.trace_id])
        for r in records
    ]
    by_key = {(n.record.trace_id, n.record.span_id): n for n in nodes}
    for node in nodes:
        parent_id = node.record.parent_span_id
        node.parent = by_key.get((node.record.trace_id, parent_id)) if parent_id else None
    # a span's agent: the nearest agent span above it (or itself); failing that, the
    # outermost workflow/chain above it (a LangGraph graph names the run), else none
    own = {id(n): agent_name(n.raw) for n in nodes}
    grouping = {id(n): workflow_name(n.raw) for n in nodes if own[id(n)] is None}
    for node in nodes:
        cursor: SpanNode | None = node
        outermost: str | None = None
        while cursor is not None and own[id(cursor)] is None:
            outermost = grouping[id(cursor)] or outermost
            cursor = cursor.parent
        node.agent = own[id(cursor)] if cursor is not None else outermost
    return nodes


def load_timeline(store: SessionReader, project_id: str, session_id: str) -> SessionTimeline | None:
    traces = store.session_traces(project_id, session_id)
    if not traces:
        return None
    turns = {t.trace_id: index for index, t in enumerate(traces)}
    nodes = load_nodes(store, project_id, list(turns), turns)
    entries = [entry for node in nodes for entry in node_entries(node, session_id)]
    entries.sort(key=lambda e: e.key)
    for sequence, entry in enumerate(entries):
        entry.event.sequence = sequence
    return SessionTimeline(session_id, traces, nodes, entries)


def node_entries(node: SpanNode, session_id: str) -> list[Entry]:
    r = node.record
    trace_hex, span_hex = r.trace_id.hex(), r.span_id.hex()
    entries = []
    for rank, event_type in enumerate(timeline_events(r.event_type, r.is_error)):
        at = r.end_ns if happens_at_end(event_type) else r.start_ns
        event = TraceEvent(
            id=f"{trace_hex}-{span_hex}-{event_type.value}",
            session_id=session_id,
            trace_id=trace_hex,
            span_id=span_hex,
            parent_span_id=r.parent_span_id.hex() if r.parent_span_id else None,
            type=event_type.value,
            name=r.name,
            agent_name=node.agent,
            turn_index=node.turn_index,
            sequence=0,
            timestamp=iso_from_ns(at),
            start_time=iso_from_ns(r.start_ns),
            end_time=iso_from_ns(r.end_ns),
            duration_ms=ms(node.duration_ns),
            status="error" if r.is_error else "ok",
            **_BLOCKS[event_type](node),
        )
        entries.append(Entry((at, trace_hex, span_hex, rank), event, node))
    return entries


def ms(ns: int) -> float:
    return round(ns / 1e6, 3)


# -- payload blocks, one builder per event type ----------------------------------------------


def llm_block(node: SpanNode) -> LlmBlock:
    usage = node.record.llm
    details = llm_details(node.raw)
    input_tokens = usage.input_tokens if usage else 0
    output_tokens = usage.output_tokens if usage else 0
    return LlmBlock(
        model=usage.model if usage else None,
        provider=usage.provider if usage else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cache_read_tokens=usage.cache_read_tokens if usage else 0,
        reasoning_tokens=usage.reasoning_tokens if usage else 0,
        latency_ms=ms(node.duration_ns),
        ttft_ms=details.ttft_ms,
        finish_reason=details.finish_reason,
        prompt_name=details.prompt_name,
        prompt_version=details.prompt_version,
        cost_usd=node.record.cost_usd,
    )


def _llm(node: SpanNode) -> dict[str, Any]:
    return {"llm": llm_block(node)}


def _tool_call(node: SpanNode) -> dict[str, Any]:
    details = tool_details(node.raw)
    return {
        "tool": ToolBlock(
            tool_name=details.tool_name, tool_call_id=details.call_id, arguments=details.arguments
        )
    }


def _tool_result(node: SpanNode) -> dict[str, Any]:
    details = tool_details(node.raw)
    failed = node.record.is_error
    return {
        "tool": ToolBlock(
            tool_name=details.tool_name,
            tool_call_id=details.call_id,
            output=details.output,
            is_error=failed,
            error_message=error_details(node.raw, node.record.status_message).message
            if failed
            else None,
        )
    }


def decision_block(node: SpanNode) -> DecisionBlock:
    if node.record.event_type is EventType.HANDOFF:
        source, target = handoff_agents(node.raw)
        targets = [target] if target else []
        return DecisionBlock(
            decision_kind=DecisionKind.HANDOFF,
            from_agent=source or node.agent,
            target=target,
            targets=targets,
            rule_name=None,
            reason=None,
            confidence=None,
        )
    details = decision_details(node.raw)
    return DecisionBlock(
        decision_kind=decision_kind(details.declared_kind, node.record.name),
        from_agent=node.agent,
        target=details.targets[0] if details.targets else None,
        targets=details.targets,
        rule_name=details.rule_name,
        reason=details.reason,
        confidence=details.confidence,
    )


def _decision(node: SpanNode) -> dict[str, Any]:
    return {"decision": decision_block(node)}


def _handoff(node: SpanNode) -> dict[str, Any]:
    source, target = handoff_agents(node.raw)
    return {"handoff": HandoffBlock(from_agent=source or node.agent, to_agent=target)}


def guardrail_block(node: SpanNode) -> GuardrailBlock:
    details = guardrail_details(node.raw)
    parent = node.parent
    tripwire = (
        parent is not None and parent.record.is_error and is_tripwire(parent.record.status_message)
    )
    verdict = guardrail_verdict(details.declared_verdict, details.triggered, tripwire)
    return GuardrailBlock(
        guardrail_name=details.guardrail_name,
        stage=details.stage,
        verdict=verdict,
        triggered=verdict is GuardrailVerdict.BLOCK,
        category=details.category,
    )


def _guardrail(node: SpanNode) -> dict[str, Any]:
    return {"guardrail": guardrail_block(node)}


def _state_change(node: SpanNode) -> dict[str, Any]:
    details = state_details(node.raw)
    return {
        "state_change": StateChangeBlock(
            scope=details.scope,
            path=details.path,
            old_value=details.old_value,
            new_value=details.new_value,
        )
    }


def _error(node: SpanNode) -> dict[str, Any]:
    details = error_details(node.raw, node.record.status_message)
    return {
        "error": ErrorBlock(
            error_type=details.error_type, message=details.message, stack=details.stack
        )
    }


def _response(node: SpanNode) -> dict[str, Any]:
    return {"response": ResponseBlock(content=span_io(node.raw)[1])}


_BLOCKS: dict[EventType, Callable[[SpanNode], dict[str, Any]]] = {
    EventType.LLM_CALL: _llm,
    EventType.TOOL_CALL: _tool_call,
    EventType.TOOL_RESULT: _tool_result,
    EventType.DECISION: _decision,
    EventType.HANDOFF: _handoff,
    EventType.GUARDRAIL_EVAL: _guardrail,
    EventType.STATE_CHANGE: _state_change,
    EventType.ERROR: _error,
    EventType.RESPONSE: _response,
}
