"""The agent traces API (seed 001) under `/api/projects/{projectId}/sessions`, Bearer auth.

`…/{sessionId}/traces` (events in time order, filters, `include=metrics|evaluations`,
cursor pagination), `…/traces/{spanId}/children`, `…/metrics`, `…/evaluations`,
`…/analysis`, and across
sessions `…/export` (CSV or JSON lines, streamed) and `…/generations`.
"""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from session_bridge.api.agent_models import (
    Analysis,
    ChildEvents,
    EventTypeName,
    Generation,
    GenerationsPage,
    SessionEvaluations,
    SessionMetrics,
    TracesPage,
)
from session_bridge.api.analysis import BASELINE_SESSIONS, Baseline, analyse, decision_targets
from session_bridge.api.auth import ApiAuth, Scheme
from session_bridge.api.cursor import HexId, decode_cursor, encode_cursor
from session_bridge.api.errors import error_responses, not_found
from session_bridge.api.event_export import EXPORT_FORMATS, export_events
from session_bridge.api.params import (
    CHECKED_PARAMETERS,
    From,
    SessionIdPath,
    To,
    since_ns,
    until_ns,
)
from session_bridge.api.session_evaluations import session_evaluations
from session_bridge.api.session_metrics import session_metrics
from session_bridge.api.timeline import (
    SessionTimeline,
    SpanNode,
    llm_block,
    load_nodes,
    load_timeline,
)
from session_bridge.mapping.events import DecisionKind
from session_bridge.mapping.payloads import decode_span
from session_bridge.model import EventType
from session_bridge.store.base import GenerationQuery, ProjectSpanQuery, SessionReader
from session_bridge.store.search import MAX_LIST_VALUES
from session_bridge.timefmt import iso_from_ns

EVENT_CURSOR = (int, HexId(32), HexId(16), int)  # a timeline entry's sort key
GENERATION_CURSOR = (int, HexId(32), HexId(16))


def project_sessions_router(auth: ApiAuth) -> APIRouter:
    """`/api/projects/{projectId}/sessions/...`: Bearer keys, checked parameters."""
    return APIRouter(
        prefix="/api/projects/{projectId}/sessions",
        tags=["agent traces"],
        dependencies=[*auth.documented(Scheme.BEARER), CHECKED_PARAMETERS],
        responses=error_responses(400, 401, 404),
    )


