"""The Galileo-style session search (seed 003): `POST /v2/projects/{project_id}/sessions/search`.

Typed filters (`id`, `date`, `number`, `boolean`, `collection`, `text`) in
`filters[]` (all must hold) and a recursive `filter_tree` (`filter` / `and` / `or`
/ `not`), ANDed together; `sort` on one column (default `created_at` descending;
ties by session id); `starting_token` (an offset) + `limit`, or keyset paging with
`previous_last_row_id` = the `last_row_id` of the previous page. Column ids are
those of `store.search.SESSION_COLUMNS`; an unknown one is a 400 listing them.
Dates are compared to the microsecond. Auth: `Galileo-API-Key` or Bearer.
"""

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from session_bridge.api.auth import ApiAuth, Scheme
from session_bridge.api.errors import bad_parameter, error_responses
from session_bridge.api.params import CHECKED_PARAMETERS, nul_free
from session_bridge.api.search_models import (
    TRUNCATED_LENGTH,
    AndNode,
    AnyFilter,
    CollectionFilter,
    DateFilter,
    ExtendedSessionRecord,
    FilterLeaf,
    FilterNode,
    NotNode,
    SessionRecordMetrics,
    SessionSearchRequest,
    SessionSearchResponse,
    TextFilter,
)
from session_bridge.mapping.langfuse import langfuse_trace
from session_bridge.mapping.payloads import decode_span
from session_bridge.rollup.rollup import (
    client_of,
    estimated_cost_usd,
    geo_of,
    stamped_value,
)
from session_bridge.store.base import SessionReader, SessionRow
from session_bridge.store.search import (
    MAX_CONDITIONS,
    MAX_LIST_VALUES,
    MAX_VALUES,
    SESSION_COLUMNS,
    AllOf,
    AnyOf,
    ColumnKind,
    Condition,
    Negation,
    Node,
    Op,
    SessionSearch,
    Sort,
    UnknownRowError,
)
from session_bridge.timefmt import iso_from_ns, ns_from_datetime

MICROSECOND_NS = 1000

_FILTER_KINDS: dict[ColumnKind, frozenset[str]] = {
    ColumnKind.ID: frozenset({"id", "text"}),
    ColumnKind.TEXT: frozenset({"id", "text"}),
    ColumnKind.DATE: frozenset({"date"}),
    ColumnKind.NUMBER: frozenset({"number"}),
    ColumnKind.BOOLEAN: frozenset({"boolean"}),
    ColumnKind.COLLECTION: frozenset({"collection"}),
}
_LIST_OPERATORS = frozenset({"one_of", "not_in"})


def _column(column_id: str, where: str) -> ColumnKind:
    found = SESSION_COLUMNS.get(column_id)
    if found is None:
        raise bad_parameter(
            where, f"unknown column {column_id!r}; valid columns: {', '.join(SESSION_COLUMNS)}"
        )
    return found.kind


@dataclass(slots=True)
class Budget:
    """The filters and values of one request so far, held to the bounds of a search."""

    conditions: int = 0
    values: int = 0

    def spend(self, value: Any, where: str) -> None:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str):
                nul_free(f"{where}.value", item)
        count = len(values)
        if count > MAX_LIST_VALUES:
            raise bad_parameter(
                f"{where}.value", f"{count} values; a list takes at most {MAX_LIST_VALUES}"
            )
        self.conditions += 1
        self.values += count
        if self.conditions > MAX_CONDITIONS:
            raise bad_parameter(
                where, f"more than {MAX_CONDITIONS} filters in filters and filter_tree together"
            )
        if self.values > MAX_VALUES:
            raise bad_parameter(
                f"{where}.value", f"more than {MAX_VALUES} values in all the filters together"
            )


def filter_condition(f: AnyFilter, where: str, budget: Budget) -> Node:
    """One typed filter as a search condition; `where` names it in error messages."""
    budget.spend(f.value, where)
    kind = _column(f.column_id, f"{where}.column_id")
    if f.type not in _FILTER_KINDS[kind]:
        allowed = " or ".join(sorted(_FILTER_KINDS[kind]))
        raise bad_parameter(f"{where}.type", f"column {f.column_id!r} takes {allowed} filters")
    value: Any = f.value
    if isinstance(f, DateFilter):
        return _date_condition(f.column_id, f.operator, ns_from_datetime(f.value))
    is_list = isinstance(value, list)
    if f.operator == "between":
        if not is_list or len(value) != 2 or value[0] > value[1]:
            raise bad_parameter(f"{where}.value", "between takes [low, high] with low <= high")
    elif f.operator in _LIST_OPERATORS:
        if not is_list or not value:
            raise bad_parameter(f"{where}.value", f"{f.operator} takes a non-empty list")
    elif is_list and not (isinstance(f, CollectionFilter) and f.operator == "eq" and value):
        raise bad_parameter(f"{where}.value", f"{f.operator} takes a single value")
    case_sensitive = f.case_sensitive if isinstance(f, CollectionFilter | TextFilter) else True
    return Condition(f.column_id, Op(f.operator), value, case_sensitive)


def _date_condition(column_id: str, operator: str, at_ns: int) -> Node:
    """Dates are given to the microsecond: `eq` means within that microsecond."""
    end = at_ns + MICROSECOND_NS - 1
    if operator == "eq":
        return Condition(column_id, Op.BETWEEN, [at_ns, end])
    if operator == "ne":
        return Negation(Condition(column_id, Op.BETWEEN, [at_ns, end]))
    bound = {"gt": end, "gte": at_ns, "lt": at_ns, "lte": end}[operator]
    return Condition(column_id, Op(operator), bound)


