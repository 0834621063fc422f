"""`…/sessions/export`: every event of a project's sessions, streamed session by session.

CSV has a header row, `EXPORT_COLUMNS`; JSON lines carry each event as the traces
API returns it. Sessions are read in pages, by start time, with a keyset cursor,
so memory holds one session at a time however large the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from session_bridge.api.agent_models import TraceEvent
from session_bridge.api.timeline import load_timeline
from session_bridge.store.base import SessionReader
from session_bridge.store.search import AllOf, Condition, Node, Op, SessionSearch, Sort

EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
SESSIONS_PER_READ = 50


def _get(block: str, attribute: str) -> Callable[[TraceEvent], Any]:
    def read(event: TraceEvent) -> Any:
        value = getattr(event, block)
        return getattr(value, attribute) if value is not None else None

    return read


# CSV column -> how to read it from an event (the header row is the keys, in order)
EXPORT_COLUMNS: dict[str, Callable[[TraceEvent], Any]] = {
    "session_id": lambda e: e.session_id,
    "trace_id": lambda e: e.trace_id,
    "span_id": lambda e: e.span_id,
    "parent_span_id": lambda e: e.parent_span_id,
    "event_type": lambda e: e.type,
    "name": lambda e: e.name,
    "agent_name": lambda e: e.agent_name,
    "turn_index": lambda e: e.turn_index,
    "timestamp": lambda e: e.timestamp,
    "start_time": lambda e: e.start_time,
    "end_time": lambda e: e.end_time,
    "duration_ms": lambda e: e.duration_ms,
    "status": lambda e: e.status,
    "model": _get("llm", "model"),
    "input_tokens": _get("llm", "input_tokens"),
    "output_tokens": _get("llm", "output_tokens"),
    "total_tokens": _get("llm", "total_tokens"),
    "cost_usd": _get("llm", "cost_usd"),
    "tool_name": _get("tool", "tool_name"),
    "tool_call_id": _get("tool", "tool_call_id"),
    "decision_kind": _get("decision", "decision_kind"),
    "decision_target": _get("decision", "target"),
    "guardrail_name": _get("guardrail", "guardrail_name"),
    "guardrail_verdict": _get("guardrail", "verdict"),
    "error_type": _get("error", "error_type"),
    "error_message": _get("error", "message"),
}


def export_events(
    store: SessionReader,
    project_id: str,
    fmt: str,
    start_ns: int | None,
    end_ns: int | None,
    session_ids: Sequence[str] | None,
) -> Iterator[str]:
    conditions: list[Node] = []
    if start_ns is not None:
        conditions.append(Condition("updated_at", Op.GTE, start_ns))
    if end_ns is not None:
        conditions.append(Condition("created_at", Op.LTE, end_ns))
    if session_ids:
        conditions.append(Condition("id", Op.ONE_OF, list(session_ids)))
    search = SessionSearch(
        project_id,
        active_since_ns=0,
        where=AllOf(tuple(conditions)),
        sort=Sort("created_at", ascending=True),
        limit=SESSIONS_PER_READ,
    )
    write = _csv_rows if fmt == "csv" else _json_lines
    if fmt == "csv":
        yield _csv_rows([], header=True)
    while True:
        rows = store.search_sessions(search)
        for row in rows:
            timeline = load_timeline(store, project_id, row.session_id)
            if timeline is None:
                continue
            events = [
                e.event
                for e in timeline.entries
                if (start_ns is None or e.key[0] >= start_ns)
                and (end_ns is None or e.key[0] <= end_ns)
            ]
            if events:
                yield write(events)
        if len(rows) < SESSIONS_PER_READ:
            return
        search.after_session_id = rows[-1].session_id


def _csv_rows(events: Sequence[TraceEvent], header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(EXPORT_COLUMNS)
    for event in events:
        writer.writerow(
            "" if value is None else value
            for value in (read(event) for read in EXPORT_COLUMNS.values())
        )
    return out.getvalue()


def _json_lines(events: Sequence[TraceEvent]) -> str:
    return "".join(
        event.model_dump_json(by_alias=True, exclude_unset=True) + "\n" for event in events
    )
