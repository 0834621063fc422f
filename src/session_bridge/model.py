"""Data that flows through the pipeline: one `SpanRecord` per received span.

Receivers build records from OTLP, `mapping/` fills them, `enrich/` completes the
client, geo and cost parts, and `rollup/` folds them into per-trace and
per-session rollups. Everything here is plain data; behaviour lives elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The stores keep times, token counts and nano-dollar costs as signed 64-bit integers:
# spans past it are refused (mapping/limits.py) and rollup sums saturate here.
INT64_MAX = 2**63 - 1


class EventType(StrEnum):
    """The kind of agent event a span represents (seed 001's taxonomy)."""

    LLM_CALL = "llm_call"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    DECISION = "decision"
    HANDOFF = "handoff"
    GUARDRAIL_EVAL = "guardrail_eval"
    STATE_CHANGE = "state_change"
    ERROR = "error"
    RESPONSE = "response"
    SPAN = "span"  # a span that is none of the above (plain work, HTTP handlers, ...)


@dataclass(slots=True)
class ClientInfo:
    """Who called: address and user agent, and what the user agent says."""

    ip: str | None = None
    user_agent: str | None = None
    device_type: str | None = None
    os: str | None = None
    browser: str | None = None
    browser_version: str | None = None

    def is_empty(self) -> bool:
        return self.ip is None and self.user_agent is None


@dataclass(slots=True)
class GeoInfo:
    """Where the client was, from `geo.*` attributes or a GeoIP lookup."""

    country_code: str | None = None
    country_name: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    timezone: str | None = None


@dataclass(slots=True)
class LlmUsage:
    """Token usage of one LLM call.

    Following the GenAI semantic conventions, `input_tokens` includes the cache
    read/creation tokens and `output_tokens` includes the reasoning tokens.
    """

    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    reported_cost_usd: float | None = None  # a cost the sender computed itself


@dataclass(slots=True)
class SpanRecord:
    """One received span, mapped to the session model."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int  # OTLP StatusCode: 0 unset, 1 ok, 2 error
    status_message: str
    event_type: EventType
    is_error: bool
    service: str | None = None
    environment: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    client: ClientInfo | None = None
    geo: GeoInfo | None = None
    # set on spans that are LLM calls or report usage (tokens, a cost); whether it
    # counts toward the session is the span tree's decision (rollup/usage.py)
    llm: LlmUsage | None = None
    cost_usd: float | None = None  # reported or estimated cost of this span's LLM call
    scope_name: str = ""
    otlp_span: bytes = b""  # the span as received (serialized OTLP `Span`)
    resource_key: bytes = b""  # key of the serialized resource in the store
    response_id: str | None = None  # the model response this span reports, if it says
    # built at ingest when an exporter sends ingestion events (`mapping.langfuse_events`):
    # the span's observation event, and what it says about its trace (JSON), else None
    ingestion_event: bytes | None = None
    trace_fields: bytes | None = None
