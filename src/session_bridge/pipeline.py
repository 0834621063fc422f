"""The ingest pipeline every receiver feeds: map -> enrich -> store, then acknowledge.

Mapping runs on the caller's event loop; the store write runs on a `BatchWriter`:
this process's writer thread, or, with several receiver processes on SQLite, the
writer process. A request is acknowledged only after its transaction has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from session_bridge.enrich.stage import Enricher, RequestInfo
from session_bridge.mapping.mapper import map_request
from session_bridge.rollup.binding import fold_by_trace
from session_bridge.store.base import WriteBatch
from session_bridge.store.writer import BatchWriter
from session_bridge.telemetry import BridgeMetrics

log = logging.getLogger(__name__)

NO_REQUEST_INFO = RequestInfo()


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


class IngestPipeline:
    def __init__(
        self,
        writer: BatchWriter,
        metrics: BridgeMetrics,
        *,
        enricher: Enricher | None = None,
        project_id: str = "default",
        max_pending_requests: int = 64,
        retry_after_s: int = 1,
        admission: AdmissionGate | None = None,
    ) -> None:
        self._metrics = metrics
        self._admission = admission
        self._enricher = enricher
        self._project_id = project_id
        self._writer = writer
        self._max_pending = max_pending_requests
        self._pending = 0
        self._retry_after_s = retry_after_s

    async def export(
        self,
        request: ExportTraceServiceRequest,
        transport: str,
        request_info: RequestInfo = NO_REQUEST_INFO,
        project_id: str | None = None,
    ) -> ExportOutcome:
        """Store the spans of one request under `project_id` (None: the pipeline's
        default project); raise `RetryableError` if they were not stored."""
        # refuse before mapping: an overloaded bridge should not spend CPU on work it drops
        refusal = self._admission.refusal() if self._admission is not None else None
        if refusal is None and self._pending >= self._max_pending:
            refusal = (
                f"the bridge is busy ({self._pending} requests waiting for the store); retry later"
            )
        if refusal is not None:
            spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            self._metrics.refused_spans.labels(transport).inc(spans)
            raise RetryableError(refusal, self._retry_after_s)
        mapped = map_request(request)
        if mapped.rejected:
            self._metrics.rejected_spans.labels(transport).inc(mapped.rejected)
        records = mapped.records
        if not records:
            return ExportOutcome(0, mapped.rejected, mapped.error_message)
        if self._enricher is not None:
            self._enricher.enrich(records, request_info)
        batch = WriteBatch(
            project_id or self._project_id, records, mapped.resources, fold_by_trace(records)
        )
        self._pending += 1
        self._metrics.pending_requests.set(self._pending)
        started = time.perf_counter()
        try:
            result = await asyncio.wrap_future(self._writer.submit(batch))
        except Exception as exc:
            log.exception("store write failed; the client will retry")
            self._metrics.refused_spans.labels(transport).inc(len(records))
            raise RetryableError(f"the store could not commit the spans: {exc}", 5) from exc
        finally:
            self._pending -= 1
            self._metrics.pending_requests.set(self._pending)
        self._metrics.store_write_seconds.observe(time.perf_counter() - started)
        self._metrics.accepted_spans.labels(transport).inc(len(records))
        if result.duplicates:
            self._metrics.duplicate_spans.labels(transport).inc(result.duplicates)
        return ExportOutcome(len(records), mapped.rejected, mapped.error_message)

    def close(self) -> None:
        """Commit what was submitted, then stop the writer thread."""
        self._writer.close()
