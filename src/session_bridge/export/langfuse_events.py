"""Log entries -> ingestion events (`POST /api/public/ingestion`), in delivery order:
each trace's `trace-create` before its first span's event, and after a span's event a
`score-create` per evaluation result it carries (`export/scores.py`).

An entry's observation event was built at ingest (`mapping.langfuse_events`) and is sent
as stored; a span stored without one (by a bridge that had no exporter wanting events,
or replayed from the dead-letter store) gets it built here, the same bytes either way.
The trace-create is built here: it carries the trace's session as known at send time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from session_bridge.export.base import Unit
from session_bridge.export.scores import response_spans, score_events
from session_bridge.mapping.evaluations import EVALUATION_EVENT
from session_bridge.mapping.langfuse import trace_fields
from session_bridge.mapping.langfuse_events import (
    environment,
    event_key,
    fit,
    fit_bytes,
    observation_json,
    trace_event,
)
from session_bridge.mapping.payloads import RawSpan, decode_span, span_io
from session_bridge.otlp.values import resource_attributes
from session_bridge.store.export_log import LogEntry

_EVALUATION_MARK = EVALUATION_EVENT.encode()
DEFAULT_MAX_EVENT_BYTES = 1_000_000  # an event's size past which its large fields are cut


def ingestion_units(entries: Sequence[LogEntry], max_event_bytes: int) -> list[Unit]:
    """The events for `entries`, in order: each trace's trace-create before its first span."""
    resources: dict[bytes, dict[str, Any]] = {}  # a read's spans share a few resources

    def resource(entry: LogEntry) -> dict[str, Any]:
        found = resources.get(entry.resource)
        if found is None:
            found = resources[entry.resource] = resource_attributes(entry.resource)
        return found

    observations: list[tuple[str, bytes]] = []  # each span's event: its id and JSON
    fields: list[dict[str, Any] | None] = []
    scored: dict[int, RawSpan] = {}  # the spans that carry evaluation results
    traces: dict[bytes, list[int]] = {}
    for index, entry in enumerate(entries):
        raw = None
        if entry.ingestion_event is not None:
            observations.append((event_key(entry.ingestion_event), entry.ingestion_event))
            fields.append(orjson.loads(entry.trace_fields) if entry.trace_fields else None)
        else:
            raw = _decoded(entry, resource)
            io = span_io(raw)
            observations.append(observation_json(entry.span, raw, io))
            fields.append(trace_fields(raw, entry.span.parent_span_id is None, io))
        if _EVALUATION_MARK in entry.span.otlp_span:
            scored[index] = raw or _decoded(entry, resource)  # its scores are built here
        traces.setdefault(entry.span.trace_id, []).append(index)
    responses = response_spans(e.span for e in entries) if scored else {}
    units: list[Unit] = []
    for index, entry in enumerate(entries):
        members = traces[entry.span.trace_id]
        if members[0] == index:
            member_entries = [entries[i] for i in members]
            member_fields = [fields[i] for i in members]
            units.append(_trace_unit(member_entries, member_fields, resource, max_event_bytes))
        key, payload = observations[index]
        units.append(Unit(fit_bytes(payload, max_event_bytes), [entry], key))
        raw = scored.get(index)
        if raw is not None:
            span = entry.span
            for score in score_events(span, raw, environment(span.environment), responses):
                units.append(Unit(fit(score, max_event_bytes), [entry], score["id"]))
    return units


def _decoded(entry: LogEntry, resource: Callable[[LogEntry], dict[str, Any]]) -> RawSpan:
    raw = decode_span(entry.span.otlp_span)
    raw.resource = resource(entry)
    return raw


def _trace_unit(
    entries: list[LogEntry],
    fields: list[dict[str, Any] | None],
    resource: Callable[[LogEntry], dict[str, Any]],
    max_event_bytes: int,
) -> Unit:
    spans = [e.span for e in entries]
    # the trace's resource: its root's when the root is among the entries, as Langfuse reads it
    first = next((e for e in entries if e.span.parent_span_id is None), entries[0])
    started = next((e.trace_start_ns for e in entries if e.trace_start_ns), None)
    event, payload = trace_event(spans, fields, resource(first), started)
    if len(payload) > max_event_bytes:
        payload = fit(event, max_event_bytes)
    return Unit(payload=payload, entries=entries, key=event["id"])
