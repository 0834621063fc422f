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
from session_bridge.rollup.rollup import Rollup, from_span, merge, merge_into


@dataclass(slots=True)
class TraceState:
    session_id: str | None
    rollup: Rollup


@dataclass(slots=True)
class RollupPlan:
    traces: dict[bytes, TraceState] = field(default_factory=dict)  # new state per touched trace
    newly_bound: dict[bytes, str] = field(default_factory=dict)  # traces that joined a session now
    sessions: dict[str, Rollup] = field(default_factory=dict)  # delta per session


def plan_rollups(
    new_records: Iterable[SpanRecord], existing: Mapping[bytes, TraceState]
) -> RollupPlan:
    """Fold spans new to the store into trace states and session deltas."""
    deltas: dict[bytes, Rollup] = {}
    named: dict[bytes, str] = {}
    for record in new_records:
        tid = record.trace_id
        span_rollup = from_span(record)
        previous = deltas.get(tid)
        if previous is None:
            deltas[tid] = span_rollup
        else:
            merge_into(previous, span_rollup)
        if record.session_id and tid not in named:
            named[tid] = record.session_id

    plan = RollupPlan()
    for tid, delta in deltas.items():
        before = existing.get(tid)
        prior = before.rollup if before is not None else Rollup()
        bound_to = before.session_id if before is not None else None
        session_id = bound_to or named.get(tid)
        plan.traces[tid] = TraceState(session_id, merge(prior, delta))
        if session_id is None:
            continue
        if bound_to is None:
            plan.newly_bound[tid] = session_id
            contribution = merge(merge(prior, delta), Rollup(trace_count=1))
        else:
            contribution = delta
        current = plan.sessions.get(session_id)
        plan.sessions[session_id] = (
            contribution if current is None else merge(current, contribution)
        )
    return plan
