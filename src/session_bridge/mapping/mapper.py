"""Span -> `SpanRecord`: read the attributes named in the alias table, once.

Attribute extraction, not protobuf parsing, dominates per-span cost. With the compiled
decoder (`otlp.values.collect`) the attributes the alias table names are read from the
span's bytes in one pass that decodes no other value; without it each attribute is
looked up by key first, through the protobuf library, and its value decoded only when the
key matters and outranks what was already found. (A span's ingestion event needs all its
attributes: with `decode_attributes` they are decoded first, and mapped from.)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from session_bridge.mapping.aliases import KEY_LOOKUP, Field
from session_bridge.mapping.events import classify
from session_bridge.mapping.limits import time_problem, uncounted
from session_bridge.mapping.providers import normalise_provider
from session_bridge.model import ClientInfo, EventType, GeoInfo, LlmUsage, SpanRecord
from session_bridge.otlp.values import SCALAR_MEMBERS, any_value, collect, span_attributes

_STATUS_ERROR = 2
_NO_TRACE = bytes(16)
_NO_SPAN = bytes(8)
_MAX_ERRORS_REPORTED = 5
_GEO_FIELDS = frozenset(
    (
        Field.GEO_COUNTRY_CODE,
        Field.GEO_COUNTRY_NAME,
        Field.GEO_REGION,
        Field.GEO_CITY,
        Field.GEO_POSTAL_CODE,
        Field.GEO_TIMEZONE,
    )
)
_OPENAI_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")
_TOKEN_FIELDS = frozenset(
    (
        Field.INPUT_TOKENS,
        Field.OUTPUT_TOKENS,
        Field.CACHE_READ_TOKENS,
        Field.CACHE_CREATION_TOKENS,
        Field.REASONING_TOKENS,
    )
)
# a span with any of these reports usage, whatever its kind
_USAGE_FIELDS = _TOKEN_FIELDS | {Field.COST, Field.COST_DETAILS, Field.USAGE_DETAILS}


@dataclass(slots=True)
class MappedRequest:
    """The records of one export request, and what was rejected from it."""

    records: list[SpanRecord] = field(default_factory=list)
    spans: list[Any] = field(default_factory=list)  # each record's parsed OTLP `Span`
    # with `decode_attributes`: each record's span attributes (`attribute_dict`)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[bytes, bytes] = field(default_factory=dict)  # resource_key -> Resource bytes
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    problems: int = 0  # rejected spans and values not counted (`limits.uncounted`)

    def reject(self, message: str) -> None:
        self.rejected += 1
        self.warn(message)

    def warn(self, message: str) -> None:
        self.problems += 1
        if len(self.errors) < _MAX_ERRORS_REPORTED:
            self.errors.append(message)

    @property
    def error_message(self) -> str:
        if not self.problems:
            return ""
        more = self.problems - len(self.errors)
        suffix = f" (and {more} more)" if more > 0 else ""
        return "; ".join(self.errors) + suffix


def _collect_decoded(attributes: dict[str, Any]) -> dict[int, Any]:
    """`_collect` of attributes decoded already (`attribute_dict`)."""
    lookup = KEY_LOOKUP
    values: dict[int, Any] = {}
    ranks: dict[int, int] = {}
    for key in attributes.keys() & lookup.keys():
        value = attributes[key]
        if value is None or value == "":
            continue
        fld, rank = lookup[key]
        if fld in ranks and ranks[fld] <= rank:
            continue
        values[fld] = value
        ranks[fld] = rank
    return values


def _collect(attributes: Iterable[KeyValue]) -> dict[int, Any]:
    """`_collect_decoded(attribute_dict(attributes))`, each value decoded only when its key
    matters (the protobuf library's path: decoding all of them through it costs more)."""
    lookup = KEY_LOOKUP
    scalars = SCALAR_MEMBERS
    values: dict[int, Any] = {}
    ranks: dict[int, int] = {}
    empty: set[str] = set()  # keys whose first value was empty: a repeat does not count
    for kv in attributes:
        key = kv.key
        hit = lookup.get(key)
        if hit is None:
            continue
        fld, rank = hit
        if (fld in ranks and ranks[fld] <= rank) or key in empty:
            continue
        any_val = kv.value
        # most values are strings: a non-empty string_value is the value (it is the
        # oneof's default, "", when another member is set)
        value = any_val.string_value
        if not value:
            which = any_val.WhichOneof("value")
            value = getattr(any_val, which) if which in scalars else any_value(any_val)
            if value is None or value == "":
                empty.add(key)
                continue
            if which == "double_value" and value - value != 0:
                value = str(value)  # as `attribute_dict` reads a double that is not finite
        values[fld] = value
        ranks[fld] = rank
    return values


def map_request(
    request: ExportTraceServiceRequest,
    now_ns: int | None = None,
    *,
    decode_attributes: bool = False,
    span_bytes: Sequence[bytes] | None = None,
) -> MappedRequest:
    """Map every span of an export request; invalid spans are rejected one by one.
    `decode_attributes`: decode all of each span's attributes (for its ingestion event),
    and map from those, in one pass over them. `span_bytes`: each span serialized, in
    the request's order (`values.span_slices`), kept as the record's `otlp_span`;
    without them each span is serialized again."""
    out = MappedRequest()
    records = out.records
    spans = out.spans
    now = now_ns if now_ns is not None else time.time_ns()
    position = -1  # the span's place in the request, rejected ones included
    for resource_spans in request.resource_spans:
        resource = resource_spans.resource
        resource_values = _collect(resource.attributes)
        resource_bytes = resource.SerializeToString(deterministic=True)
        resource_key = hashlib.blake2b(resource_bytes, digest_size=16).digest()
        out.resources[resource_key] = resource_bytes
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            for span in scope_spans.spans:
                position += 1
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                if len(trace_id) != 16 or trace_id == _NO_TRACE:
                    out.reject(f"span {span.name!r}: invalid trace_id ({len(trace_id)} bytes)")
                    continue
                if len(span_id) != 8 or span_id == _NO_SPAN:
                    out.reject(f"span {span.name!r}: invalid span_id ({len(span_id)} bytes)")
                    continue
                if parent and len(parent) != 8:
                    out.reject(f"span {span.name!r}: invalid parent_span_id ({len(parent)} bytes)")
                    continue
                late = time_problem(span)
                if late is not None:
                    out.reject(late)
                    continue
                otlp_span = span.SerializeToString() if span_bytes is None else span_bytes[position]
                # every span attribute outranks every resource attribute: a plain dict merge
                if decode_attributes:
                    attributes = span_attributes(span, otlp_span)
                    values = _collect_decoded(attributes)
                else:
                    found = collect(otlp_span, KEY_LOOKUP)  # compiled: reads only those keys
                    values = _collect(span.attributes) if found is None else found
                if resource_values:
                    values = {**resource_values, **values}
                record = _record(
                    span, otlp_span, trace_id, span_id, parent or None, values, scope_name, now
                )
                record.resource_key = resource_key
                if record.llm is not None:
                    for problem in uncounted(record):
                        out.warn(problem)
                records.append(record)
                spans.append(span)
                if decode_attributes:
                    out.attributes.append(attributes)
    return out


def _record(
    span: Any,
    otlp_span: bytes,
    trace_id: bytes,
    span_id: bytes,
    parent: bytes | None,
    values: dict[int, Any],
    scope_name: str,
    now: int,
) -> SpanRecord:
    status = span.status
    status_code = status.code
    events = span.events
    is_error = status_code == _STATUS_ERROR or (
        len(events) > 0 and any(e.name == "exception" for e in events)
    )
    name = span.name
    event_type = classify(values, name=name, is_root=parent is None, is_error=is_error)
    start = span.start_time_unix_nano or span.end_time_unix_nano or now
    end = span.end_time_unix_nano or start
    llm = (
        _llm_usage(values)
        if event_type is EventType.LLM_CALL or not _USAGE_FIELDS.isdisjoint(values)
        else None
    )
    get = values.get
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=span.kind,
        start_ns=start,
        end_ns=end,
        status_code=status_code,
        status_message=status.message,
        event_type=event_type,
        is_error=is_error,
        service=text_value(get(Field.SERVICE)),
        environment=text_value(get(Field.ENVIRONMENT)),
        session_id=text_value(get(Field.SESSION_ID)),
        user_id=text_value(get(Field.USER_ID)),
        client=_client(values),
        geo=_geo(values),
        llm=llm,
        cost_usd=llm.reported_cost_usd if llm is not None else None,
        scope_name=scope_name,
        otlp_span=otlp_span,
        response_id=text_value(get(Field.RESPONSE_ID)) if llm is not None else None,
    )


