"""The rollup merge is commutative and associative; trace binding is order-independent."""

from __future__ import annotations

import dataclasses
import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from session_bridge.model import ClientInfo, EventType, GeoInfo, LlmUsage, SpanRecord
from session_bridge.rollup.binding import TraceState, fold_by_trace, plan_rollups
from session_bridge.rollup.rollup import Rollup, add_span, from_span, merge
from tests import strategies

rollups = strategies.rollups(
    st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 10**6), st.integers(0, 10**6)
)


@settings(max_examples=300, deadline=None)
@given(rollups, rollups)
def test_merge_is_commutative(a: Rollup, b: Rollup) -> None:
    assert merge(a, b) == merge(b, a)


@settings(max_examples=300, deadline=None)
@given(rollups, rollups, rollups)
def test_merge_is_associative(a: Rollup, b: Rollup, c: Rollup) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(rollups)
def test_empty_rollup_is_identity(a: Rollup) -> None:
    assert merge(a, Rollup()) == a


texts = st.sampled_from(["a", "b", "c"])
span_records = st.builds(
    SpanRecord,
    trace_id=st.just(bytes(16)),
    span_id=st.just(bytes(8)),
    parent_span_id=st.none(),
    name=st.just("s"),
    kind=st.just(1),
    start_ns=st.integers(0, 5),  # overlaps the stamps of `rollups`, to force ties
    end_ns=st.integers(0, 10),
    status_code=st.just(0),
    status_message=st.just(""),
    event_type=st.just(EventType.SPAN),
    is_error=st.booleans(),
    service=st.none() | texts,
    environment=st.none() | texts,
    user_id=st.none() | texts,
    client=st.none() | st.builds(ClientInfo, ip=st.none() | texts, os=st.none() | texts),
    geo=st.none() | st.builds(GeoInfo, city=st.none() | texts),
    llm=st.none()
    | st.builds(
        LlmUsage,
        provider=st.none() | texts,
        model=st.none() | texts,
        input_tokens=st.integers(0, 9),
        output_tokens=st.integers(0, 9),
        cache_read_tokens=st.integers(0, 9),
        cache_creation_tokens=st.integers(0, 9),
        reasoning_tokens=st.integers(0, 9),
    ),
    cost_usd=st.none() | st.floats(0, 1),
)


@settings(max_examples=500, deadline=None)
@given(rollups, span_records)
def test_adding_a_span_is_merging_its_rollup(a: Rollup, span: SpanRecord) -> None:
    expected = merge(a, from_span(span))
    add_span(a, span)
    assert a == expected


def test_a_span_alone() -> None:
    span = _span(1, 1, 100, user_id="u", service="svc", client=ClientInfo(ip="10.0.0.1"))
    span.llm = LlmUsage(provider="openai", model="m", input_tokens=5)
    span.cost_usd = 0.5
    own = Rollup(
        start_ns=100,
        end_ns=110,
        span_count=1,
        services=frozenset({"svc"}),
        user_id=(100, "u"),
        client=(100, '{"ip": "10.0.0.1"}'),
    )
    assert from_span(span) == own  # usage is the span tree's to decide
    assert fold_by_trace([span])[span.trace_id].rollup == dataclasses.replace(
        own,
        request_count=1,
        input_tokens=5,
        cost_nano_usd=500_000_000,
        models=frozenset({"m"}),
        providers=frozenset({"openai"}),
    )


def _span(
    trace: int, span: int, start: int, session: str | None = None, **kw: object
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span.to_bytes(8, "big"),
        parent_span_id=None,
        name=f"s{span}",
        kind=1,
        start_ns=start,
        end_ns=start + 10,
        status_code=0,
        status_message="",
        event_type=EventType.SPAN,
        is_error=False,
        session_id=session,
        **kw,  # type: ignore[arg-type]
    )


def test_earliest_client_and_user_win() -> None:
    late = _span(1, 1, 500, "s", user_id="late-user", client=ClientInfo(ip="10.0.0.2"))
    early = _span(1, 2, 100, None, user_id="early-user", client=ClientInfo(ip="10.0.0.1"))
    rollup = merge(from_span(late), from_span(early))
    assert rollup.user_id == (100, "early-user")
    assert rollup.client is not None and "10.0.0.1" in rollup.client[1]
    assert rollup.start_ns == 100 and rollup.end_ns == 510


def test_llm_cost_and_unpriced_calls() -> None:
    priced = _span(1, 1, 0, llm=LlmUsage(model="m", input_tokens=3), cost_usd=0.25)
    unpriced = _span(1, 2, 0, llm=LlmUsage(model="m", output_tokens=4))
    rollup = fold_by_trace([priced, unpriced])[priced.trace_id].rollup
    assert rollup.request_count == 2
    assert rollup.cost_nano_usd == 250_000_000
    assert rollup.unpriced_count == 1
    assert (rollup.input_tokens, rollup.output_tokens) == (3, 4)


def _apply_in_order(batches: list[list[SpanRecord]]) -> dict[str, Rollup]:
    """Feed batches through plan_rollups the way a single-writer store does."""
    traces: dict[bytes, TraceState] = {}
    sessions: dict[str, Rollup] = {}
    for batch in batches:
        plan = plan_rollups(batch, traces)
        traces.update(plan.traces)
        for sid, delta in plan.sessions.items():
            sessions[sid] = merge(sessions.get(sid, Rollup()), delta)
    return sessions


def test_binding_is_independent_of_arrival_order() -> None:
    spans = [
        _span(1, 1, 10),
        _span(1, 2, 20, "s1", user_id="u"),
        _span(1, 3, 30),
        _span(2, 4, 40),
        _span(2, 5, 50, "s1"),
        _span(3, 6, 60, "s2"),
        _span(4, 7, 70),  # never named: in no session
    ]
    expected = _apply_in_order([spans])
    assert set(expected) == {"s1", "s2"}
    assert expected["s1"].trace_count == 2 and expected["s1"].span_count == 5
    rng = random.Random(7)
    for _ in range(200):
        order = spans[:]
        rng.shuffle(order)
        cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
        batches = [order[i:j] for i, j in itertools.pairwise([0, *cuts, len(order)])]
        assert _apply_in_order(batches) == expected
