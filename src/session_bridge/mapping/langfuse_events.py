"""Spans -> Langfuse ingestion events (`POST /api/public/ingestion`), as Langfuse reads
spans: per span a `generation-create` (LLM calls), `event-create`
(`langfuse.observation.type: event`) or `span-create`; per trace a `trace-create` (name,
session, user, environment, release, version, tags, metadata, and the root's input and
output). Field sources are Langfuse's (`mapping/langfuse.py`, `mapping/payloads.py`).

An observation event depends on its span alone, so ingest builds it once, beside the
mapping, where the span is already decoded (`ObservationEvent`); the exporters send the
stored bytes. A trace-create depends on the trace's session, known only when it is sent:
ingest keeps what each span says about its trace (`mapping.langfuse.trace_fields`), and
the exporter folds those of the spans it sends (`trace_event`).

Envelope ids are deterministic: an observation's from its trace, span and event type, so
a resend overwrites it downstream instead of duplicating it; a trace-create's also from
its body, so a later, fuller trace-create of the same trace (its session named by a later
span) is a new event that the server merges into the trace, and an identical one
overwrites. Envelope timestamps come from the spans, so the same span always yields the
same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from session_bridge.mapping.langfuse import (
    VERSION_KEYS,
    fold_trace,
    resource_version,
    trace_fields,
)
from session_bridge.mapping.mapper import MappedRequest
from session_bridge.mapping.payloads import (
    TIMING_AND_PROMPT_KEYS,
    RawSpan,
    by_key_set,
    llm_details,
    raw_span,
    span_io,
)
from session_bridge.model import EventType, SpanRecord
from session_bridge.otlp.values import resource_attributes
from session_bridge.timefmt import iso_from_ns

try:
    from session_bridge.mapping import _event_json
except ImportError:  # built without a C compiler: events are built as dictionaries
    _event_json = None  # type: ignore[assignment]
NAMESPACE = uuid.UUID("6f0d3c52-4a8e-4b7c-9a51-0e9f2b1c7d40")
_NAMESPACE_BYTES = NAMESPACE.bytes
if _event_json is not None:
    _event_json.set_namespace(_NAMESPACE_BYTES)
COMPILED = _event_json is not None
_LEVELS = {
    "DEBUG": "DEBUG", "TRACE": "DEBUG", "VERBOSE": "DEBUG",
    "DEFAULT": "DEFAULT", "INFO": "DEFAULT", "LOG": "DEFAULT", "NOTICE": "DEFAULT",
    "OK": "DEFAULT", "SUCCESS": "DEFAULT",
    "WARN": "WARNING", "WARNING": "WARNING",
    "ERROR": "ERROR", "FATAL": "ERROR", "CRITICAL": "ERROR",
}  # fmt: skip
_LEVEL_KEY = ("langfuse.observation.level",)
_TYPE_KEY = ("langfuse.observation.type",)
_DECLARING_KEYS = frozenset((*_LEVEL_KEY, *_TYPE_KEY, *VERSION_KEYS))
# (key, parameter name) of each `gen_ai.request.*` / `llm.invocation_parameters.*` key,
# found in the span's joined keys (`RawSpan.key_text`) in one scan
_PARAMETER_KEY = re.compile(r"\n((?:gen_ai\.request\.|llm\.invocation_parameters\.)([^\n]+))")
_MODEL_KEY = "gen_ai.request.model"  # a parameter of its own: `model`
_PARAMETER_OBJECT_KEYS = ("langfuse.observation.model.parameters", "llm.invocation_parameters")
_ENVIRONMENT = re.compile(r"^[a-z0-9_-]+$")
_MAX_NAME = 1000
_TRUNCATABLE = ("input", "output", "metadata", "statusMessage")
_ALWAYS_USAGE = frozenset({"input", "output", "total"})
_ID_PREFIX = b'{"id":"'
_VARIANT_DIGIT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
TRUNCATED_KEY = "session_bridge.truncated"


# -- at ingest ---------------------------------------------------------------------------


def add_ingestion_events(mapped: MappedRequest) -> None:
    """Set each record's `ingestion_event` and `trace_fields`, from its parsed OTLP span
    and its resource (mapped with `decode_attributes`), after enrichment (costs)."""
    decoded: dict[bytes, dict[str, Any]] = {}
    resources = mapped.resources
    for record, span, attributes in zip(
        mapped.records, mapped.spans, mapped.attributes, strict=True
    ):
        resource = decoded.get(record.resource_key)
        if resource is None:
            resource = decoded[record.resource_key] = resource_attributes(
                resources[record.resource_key]
            )
        raw = raw_span(span, resource, attributes)
        io = span_io(raw)
        record.ingestion_event = observation_json(record, raw, io)[1]
        fields = trace_fields(raw, record.parent_span_id is None, io)
        record.trace_fields = dumps(fields) if fields else None


# -- observations ------------------------------------------------------------------------


def observation_json(
    span: SpanRecord, raw: RawSpan, io: tuple[Any, Any] | None = None
) -> tuple[str, bytes]:
    """The envelope id and the JSON of `observation_event(span, raw, io)`: written by the
    compiled writer (`_event_json.c`) where it can write them exactly, else built and
    encoded here. The same bytes either way."""
    fields = _observation_fields(span, raw, io)
    if _event_json is not None:
        kind, inputs, outputs, level, version, named, generation = fields
        try:
            return _event_json.observation(
                kind, span.trace_id, span.span_id, span.parent_span_id,
                span.name[:_MAX_NAME], span.start_ns, span.end_ns, level,
                span.status_message, inputs, outputs, raw.attributes, raw.resource,
                span.scope_name, span.event_type, version, named, generation or None,
            )  # fmt: skip
        except _event_json.Unsupported:
            pass  # a value it does not write as orjson would: the dictionaries' way
    event = _observation_event(span, raw, fields)
    return event["id"], dumps(event)


def observation_event(
    span: SpanRecord, raw: RawSpan, io: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    """The generation-, event- or span-create of one span (`io`: its `span_io`, if known)."""
    return _observation_event(span, raw, _observation_fields(span, raw, io))


# kind, input, output, level, version, environment, generation fields (None values left out)
_Fields = tuple[str, Any, Any, str, str | None, str | None, dict[str, Any]]


def _observation_fields(span: SpanRecord, raw: RawSpan, io: tuple[Any, Any] | None) -> _Fields:
    """What an observation event says beyond the span's columns."""
    # most spans have none of the keys that set the type, level or version: one check
    declared_type = declared_level = declared_version = None
    if not _DECLARING_KEYS.isdisjoint(raw.attributes):
        declared_type = raw.first(_TYPE_KEY)
        declared_level = raw.first(_LEVEL_KEY)
        declared_version = raw.first(VERSION_KEYS)
    generation: dict[str, Any] = {}
    if span.event_type is EventType.LLM_CALL:
        kind = "generation-create"
        generation = {k: v for k, v in _generation(span, raw).items() if v is not None}
    elif isinstance(declared_type, str) and declared_type.lower() == "event":
        kind = "event-create"
    else:
        kind = "span-create"
    inputs, outputs = io if io is not None else span_io(raw)
    return (
        kind,
        inputs,
        outputs,
        _level(span, declared_level),
        _version(declared_version, raw.resource),
        environment(span.environment),
        generation,
    )