def tree_condition(node: FilterNode, where: str, budget: Budget) -> Node:
    """The tree as a search condition (its depth is bounded by `SessionSearchRequest`)."""
    if isinstance(node, FilterLeaf):
        return filter_condition(node.filter, f"{where}.filter", budget)
    if isinstance(node, NotNode):
        return Negation(tree_condition(node.not_, f"{where}.not", budget))
    if isinstance(node, AndNode):
        return AllOf(
            tuple(tree_condition(n, f"{where}.and[{i}]", budget) for i, n in enumerate(node.and_))
        )
    return AnyOf(
        tuple(tree_condition(n, f"{where}.or[{i}]", budget) for i, n in enumerate(node.or_))
    )


def _text(value: Any, truncate: bool) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:TRUNCATED_LENGTH] if truncate else text


def search_router(store: SessionReader, auth: ApiAuth, inactivity_timeout_s: float) -> APIRouter:
    router = APIRouter(
        prefix="/v2/projects/{project_id}",
        tags=["galileo"],
        dependencies=[*auth.documented(Scheme.GALILEO, Scheme.BEARER), CHECKED_PARAMETERS],
        responses=error_responses(400, 401, 404),
    )
    Project = Annotated[
        str, Depends(auth.path_project("project_id", Scheme.GALILEO, Scheme.BEARER))
    ]
    timeout_ns = int(inactivity_timeout_s * 1e9)

    def records(
        project_id: str, rows: list[SessionRow], request: SessionSearchRequest, now_ns: int
    ) -> list[ExtendedSessionRecord]:
        roots: dict[str, list[Any]] = {}
        if rows:
            for span in store.session_root_spans(project_id, [r.session_id for r in rows]):
                roots.setdefault(span.session_id or "", []).append(span)
        out = []
        for row in rows:
            r = row.rollup
            spans = roots.get(row.session_id, [])
            first = langfuse_trace(decode_span(spans[0].otlp_span), []) if spans else None
            last = langfuse_trace(decode_span(spans[-1].otlp_span), []) if spans else None
            client, geo = client_of(r), geo_of(r)
            metadata = {
                "user_id": stamped_value(r.user_id),
                "environment": stamped_value(r.environment),
                "country_code": geo.country_code if geo else None,
                "device_type": client.device_type if client else None,
            }
            start, end = r.start_ns or 0, r.end_ns or 0
            out.append(
                ExtendedSessionRecord(
                    id=row.session_id,
                    session_id=row.session_id,
                    project_id=project_id,
                    run_id=project_id,
                    name=(first.name or "") if first else "",
                    input=_text(first.input if first else None, request.truncate_fields),
                    output=_text(last.output if last else None, request.truncate_fields),
                    created_at=iso_from_ns(start),
                    updated_at=iso_from_ns(end),
                    tags=sorted({t for s in (first, last) if s is not None for t in s.tags}),
                    user_metadata={k: v for k, v in metadata.items() if v is not None},
                    status_code=500 if r.error_count else 200,
                    metrics=SessionRecordMetrics(
                        duration_ns=end - start,
                        cost=estimated_cost_usd(r),
                        num_input_tokens=r.input_tokens,
                        num_output_tokens=r.output_tokens,
                        num_total_tokens=r.input_tokens + r.output_tokens,
                    ),
                    has_children=r.trace_count > 0,
                    num_traces=r.trace_count if request.include_counts else None,
                    is_complete=now_ns - end >= timeout_ns,
                )
            )
        return out

    @router.post(
        "/sessions/search",
        response_model=SessionSearchResponse,
        response_model_exclude_none=False,
    )
    def search_sessions(
        project_id: Project, request: SessionSearchRequest
    ) -> SessionSearchResponse:
        """Sessions of the project matching the filters, one page."""
        if request.previous_last_row_id is not None:
            nul_free("previous_last_row_id", request.previous_last_row_id)
        budget = Budget()
        conditions = [
            filter_condition(f, f"filters[{i}]", budget) for i, f in enumerate(request.filters)
        ]
        if request.filter_tree is not None:
            conditions.append(tree_condition(request.filter_tree, "filter_tree", budget))
        sort = Sort()
        if request.sort is not None:
            kind = _column(request.sort.column_id, "sort.column_id")
            if kind is ColumnKind.COLLECTION:
                raise bad_parameter("sort.column_id", f"{request.sort.column_id!r} is not sortable")
            sort = Sort(request.sort.column_id, request.sort.ascending)
        now = time.time_ns()
        search = SessionSearch(
            project_id,
            active_since_ns=now - timeout_ns,
            where=AllOf(tuple(conditions)),
            sort=sort,
            limit=request.limit + 1,
            offset=0 if request.previous_last_row_id else request.starting_token,
            after_session_id=request.previous_last_row_id,
        )
        try:
            rows = store.search_sessions(search)
        except UnknownRowError as exc:
            raise bad_parameter("previous_last_row_id", "no such session in this project") from exc
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        next_token = request.starting_token + len(rows) if more else None
        return SessionSearchResponse(
            num_records=store.count_sessions(search),
            starting_token=request.starting_token,
            limit=request.limit,
            paginated=more or request.starting_token > 0,
            next_starting_token=next_token,
            last_row_id=rows[-1].session_id if rows else None,
            records=records(project_id, rows, request, now),
        )

    return router
