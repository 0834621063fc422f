"""The export log: the store's spans in commit order, read by each exporter with its own
durable cursor, and the dead-letter store beside it.

The store is the log. Every committed span has a position (SQLite: the `spans` rowid,
given in commit order), so a span is in every exporter's queue the moment the store
commits it: one durable write per span, and nothing extra on the ingest path. An
exporter reads the spans after its cursor, delivers them, and advances its cursor in the
same transaction that files what it could not deliver as dead letters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from session_bridge.model import SpanRecord
from session_bridge.proto.session_bridge.v1.records_pb2 import DeadLetter
from session_bridge.store import columns


@dataclass(slots=True)
class LogEntry:
    """One span as exporters read it, with what the bridge resolved for its trace."""

    position: int  # in the log; strictly increasing in commit order
    project_id: str
    span: SpanRecord  # session_id: the trace's session; user_id: the trace's user, else the span's
    resource: bytes  # serialized OTLP Resource
    trace_start_ns: int | None  # the trace's earliest span start, when known
    size: int  # what the entry counts for in the queue: its serialized span, in bytes
    # built at ingest when an exporter wanted them (`mapping.langfuse_events`): the span's
    # observation event and what it says about its trace (JSON), else None
    ingestion_event: bytes | None = None
    trace_fields: bytes | None = None


@dataclass(slots=True)
class StoredDeadLetter:
    id: int
    letter: DeadLetter


class CursorLog(ABC):
    """The store's spans in commit order, and each exporter's durable place in them."""

    def lead(self, exporter: str) -> bool:
        """Whether this process delivers `exporter` now. A store shared by several
        bridges lets one at a time; the others keep watching the backlog."""
        return True

    @abstractmethod
    def head(self) -> int:
        """The position of the newest committed span (0: none)."""

    @abstractmethod
    def cursor(self, exporter: str) -> int:
        """Where `exporter` stands; a new exporter starts at the head (it owes only what
        is accepted from now on)."""

    @abstractmethod
    def keep_cursors(self, exporters: Sequence[str]) -> None:
        """Forget the cursors of other exporters (no longer configured): they would hold
        spans back from retention forever."""

    @abstractmethod
    def read_after(self, cursor: int, until: int, max_bytes: int) -> list[LogEntry]:
        """Entries with cursor < position <= until, in order, until `max_bytes` of
        entry sizes are reached (at least one entry when there is one)."""

    @abstractmethod
    def named_through(self, after: int, until: int) -> int:
        """The newest position p, after <= p <= until, such that every span in (after, p]
        belongs to a trace whose session is known: those spans need not wait for a span
        naming it (their trace-create carries it already)."""

    @abstractmethod
    def bytes_between(self, after: int, until: int) -> int:
        """The summed entry sizes of after < position <= until."""

    @abstractmethod
    def commit(self, exporter: str, cursor: int, dead_letters: Sequence[DeadLetter]) -> None:
        """Advance `exporter` to `cursor` and file `dead_letters`, atomically and durably."""


class DeadLetterStore(ABC):
    """What exporters gave up on, kept for `session-bridge dlq`."""

    @abstractmethod
    def dead_letters(
        self, exporter: str | None, ids: Sequence[int] | None, limit: int, after_id: int = 0
    ) -> list[StoredDeadLetter]:
        """Up to `limit` dead letters with ids above `after_id`, oldest first, of
        `exporter` (None: all) and among `ids` (None: any)."""

    @abstractmethod
    def count_dead_letters(self, exporter: str | None) -> int: ...

    @abstractmethod
    def settle_dead_letters(
        self, delivered: Sequence[int], failed_again: Sequence[StoredDeadLetter]
    ) -> None:
        """After a replay: drop the delivered ones, update those that failed again."""

    @abstractmethod
    def purge_dead_letters(self, exporter: str | None, ids: Sequence[int] | None) -> int:
        """Delete dead letters (all of `exporter`'s, or these ids); return how many."""


class ExportLog(CursorLog, DeadLetterStore):
    """What exporters need from a store, provided by each store backend
    (`store.factory.Backend.export_log`). Safe to use from several threads (one reader per
    exporter, plus the dead-letter commands)."""

    @abstractmethod
    def close(self) -> None: ...


# the columns `entry_from_row` reads before the span's
_ENTRY_FIELDS = 6 + len(columns.SPAN_EXPORT_COLUMNS)


class ResourceCache:
    """Serialized resources by key, for the entries of reads: the spans of a read share a
    few resources, which never change once stored (fetching each span's own copy cost
    more than the rest of its row)."""

    def __init__(self, fetch: Callable[[list[bytes]], dict[bytes, bytes]], limit: int = 4096):
        self._fetch = fetch
        self._limit = limit
        self._known: dict[bytes, bytes] = {}

    def resolve(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        missing = list({bytes(k) for k in keys if k not in self._known})
        if missing:
            if len(self._known) + len(missing) > self._limit:
                self._known = {}
            self._known.update(self._fetch(missing))
        return self._known


def entry_from_row(row: Sequence[Any], resources: dict[bytes, bytes]) -> LogEntry:
    """A log entry from `position, project_id, resource_key, trace session, trace user,
    trace start`, then `columns.span_export_select` and `columns.span_select`
    (`resources`: from `ResourceCache.resolve`)."""
    (
        position, project_id, resource_key, trace_session, trace_user, trace_start,
        ingestion_event, trace_fields,
    ) = row[:_ENTRY_FIELDS]  # fmt: skip
    span = columns.span_from_row(row[_ENTRY_FIELDS:])
    span.session_id = trace_session or span.session_id
    span.user_id = trace_user or span.user_id
    # positional, as `span_from_row` builds the span: an export read builds one per span
    return LogEntry(
        int(position),
        project_id,
        span,
        resources.get(resource_key, b""),
        trace_start,
        len(span.otlp_span),  # size
        ingestion_event,  # (both drivers return BLOB and bytea columns as bytes)
        trace_fields,
    )
