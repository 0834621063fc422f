"""Log entries -> ingestion events (`POST /api/public/ingestion`), as Langfuse reads spans.

Per trace a `trace-create` (name, session, user, environment, release, version, tags,
metadata, and the root's input/output when the root is among the entries), per span a
`generation-create` (LLM calls), `event-create` (`langfuse.observation.type: event`) or
`span-create`, and a `score-create` per evaluation result it carries (`export/scores.py`).
Field sources are Langfuse's (`mapping/langfuse.py`, `mapping/payloads.py`;
`shared/reference/langfuse.md` §1). Every event is valid against the ingestion API's
OpenAPI schema (`IngestionEvent`).

Envelope ids are deterministic: an observation's from its trace, span and event type, so
a resend overwrites it downstream instead of duplicating it; a trace-create's also from
its body, so a later, fuller trace-create of the same trace (its session named by a later
span) is a new event that the server merges into the trace, and an identical one
overwrites. Envelope timestamps come from the spans, so the same span always yields the
same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any

from session_bridge.export.base import Unit
from session_bridge.export.log import LogEntry
from session_bridge.export.scores import response_spans, score_events
from session_bridge.mapping.langfuse import langfuse_trace
from session_bridge.mapping.payloads import RawSpan, decode_span, llm_details, span_io
from session_bridge.model import EventType, SpanRecord
from session_bridge.timefmt import iso_from_ns

_NAMESPACE = uuid.UUID("6f0d3c52-4a8e-4b7c-9a51-0e9f2b1c7d40")
_LEVELS = {
    "DEBUG": "DEBUG", "TRACE": "DEBUG", "VERBOSE": "DEBUG",
    "DEFAULT": "DEFAULT", "INFO": "DEFAULT", "LOG": "DEFAULT", "NOTICE": "DEFAULT",
    "OK": "DEFAULT", "SUCCESS": "DEFAULT",
    "WARN": "WARNING", "WARNING": "WARNING",
    "ERROR": "ERROR", "FATAL": "ERROR", "CRITICAL": "ERROR",
}  # fmt: skip
_LEVEL_KEY = "langfuse.observation.level"
_TYPE_KEY = "langfuse.observation.type"
_VERSION_KEYS = ("langfuse.version",)
_RESOURCE_VERSION_KEYS = ("langfuse.version", "service.version")
_PARAMETER_PREFIXES = ("gen_ai.request.", "llm.invocation_parameters.")
_PARAMETER_OBJECT_KEYS = ("langfuse.observation.model.parameters", "llm.invocation_parameters")
_ENVIRONMENT = re.compile(r"^[a-z0-9_-]+$")
_MAX_NAME = 1000
_TRUNCATABLE = ("input", "output", "metadata", "statusMessage")
TRUNCATED_KEY = "session_bridge.truncated"


def ingestion_units(entries: Sequence[LogEntry], max_event_bytes: int) -> list[Unit]:
    """The events for `entries`, in order: each trace's trace-create before its first span."""
    resources: dict[bytes, dict[str, Any]] = {}  # a request's spans share a few resources
    raws = []
    for entry in entries:
        raw = decode_span(entry.span.otlp_span)
        if entry.resource not in resources:
            resources[entry.resource] = decode_span(b"", entry.resource).resource
        raw.resource = resources[entry.resource]
        raws.append(raw)
    traces: dict[bytes, list[int]] = {}
    for index, entry in enumerate(entries):
        traces.setdefault(entry.span.trace_id, []).append(index)
    responses = response_spans(e.span for e in entries)
    units: list[Unit] = []
    for index, entry in enumerate(entries):
        members = traces[entry.span.trace_id]
        if members[0] == index:
            event = trace_event([entries[i] for i in members], [raws[i] for i in members])
            units.append(_unit(event, [entries[i] for i in members], max_event_bytes))
        units.append(_unit(observation_event(entry, raws[index]), [entry], max_event_bytes))
        span = entry.span
        for score in score_events(span, raws[index], environment(span.environment), responses):
            units.append(_unit(score, [entry], max_event_bytes))
    return units


def trace_event(entries: Sequence[LogEntry], raws: Sequence[RawSpan]) -> dict[str, Any]:
    """The trace-create of one trace, from some (or all) of its spans."""
    spans = [e.span for e in entries]
    root_at = next((i for i, s in enumerate(spans) if s.parent_span_id is None), None)
    root = raws[root_at] if root_at is not None else None
    fields = langfuse_trace(root, [r for i, r in enumerate(raws) if i != root_at])
    first = spans[0]
    started = next((e.trace_start_ns for e in entries if e.trace_start_ns), None)
    body = _compact(
        {
            "id": first.trace_id.hex(),
            "timestamp": iso_from_ns(started or min(s.start_ns for s in spans)),
            "name": fields.name[:_MAX_NAME] if fields.name else None,
            "userId": next((s.user_id for s in spans if s.user_id), None),
            "sessionId": next((s.session_id for s in spans if s.session_id), None),
            "environment": environment(next((s.environment for s in spans if s.environment), None)),
            "release": fields.release,
            "version": fields.version,
            "tags": fields.tags or None,
            "metadata": fields.metadata,
            "input": fields.input,
            "output": fields.output,
            "public": True if fields.public else None,
        }
    )
    digest = hashlib.blake2b(_dumps(body), digest_size=16).hexdigest()
    return _envelope(
        f"trace-create:{first.trace_id.hex()}:{digest}",
        "trace-create",
        max(s.end_ns for s in spans),
        body,
    )


