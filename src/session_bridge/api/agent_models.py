"""Response shapes of the agent traces API (seed 001), camelCase on the wire.

Each event carries the one payload block of its type; the others are left out.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from session_bridge.mapping.events import DecisionKind, GuardrailVerdict

# model.EventType less `span` (plain spans are not events); test_agent_traces checks this
EventTypeName = Literal[
    "llm_call",
    "tool_call",
    "tool_result",
    "decision",
    "handoff",
    "guardrail_eval",
    "state_change",
    "error",
    "response",
]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class LlmBlock(CamelModel):
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    latency_ms: float
    ttft_ms: float | None = Field(description="Time to first token, when the sender recorded it")
    finish_reason: str | None
    prompt_name: str | None
    prompt_version: str | None
    cost_usd: float | None = Field(description="Reported or estimated cost; null: unpriced")


class ToolBlock(CamelModel):
    tool_name: str
    tool_call_id: str | None
    arguments: Any = Field(default=None, description="tool_call only")
    output: Any = Field(default=None, description="tool_result only")
    is_error: bool | None = Field(default=None, description="tool_result only")
    error_message: str | None = Field(default=None, description="tool_result only")


class DecisionBlock(CamelModel):
    decision_kind: DecisionKind
    from_agent: str | None
    target: str | None = Field(description="The (first) target")
    targets: list[str]
    rule_name: str | None
    reason: str | None
    confidence: float | None


class HandoffBlock(CamelModel):
    from_agent: str | None
    to_agent: str | None


class GuardrailBlock(CamelModel):
    guardrail_name: str
    stage: Literal["input", "output"] | None
    verdict: GuardrailVerdict
    triggered: bool
    category: str | None


class StateChangeBlock(CamelModel):
    scope: str | None
    path: str
    old_value: Any
    new_value: Any


class ErrorBlock(CamelModel):
    error_type: str | None
    message: str
    stack: str | None


class ResponseBlock(CamelModel):
    content: Any


class TraceEvent(CamelModel):
    id: str = Field(description="Unique in the session: trace id, span id and event type")
    session_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    type: EventTypeName
    name: str
    agent_name: str | None = Field(description="The agent the span belongs to")
    turn_index: int = Field(description="Position of the trace (user turn) in the session")
    sequence: int = Field(description="Position in the session's whole timeline")
    timestamp: str = Field(
        description="When the event happened: the span's start, or its end for tool results,"
        " errors and responses"
    )
    start_time: str
    end_time: str
    duration_ms: float
    status: Literal["ok", "error"]
    llm: LlmBlock | None = None
    tool: ToolBlock | None = None
    decision: DecisionBlock | None = None
    handoff: HandoffBlock | None = None
    guardrail: GuardrailBlock | None = None
    state_change: StateChangeBlock | None = None
    error: ErrorBlock | None = None
    response: ResponseBlock | None = None


class TurnMetrics(CamelModel):
    turn_index: int
    trace_id: str
    start_time: str
    end_time: str
    latency_ms: float = Field(description="Root span duration (the trace's extent without a root)")
    llm_ms: float = Field(description="Sum of LLM-call span durations in the turn")
    tool_ms: float = Field(description="Sum of tool span durations in the turn")
    guardrail_ms: float = Field(description="Sum of guardrail span durations in the turn")


class LlmCallMetrics(CamelModel):
    span_id: str
    turn_index: int
    model: str | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    latency_ms: float


class TokenTotals(CamelModel):
    input: int
    output: int
    total: int


class SessionMetrics(CamelModel):
    session_id: str
    total_latency_ms: float = Field(description="Sum of the turn latencies")
    wall_clock_ms: float = Field(description="First span start to last span end")
    turn_count: int
    turns: list[TurnMetrics]
    llm_calls: list[LlmCallMetrics]
    tokens: TokenTotals
    tool_call_count: int
    tool_success_count: int
    tool_success_rate: float | None = Field(description="Successful results / calls; null: none")
    guardrail_eval_count: int
    guardrail_block_count: int
    guardrail_block_rate: float | None = Field(description="Blocks / evaluations; null: none")


class EvaluationRecord(CamelModel):
    """An evaluator's result for a model response of the session (a
    `gen_ai.evaluation.result` span event)."""

    name: str
    score_value: float | None = Field(description="The numeric score, if given")
    score_label: str | None = Field(description="The label, if given")
    explanation: str | None
    response_id: str | None = Field(description="The evaluated response, if the result names it")
    trace_id: str
    span_id: str = Field(description="The evaluated span: the one that reported the response")
    agent_name: str | None = Field(description="The agent of the evaluated span")
    time: str


class SessionEvaluations(CamelModel):
    session_id: str
    evaluations: list[EvaluationRecord]


class TracesPage(CamelModel):
    session_id: str
    events: list[TraceEvent]
    metrics: SessionMetrics | None = Field(default=None, description="With include=metrics")
    evaluations: list[EvaluationRecord] | None = Field(
        default=None, description="With include=evaluations: all of the session's"
    )
    next_cursor: str | None


class ChildEvents(CamelModel):
    session_id: str
    span_id: str
    events: list[TraceEvent]


class SlowSpan(CamelModel):
    span_id: str
    type: str = Field(description="Event type of the span (span: plain work)")
    name: str
    duration_ms: float
    baseline_ms: float = Field(description="p95 duration of spans of this name in the project")
    p50_ms: float
    percentile: float = Field(description="Share of baseline spans faster than this one, %")
    sample_count: int
    reason: str


class ErrorPattern(CamelModel):
    signature: str
    error_type: str | None
    count: int
    span_ids: list[str]
    first_seen: str
    example_message: str


class DecisionAnomaly(CamelModel):
    span_id: str
    decision_kind: str
    anomaly: Literal["loop", "ping_pong", "unexpected_target"]
    detail: str


class Suggestion(CamelModel):
    category: Literal["caching", "latency", "reliability", "orchestration"]
    severity: Literal["low", "medium", "high"]
    message: str
    related_span_ids: list[str]


class Analysis(CamelModel):
    session_id: str
    generated_at: str
    baseline_sessions: int = Field(description="Other sessions of the project compared against")
    slow_spans: list[SlowSpan]
    error_patterns: list[ErrorPattern]
    decision_anomalies: list[DecisionAnomaly]
    suggestions: list[Suggestion]


class Generation(LlmBlock):
    """One LLM call: its `llm` block, flat, with where it happened."""

    session_id: str
    trace_id: str
    span_id: str
    agent_name: str | None
    name: str
    start_time: str


class GenerationsPage(CamelModel):
    items: list[Generation]
    next_cursor: str | None
