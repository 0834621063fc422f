"""The `Exporter` seam: turn log entries into units, send a request of units, say what
became of each unit. Queueing, batching by bytes, retries, dead letters and cursors are
the runner's (`export/runner.py`), the same for every exporter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from session_bridge.store.export_log import LogEntry


@dataclass(slots=True)
class Unit:
    """One item of a request (an ingestion event, a span, a line) and the log entries it
    was made from: if it cannot be delivered, those entries become dead letters."""

    payload: bytes
    entries: list[LogEntry]
    key: str = ""  # how the server names it in its answer (an ingestion event's id)


@dataclass(slots=True)
class Failure:
    status: int  # HTTP status (gRPC: the status code's HTTP equivalent); 0: no answer
    message: str


@dataclass(slots=True)
class SendResult:
    """What became of one request. Units in neither `failed` nor `retry` were delivered."""

    failed: dict[int, Failure] = field(default_factory=dict)  # unit index -> final failure
    retry: list[int] = field(default_factory=list)  # unit indexes to send again
    problem: Failure | None = None  # why `retry` is not empty (for logs and dead letters)
    retry_after_s: float | None = None  # the server's Retry-After / RetryInfo
    # The whole request was refused for a reason retrying will not fix by itself
    # (credentials, a wrong endpoint): everything stays queued and the bridge is unhealthy.
    blocked: Failure | None = None


class Exporter(ABC):
    """One configured exporter. `units` and `send` are called from the exporter's own
    thread, one request at a time."""

    name: str
    max_request_bytes: int  # a request's payload never exceeds this
    request_overhead: int = 0  # bytes a request adds around its units' payloads
    # its units are ingestion events (`export/langfuse_events.py`), about 2.5x the bytes of
    # the stored spans they are built from
    sends_ingestion_events: bool = False

    @property
    def read_bytes(self) -> int:
        """How many bytes of stored spans one read of the log takes: about a request. (A
        third of a request bounded the export process's memory better, 101 against 148 MB,
        but the reads' own cost on PostgreSQL took 15-20 % of its delivery rate.)"""
        return self.max_request_bytes // (2 if self.sends_ingestion_events else 1)

    @abstractmethod
    def units(self, entries: Sequence[LogEntry]) -> list[Unit]:
        """The units for these entries, in the order they must be delivered."""

    @abstractmethod
    def send(self, units: Sequence[Unit]) -> SendResult:
        """Deliver one request made of `units` (their payloads fit `max_request_bytes`)."""

    def describe(self) -> str:
        """Where this exporter sends, for the banner and the logs."""
        return self.name

    def close(self) -> None:  # noqa: B027 - most exporters hold nothing
        """Release connections and files."""


def pack(units: Sequence[Unit], limit: int) -> list[list[int]]:
    """Consecutive units grouped into requests of at most `limit` payload bytes (a unit
    larger than that goes alone)."""
    requests: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, unit in enumerate(units):
        n = len(unit.payload) + 1
        if current and size + n > limit:
            requests.append(current)
            current, size = [], 0
        current.append(index)
        size += n
    if current:
        requests.append(current)
    return requests