def agent_traces_router(store: SessionReader, auth: ApiAuth) -> APIRouter:
    router = project_sessions_router(auth)
    Project = Annotated[str, Depends(auth.path_project("projectId", Scheme.BEARER))]

    def timeline_of(project_id: str, session_id: str) -> SessionTimeline:
        timeline = load_timeline(store, project_id, session_id)
        if timeline is None:
            raise not_found(f"session {session_id!r}")
        return timeline

    @router.get(
        "/export",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "One row (CSV, with a header row) or line (JSON) per event",
                "content": {
                    media: {"schema": {"type": "string"}} for media in EXPORT_FORMATS.values()
                },
            }
        },
    )
    def export(
        project_id: Project,
        format: Annotated[
            Literal["csv", "jsonl"], Query(description="csv (header row first) or jsonl")
        ] = "csv",
        start: From = None,
        end: To = None,
        session_ids: Annotated[
            list[str] | None,
            Query(
                alias="sessionId",
                max_length=MAX_LIST_VALUES,
                description="Only these sessions (repeat the parameter)",
            ),
        ] = None,
    ) -> StreamingResponse:
        """Every event of the project's sessions, one row each, streamed session by session."""
        rows = export_events(
            store,
            project_id,
            format,
            since_ns(start),
            until_ns(end),
            session_ids,
        )
        return StreamingResponse(
            rows,
            media_type=EXPORT_FORMATS[format],
            headers={"Content-Disposition": f'attachment; filename="events.{format}"'},
        )

    @router.get("/generations", response_model=GenerationsPage)
    def generations(
        project_id: Project,
        model: Annotated[str | None, Query(description="Only calls to this model")] = None,
        provider: Annotated[str | None, Query(description="Only calls to this provider")] = None,
        start: From = None,
        end: To = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 50,
        cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
    ) -> GenerationsPage:
        """Every LLM call of the project's sessions, newest first."""
        query = GenerationQuery(
            project_id=project_id,
            limit=limit + 1,
            model=model,
            provider=provider,
            start_from_ns=since_ns(start),
            start_until_ns=until_ns(end),
        )
        if cursor is not None:
            at, trace_hex, span_hex = decode_cursor(cursor, "cursor", GENERATION_CURSOR)
            query.before = (at, bytes.fromhex(trace_hex), bytes.fromhex(span_hex))
        records = store.list_generations(query)
        page = records[:limit]
        trace_ids = sorted({r.trace_id for r in page})
        nodes = {
            (n.record.trace_id, n.record.span_id): n
            for n in load_nodes(store, project_id, trace_ids, dict.fromkeys(trace_ids, 0))
        }
        items = []
        for record in page:
            node = nodes[(record.trace_id, record.span_id)]
            items.append(
                Generation(
                    **llm_block(node).model_dump(),
                    session_id=record.session_id or "",
                    trace_id=record.trace_id.hex(),
                    span_id=record.span_id.hex(),
                    agent_name=node.agent,
                    name=record.name,
                    start_time=iso_from_ns(record.start_ns),
                )
            )
        last = page[-1] if page else None
        more = len(records) > limit and last is not None
        return GenerationsPage(
            items=items,
            next_cursor=encode_cursor([last.start_ns, last.trace_id.hex(), last.span_id.hex()])
            if more and last is not None
            else None,
        )

    @router.get("/{sessionId}/traces", response_model=TracesPage, response_model_exclude_unset=True)
    def traces(
        project_id: Project,
        session_id: SessionIdPath,
        event_type: Annotated[
            list[EventTypeName] | None,
            Query(alias="eventType", description="Only events of these types"),
        ] = None,
        decision_kind: Annotated[
            list[DecisionKind] | None,
            Query(alias="decisionKind", description="Only decisions of these kinds"),
        ] = None,
        include: Annotated[
            list[Literal["metrics", "evaluations"]] | None,
            Query(
                description="metrics: add the session's metrics to the answer; evaluations:"
                " its evaluation results"
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Events per page")] = 100,
        cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
    ) -> TracesPage:
        """The session's events in time order."""
        timeline = timeline_of(project_id, session_id)
        entries = timeline.entries
        if cursor is not None:
            after = tuple(decode_cursor(cursor, "cursor", EVENT_CURSOR))
            entries = [e for e in entries if e.key > after]
        if event_type:
            entries = [e for e in entries if e.event.type in event_type]
        if decision_kind:
            entries = [
                e
                for e in entries
                if e.event.decision is not None and e.event.decision.decision_kind in decision_kind
            ]
        page = entries[:limit]
        page_out = TracesPage(
            session_id=session_id,
            events=[e.event for e in page],
            next_cursor=encode_cursor(list(page[-1].key)) if len(entries) > limit else None,
        )
        if include and "metrics" in include:
            page_out.metrics = session_metrics(timeline)
        if include and "evaluations" in include:
            page_out.evaluations = session_evaluations(timeline)
        return page_out

    @router.get(
        "/{sessionId}/traces/{spanId}/children",
        response_model=ChildEvents,
        response_model_exclude_unset=True,
    )
    def children(
        project_id: Project,
        session_id: SessionIdPath,
        span_id: Annotated[
            str,
            Path(alias="spanId", pattern="^[0-9a-fA-F]{16}$", description="Span id (16 hex)"),
        ],
        event_type: Annotated[
            list[EventTypeName] | None,
            Query(alias="eventType", description="Only events of these types"),
        ] = None,
    ) -> ChildEvents:
        """The events of every span nested under `spanId`, in time order."""
        timeline = timeline_of(project_id, session_id)
        wanted = bytes.fromhex(span_id)
        if not any(n.record.span_id == wanted for n in timeline.nodes):
            raise not_found(f"span {span_id!r} in session {session_id!r}")
        nested = set()
        for node in timeline.nodes:
            parent = node.parent
            while parent is not None and parent.record.span_id != wanted:
                parent = parent.parent
            if parent is not None:
                nested.add(id(node))
        return ChildEvents(
            session_id=session_id,
            span_id=span_id.lower(),
            events=[
                e.event
                for e in timeline.entries
                if id(e.node) in nested and (not event_type or e.event.type in event_type)
            ],
        )

    @router.get("/{sessionId}/metrics", response_model=SessionMetrics)
    def metrics(project_id: Project, session_id: SessionIdPath) -> SessionMetrics:
        """Latency per turn and in total, token usage per LLM call, tool and guardrail rates."""
        return session_metrics(timeline_of(project_id, session_id))

    @router.get("/{sessionId}/evaluations", response_model=SessionEvaluations)
    def evaluations(project_id: Project, session_id: SessionIdPath) -> SessionEvaluations:
        """The evaluation results of the session's model responses, in time order."""
        timeline = timeline_of(project_id, session_id)
        return SessionEvaluations(session_id=session_id, evaluations=session_evaluations(timeline))

    @router.get("/{sessionId}/analysis", response_model=Analysis)
    def analysis(project_id: Project, session_id: SessionIdPath) -> Analysis:
        """Slow spans, error patterns, decision anomalies and the suggestions they lead to."""
        timeline = timeline_of(project_id, session_id)
        names = sorted({n.record.name for n in timeline.nodes})
        others = store.project_spans(
            ProjectSpanQuery(
                project_id, BASELINE_SESSIONS, exclude_session_id=session_id, names=names
            )
        )
        durations: dict[str, list[int]] = {}
        for span in others:
            durations.setdefault(span.name, []).append(max(span.end_ns - span.start_ns, 0))
        started = min(t.rollup.start_ns or 0 for t in timeline.traces)
        earlier = store.project_spans(
            ProjectSpanQuery(
                project_id,
                BASELINE_SESSIONS,
                exclude_session_id=session_id,
                started_before_ns=started,
                event_types=(EventType.HANDOFF.value, EventType.DECISION.value),
            )
        )
        known = {
            target
            for span in earlier
            for target in decision_targets(SpanNode(span, decode_span(span.otlp_span), 0))
        }
        sessions = len({s.session_id for s in others})
        return analyse(timeline, Baseline(sessions, durations, known), iso_from_ns(time.time_ns()))

    return router