def observation_event(entry: LogEntry, raw: RawSpan) -> dict[str, Any]:
    span = entry.span
    declared = raw.first((_TYPE_KEY,))
    if span.event_type is EventType.LLM_CALL:
        kind = "generation-create"
    elif isinstance(declared, str) and declared.lower() == "event":
        kind = "event-create"
    else:
        kind = "span-create"
    inputs, outputs = span_io(raw)
    body: dict[str, Any] = {
        "id": span.span_id.hex(),
        "traceId": span.trace_id.hex(),
        "parentObservationId": span.parent_span_id.hex() if span.parent_span_id else None,
        "name": span.name[:_MAX_NAME],
        "startTime": iso_from_ns(span.start_ns),
        "endTime": iso_from_ns(span.end_ns) if kind != "event-create" else None,
        "level": _level(span, raw),
        "statusMessage": span.status_message or None,
        "input": inputs,
        "output": outputs,
        "metadata": {
            "attributes": raw.attributes,
            "resourceAttributes": raw.resource,
            "scope": {"name": span.scope_name},
            "eventType": span.event_type.value,
        },
        "version": _version(raw),
        "environment": environment(span.environment),
    }
    if kind == "generation-create":
        body.update(_generation(span, raw))
    return _envelope(
        f"{kind}:{span.trace_id.hex()}:{span.span_id.hex()}", kind, span.end_ns, _compact(body)
    )


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
    details = llm_details(raw)
    if details.ttft_ms is not None:
        out["completionStartTime"] = iso_from_ns(span.start_ns + round(details.ttft_ms * 1e6))
    version = _int(details.prompt_version)
    if details.prompt_name and version is not None:
        out["promptName"] = details.prompt_name
        out["promptVersion"] = version
    return out


_ALWAYS_USAGE = frozenset({"input", "output", "total"})


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
    for key, value in raw.attributes.items():
        for prefix in _PARAMETER_PREFIXES:
            if key.startswith(prefix) and key != "gen_ai.request.model":
                params[key[len(prefix) :]] = value
    return {k: v for k, v in ((k, _map_value(v)) for k, v in params.items()) if v is not None}


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


def _level(span: SpanRecord, raw: RawSpan) -> str:
    declared = raw.first((_LEVEL_KEY,))
    if isinstance(declared, str) and declared.upper() in _LEVELS:
        return _LEVELS[declared.upper()]
    return "ERROR" if span.status_code == 2 or span.is_error else "DEFAULT"


def _version(raw: RawSpan) -> str | None:
    value = raw.first(_VERSION_KEYS)
    if value is None:
        value = next((raw.resource[k] for k in _RESOURCE_VERSION_KEYS if k in raw.resource), None)
    return None if value is None else str(value)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _envelope(name: str, kind: str, time_ns: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(_NAMESPACE, name)),
        "timestamp": iso_from_ns(time_ns),
        "type": kind,
        "body": body,
    }


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Fields without a value are left out: absent, they never overwrite on merge."""
    return {k: v for k, v in body.items() if v is not None}


# -- size --------------------------------------------------------------------------------


def _unit(event: dict[str, Any], entries: list[LogEntry], max_bytes: int) -> Unit:
    return Unit(payload=fit(event, max_bytes), entries=entries, key=event["id"])


def fit(event: dict[str, Any], max_bytes: int) -> bytes:
    """The event as JSON of at most `max_bytes` (when at all possible). Input, output,
    metadata and status message share what room is left, the small ones kept whole, the
    large ones cut to an equal share and marked, as a user would cut them by hand."""
    data = _dumps(event)
    if len(data) <= max_bytes:
        return data
    body = event["body"]
    values = {k: body[k] for k in _TRUNCATABLE if k in body}
    texts = {k: v if isinstance(v, str) else _dumps(v).decode() for k, v in values.items()}
    sizes = {k: len(t.encode()) for k, t in texts.items()}
    fixed = len(data) - sum(len(_dumps(v)) for v in values.values())
    budget = max_bytes - fixed - 128 * (len(values) + 1)
    for _ in range(4):
        shares = _shares(sizes, max(budget, 0))
        cut = sorted(k for k in values if shares[k] < sizes[k])
        for key, value in values.items():
            body[key] = _cut(texts[key], shares[key]) if key in cut else value
        if isinstance(body.get("metadata"), dict):
            body["metadata"][TRUNCATED_KEY] = cut
        data = _dumps(event)
        if len(data) <= max_bytes:
            break
        budget -= len(data) - max_bytes + 64  # JSON escaping took more than the raw text
    return data


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
    encoded = text.encode()
    kept = encoded[:keep_bytes].decode(errors="ignore")
    return f"{kept}... [truncated by otel-session-bridge: {len(encoded)} bytes, {len(kept)} kept]"


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except ValueError:  # NaN or infinity somewhere in the attributes
        return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
