"""A session's spans with everything a person reads in them: `GET
/api/projects/{projectId}/sessions/{sessionId}/spans` (Bearer auth, like the agent traces API).

The session's rollup, then each trace (turn) with all its spans, root included: times
as offsets from the session's start, attributes, span events (exceptions with their
stack), the input and output read as Langfuse reads them, the LLM call (tokens, cost
and whether the sender reported the cost or the bridge estimated it) and the tool call
(arguments and result). The client builds the tree from `parentSpanId`.
"""

import base64
import math
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from session_bridge.api.agent_models import CamelModel, ErrorBlock
from session_bridge.api.agent_traces import project_sessions_router
from session_bridge.api.auth import ApiAuth, Scheme
from session_bridge.api.errors import not_found
from session_bridge.api.params import SessionIdPath
from session_bridge.api.sessions import Session, session_view
from session_bridge.api.timeline import SpanNode, load_nodes, ms
from session_bridge.mapping.aliases import Field as Alias
from session_bridge.mapping.payloads import error_details, span_io, tool_details
from session_bridge.model import EventType
from session_bridge.store.base import SessionReader
from session_bridge.timefmt import iso_from_ns

MAX_SPANS = 10_000  # a page cannot show more; `truncated` says when some were left out
_SAFE_INTEGER = 2**53  # beyond it a JavaScript number is not exact: sent as text
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}

CostSource = Literal["reported", "estimated"]


class SpanEventView(CamelModel):
    name: str
    time: str
    offset_ms: float = Field(description="From the session's start")
    attributes: dict[str, Any]


class LlmView(CamelModel):
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    cost_usd: float | None = Field(description="null: the call could not be priced")
    cost_source: CostSource | None = Field(
        description="reported: the sender sent the cost; estimated: priced by the bridge"
    )


class ToolView(CamelModel):
    tool_name: str
    tool_call_id: str | None
    arguments: Any
    result: Any


class SpanView(CamelModel):
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    type: str = Field(description="Agent event type of the span (span: plain work)")
    status: Literal["ok", "error", "unset"]
    status_message: str
    start_time: str
    end_time: str
    offset_ms: float = Field(description="Start, from the session's start")
    duration_ms: float
    service: str | None
    agent_name: str | None
    scope_name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[SpanEventView]
    input: Any = Field(description="The span's input (messages, text or a value)")
    output: Any
    llm: LlmView | None
    tool: ToolView | None
    error: ErrorBlock | None


class TraceView(CamelModel):
    trace_id: str
    turn_index: int
    name: str = Field(description="The root span's name (the first span's without a root)")
    start_time: str
    end_time: str
    offset_ms: float = Field(description="Start, from the session's start")
    duration_ms: float
    spans: list[SpanView] = Field(description="In start order")


class SessionSpans(CamelModel):
    session_id: str
    start_time: str
    session: Session = Field(description="The rollup, as GET /api/v1/sessions/{id} gives it")
    reported_cost_calls: int = Field(description="LLM calls whose cost the sender reported")
    estimated_cost_calls: int = Field(description="LLM calls the bridge priced")
    traces: list[TraceView]
    truncated: bool = Field(description=f"More than {MAX_SPANS} spans: the rest are left out")


