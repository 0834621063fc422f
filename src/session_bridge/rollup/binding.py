"""Which session each trace belongs to, and what a batch of new spans adds to each.

A trace belongs to one session: the first session id seen on any of its spans,
whatever span carries it and whenever it arrives. Spans that arrive before the
trace is named are kept in the trace's own rollup; when the name arrives, that
whole rollup joins the session (and counts as one more trace there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from session_bridge.model import SpanRecord
from session_bridge.rollup.rollup import Rollup, add_span, merge, rollup_values


@dataclass(slots=True)
class TraceState:
    session_id: str | None
    rollup: Rollup


@dataclass(slots=True)
class RollupPlan:
    traces: dict[bytes, TraceState] = field(default_factory=dict)  # new state per touched trace
    newly_bound: dict[bytes, str] = field(default_factory=dict)  # traces that joined a session now
    sessions: dict[str, Rollup] = field(default_factory=dict)  # delta per session


@dataclass(slots=True)
class TraceDelta:
    """What some spans of one trace add to it, and the first session id they name."""

    rollup: Rollup
    session_id: str | None


def fold_by_trace(records: Iterable[SpanRecord]) -> dict[bytes, TraceDelta]:
    """Per trace, the merged contribution of `records` (each span once)."""
    deltas: dict[bytes, TraceDelta] = {}
    seen: set[tuple[bytes, bytes]] = set()
    for record in records:
        key = (record.trace_id, record.span_id)
        if key in seen:
            continue
        seen.add(key)
        delta = deltas.get(record.trace_id)
        if delta is None:
            delta = deltas[record.trace_id] = TraceDelta(Rollup(), record.session_id)
        elif delta.session_id is None:
            delta.session_id = record.session_id
        add_span(delta.rollup, record)
    return deltas


def plan_rollups(
    new_records: Iterable[SpanRecord], existing: Mapping[bytes, TraceState]
) -> RollupPlan:
    """Fold spans new to the store into trace states and session deltas."""
    return plan_from_deltas(fold_by_trace(new_records), existing)


def plan_from_deltas(
    deltas: Mapping[bytes, TraceDelta], existing: Mapping[bytes, TraceState]
) -> RollupPlan:
    """Trace states and session deltas from per-trace deltas of spans new to the store."""
    plan = RollupPlan()
    for tid, trace_delta in deltas.items():
        delta = trace_delta.rollup
        before = existing.get(tid)
        bound_to = before.session_id if before is not None else None
        session_id = bound_to or trace_delta.session_id
        # (the plan shares rollups with the deltas and with itself: none is changed later)
        after = delta if before is None else merge(before.rollup, delta)
        plan.traces[tid] = TraceState(session_id, after)
        if session_id is None:
            continue
        if bound_to is None:
            plan.newly_bound[tid] = session_id
        contribution = session_contribution(delta, after, newly_bound=bound_to is None)
        current = plan.sessions.get(session_id)
        plan.sessions[session_id] = (
            contribution if current is None else merge(current, contribution)
        )
    return plan


def session_contribution(delta: Rollup, trace_after: Rollup, *, newly_bound: bool) -> Rollup:
    """What a write adds to the session of a named trace: when this write names it, the
    whole trace (`trace_after`, its spans so far, new ones included) and one more trace;
    when it was named before, only the new spans (`delta`)."""
    if not newly_bound:
        return delta
    whole = Rollup(*rollup_values(trace_after))
    whole.trace_count += 1
    return whole