def text_value(value: Any) -> str | None:
    """A mapped field's text: strings as they are, other values as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    try:
        return max(int(float(value)), 0)
    except (TypeError, ValueError):
        return 0


def float_value(value: Any) -> float | None:
    """An attribute's number (a numeric text too); None for flags and what is no number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    number = float_value(value)
    return number if number is not None and number >= 0 else None  # no negative, no NaN


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _llm_usage(values: dict[int, Any]) -> LlmUsage:
    model = text_value(values.get(Field.MODEL))
    usage = LlmUsage(
        provider=normalise_provider(text_value(values.get(Field.PROVIDER)), model),
        model=model,
        input_tokens=_int(values.get(Field.INPUT_TOKENS, 0)),
        output_tokens=_int(values.get(Field.OUTPUT_TOKENS, 0)),
        cache_read_tokens=_int(values.get(Field.CACHE_READ_TOKENS, 0)),
        cache_creation_tokens=_int(values.get(Field.CACHE_CREATION_TOKENS, 0)),
        reasoning_tokens=_int(values.get(Field.REASONING_TOKENS, 0)),
    )
    if Field.USAGE_DETAILS in values and _TOKEN_FIELDS.isdisjoint(values):
        _apply_langfuse_usage(usage, _json_object(values[Field.USAGE_DETAILS]))
    cost = _float(values.get(Field.COST))
    if cost is None and Field.COST_DETAILS in values:
        cost = _float(_json_object(values[Field.COST_DETAILS]).get("total"))
    usage.reported_cost_usd = cost
    return usage


