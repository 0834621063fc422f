"""The ingest pipeline every receiver feeds: prepare (decode, map, enrich, fold) ->
store, then acknowledge.

Preparing runs on a `Preparer`: on the caller's event loop, or in the map worker
processes (`workers.py`). The store write runs on this process's writer thread
(group commit). A request is acknowledged only after its transaction has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from session_bridge.ingest.prepare import PreparedRequest, RawRequest, decode, prepare
from session_bridge.otlp.codec import DecodeFailure
from session_bridge.store.base import NeedsRecords, WriteResult, is_transient
from session_bridge.store.writer import GroupCommitWriter
from session_bridge.telemetry import BridgeMetrics

if TYPE_CHECKING:
    from session_bridge.enrich.stage import Enricher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ExportOutcome:
    accepted: int
    rejected: int
    error_message: str


class RetryableError(Exception):
    """The request was not stored; the client should retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class AdmissionGate(Protocol):
    """Says when new spans must be refused (e.g. an exporter's queue is full); O(1)."""

    def refusal(self) -> str | None: ...


class Preparer(Protocol):
    """Where requests are prepared: here (`LocalPreparer`) or in map worker processes."""

    async def prepare(self, raw: RawRequest, *, with_records: bool) -> PreparedRequest:
        """`with_records`: the batch must carry its records, not only its span rows
        (a store that folds records itself, or a retry; see `NeedsRecords`)."""
        ...

    def close(self) -> None: ...


class LocalPreparer:
    """Prepares on the caller's event loop (its batches always carry their records)."""

    def __init__(self, enricher: Enricher | None, *, ingestion_events: bool = False) -> None:
        self._enricher = enricher
        self._ingestion_events = ingestion_events

    async def prepare(self, raw: RawRequest, *, with_records: bool) -> PreparedRequest:
        return prepare(raw, self._enricher, ingestion_events=self._ingestion_events)

    def close(self) -> None:
        if self._enricher is not None:
            self._enricher.close()


class IngestPipeline:
    def __init__(
        self,
        writer: GroupCommitWriter,
        metrics: BridgeMetrics,
        preparer: Preparer,
        *,
        records_required: bool = False,
        max_pending_requests: int = 64,
        retry_after_s: int = 1,
        admission: AdmissionGate | None = None,
    ) -> None:
        """`records_required`: the store folds the records itself (PostgreSQL), so every
        batch must carry them."""
        self._metrics = metrics
        self._admission = admission
        self._preparer = preparer
        self._records_required = records_required
        self._writer = writer
        self._max_pending = max_pending_requests
        self._pending = 0
        self._retry_after_s = retry_after_s

    async def export(self, raw: RawRequest, transport: str) -> ExportOutcome:
        """Store the spans of one request; raise `DecodeFailure` if it is not OTLP,
        `RetryableError` if its spans were not stored."""
        # refuse before preparing: an overloaded bridge should not spend CPU on work it drops
        refusal = self._admission.refusal() if self._admission is not None else None
        if refusal is None and self._pending >= self._max_pending:
            refusal = f"the bridge is busy ({self._pending} requests in progress); retry later"
        if refusal is not None:
            self._metrics.refused_spans.labels(transport).inc(_span_count(raw))
            raise RetryableError(refusal, self._retry_after_s)
        self._pending += 1
        self._metrics.pending_requests.set(self._pending)
        try:
            prepared = await self._preparer.prepare(raw, with_records=self._records_required)
            if prepared.rejected:
                self._metrics.rejected_spans.labels(transport).inc(prepared.rejected)
            if prepared.batch is None:
                return ExportOutcome(0, prepared.rejected, prepared.error_message)
            result = await self._store(raw, prepared, transport)
        finally:
            self._pending -= 1
            self._metrics.pending_requests.set(self._pending)
        self._metrics.accepted_spans.labels(transport).inc(prepared.accepted)
        if result.duplicates:
            self._metrics.duplicate_spans.labels(transport).inc(result.duplicates)
        return ExportOutcome(prepared.accepted, prepared.rejected, prepared.error_message)

    async def _store(
        self, raw: RawRequest, prepared: PreparedRequest, transport: str
    ) -> WriteResult:
        assert prepared.batch is not None
        started = time.perf_counter()
        try:
            try:
                result = await asyncio.wrap_future(self._writer.submit(prepared.batch))
            except NeedsRecords:  # a retry whose batch came without records: again, with them
                prepared = await self._preparer.prepare(raw, with_records=True)
                assert prepared.batch is not None
                result = await asyncio.wrap_future(self._writer.submit(prepared.batch))
        except RetryableError:
            raise
        except Exception as exc:
            self._metrics.refused_spans.labels(transport).inc(prepared.accepted)
            if not is_transient(exc):  # a 503 would have the client resend it forever
                raise
            log.exception("store write failed; the client will retry")
            raise RetryableError(f"the store could not commit the spans: {exc}", 5) from exc
        self._metrics.store_write_seconds.observe(time.perf_counter() - started)
        return result

    def close(self) -> None:
        """Commit what was submitted, then stop the writer thread and the preparer."""
        self._writer.close()
        self._preparer.close()


def _span_count(raw: RawRequest) -> int:
    """The spans of a refused request, for the metric (0 if it is not even OTLP)."""
    try:
        request = decode(raw)
    except DecodeFailure:
        return 0
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
