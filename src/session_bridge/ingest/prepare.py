"""One export request, from its body to the batch the store writes:
decode -> map -> enrich -> fold per trace.

This is the CPU work of ingest (and, when an exporter sends ingestion events, of
building them: `mapping.langfuse_events`). It runs in the receiving process, or, with
`receivers.otlp.workers` > 1, in a map worker process (`workers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from session_bridge.enrich.client_address import RequestInfo
from session_bridge.mapping.langfuse_events import add_ingestion_events
from session_bridge.mapping.mapper import map_request
from session_bridge.otlp.codec import BodyFormat, parse
from session_bridge.otlp.values import span_slices
from session_bridge.rollup.binding import fold_by_trace
from session_bridge.store.base import WriteBatch

if TYPE_CHECKING:  # the enrichers load megabytes of data: only the processes that map need them
    from session_bridge.enrich.stage import Enricher


@dataclass(frozen=True, slots=True)
class RawRequest:
    """An OTLP trace export as received: the (decompressed) body and who sent it."""

    body: bytes
    fmt: BodyFormat
    project_id: str
    info: RequestInfo = field(default_factory=RequestInfo)


@dataclass(slots=True)
class PreparedRequest:
    batch: WriteBatch | None  # None when no span was accepted
    accepted: int
    rejected: int
    error_message: str


def decode(raw: RawRequest) -> ExportTraceServiceRequest:
    """The request message; `DecodeFailure(400)` when the body is not OTLP."""
    request = ExportTraceServiceRequest()
    parse(request, raw.body, raw.fmt)
    return request


def prepare(
    raw: RawRequest, enricher: Enricher | None, *, ingestion_events: bool = False
) -> PreparedRequest:
    """`ingestion_events`: build each span's ingestion event now, where the span is
    decoded already and the work runs in parallel (an exporter sends them)."""
    request = decode(raw)
    received = span_slices(raw.body, request) if raw.fmt is BodyFormat.PROTOBUF else None
    mapped = map_request(request, decode_attributes=ingestion_events, span_bytes=received)
    records = mapped.records
    if not records:
        return PreparedRequest(None, 0, mapped.rejected, mapped.error_message)
    if enricher is not None:
        enricher.enrich(records, raw.info)
        enricher.scrub(mapped)
    if ingestion_events:
        add_ingestion_events(mapped)
    batch = WriteBatch(raw.project_id, records, mapped.resources, fold_by_trace(records))
    return PreparedRequest(batch, len(records), mapped.rejected, mapped.error_message)
