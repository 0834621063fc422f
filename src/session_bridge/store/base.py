"""The `Store` seam: what the pipeline writes and what the query side reads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from session_bridge.model import SpanRecord
from session_bridge.rollup.rollup import Rollup


@dataclass(slots=True)
class WriteBatch:
    """The spans of one export request, written in one transaction."""

    project_id: str
    records: list[SpanRecord]
    resources: dict[bytes, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class WriteResult:
    stored: int  # spans new to the store
    duplicates: int  # spans the store already had (client retries)


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


class Store(ABC):
    """Durable storage of spans, trace->session bindings and rollups.

    `write` is called from one writer thread at a time and commits before it
    returns: the receivers acknowledge a request only after that.
    """

    @abstractmethod
    def write(self, batch: WriteBatch) -> WriteResult: ...

    def write_many(self, batches: Sequence[WriteBatch]) -> list[WriteResult | Exception]:
        """Write several batches, each all-or-nothing; a failed batch yields its exception.

        Stores that can commit several batches in one transaction (group commit)
        override this; the default writes them one by one.
        """
        results: list[WriteResult | Exception] = []
        for batch in batches:
            try:
                results.append(self.write(batch))
            except Exception as exc:
                results.append(exc)
        return results

    @abstractmethod
    def get_session(self, project_id: str, session_id: str) -> SessionRow | None: ...

    @abstractmethod
    def list_sessions(self, query: SessionQuery) -> list[SessionRow]:
        """Up to `page_size` rows in (start_ns, session_id) descending order, or the
        rows just before `before` (still returned in descending order)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot serve reads and writes."""

    @abstractmethod
    def close(self) -> None: ...