def _observation_event(span: SpanRecord, raw: RawSpan, fields: _Fields) -> dict[str, Any]:
    kind, inputs, outputs, level, version, named, generation = fields
    trace_hex = span.trace_id.hex()
    span_hex = span.span_id.hex()
    ended = iso_from_ns(span.end_ns)  # also the envelope's timestamp
    # fields without a value are left out (as `_compact` does), in this order
    body: dict[str, Any] = {"id": span_hex, "traceId": trace_hex}
    if span.parent_span_id:
        body["parentObservationId"] = span.parent_span_id.hex()
    body["name"] = span.name[:_MAX_NAME]
    body["startTime"] = iso_from_ns(span.start_ns)
    if kind != "event-create":
        body["endTime"] = ended
    body["level"] = level
    if span.status_message:
        body["statusMessage"] = span.status_message
    if inputs is not None:
        body["input"] = inputs
    if outputs is not None:
        body["output"] = outputs
    body["metadata"] = {
        "attributes": raw.attributes,
        "resourceAttributes": raw.resource,
        "scope": {"name": span.scope_name},
        "eventType": span.event_type,  # a StrEnum: JSON has its value
    }
    if version is not None:
        body["version"] = version
    if named is not None:
        body["environment"] = named
    body.update(generation)
    return envelope(f"{kind}:{trace_hex}:{span_hex}", kind, ended, body)


@functools.lru_cache(maxsize=256)
def environment(value: str | None) -> str | None:
    """Langfuse's environment rule: lower case, no `langfuse-` prefix, at most 40 of
    a-z 0-9 _ -; anything else is the default environment (None: not sent)."""
    if value is None:
        return None
    name = re.sub(r"^langfuse[-_]", "", value.lower())[:40]
    return name if _ENVIRONMENT.match(name) else None


