"""`LogEntry` <-> `session_bridge.v1.SpanRecord`, the record offered downstream (the `file`
exporter's protobuf format) and kept in the dead-letter store."""

from __future__ import annotations

from session_bridge.model import EventType, LlmUsage, SpanRecord
from session_bridge.proto.session_bridge.v1 import records_pb2
from session_bridge.store.export_log import LogEntry


def to_proto(entry: LogEntry) -> records_pb2.SpanRecord:
    span = entry.span
    record = records_pb2.SpanRecord(
        sequence=entry.position,
        project_id=entry.project_id,
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id or b"",
        name=span.name,
        kind=span.kind,
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        status_code=span.status_code,
        status_message=span.status_message,
        event_type=span.event_type.value,
        is_error=span.is_error,
        service=span.service,
        environment=span.environment,
        session_id=span.session_id,
        user_id=span.user_id,
        cost_usd=span.cost_usd,
        scope_name=span.scope_name,
        otlp_span=span.otlp_span,
        otlp_resource=entry.resource,
        trace_start_time_unix_nano=entry.trace_start_ns,
        response_id=span.response_id,
    )
    if span.llm is not None:
        llm = span.llm
        record.llm.CopyFrom(
            records_pb2.LlmUsage(
                provider=llm.provider,
                model=llm.model,
                input_tokens=llm.input_tokens,
                output_tokens=llm.output_tokens,
                cache_read_tokens=llm.cache_read_tokens,
                cache_creation_tokens=llm.cache_creation_tokens,
                reasoning_tokens=llm.reasoning_tokens,
            )
        )
    return record


def from_proto(record: records_pb2.SpanRecord) -> LogEntry:
    llm = None
    if record.HasField("llm"):
        usage = record.llm
        llm = LlmUsage(
            provider=_optional(usage, "provider"),
            model=_optional(usage, "model"),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )
    span = SpanRecord(
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_span_id=record.parent_span_id or None,
        name=record.name,
        kind=record.kind,
        start_ns=record.start_time_unix_nano,
        end_ns=record.end_time_unix_nano,
        status_code=record.status_code,
        status_message=record.status_message,
        event_type=EventType(record.event_type),
        is_error=record.is_error,
        service=_optional(record, "service"),
        environment=_optional(record, "environment"),
        session_id=_optional(record, "session_id"),
        user_id=_optional(record, "user_id"),
        llm=llm,
        cost_usd=record.cost_usd if record.HasField("cost_usd") else None,
        scope_name=record.scope_name,
        otlp_span=record.otlp_span,
        response_id=_optional(record, "response_id"),
    )
    return LogEntry(
        position=record.sequence,
        project_id=record.project_id,
        span=span,
        resource=record.otlp_resource,
        trace_start_ns=(
            record.trace_start_time_unix_nano
            if record.HasField("trace_start_time_unix_nano")
            else None
        ),
        size=len(record.otlp_span),
    )


def _optional(message: records_pb2.SpanRecord | records_pb2.LlmUsage, name: str) -> str | None:
    return str(getattr(message, name)) if message.HasField(name) else None
