"""`GET /api/v1/sessions` and `GET /api/v1/sessions/{id}` in the shape of seed 002.

Keyset pagination: the opaque cursor holds the (start_time, session id) of the
row a page ended (or began) at, so pages stay stable while sessions arrive.
"""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from session_bridge.api.auth import ApiAuth, Scheme
from session_bridge.api.cursor import OneOf, decode_cursor, encode_cursor
from session_bridge.api.errors import error_responses
from session_bridge.api.params import CHECKED_PARAMETERS, Timestamp
from session_bridge.api.raw_path import PathSegment
from session_bridge.model import ClientInfo, GeoInfo
from session_bridge.rollup.rollup import (
    client_of,
    estimated_cost_usd,
    geo_of,
    stamped_value,
)
from session_bridge.store.base import SessionQuery, SessionReader, SessionRow
from session_bridge.timefmt import iso_from_ns, ns_from_datetime


class GenAiUsage(BaseModel):
    request_count: int
    total_input_tokens: int
    total_output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    reasoning_output_tokens: int
    models_used: list[str]
    providers_used: list[str]
    estimated_cost_usd: float | None = Field(
        description="Sum of the priced LLM calls; null when none could be priced"
    )
    unpriced_request_count: int = Field(description="LLM calls whose cost is unknown")


class Session(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    session_id: str = Field(alias="session.id")
    user_id: str | None = Field(default=None, alias="user.id")
    start_time: str
    end_time: str
    duration_ms: int
    trace_count: int
    span_count: int
    error_count: int
    services: list[str]
    environment: str | None = None
    state: Literal["active", "ended"]
    # the dataclasses of `model` are the one declaration of these fields
    client: ClientInfo
    geo: GeoInfo
    genai_usage: GenAiUsage


class SessionPage(BaseModel):
    items: list[Session]
    has_more: bool
    next_cursor: str | None
    prev_cursor: str | None


def session_view(row: SessionRow, now_ns: int, inactivity_timeout_ns: int) -> Session:
    r = row.rollup
    start = r.start_ns or 0
    end = r.end_ns or start
    client = client_of(r)
    geo = geo_of(r)
    return Session(
        session_id=row.session_id,
        user_id=stamped_value(r.user_id),
        start_time=iso_from_ns(start),
        end_time=iso_from_ns(end),
        duration_ms=(end - start) // 1_000_000,
        trace_count=r.trace_count,
        span_count=r.span_count,
        error_count=r.error_count,
        services=sorted(r.services),
        environment=stamped_value(r.environment),
        state="active" if now_ns - end < inactivity_timeout_ns else "ended",
        client=client or ClientInfo(),
        geo=geo or GeoInfo(),
        genai_usage=GenAiUsage(
            request_count=r.request_count,
            total_input_tokens=r.input_tokens,
            total_output_tokens=r.output_tokens,
            cache_read_input_tokens=r.cache_read_tokens,
            cache_creation_input_tokens=r.cache_creation_tokens,
            reasoning_output_tokens=r.reasoning_tokens,
            models_used=sorted(r.models),
            providers_used=sorted(r.providers),
            estimated_cost_usd=estimated_cost_usd(r),
            unpriced_request_count=r.unpriced_count,
        ),
    )


SESSION_CURSOR = (OneOf(("n", "p")), int, str)  # direction, start_ns, session id


def session_cursor(direction: str, row: SessionRow) -> str:
    return encode_cursor([direction, row.rollup.start_ns or 0, row.session_id])


def sessions_router(
    store: SessionReader, auth: ApiAuth, inactivity_timeout_s: float, default_page_size: int
) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1",
        tags=["sessions"],
        dependencies=[*auth.documented(Scheme.BEARER), CHECKED_PARAMETERS],
        responses=error_responses(400, 401),
    )
    timeout_ns = int(inactivity_timeout_s * 1e9)
    Project = Annotated[str, Depends(auth.key_project(Scheme.BEARER))]

    @router.get("/sessions", response_model=SessionPage, response_model_by_alias=True)
    def list_sessions(
        project_id: Project,
        user_id: Annotated[
            str | None,
            Query(alias="user.id", min_length=1, max_length=256, description="User ID filter"),
        ] = None,
        is_active: Annotated[bool | None, Query(description="Is active filter")] = None,
        start_time: Annotated[
            Timestamp | None, Query(description="Sessions that started at or after this time")
        ] = None,
        end_time: Annotated[
            Timestamp | None, Query(description="Sessions that ended at or before this time")
        ] = None,
        page_size: Annotated[
            int, Query(ge=1, le=1000, description="Page size")
        ] = default_page_size,
        cursor: Annotated[str | None, Query(description="Cursor from a previous page")] = None,
    ) -> SessionPage:
        now = time.time_ns()
        query = SessionQuery(project_id=project_id, page_size=page_size + 1, user_id=user_id)
        if is_active is True:
            query.active_since_ns = now - timeout_ns
        elif is_active is False:
            query.inactive_before_ns = now - timeout_ns
        if start_time is not None:
            query.start_from_ns = ns_from_datetime(start_time)
        if end_time is not None:
            # times are given to the microsecond; include the whole of that microsecond
            query.end_until_ns = ns_from_datetime(end_time) + 999
        direction = None
        if cursor is not None:
            direction, start, session_id = decode_cursor(cursor, "cursor", SESSION_CURSOR)
            key = (start, session_id)
            if direction == "n":
                query.after = key
            else:
                query.before = key
        rows = store.list_sessions(query)
        more = len(rows) > page_size
        if direction == "p":
            rows = rows[-page_size:] if more else rows  # the extra row is the oldest-first overflow
            has_more = True
            prev = session_cursor("p", rows[0]) if more and rows else None
        else:
            rows = rows[:page_size]
            has_more = more
            prev = session_cursor("p", rows[0]) if direction == "n" and rows else None
        return SessionPage(
            items=[session_view(row, now, timeout_ns) for row in rows],
            has_more=has_more,
            next_cursor=session_cursor("n", rows[-1]) if has_more and rows else None,
            prev_cursor=prev,
        )

    @router.get(
        "/sessions/{session_id}",
        response_model=Session,
        response_model_by_alias=True,
        responses=error_responses(404),
    )
    def get_session(
        project_id: Project,
        session_id: Annotated[str, PathSegment, Path(description="Session id")],
    ) -> Session:
        row = store.get_session(project_id, session_id)
        if row is None:
            raise HTTPException(404, f"session {session_id!r} not found")
        return session_view(row, time.time_ns(), timeout_ns)

    return router