def _generation(span: SpanRecord, raw: RawSpan) -> dict[str, Any]:
    llm = span.llm
    out: dict[str, Any] = {"modelParameters": _model_parameters(raw) or None}
    if llm is not None:
        out["model"] = llm.model
        if llm.input_tokens or llm.output_tokens:
            usage = {
                "input": max(
                    llm.input_tokens - llm.cache_read_tokens - llm.cache_creation_tokens, 0
                ),
                "output": max(llm.output_tokens - llm.reasoning_tokens, 0),
                "total": llm.input_tokens + llm.output_tokens,
                "input_cached_tokens": llm.cache_read_tokens,
                "input_cache_creation": llm.cache_creation_tokens,
                "output_reasoning_tokens": llm.reasoning_tokens,
            }
            out["usageDetails"] = {k: v for k, v in usage.items() if v or k in _ALWAYS_USAGE}
    if span.cost_usd is not None and math.isfinite(span.cost_usd):
        out["costDetails"] = {"total": span.cost_usd}
    if raw.attributes.keys().isdisjoint(TIMING_AND_PROMPT_KEYS):
        return out
    details = llm_details(raw)
    if details.ttft_ms is not None:
        out["completionStartTime"] = iso_from_ns(span.start_ns + round(details.ttft_ms * 1e6))
    version = _int(details.prompt_version)
    if details.prompt_name and version is not None:
        out["promptName"] = details.prompt_name
        out["promptVersion"] = version
    return out


def _model_parameters(raw: RawSpan) -> dict[str, Any]:
    """`gen_ai.request.*` (but the model) and invocation parameters, as the schema's
    MapValue: strings, non-integral numbers, booleans, lists of strings."""
    params: dict[str, Any] = {}
    for key in _PARAMETER_OBJECT_KEYS:
        whole = raw.first((key,))
        if isinstance(whole, str) and whole.startswith("{"):
            try:
                whole = json.loads(whole)
            except ValueError:
                whole = None
        if isinstance(whole, dict):
            params.update(whole)
    attributes = raw.attributes
    for key, name in _parameter_keys(raw.key_text(), _PARAMETER_KEY):
        # (a key holding a newline may match in part: only whole keys count)
        if key in attributes:
            params[name] = attributes[key]
    out: dict[str, Any] = {}
    for name, value in params.items():
        if type(value) is not str:  # most are strings, kept as they are
            value = _map_value(value)
            if value is None:
                continue
        out[name] = value
    return out


@by_key_set
def _parameter_keys(key_text: str, pattern: re.Pattern[str]) -> tuple[tuple[str, str], ...]:
    """(key, parameter name) of each parameter key among a span's joined keys."""
    return tuple((key, name) for key, name in pattern.findall(key_text) if key != _MODEL_KEY)


def _map_value(value: Any) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return str(value)  # an integer matches both `integer` and `number` of MapValue's oneOf
    if isinstance(value, float):
        return value if math.isfinite(value) and not value.is_integer() else str(value)
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"))


def _level(span: SpanRecord, declared: Any) -> str:
    """The span's level: the one it declares (`declared`, None if none), else its status's."""
    if isinstance(declared, str) and declared.upper() in _LEVELS:
        return _LEVELS[declared.upper()]
    return "ERROR" if span.status_code == 2 or span.is_error else "DEFAULT"


def _version(declared: Any, resource: dict[str, Any]) -> str | None:
    """The version the span declares (`declared`, None if none), else its resource's."""
    value = declared if declared is not None else resource_version(resource)
    return None if value is None else str(value)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# -- traces ------------------------------------------------------------------------------


def trace_event(
    spans: Sequence[SpanRecord],
    span_fields: Sequence[dict[str, Any] | None],
    resource: dict[str, Any],
    trace_start_ns: int | None,
) -> tuple[dict[str, Any], bytes]:
    """The trace-create of one trace, and its JSON, from some (or all) of its spans
    (session and user: the trace's) and their `mapping.langfuse.trace_fields`: the
    root's first, then the others' in order (`resource`: the first of those spans')."""
    # one pass: the root, the first user, session and environment named, the time span
    root = None
    user_id = session_id = named_environment = None
    started_ns, ended_ns = spans[0].start_ns, spans[0].end_ns
    for i, span in enumerate(spans):
        if root is None and span.parent_span_id is None:
            root = i
        user_id = user_id or span.user_id
        session_id = session_id or span.session_id
        named_environment = named_environment or span.environment
        started_ns = min(started_ns, span.start_ns)
        ended_ns = max(ended_ns, span.end_ns)
    ordered = [span_fields[root] or {}] if root is not None else []
    ordered += [f or {} for i, f in enumerate(span_fields) if i != root]
    fields = fold_trace(ordered, resource)
    body = _compact(
        {
            "id": spans[0].trace_id.hex(),
            "timestamp": iso_from_ns(trace_start_ns or started_ns),
            "name": fields.name[:_MAX_NAME] if fields.name else None,
            "userId": user_id or None,
            "sessionId": session_id or None,
            "environment": environment(named_environment or None),
            "release": fields.release,
            "version": fields.version,
            "tags": fields.tags or None,
            "metadata": fields.metadata,
            "input": fields.input,
            "output": fields.output,
            "public": True if fields.public else None,
        }
    )
    body_bytes = dumps(body)
    digest = hashlib.blake2b(body_bytes, digest_size=16).hexdigest()
    ended = iso_from_ns(ended_ns)
    event = envelope(f"trace-create:{body['id']}:{digest}", "trace-create", ended, body)
    return event, _envelope_bytes(event, body_bytes)


