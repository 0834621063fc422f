"""The query side of the SQL stores, written once: SQLite and PostgreSQL differ only in
how a parameter is written (`dialect.mark`, `dialect` also compiles session searches) and
in how a query runs (`_rows`)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from session_bridge.model import SpanRecord
from session_bridge.store import columns
from session_bridge.store.base import (
    GenerationQuery,
    ProjectSpanQuery,
    SessionQuery,
    SessionRow,
    Store,
    TraceRow,
)
from session_bridge.store.search import (
    SessionSearch,
    SqlDialect,
    UnknownRowError,
    anchor_sql,
    count_sql,
    select_sql,
)

MAX_PARAMS = 500  # parameters in one IN list (SQLite's bound on host parameters is lowest)
ROLLUP_COLS = ", ".join(columns.COLUMN_NAMES)
_SPAN_COLS = columns.span_select("s")


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """`items` in slices that fit one IN list (every IN list of the stores and logs)."""
    for i in range(0, len(items), MAX_PARAMS):
        yield items[i : i + MAX_PARAMS]


Query = Callable[[str, Sequence[Any]], Iterable[Sequence[Any]]]
"""Runs one query with its parameters and gives its rows."""


def resources_by_key(query: Query, mark: str, keys: Sequence[bytes]) -> dict[bytes, bytes]:
    """The encoded resources of those `keys` that are in the `resources` table, read with
    `query` (the store's query side, or an export log's own connection); `mark` is the
    placeholder of a bound parameter."""
    found: dict[bytes, bytes] = {}
    for chunk in chunks(keys):
        marks = ", ".join([mark] * len(chunk))
        for key, resource in query(
            f"SELECT resource_key, resource FROM resources WHERE resource_key IN ({marks})", chunk
        ):
            found[bytes(key)] = bytes(resource)
    return found


class SqlReads(Store):
    dialect: SqlDialect
    span_join: str  # the ON clause of `traces t JOIN spans s`

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any]) -> Sequence[tuple[Any, ...]]:
        """Every row of one query (on a connection of the query side)."""

    def _marks(self, count: int) -> str:
        return ", ".join([self.dialect.mark] * count)

    def _filters(self, *conditions: tuple[str, Any]) -> tuple[list[str], list[Any]]:
        """The conditions (`{}` where the parameter goes) whose value is not None."""
        where: list[str] = []
        params: list[Any] = []
        for condition, value in conditions:
            if value is not None:
                where.append(condition.format(self.dialect.mark))
                params.append(value)
        return where, params

    def _spans(self, sql: str, params: Sequence[Any]) -> list[SpanRecord]:
        return [columns.span_from_row(row) for row in self._rows(sql, params)]

    def get_session(self, project_id: str, session_id: str) -> SessionRow | None:
        m = self.dialect.mark
        rows = self._rows(
            f"SELECT {ROLLUP_COLS} FROM sessions WHERE project_id = {m} AND session_id = {m}",
            (project_id, session_id),
        )
        return SessionRow(project_id, session_id, columns.from_row(rows[0])) if rows else None

    def list_sessions(self, query: SessionQuery) -> list[SessionRow]:
        m = self.dialect.mark
        where, params = self._filters(
            ("project_id = {}", query.project_id),
            ("user_id = {}", query.user_id),
            ("end_ns >= {}", query.active_since_ns),
            ("end_ns < {}", query.inactive_before_ns),
            ("start_ns >= {}", query.start_from_ns),
            ("end_ns <= {}", query.end_until_ns),
        )
        order = "DESC"
        if query.after is not None:
            where.append(f"(start_ns, session_id) < ({m}, {m})")
            params += list(query.after)
        elif query.before is not None:  # the page before: read upwards, then turn it round
            where.append(f"(start_ns, session_id) > ({m}, {m})")
            params += list(query.before)
            order = "ASC"
        rows = [
            SessionRow(query.project_id, row[0], columns.from_row(row[1:]))
            for row in self._rows(
                f"SELECT session_id, {ROLLUP_COLS} FROM sessions WHERE {' AND '.join(where)}"
                f" ORDER BY start_ns {order}, session_id {order} LIMIT {m}",
                [*params, query.page_size],
            )
        ]
        if order == "ASC":
            rows.reverse()
        return rows

    def search_sessions(self, search: SessionSearch) -> list[SessionRow]:
        anchor = None
        if search.after_session_id is not None:
            query = anchor_sql(search, self.dialect)
            found = self._rows(query.sql, query.params)
            if not found:
                raise UnknownRowError(search.after_session_id)
            anchor = found[0][0]
        query = select_sql(search, self.dialect, f"session_id, {ROLLUP_COLS}", anchor)
        return [
            SessionRow(search.project_id, row[0], columns.from_row(row[1:]))
            for row in self._rows(query.sql, query.params)
        ]

    def count_sessions(self, search: SessionSearch) -> int:
        query = count_sql(search, self.dialect)
        return int(self._rows(query.sql, query.params)[0][0])

    def session_traces(self, project_id: str, session_id: str) -> list[TraceRow]:
        m = self.dialect.mark
        rows = self._rows(
            f"SELECT trace_id, {ROLLUP_COLS} FROM traces"
            f" WHERE project_id = {m} AND session_id = {m} ORDER BY start_ns, trace_id",
            (project_id, session_id),
        )
        return [TraceRow(bytes(row[0]), columns.from_row(row[1:])) for row in rows]

    def trace_spans(self, project_id: str, trace_ids: Sequence[bytes]) -> list[SpanRecord]:
        return self._spans_of_traces(project_id, "t.trace_id", trace_ids)

    def session_root_spans(self, project_id: str, session_ids: Sequence[str]) -> list[SpanRecord]:
        return self._spans_of_traces(
            project_id, "t.session_id", session_ids, " AND s.parent_span_id IS NULL"
        )

    def _spans_of_traces(
        self, project_id: str, key: str, values: Sequence[Any], more: str = ""
    ) -> list[SpanRecord]:
        """Spans of the project's traces whose `key` is among `values`, by (start, id)."""
        spans: list[SpanRecord] = []
        for chunk in chunks(values):
            spans += self._spans(
                f"SELECT {_SPAN_COLS} FROM traces t JOIN spans s ON {self.span_join}"
                f" WHERE t.project_id = {self.dialect.mark}"
                f" AND {key} IN ({self._marks(len(chunk))}){more}",
                (project_id, *chunk),
            )
        spans.sort(key=lambda span: (span.start_ns, span.span_id))
        return spans

    def project_spans(self, query: ProjectSpanQuery) -> list[SpanRecord]:
        m = self.dialect.mark
        recent = [f"project_id = {m}"]
        params: list[Any] = [query.project_id, query.project_id]
        if query.exclude_session_id is not None:
            recent.append(f"session_id <> {m}")
            params.append(query.exclude_session_id)
        if query.started_before_ns is not None:
            recent.append(f"start_ns < {m}")
            params.append(query.started_before_ns)
        params.append(query.max_sessions)
        sql = (
            f"SELECT {_SPAN_COLS} FROM traces t JOIN spans s ON {self.span_join}"
            f" WHERE t.project_id = {m} AND t.session_id IN (SELECT session_id FROM sessions"
            f" WHERE {' AND '.join(recent)} ORDER BY start_ns DESC LIMIT {m})"
        )
        if query.event_types is not None:
            sql += f" AND s.event_type IN ({self._marks(len(query.event_types))})"
            params += list(query.event_types)
        if query.names is None:
            return self._spans(sql, params)
        spans: list[SpanRecord] = []
        for chunk in chunks(query.names):
            spans += self._spans(
                sql + f" AND s.name IN ({self._marks(len(chunk))})", [*params, *chunk]
            )
        return spans

    def list_generations(self, query: GenerationQuery) -> list[SpanRecord]:
        m = self.dialect.mark
        where, params = self._filters(
            ("s.project_id = {}", query.project_id),
            ("s.model = {}", query.model),
            ("s.provider = {}", query.provider),
            ("s.start_ns >= {}", query.start_from_ns),
            ("s.start_ns <= {}", query.start_until_ns),
        )
        where += ["s.event_type = 'llm_call'", "s.session_id IS NOT NULL"]
        if query.before is not None:
            where.append(f"(s.start_ns, s.trace_id, s.span_id) < ({m}, {m}, {m})")
            params += list(query.before)
        params.append(query.limit)
        return self._spans(
            f"SELECT {_SPAN_COLS} FROM spans s WHERE {' AND '.join(where)}"
            f" ORDER BY s.start_ns DESC, s.trace_id DESC, s.span_id DESC LIMIT {m}",
            params,
        )

    def resources(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return resources_by_key(self._rows, self.dialect.mark, keys)
