"""The numbers a span may carry, in one place: what is refused, what is not counted.

Stores keep times, token counts and nano-dollar costs as signed 64-bit integers, and
rollups sum them. A number that cannot be stored, or that would make a session's sums
meaningless, never reaches the store:

* a start, end or span event time past 2^63 - 1 ns (after 2262-04-11) rejects its span, reported
  in `partial_success` like an invalid id: there is no time to keep instead;
* a token count above `MAX_TOKENS`, or a reported cost that is not finite or above
  `MAX_COST_USD`, is not counted (the span is kept, the value stays in its raw
  attributes) and the answer's `partial_success.error_message` says so, with
  `rejected_spans` 0 (a warning, as the OTLP specification allows);
* rollup sums saturate at 2^63 - 1 (`rollup.merge`, and the SQL generated from it),
  so a session at the cap never makes a later span fail.
"""

from __future__ import annotations

import math
from typing import Any

from session_bridge.model import INT64_MAX, SpanRecord

MAX_TOKENS = 10**12  # per span: far beyond any model call, far below the int64 sums
MAX_COST_USD = 1e6  # per span

_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)


def time_problem(span: Any) -> str | None:
    """Why an OTLP span's times cannot be stored, or None."""
    for name in ("start_time_unix_nano", "end_time_unix_nano"):
        value = getattr(span, name)
        if value > INT64_MAX:
            return (
                f"span {span.name!r}: {name} {value} is past 2^63-1 ns (after 2262);"
                " the span was rejected"
            )
    for event in span.events:
        if event.time_unix_nano > INT64_MAX:
            return (
                f"span {span.name!r}: event {event.name!r} time_unix_nano {event.time_unix_nano}"
                " is past 2^63-1 ns (after 2262); the span was rejected"
            )
    return None


def uncounted(record: SpanRecord) -> list[str]:
    """Leave out of `record` the token counts and cost that are beyond the limits;
    say what was left out."""
    llm = record.llm
    if llm is None:
        return []
    problems: list[str] = []
    for name in _TOKEN_FIELDS:
        value = getattr(llm, name)
        if value > MAX_TOKENS:
            setattr(llm, name, 0)
            problems.append(
                f"span {record.name!r}: {name} {value} is above {MAX_TOKENS} and was not counted"
            )
    cost = record.cost_usd
    if cost is not None and not (math.isfinite(cost) and cost <= MAX_COST_USD):
        record.cost_usd = llm.reported_cost_usd = None
        problems.append(
            f"span {record.name!r}: cost {cost} USD is above {MAX_COST_USD:g} and was not counted"
        )
    return problems