# -- envelopes and bytes -----------------------------------------------------------------


def envelope(name: str, kind: str, timestamp: str, body: dict[str, Any]) -> dict[str, Any]:
    # `id` first: `event_key` reads it back from the bytes
    return {"id": event_id(name), "timestamp": timestamp, "type": kind, "body": body}


def _envelope_bytes(event: dict[str, Any], body: bytes) -> bytes:
    """`dumps(event)` from its body's JSON, without encoding the body a second time (the
    envelope's other fields are ASCII that JSON writes as it is)."""
    head = f'{{"id":"{event["id"]}","timestamp":"{event["timestamp"]}","type":"{event["type"]}"'
    return b"".join((head.encode(), b',"body":', body, b"}"))


def event_id(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, without the `UUID` object (a third of the
    cost of building an event went into it): the SHA-1's first 32 hex digits, the
    version digit set to 5 and the variant bits of the 17th to 10. The compiled writer's
    takes a quarter of the time, with the CPU's SHA instructions."""
    if _event_json is not None:
        return _event_json.event_id(name)
    x = hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT_DIGIT[x[16]]}{x[17:20]}-{x[20:32]}"


def event_key(payload: bytes) -> str:
    """The envelope id of an event's bytes (`envelope` writes it first)."""
    if payload.startswith(_ID_PREFIX):
        end = payload.index(b'"', len(_ID_PREFIX))
        return payload[len(_ID_PREFIX) : end].decode()
    return str(orjson.loads(payload)["id"])


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Fields without a value are left out: absent, they never overwrite on merge."""
    return {k: v for k, v in body.items() if v is not None}


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson does it ~10x faster than the standard library; what it
    refuses (text that is not valid Unicode, integers past 64 bits) goes the slow way."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(_finite(value), separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# -- size --------------------------------------------------------------------------------


def fit(event: dict[str, Any], max_bytes: int) -> bytes:
    """The event as JSON of at most `max_bytes` (when at all possible). Input, output,
    metadata and status message share what room is left, the small ones kept whole, the
    large ones cut to an equal share and marked, as a user would cut them by hand."""
    data = dumps(event)
    if len(data) <= max_bytes:
        return data
    body = event["body"]
    values = {k: body[k] for k in _TRUNCATABLE if k in body}
    texts = {k: v if isinstance(v, str) else dumps(v).decode() for k, v in values.items()}
    sizes = {k: len(t.encode()) for k, t in texts.items()}
    fixed = len(data) - sum(len(dumps(v)) for v in values.values())
    budget = max_bytes - fixed - 128 * (len(values) + 1)
    for _ in range(4):
        shares = _shares(sizes, max(budget, 0))
        cut = sorted(k for k in values if shares[k] < sizes[k])
        for key, value in values.items():
            body[key] = _cut(texts[key], shares[key]) if key in cut else value
        if isinstance(body.get("metadata"), dict):
            body["metadata"][TRUNCATED_KEY] = cut
        data = dumps(event)
        if len(data) <= max_bytes:
            break
        budget -= len(data) - max_bytes + 64  # JSON escaping took more than the raw text
    return data


def fit_bytes(payload: bytes, max_bytes: int) -> bytes:
    """`fit` for an event already encoded (parsed again only when too large)."""
    return payload if len(payload) <= max_bytes else fit(orjson.loads(payload), max_bytes)


def _shares(sizes: dict[str, int], budget: int) -> dict[str, int]:
    """Split `budget` bytes: each field gets what it needs, up to an equal share of what
    the smaller ones left."""
    shares: dict[str, int] = {}
    left = budget
    ordered = sorted(sizes, key=lambda k: sizes[k])
    for i, key in enumerate(ordered):
        shares[key] = min(sizes[key], left // (len(ordered) - i))
        left -= shares[key]
    return shares


def _cut(text: str, keep_bytes: int) -> str:
    encoded = text.encode(errors="replace")
    kept = encoded[:keep_bytes].decode(errors="ignore")
    return f"{kept}... [truncated by otel-session-bridge: {len(encoded)} bytes, {len(kept)} kept]"
