"""Hand-built OTLP requests (JSON per the spec, and protobuf) for receiver tests."""

from __future__ import annotations

import itertools
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

_ids = itertools.count(1)
T0 = 1_790_000_000_000_000_000


def new_trace_id() -> str:
    return f"{0xABC0000000000000:016x}{next(_ids):016x}"


def new_span_id() -> str:
    return f"{0x5000000000000000 + next(_ids):016x}"


def json_attr(key: str, value: Any, *, snake: bool = False) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"bool_value" if snake else "boolValue": value}
    elif isinstance(value, int):
        v = {"int_value" if snake else "intValue": str(value)}  # int64 as a string, per spec
    elif isinstance(value, float):
        v = {"double_value" if snake else "doubleValue": value}
    else:
        v = {"string_value" if snake else "stringValue": value}
    return {"key": key, "value": v}


def json_span(
    trace_id: str,
    span_id: str,
    name: str,
    attributes: dict[str, Any],
    *,
    parent: str = "",
    start: int = T0,
    end: int | None = None,
    status_code: int | str = 0,
    snake: bool = False,
) -> dict[str, Any]:
    def k(camel: str, snake_name: str) -> str:
        return snake_name if snake else camel

    return {
        k("traceId", "trace_id"): trace_id,
        k("spanId", "span_id"): span_id,
        k("parentSpanId", "parent_span_id"): parent,
        "name": name,
        "kind": "SPAN_KIND_INTERNAL" if snake else 1,
        k("startTimeUnixNano", "start_time_unix_nano"): str(start),
        k("endTimeUnixNano", "end_time_unix_nano"): end if end is not None else start + 1_000_000,
        "attributes": [json_attr(key, v, snake=snake) for key, v in attributes.items()],
        "status": {"code": status_code},
        "someFutureField": {"ignored": True},
    }


def json_request(
    spans: list[dict[str, Any]], resource: dict[str, Any] | None = None, *, snake: bool = False
) -> dict[str, Any]:
    res = resource or {"service.name": "json-svc"}
    return {
        ("resource_spans" if snake else "resourceSpans"): [
            {
                "resource": {"attributes": [json_attr(k, v, snake=snake) for k, v in res.items()]},
                ("scope_spans" if snake else "scopeSpans"): [
                    {"scope": {"name": "hand-built"}, "spans": spans}
                ],
            }
        ]
    }


def any_value_of(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value_of(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


def proto_span(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    attributes: dict[str, Any],
    *,
    parent: bytes = b"",
    start: int = T0,
    end: int | None = None,
    status_code: int = 0,
) -> Span:
    span = Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end if end is not None else start + 1_000_000,
        attributes=[KeyValue(key=k, value=any_value_of(v)) for k, v in attributes.items()],
    )
    span.status.code = status_code  # type: ignore[assignment]
    return span


def proto_request(
    spans: list[Span], resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    res = resource or {"service.name": "proto-svc"}
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    rs.resource.attributes.extend(KeyValue(key=k, value=any_value_of(v)) for k, v in res.items())
    rs.scope_spans[0].scope.name = "hand-built"
    return ExportTraceServiceRequest(resource_spans=[rs])
