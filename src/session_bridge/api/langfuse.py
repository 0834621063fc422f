"""The Langfuse-style sessions API (seed 000): `GET /api/public/sessions[/{sessionId}]`,
HTTP Basic `public_key:secret_key`.

A session's `createdAt` is its first span's start; its environment (and each
trace's) is `default` when no span named one, as in Langfuse. Traces are read as
Langfuse reads OTel spans (`mapping/langfuse.py`): name from `langfuse.trace.name`
or the root span's name, input/output from `langfuse.trace.input/output` or the
root span's input/output sources, tags, release, version, public and metadata from
their Langfuse keys. `bookmarked` is always false (nothing bookmarks here).
"""

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from session_bridge.api.agent_models import CamelModel
from session_bridge.api.auth import ApiAuth, Scheme
from session_bridge.api.errors import error_responses, not_found
from session_bridge.api.params import (
    CHECKED_PARAMETERS,
    SessionIdPath,
    Timestamp,
    since_ns,
    until_ns,
)
from session_bridge.api.timeline import SpanNode, load_nodes
from session_bridge.mapping.langfuse import langfuse_trace
from session_bridge.rollup.rollup import Rollup, stamped_value
from session_bridge.store.base import SessionReader, TraceRow
from session_bridge.store.search import (
    MAX_LIST_VALUES,
    AllOf,
    AnyOf,
    Condition,
    Node,
    Op,
    SessionSearch,
)
from session_bridge.timefmt import iso_ms_from_ns

DEFAULT_ENVIRONMENT = "default"


class LangfuseSession(CamelModel):
    id: str
    created_at: str
    project_id: str
    environment: str


class LangfuseMeta(CamelModel):
    page: int
    limit: int
    total_items: int
    total_pages: int


class LangfuseSessionList(CamelModel):
    data: list[LangfuseSession]
    meta: LangfuseMeta


class LangfuseTraceView(CamelModel):
    id: str
    timestamp: str
    name: str | None
    user_id: str | None
    session_id: str
    metadata: dict[str, Any] | None
    tags: list[str]
    release: str | None
    version: str | None
    project_id: str
    environment: str
    public: bool
    bookmarked: bool
    input: Any
    output: Any
    created_at: str
    updated_at: str


class LangfuseSessionDetail(LangfuseSession):
    traces: list[LangfuseTraceView]


def _environment(rollup: Rollup) -> str:
    return stamped_value(rollup.environment) or DEFAULT_ENVIRONMENT


def _trace_view(
    trace: TraceRow, nodes: list[SpanNode], session_id: str, project_id: str
) -> LangfuseTraceView:
    root = next((n for n in nodes if n.record.parent_span_id is None), None)
    fields = langfuse_trace(
        root.raw if root is not None else None, [n.raw for n in nodes if n is not root]
    )
    r = trace.rollup
    return LangfuseTraceView(
        id=trace.trace_id.hex(),
        timestamp=iso_ms_from_ns(r.start_ns or 0),
        name=fields.name,
        user_id=stamped_value(r.user_id),
        session_id=session_id,
        metadata=fields.metadata,
        tags=fields.tags,
        release=fields.release,
        version=fields.version,
        project_id=project_id,
        environment=_environment(r),
        public=fields.public,
        bookmarked=False,
        input=fields.input,
        output=fields.output,
        created_at=iso_ms_from_ns(r.start_ns or 0),
        updated_at=iso_ms_from_ns(r.end_ns or 0),
    )


def langfuse_router(store: SessionReader, auth: ApiAuth) -> APIRouter:
    router = APIRouter(
        prefix="/api/public",
        tags=["langfuse"],
        dependencies=[*auth.documented(Scheme.BASIC), CHECKED_PARAMETERS],
        responses=error_responses(400, 401),
    )
    Project = Annotated[str, Depends(auth.key_project(Scheme.BASIC))]

    @router.get("/sessions", response_model=LangfuseSessionList)
    def list_sessions(
        project_id: Project,
        page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number")] = 1,
        limit: Annotated[int, Query(ge=1, le=1000, description="Items per page")] = 50,
        from_timestamp: Annotated[
            Timestamp | None,
            Query(alias="fromTimestamp", description="Sessions created at or after"),
        ] = None,
        to_timestamp: Annotated[
            Timestamp | None,
            Query(alias="toTimestamp", description="Sessions created at or before"),
        ] = None,
        environment: Annotated[
            list[str] | None,
            Query(
                max_length=MAX_LIST_VALUES,
                description="Only these environments (repeat the parameter for several)",
            ),
        ] = None,
    ) -> LangfuseSessionList:
        """The project's sessions, newest first."""
        conditions: list[Node] = []
        for op, bound in ((Op.GTE, since_ns(from_timestamp)), (Op.LTE, until_ns(to_timestamp))):
            if bound is not None:
                conditions.append(Condition("created_at", op, bound))
        if environment:
            named: list[Node] = [Condition("environment", Op.ONE_OF, environment)]
            if DEFAULT_ENVIRONMENT in environment:
                named.append(Condition("environment", Op.IS_NULL))
            conditions.append(AnyOf(tuple(named)))
        search = SessionSearch(
            project_id,
            active_since_ns=0,
            where=AllOf(tuple(conditions)),
            limit=limit,
            offset=(page - 1) * limit,
        )
        total = store.count_sessions(search)
        return LangfuseSessionList(
            data=[
                LangfuseSession(
                    id=row.session_id,
                    created_at=iso_ms_from_ns(row.rollup.start_ns or 0),
                    project_id=project_id,
                    environment=_environment(row.rollup),
                )
                for row in store.search_sessions(search)
            ],
            meta=LangfuseMeta(
                page=page, limit=limit, total_items=total, total_pages=math.ceil(total / limit)
            ),
        )

    @router.get(
        "/sessions/{sessionId}",
        response_model=LangfuseSessionDetail,
        responses=error_responses(404),
    )
    def get_session(
        project_id: Project,
        session_id: SessionIdPath,
    ) -> LangfuseSessionDetail:
        """A session with all its traces, oldest first."""
        row = store.get_session(project_id, session_id)
        if row is None:
            raise not_found(f"session {session_id!r}")
        traces = store.session_traces(project_id, session_id)
        turns = {t.trace_id: i for i, t in enumerate(traces)}
        nodes = load_nodes(store, project_id, list(turns), turns)
        return LangfuseSessionDetail(
            id=session_id,
            created_at=iso_ms_from_ns(row.rollup.start_ns or 0),
            project_id=project_id,
            environment=_environment(row.rollup),
            traces=[
                _trace_view(t, [n for n in nodes if n.turn_index == i], session_id, project_id)
                for i, t in enumerate(traces)
            ],
        )

    return router
