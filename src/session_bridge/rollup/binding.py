"""Which session each trace belongs to, and what a batch of new spans adds to each.

A trace belongs to one session: the first session id seen on any of its spans,
whatever span carries it and whenever it arrives. Spans that arrive before the
trace is named are kept in the trace's own rollup; when the name arrives, that
whole rollup joins the session (and counts as one more trace there).

A trace's usage columns are not a sum over its spans: the span tree decides them
(`rollup/usage.py`). New spans of a stored trace that may change them make the store
recompute them from the trace's stored spans (`RollupPlan.recompute`), and the
trace's new usage replaces its old one in the trace and in its session
(`RollupPlan.replace_usage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from session_bridge.model import SpanRecord
from session_bridge.rollup.rollup import (
    Rollup,
    add_span,
    merge,
    rollup_values,
    shrinks,
    usage_change,
    with_usage,
)
from session_bridge.rollup.usage import add_records_usage


@dataclass(slots=True)
class TraceState:
    session_id: str | None
    rollup: Rollup


@dataclass(slots=True)
class RollupPlan:
    traces: dict[bytes, TraceState] = field(default_factory=dict)  # new state per touched trace
    newly_bound: dict[bytes, str] = field(default_factory=dict)  # traces that joined a session now
    sessions: dict[str, Rollup] = field(default_factory=dict)  # delta per session
    # stored traces whose usage the store must recompute from their spans, with the
    # usage they had (their state in `traces` still carries it)
    recompute: dict[bytes, Rollup] = field(default_factory=dict)
    # sessions whose models or providers must be taken again from their traces
    shrunk: set[str] = field(default_factory=set)

    def replace_usage(self, trace_id: bytes, usage: Rollup) -> None:
        """The recomputed usage of a trace of `recompute`: in its state, and the change
        in its session's delta."""
        old = self.recompute[trace_id]
        state = self.traces[trace_id]
        state.rollup = with_usage(state.rollup, usage)
        session_id = state.session_id
        if session_id is None:
            return
        change = usage_change(old, usage)
        current = self.sessions.get(session_id)
        self.sessions[session_id] = change if current is None else merge(current, change)
        if shrinks(old, usage):
            self.shrunk.add(session_id)


@dataclass(slots=True)
class TraceDelta:
    """What some spans of one trace add to it, and the first session id they name. Its
    usage columns are those of these spans alone (the whole trace's when they are)."""

    rollup: Rollup
    session_id: str | None


def fold_by_trace(records: Iterable[SpanRecord]) -> dict[bytes, TraceDelta]:
    """Per trace, the merged contribution of `records` (each span once)."""
    deltas: dict[bytes, TraceDelta] = {}
    spans: dict[bytes, list[SpanRecord]] = {}
    carriers: dict[bytes, list[SpanRecord]] = {}  # per trace, its spans that carry usage
    seen: set[tuple[bytes, bytes]] = set()
    for record in records:
        trace_id = record.trace_id
        key = (trace_id, record.span_id)
        if key in seen:
            continue
        seen.add(key)
        delta = deltas.get(trace_id)
        if delta is None:
            delta = deltas[trace_id] = TraceDelta(Rollup(), record.session_id)
            spans[trace_id] = [record]
        else:
            spans[trace_id].append(record)
            if delta.session_id is None:
                delta.session_id = record.session_id
        add_span(delta.rollup, record)
        if record.llm is not None:
            found = carriers.get(trace_id)
            if found is None:
                carriers[trace_id] = [record]
            else:
                found.append(record)
    for trace_id, of_trace in carriers.items():  # (a delta's usage columns are empty so far)
        add_records_usage(deltas[trace_id].rollup, spans[trace_id], of_trace)
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
        if before is None:
            after = delta  # every span of the trace is in the delta: so is its usage
        else:
            if delta.request_count or before.rollup.request_count:
                # a stored trace with usage on either side: its spans decide it, in the
                # store; until then it keeps the usage it had
                plan.recompute[tid] = before.rollup
                delta = with_usage(delta, _NO_USAGE)
            after = merge(before.rollup, delta)
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


_NO_USAGE = Rollup()


def session_contribution(delta: Rollup, trace_after: Rollup, *, newly_bound: bool) -> Rollup:
    """What a write adds to the session of a named trace: when this write names it, the
    whole trace (`trace_after`, its spans so far, new ones included) and one more trace;
    when it was named before, only the new spans (`delta`)."""
    if not newly_bound:
        return delta
    whole = Rollup(*rollup_values(trace_after))
    whole.trace_count += 1
    return whole
