"""OTLP attributes as Python values: `{key: value}`, read once per span at ingest (the
mapping) and again at export (the events), the bridge's largest per-span cost in Python.

Two decoders give the same values. The compiled one (`_wire`, built with the package
when a C compiler is at hand) reads the serialized message directly; the protobuf
library's, always there, reads a parsed message. Bytes the library refuses, or that the
compiled one does not decode exactly as the library would, it hands back
(`_wire.Unsupported`), and the library answers for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

try:
    from session_bridge.otlp import _wire
except ImportError:  # built without a C compiler: the protobuf library decodes alone
    _wire = None  # type: ignore[assignment]

COMPILED = _wire is not None
# the AnyValue members read as they are
SCALAR_MEMBERS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP `AnyValue` (bytes as hex, an empty value None)."""
    which = value.WhichOneof("value")
    if which in SCALAR_MEMBERS:
        return getattr(value, which)
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


def attribute_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """`{key: value}` of OTLP attributes (a repeated key: its first value). A double that
    is not finite becomes its text (`"nan"`, `"inf"`): JSON has no such number, and every
    reader gets the same value."""
    out: dict[str, Any] = {}
    for kv in attributes:
        key = kv.key
        if key in out:
            continue
        value = kv.value
        # most values are strings: a non-empty string_value is the value
        text = value.string_value
        if text:
            out[key] = text
            continue
        decoded = any_value(value)
        if isinstance(decoded, float) and decoded - decoded != 0:
            decoded = str(decoded)
        out[key] = decoded
    return out


def span_attributes(span: Span, data: bytes) -> dict[str, Any]:
    """`attribute_dict(span.attributes)`; `data`: the span serialized."""
    if _wire is not None:
        try:
            return _wire.span_attributes(data)
        except _wire.Unsupported:
            pass
    return attribute_dict(span.attributes)


def collect(data: bytes, lookup: dict[str, tuple[int, int]]) -> dict[int, Any] | None:
    """Of a span the library has parsed already (`data`: its bytes), the attributes whose
    key `lookup` names (key -> (field, rank)): each field's best-ranked value that is not
    None or "", a repeated key's first value counting (`mapper._collect_decoded` of its
    `span_attributes`), in one pass that decodes no other value. None without the
    compiled decoder, or where it hands the span back (the caller reads the library's)."""
    if _wire is None:
        return None
    try:
        return _wire.collect(data, lookup)
    except _wire.Unsupported:
        return None


def span_slices(body: bytes, request: ExportTraceServiceRequest) -> list[bytes] | None:
    """Each span of `request`, parsed from the serialized `body`, as its bytes in `body`:
    what the client sent, where serializing each parsed span again costs ~2 us. None
    without the compiled decoder, or where it does not list the spans the library
    parsed (the caller serializes them)."""
    if _wire is None:
        return None
    try:
        found = _wire.span_slices(body)
    except _wire.Unsupported:
        return None
    parsed = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
    return found if len(found) == parsed else None


def resource_attributes(data: bytes) -> dict[str, Any]:
    """A serialized OTLP `Resource`'s attributes."""
    if not data:
        return {}
    if _wire is not None:
        try:
            return _wire.resource_attributes(data)
        except _wire.Unsupported:
            pass
    return attribute_dict(Resource.FromString(data).attributes)


@dataclass(slots=True)
class SpanParts:
    """What the exporters and the query APIs read from a stored span beyond its columns."""

    name: str
    start_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]]  # (name, time_unix_nano, attributes)


def span_parts(data: bytes) -> SpanParts:
    """A serialized OTLP `Span`'s name, start, attributes and events (a
    `google.protobuf.message.DecodeError` when `data` is no span)."""
    if _wire is not None:
        try:
            return SpanParts(*_wire.decode_span(data))
        except _wire.Unsupported:
            pass
    return parsed_span_parts(Span.FromString(data))


def parsed_span_parts(span: Span) -> SpanParts:
    """`span_parts` of a span parsed already."""
    return SpanParts(
        span.name, span.start_time_unix_nano, attribute_dict(span.attributes), span_events(span)
    )


def span_events(span: Span) -> list[tuple[str, int, dict[str, Any]]]:
    """A parsed span's events: (name, time_unix_nano, attributes)."""
    return [(e.name, e.time_unix_nano, attribute_dict(e.attributes)) for e in span.events]