def plain(value: Any) -> Any:
    """`value` as JSON can carry it exactly: NaN and infinities and integers beyond
    JavaScript's exact range as text, bytes as base64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_SAFE_INTEGER < value < _SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def _cost_source(node: SpanNode) -> CostSource | None:
    if node.record.cost_usd is None:
        return None
    fields = node.raw.fields()
    return "reported" if Alias.COST in fields or Alias.COST_DETAILS in fields else "estimated"


def span_view(node: SpanNode, session_start_ns: int) -> SpanView:
    r = node.record
    raw = node.raw
    kind = r.event_type
    llm = None
    if r.llm is not None:
        llm = LlmView(
            model=r.llm.model,
            provider=r.llm.provider,
            input_tokens=r.llm.input_tokens,
            output_tokens=r.llm.output_tokens,
            cache_read_tokens=r.llm.cache_read_tokens,
            reasoning_tokens=r.llm.reasoning_tokens,
            cost_usd=r.cost_usd,
            cost_source=_cost_source(node),
        )
    tool = None
    if kind in (EventType.TOOL_CALL, EventType.TOOL_RESULT):
        details = tool_details(raw)
        tool = ToolView(
            tool_name=details.tool_name,
            tool_call_id=details.call_id,
            arguments=plain(details.arguments),
            result=plain(details.output),
        )
    error = None
    if r.is_error:
        found = error_details(raw, r.status_message)
        error = ErrorBlock(error_type=found.error_type, message=found.message, stack=found.stack)
    source_in, source_out = span_io(raw)
    return SpanView(
        span_id=r.span_id.hex(),
        parent_span_id=r.parent_span_id.hex() if r.parent_span_id else None,
        name=r.name,
        kind=_KINDS.get(r.kind, str(r.kind)),
        type=kind.value,
        status="error" if r.is_error else ("ok" if r.status_code == 1 else "unset"),
        status_message=r.status_message,
        start_time=iso_from_ns(r.start_ns),
        end_time=iso_from_ns(r.end_ns),
        offset_ms=ms(r.start_ns - session_start_ns),
        duration_ms=ms(node.duration_ns),
        service=r.service,
        agent_name=node.agent,
        scope_name=r.scope_name,
        attributes=plain(raw.attributes),
        resource=plain(raw.resource),
        events=[
            SpanEventView(
                name=e.name,
                time=iso_from_ns(e.time_ns),
                offset_ms=ms(e.time_ns - session_start_ns),
                attributes=plain(e.attributes),
            )
            for e in raw.events
        ],
        input=plain(source_in),
        output=plain(source_out),
        llm=llm,
        tool=tool,
        error=error,
    )


def span_tree_router(store: SessionReader, auth: ApiAuth, inactivity_timeout_s: float) -> APIRouter:
    router = project_sessions_router(auth)
    Project = Annotated[str, Depends(auth.path_project("projectId", Scheme.BEARER))]
    timeout_ns = int(inactivity_timeout_s * 1e9)

    @router.get("/{sessionId}/spans", response_model=SessionSpans)
    def spans(project_id: Project, session_id: SessionIdPath) -> SessionSpans:
        """Every span of the session, trace by trace, with attributes, events, input and
        output, LLM usage and cost, and tool calls."""
        row = store.get_session(project_id, session_id)
        traces = store.session_traces(project_id, session_id)
        if row is None or not traces:
            raise not_found(f"session {session_id!r}")
        turns = {t.trace_id: index for index, t in enumerate(traces)}
        nodes = load_nodes(store, project_id, list(turns), turns)
        truncated = len(nodes) > MAX_SPANS
        nodes.sort(key=lambda n: (n.record.start_ns, n.record.span_id))
        nodes = nodes[:MAX_SPANS]
        start_ns = row.rollup.start_ns or 0
        by_trace: dict[bytes, list[SpanNode]] = {t.trace_id: [] for t in traces}
        for node in nodes:
            by_trace[node.record.trace_id].append(node)
        views = [span_view(n, start_ns) for n in nodes]
        view_of = {id(n): v for n, v in zip(nodes, views, strict=True)}
        out = []
        for trace in traces:
            members = by_trace[trace.trace_id]
            t_start = trace.rollup.start_ns or start_ns
            t_end = trace.rollup.end_ns or t_start
            root = next((n for n in members if n.parent is None), members[0] if members else None)
            out.append(
                TraceView(
                    trace_id=trace.trace_id.hex(),
                    turn_index=turns[trace.trace_id],
                    name=root.record.name if root is not None else "",
                    start_time=iso_from_ns(t_start),
                    end_time=iso_from_ns(t_end),
                    offset_ms=ms(t_start - start_ns),
                    duration_ms=ms(max(t_end - t_start, 0)),
                    spans=[view_of[id(n)] for n in members],
                )
            )
        sources = [v.llm.cost_source for v in views if v.llm is not None]
        return SessionSpans(
            session_id=session_id,
            start_time=iso_from_ns(start_ns),
            session=session_view(row, time.time_ns(), timeout_ns),
            reported_cost_calls=sources.count("reported"),
            estimated_cost_calls=sources.count("estimated"),
            traces=out,
            truncated=truncated,
        )

    return router
