"""The `Store` seam: what the pipeline writes and what the query side reads."""

from __future__ import annotations

import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from session_bridge.model import SpanRecord
from session_bridge.rollup.binding import TraceDelta
from session_bridge.rollup.rollup import Rollup
from session_bridge.store import columns
from session_bridge.store.search import SessionSearch


@dataclass(slots=True)
class WriteBatch:
    """The spans of one export request, written in one transaction."""

    project_id: str
    # None when the batch came from a map worker without them (see `batch_tables`)
    records: list[SpanRecord] | None
    resources: dict[bytes, bytes] = field(default_factory=dict)
    # per-trace deltas of all `records`, folded before the write (outside any lock);
    # a store may use them when every record turns out to be new
    trace_deltas: dict[bytes, TraceDelta] | None = None
    # from a map worker, for the SQLite store: the span rows and the trace deltas as a
    # serialized SQLite database (`store.sqlite.batch_tables`), and how many spans the
    # request carried
    batch_tables: bytes | None = None
    span_count: int = 0

    def rows(self) -> list[tuple[Any, ...]]:
        """The records as `columns.span_row` tuples, each span once (the first, if the
        request repeated it)."""
        rows: list[tuple[Any, ...]] = []
        seen: set[bytes] = set()
        for record in self.records or ():
            key = record.trace_id + record.span_id
            if key not in seen:
                seen.add(key)
                rows.append(columns.span_row(record, self.project_id))
        return rows

    def received(self) -> int:
        """How many spans the request carried (any it repeated included)."""
        return len(self.records) if self.records is not None else self.span_count


class NeedsRecords(Exception):
    """The store needs the batch's records, which it came without: some of its spans were
    stored already, and only the new ones must be folded (rare: client retries)."""


@dataclass(slots=True)
class WriteResult:
    stored: int  # spans new to the store
    duplicates: int  # spans the store already had (client retries)


@dataclass(slots=True)
class Expired:
    """What one `Store.expire` call deleted."""

    traces: int = 0
    spans: int = 0
    sessions: int = 0


@dataclass(slots=True)
class SessionRow:
    project_id: str
    session_id: str
    rollup: Rollup


@dataclass(slots=True)
class SessionQuery:
    """Filters and keyset position for listing sessions, newest first."""

    project_id: str
    page_size: int
    user_id: str | None = None
    active_since_ns: int | None = None  # sessions whose last span ended at or after this
    inactive_before_ns: int | None = None  # sessions whose last span ended before this
    start_from_ns: int | None = None
    end_until_ns: int | None = None
    after: tuple[int, str] | None = None  # (start_ns, session_id) of the last row seen
    before: tuple[int, str] | None = None  # (start_ns, session_id) of the first row seen


@dataclass(slots=True)
class TraceRow:
    trace_id: bytes
    rollup: Rollup


@dataclass(slots=True)
class ProjectSpanQuery:
    """Spans of a project's most recent sessions (a bounded baseline for comparisons)."""

    project_id: str
    max_sessions: int
    exclude_session_id: str | None = None
    started_before_ns: int | None = None  # only sessions that started before this
    names: Sequence[str] | None = None  # only spans with these names
    event_types: Sequence[str] | None = None  # only spans of these event types


@dataclass(slots=True)
class GenerationQuery:
    """LLM-call spans that belong to a session, newest first (keyset on the sort key)."""

    project_id: str
    limit: int
    model: str | None = None
    provider: str | None = None
    start_from_ns: int | None = None
    start_until_ns: int | None = None
    before: tuple[int, bytes, bytes] | None = None  # (start_ns, trace_id, span_id) last seen


class SpanWriter(ABC):
    """The ingest side: `write` is called from one writer thread at a time and commits
    before it returns (the receivers acknowledge a request only after that)."""

    # True: every batch must carry its records (the store folds them itself); False:
    # span rows and per-trace deltas do, and `NeedsRecords` asks for more when needed
    needs_records = False

    def write(self, batch: WriteBatch) -> WriteResult:
        """Write one batch; raise what made it fail."""
        (result,) = self.write_many([batch])
        if isinstance(result, Exception):
            raise result
        return result

    @abstractmethod
    def write_many(self, batches: Sequence[WriteBatch]) -> list[WriteResult | Exception]:
        """Write several batches, each all-or-nothing; a failed batch yields its exception.
        Both stores commit them in one transaction (group commit)."""


class SessionReader(ABC):
    """The query side: sessions, their traces and spans, for the APIs."""

    @abstractmethod
    def get_session(self, project_id: str, session_id: str) -> SessionRow | None: ...

    @abstractmethod
    def list_sessions(self, query: SessionQuery) -> list[SessionRow]:
        """Up to `page_size` rows in (start_ns, session_id) descending order, or the
        rows just before `before` (still returned in descending order)."""

    # -- reads for the query APIs: spans come back as `SpanRecord`s with `otlp_span` and
    # `resource_key` set (client, geo and llm.reported_cost_usd are not stored per span).

    @abstractmethod
    def search_sessions(self, search: SessionSearch) -> list[SessionRow]:
        """One page of `search` (see `store.search`: compile it with `select_sql`); raises
        `UnknownRowError` when `search.after_session_id` is not a session of the project."""

    @abstractmethod
    def count_sessions(self, search: SessionSearch) -> int:
        """How many sessions match `search.where` (sort and paging ignored)."""

    @abstractmethod
    def session_traces(self, project_id: str, session_id: str) -> list[TraceRow]:
        """The traces of a session, by (start_ns, trace_id)."""

    @abstractmethod
    def trace_spans(self, project_id: str, trace_ids: Sequence[bytes]) -> list[SpanRecord]:
        """Every span of these traces, by (start_ns, span_id)."""

    @abstractmethod
    def session_root_spans(self, project_id: str, session_ids: Sequence[str]) -> list[SpanRecord]:
        """The root spans (no parent) of the traces of these sessions, by start_ns."""

    @abstractmethod
    def project_spans(self, query: ProjectSpanQuery) -> list[SpanRecord]: ...

    @abstractmethod
    def list_generations(self, query: GenerationQuery) -> list[SpanRecord]:
        """Up to `limit` LLM-call spans, by (start_ns, trace_id, span_id) descending."""

    @abstractmethod
    def resources(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Serialized OTLP `Resource`s by resource key."""


class Retention(ABC):
    """What the retention job asks of a store."""

    @abstractmethod
    def expire(
        self, traces_before_ns: int | None, sessions_before_ns: int | None, limit: int
    ) -> Expired:
        """Delete one bounded batch of expired data (retention), in short transactions
        that do not hold ingestion up: up to `limit` traces whose last span ended before
        `traces_before_ns`, with all their spans (the sessions keep counting them), and up
        to `limit` sessions that ended before `sessions_before_ns`. None keeps that kind."""


class Store(SpanWriter, SessionReader, Retention):
    """Durable storage of spans, trace->session bindings and rollups: the three roles of
    one backend (`store.factory.BACKENDS`), which also keeps the exporters' log
    (`Backend.export_log`)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot serve reads and writes."""

    @abstractmethod
    def close(self) -> None: ...


def is_transient(exc: BaseException) -> bool:
    """Whether a failed write may succeed when tried again: the database busy, locked,
    out of reach or out of disk, as opposed to data it refuses (a bug upstream)."""
    if isinstance(exc, sqlite3.OperationalError | OSError):  # OSError: connections, timeouts
        return True
    psycopg = sys.modules.get("psycopg")  # loaded only by a PostgreSQL bridge
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)