def _apply_langfuse_usage(usage: LlmUsage, details: dict[str, Any]) -> None:
    """Langfuse's `usage_details`: either the provider's own usage object (OpenAI chat
    or responses style, whose totals include cached and reasoning tokens, as OTel's
    do), or Langfuse's exclusive buckets (`input`, `input_cached_tokens`, ...)."""
    if any(key in details for key in _OPENAI_USAGE_KEYS):
        usage.input_tokens = _int(details.get("prompt_tokens", details.get("input_tokens", 0)))
        usage.output_tokens = _int(
            details.get("completion_tokens", details.get("output_tokens", 0))
        )
        inputs = _json_object(
            details.get("prompt_tokens_details") or details.get("input_tokens_details")
        )
        outputs = _json_object(
            details.get("completion_tokens_details") or details.get("output_tokens_details")
        )
        usage.cache_read_tokens = _int(inputs.get("cached_tokens", 0))
        usage.reasoning_tokens = _int(outputs.get("reasoning_tokens", 0))
        return
    for key, raw in details.items():
        count = _int(raw)
        k = key.lower()
        if k == "total" or k.endswith("total_tokens"):
            continue
        if "cache_read" in k or "cached" in k:
            usage.cache_read_tokens += count
            usage.input_tokens += count
        elif "cache_creation" in k or "cache_write" in k:
            usage.cache_creation_tokens += count
            usage.input_tokens += count
        elif k.startswith(("input", "prompt")):
            usage.input_tokens += count
        elif "reasoning" in k:
            usage.reasoning_tokens += count
            usage.output_tokens += count
        elif k.startswith(("output", "completion")):
            usage.output_tokens += count


def _client(values: dict[int, Any]) -> ClientInfo | None:
    ip = text_value(values.get(Field.CLIENT_IP))
    user_agent = text_value(values.get(Field.USER_AGENT))
    if ip is None and user_agent is None:
        return None
    return ClientInfo(ip=ip, user_agent=user_agent)


def _geo(values: dict[int, Any]) -> GeoInfo | None:
    if _GEO_FIELDS.isdisjoint(values):
        return None
    return GeoInfo(
        country_code=text_value(values.get(Field.GEO_COUNTRY_CODE)),
        country_name=text_value(values.get(Field.GEO_COUNTRY_NAME)),
        region=text_value(values.get(Field.GEO_REGION)),
        city=text_value(values.get(Field.GEO_CITY)),
        postal_code=text_value(values.get(Field.GEO_POSTAL_CODE)),
        timezone=text_value(values.get(Field.GEO_TIMEZONE)),
    )
