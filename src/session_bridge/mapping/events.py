"""Which kind of agent event a span is: the rules, in one place.

The rules are evaluated top to bottom and the first match wins. They read the operation keys of the
OpenTelemetry GenAI conventions, OpenInference, OpenLLMetry, Langfuse and the
Vercel AI SDK. A span that errored and matches nothing else is an `error`
event; `SpanRecord.is_error` flags errors of every kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from session_bridge.mapping.aliases import Field
from session_bridge.model import EventType

_HANDOFF_OPERATIONS = frozenset({"agent_handoff", "handoff"})
_GUARDRAIL_OPERATIONS = frozenset({"guardrail_check", "guardrail"})
_LLM_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "completion", "generate", "embeddings"}
)
_TOOL_OPERATIONS = frozenset({"execute_tool"})
_DECISION_OPERATIONS = frozenset({"plan", "route", "decision"})
_STATE_OPERATIONS = frozenset(
    {"create_memory", "update_memory", "upsert_memory", "delete_memory", "search_memory"}
)
_AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent", "invoke_workflow", "agent_step"})
_VERCEL_LLM_OPERATIONS = frozenset(
    {
        "ai.generateText.doGenerate",
        "ai.streamText.doStream",
        "ai.generateObject.doGenerate",
        "ai.streamObject.doStream",
        "ai.embed.doEmbed",
        "ai.embedMany.doEmbed",
    }
)
_OPENINFERENCE_KINDS = {
    "LLM": EventType.LLM_CALL,
    "EMBEDDING": EventType.LLM_CALL,
    "TOOL": EventType.TOOL_CALL,
    "GUARDRAIL": EventType.GUARDRAIL_EVAL,
}
_LANGFUSE_TYPES = {
    "generation": EventType.LLM_CALL,
    "embedding": EventType.LLM_CALL,
    "tool": EventType.TOOL_CALL,
    "guardrail": EventType.GUARDRAIL_EVAL,
}
_AGENT_KINDS = frozenset({"agent", "workflow", "chain"})
_STRICT_AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})


def classify(found: Mapping[int, object], *, name: str, is_root: bool, is_error: bool) -> EventType:
    """The event type of one span, from the attributes the mapper found."""
    op = _lower(found.get(Field.OPERATION))
    oi_kind = _upper(found.get(Field.OPENINFERENCE_KIND))
    tl_kind = _lower(found.get(Field.TRACELOOP_KIND))
    lf_type = _lower(found.get(Field.LANGFUSE_TYPE))

    if (
        op in _HANDOFF_OPERATIONS
        or tl_kind == "handoff"
        or Field.HANDOFF_TARGET in found
        or (oi_kind == "TOOL" and name.lower().startswith("handoff to "))
    ):
        return EventType.HANDOFF
    if op in _GUARDRAIL_OPERATIONS or Field.GUARDRAIL_NAME in found:
        return EventType.GUARDRAIL_EVAL
    if op in _LLM_OPERATIONS:
        return EventType.LLM_CALL
    if op in _TOOL_OPERATIONS:
        return EventType.TOOL_CALL
    if op in _DECISION_OPERATIONS:
        return EventType.DECISION
    if op in _STATE_OPERATIONS or Field.STATE_KEY in found:
        return EventType.STATE_CHANGE
    by_kind = _OPENINFERENCE_KINDS.get(oi_kind) or _LANGFUSE_TYPES.get(lf_type)
    if by_kind is not None:
        return by_kind
    vercel_op = found.get(Field.VERCEL_OPERATION)
    if vercel_op in _VERCEL_LLM_OPERATIONS:
        return EventType.LLM_CALL
    if _lower(found.get(Field.LLM_REQUEST_TYPE)) in {"chat", "completion", "embedding"}:
        return EventType.LLM_CALL
    if tl_kind == "tool" or Field.TOOL_NAME in found or Field.TOOL_CALL_ID in found:
        return EventType.TOOL_CALL
    if _is_agent(op, tl_kind, oi_kind, lf_type, vercel_op):
        # agent/workflow spans often repeat their children's usage: never an LLM call
        return EventType.RESPONSE if is_root and not is_error else _plain(is_error)
    if Field.MODEL in found and (Field.INPUT_TOKENS in found or Field.OUTPUT_TOKENS in found):
        return EventType.LLM_CALL  # no operation key, but a model and tokens: a bare LLM call
    return _plain(is_error)


def is_agent_span(found: Mapping[int, object], *, strict: bool = False) -> bool:
    """An agent, workflow or chain span (it runs LLM calls and tools as its children);
    with `strict`, an agent span only (invoke_agent, OpenInference AGENT, OpenLLMetry
    and Langfuse `agent`), not a chain or workflow span that groups steps."""
    if strict:
        return (
            _lower(found.get(Field.OPERATION)) in _STRICT_AGENT_OPERATIONS
            or _upper(found.get(Field.OPENINFERENCE_KIND)) == "AGENT"
            or _lower(found.get(Field.TRACELOOP_KIND)) == "agent"
            or _lower(found.get(Field.LANGFUSE_TYPE)) == "agent"
        )
    return _is_agent(
        _lower(found.get(Field.OPERATION)),
        _lower(found.get(Field.TRACELOOP_KIND)),
        _upper(found.get(Field.OPENINFERENCE_KIND)),
        _lower(found.get(Field.LANGFUSE_TYPE)),
        found.get(Field.VERCEL_OPERATION),
    )


def _is_agent(op: str, tl_kind: str, oi_kind: str, lf_type: str, vercel_op: object) -> bool:
    return (
        op in _AGENT_OPERATIONS
        or tl_kind in _AGENT_KINDS
        or oi_kind in {"AGENT", "CHAIN"}
        or lf_type in _AGENT_KINDS
        or isinstance(vercel_op, str)  # ai.generateText & co. wrap the doGenerate call
    )


# -- the timeline read back by the agent traces API ----------------------------------------


def timeline_events(event_type: EventType, is_error: bool) -> tuple[EventType, ...]:
    """The events one stored span stands for, in time order.

    A tool span is a call and, at its end, a result; a handoff is also the decision
    (kind `handoff`) of the agent that handed off; any span in error also yields an
    `error` event. Plain spans (`span`) yield nothing.
    """
    events = _EXPANSIONS.get(event_type, (event_type,))
    if is_error and event_type is not EventType.ERROR:
        events += (EventType.ERROR,)
    return events


def happens_at_end(event_type: EventType) -> bool:
    """Results, errors and responses happen when their span ends; the rest when it starts."""
    return event_type in _AT_END


_AT_END = frozenset({EventType.TOOL_RESULT, EventType.ERROR, EventType.RESPONSE})
_EXPANSIONS: dict[EventType, tuple[EventType, ...]] = {
    EventType.SPAN: (),
    EventType.TOOL_CALL: (EventType.TOOL_CALL, EventType.TOOL_RESULT),
    EventType.HANDOFF: (EventType.DECISION, EventType.HANDOFF),
}


class DecisionKind(StrEnum):
    ROUTING = "routing"
    HANDOFF = "handoff"
    DELEGATE = "delegate"
    FAN_OUT = "fan_out"
    ESCALATE = "escalate"
    COMPLETE = "complete"
    FLOW_TRANSITION = "flow_transition"


_DECISION_WORDS = (
    ("escalat", DecisionKind.ESCALATE),
    ("delegat", DecisionKind.DELEGATE),
    ("fan_out", DecisionKind.FAN_OUT),
    ("fan-out", DecisionKind.FAN_OUT),
    ("handoff", DecisionKind.HANDOFF),
    ("transition", DecisionKind.FLOW_TRANSITION),
    ("complete", DecisionKind.COMPLETE),
)


def decision_kind(declared: object, name: str) -> DecisionKind:
    """A decision span's kind: the declared one when valid, else a word of the span
    name (escalate, delegate, fan_out, handoff, transition, complete), else routing."""
    if isinstance(declared, str) and declared.lower() in DecisionKind.__members__.values():
        return DecisionKind(declared.lower())
    lowered = name.lower()
    for word, kind in _DECISION_WORDS:
        if word in lowered:
            return kind
    return DecisionKind.ROUTING


class GuardrailVerdict(StrEnum):
    PASS = "pass"
    BLOCK = "block"
    WARN = "warn"
    REDACT = "redact"
    ESCALATE = "escalate"
    REPHRASE = "rephrase"
    SANITIZE = "sanitize"


# Galileo control actions and other spellings of the same verdicts
_VERDICT_SYNONYMS = {"deny": "block", "blocked": "block", "steer": "warn", "observe": "pass"}


def guardrail_verdict(declared: object, triggered: object, tripwire: bool) -> GuardrailVerdict:
    """A guardrail evaluation's verdict: the declared one; else `block` when it
    triggered (`gen_ai.guardrail.triggered`) or its agent stopped on a tripwire
    (OpenInference drops `triggered`); else `pass`."""
    if isinstance(declared, str):
        word = _VERDICT_SYNONYMS.get(declared.lower(), declared.lower())
        if word in GuardrailVerdict.__members__.values():
            return GuardrailVerdict(word)
    if triggered is True or (isinstance(triggered, str) and triggered.lower() == "true"):
        return GuardrailVerdict.BLOCK
    return GuardrailVerdict.BLOCK if tripwire else GuardrailVerdict.PASS


def is_tripwire(status_message: str) -> bool:
    """An agent span stopped by a guardrail (the OpenAI Agents SDK's error message)."""
    return "tripwire" in status_message.lower()


def _plain(is_error: bool) -> EventType:
    return EventType.ERROR if is_error else EventType.SPAN


def _lower(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def _upper(value: object) -> str:
    return value.upper() if isinstance(value, str) else ""
