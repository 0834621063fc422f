"""Per-trace and per-session rollups, and the one function that merges them.

A rollup is described by `ROLLUP_COLUMNS`: each column says how two partial
values combine. Every rule is commutative and associative, so partial rollups
(one per request, per trace, per replica) can be merged in any order and give
the same result. Stores persist these columns and must merge through `merge`
(or, for SQL upserts, through SQL derived from the same table).

`EARLIEST` columns keep the value seen on the earliest span: they are held as
`(stamp_ns, value)` pairs and compared as pairs, so ties are broken by value.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from session_bridge.model import INT64_MAX, ClientInfo, GeoInfo, SpanRecord

Stamped = tuple[int, str]

NANO_USD = 1_000_000_000  # costs are summed as integer nano-dollars, exactly


class Merge(Enum):
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    UNION = "union"
    EARLIEST = "earliest"


@dataclass(slots=True)
class Rollup:
    start_ns: int | None = None
    end_ns: int | None = None
    trace_count: int = 0
    span_count: int = 0
    error_count: int = 0
    services: frozenset[str] = frozenset()
    user_id: Stamped | None = None
    environment: Stamped | None = None
    client: Stamped | None = None  # value: JSON of ClientInfo
    geo: Stamped | None = None  # value: JSON of GeoInfo
    request_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nano_usd: int = 0
    unpriced_count: int = 0  # LLM calls whose cost is unknown
    models: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()


ROLLUP_COLUMNS: dict[str, Merge] = {
    "start_ns": Merge.MIN,
    "end_ns": Merge.MAX,
    "trace_count": Merge.SUM,
    "span_count": Merge.SUM,
    "error_count": Merge.SUM,
    "services": Merge.UNION,
    "user_id": Merge.EARLIEST,
    "environment": Merge.EARLIEST,
    "client": Merge.EARLIEST,
    "geo": Merge.EARLIEST,
    "request_count": Merge.SUM,
    "input_tokens": Merge.SUM,
    "output_tokens": Merge.SUM,
    "cache_read_tokens": Merge.SUM,
    "cache_creation_tokens": Merge.SUM,
    "reasoning_tokens": Merge.SUM,
    "cost_nano_usd": Merge.SUM,
    "unpriced_count": Merge.SUM,
    "models": Merge.UNION,
    "providers": Merge.UNION,
}

# The columns the span tree decides (`rollup/usage.py`): a trace's are recomputed from
# its spans and replace the previous ones, in the trace and in its session.
USAGE_COLUMNS: frozenset[str] = frozenset(
    {
        "request_count",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
        "cost_nano_usd",
        "unpriced_count",
        "models",
        "providers",
    }
)

# A rollup's field values in field order (`Rollup(*rollup_values(r))` equals `r`): how a
# map worker ships rollups, since a tuple pickles ~4x cheaper than a slots dataclass.
rollup_values: Callable[[Rollup], tuple[Any, ...]] = operator.attrgetter(
    *(f.name for f in fields(Rollup))
)

if set(ROLLUP_COLUMNS) != {f.name for f in fields(Rollup)}:  # pragma: no cover - import-time check
    raise RuntimeError("ROLLUP_COLUMNS and Rollup disagree")


def _expression(rule: Merge, a: str, b: str) -> str:
    """Python source combining two values under `rule` (None means "no value yet")."""
    if rule is Merge.SUM:  # saturating: the stores keep signed 64-bit integers
        return f"min({a} + {b}, {INT64_MAX})"
    if rule is Merge.UNION:
        return f"({a} | {b}) if {b} else {a}"
    pick = "max" if rule is Merge.MAX else "min"  # EARLIEST compares (stamp, value) pairs
    return f"{b} if {a} is None else ({a} if {b} is None else {pick}({a}, {b}))"


def _compile_merge() -> Callable[[Rollup, Rollup], Rollup]:
    # Generated from ROLLUP_COLUMNS so that the rules stay in that one table while
    # the merge itself runs as straight-line code (the writer runs it per trace and
    # per session it touches).
    args = ", ".join(
        f"{name}=({_expression(rule, 'a.' + name, 'b.' + name)})"
        for name, rule in ROLLUP_COLUMNS.items()
    )
    namespace: dict[str, Any] = {"Rollup": Rollup}
    exec(
        compile(f"def merge(a, b):\n    return Rollup({args})\n", "<rollup merge>", "exec"),
        namespace,
    )
    merge_function: Callable[[Rollup, Rollup], Rollup] = namespace["merge"]
    return merge_function


_merge = _compile_merge()


def merge(a: Rollup, b: Rollup) -> Rollup:
    """Combine two partial rollups into a new one. Commutative and associative."""
    return _merge(a, b)


def with_usage(rollup: Rollup, usage: Rollup) -> Rollup:
    """`rollup` with the usage columns of `usage` instead of its own."""
    out = Rollup(*rollup_values(rollup))
    set_usage(out, usage)
    return out


def set_usage(rollup: Rollup, usage: Rollup) -> None:
    """Give `rollup` the usage columns of `usage`, in place."""
    for name in USAGE_COLUMNS:
        setattr(rollup, name, getattr(usage, name))


def usage_change(old: Rollup, new: Rollup) -> Rollup:
    """What replacing usage `old` by `new` adds to a sum of rollups: the difference of
    the counts, and `new`'s models and providers (a set that loses members cannot be
    undone by a union: `shrinks` tells when the sum's sets must be taken again)."""
    change = Rollup()
    for name, rule in ROLLUP_COLUMNS.items():
        if name not in USAGE_COLUMNS:
            continue
        if rule is Merge.SUM:
            setattr(change, name, getattr(new, name) - getattr(old, name))
        else:
            setattr(change, name, getattr(new, name))
    return change


def shrinks(old: Rollup, new: Rollup) -> bool:
    """Whether replacing usage `old` by `new` drops a model or a provider."""
    return not (old.models <= new.models and old.providers <= new.providers)


def from_span(record: SpanRecord) -> Rollup:
    """The contribution of one span (trace_count is added when a trace joins a session)."""
    rollup = Rollup()
    add_span(rollup, record)
    return rollup


def add_span(rollup: Rollup, record: SpanRecord) -> None:
    """`rollup = merge(rollup, from_span(record))`, in place and without building the
    span's own rollup: folding runs this once per span. The one statement of what a
    span contributes by itself; the tests hold it to `merge`. Usage (`USAGE_COLUMNS`)
    is not a span's own: the trace's span tree decides it (`rollup/usage.py`)."""
    start = record.start_ns
    end = record.end_ns if record.end_ns > start else start
    if rollup.start_ns is None or start < rollup.start_ns:
        rollup.start_ns = start
    if rollup.end_ns is None or end > rollup.end_ns:
        rollup.end_ns = end
    rollup.span_count += 1
    if record.is_error:
        rollup.error_count += 1
    if record.service and record.service not in rollup.services:
        rollup.services = rollup.services | {record.service}
    # EARLIEST columns: the (stamp, value) pair that compares lower; the JSON of a
    # client or place is built only when its stamp can win
    if record.user_id and _may_precede(rollup.user_id, start):
        rollup.user_id = _earlier(rollup.user_id, (start, record.user_id))
    if record.environment and _may_precede(rollup.environment, start):
        rollup.environment = _earlier(rollup.environment, (start, record.environment))
    if record.client is not None and _may_precede(rollup.client, start):
        rollup.client = _earlier(rollup.client, (start, _compact_json(record.client)))
    if record.geo is not None and _may_precede(rollup.geo, start):
        rollup.geo = _earlier(rollup.geo, (start, _compact_json(record.geo)))


def _may_precede(current: Stamped | None, stamp: int) -> bool:
    return current is None or stamp <= current[0]


def _earlier(current: Stamped | None, candidate: Stamped) -> Stamped:
    return candidate if current is None or candidate < current else current


def _compact_json(value: ClientInfo | GeoInfo) -> str:
    return _json_of_fields(tuple(getattr(value, name) for name in value.__slots__), value.__slots__)


@functools.lru_cache(maxsize=4096)
def _json_of_fields(values: tuple[Any, ...], names: tuple[str, ...]) -> str:
    # few distinct clients and places per process: encode each once
    return json.dumps(
        {name: v for name, v in zip(names, values, strict=True) if v is not None}, sort_keys=True
    )


def estimated_cost_usd(rollup: Rollup) -> float | None:
    """The cost of a rollup's priced LLM calls in USD; None when none could be priced."""
    if rollup.request_count > rollup.unpriced_count:
        return rollup.cost_nano_usd / NANO_USD
    return None


# `estimated_cost_usd` over the rollup's columns, for the searches' SQL
COST_USD_SQL = f"CASE WHEN request_count > unpriced_count THEN cost_nano_usd / {NANO_USD}.0 END"


def client_of(rollup: Rollup) -> ClientInfo | None:
    return ClientInfo(**json.loads(rollup.client[1])) if rollup.client else None


def geo_of(rollup: Rollup) -> GeoInfo | None:
    return GeoInfo(**json.loads(rollup.geo[1])) if rollup.geo else None


def stamped_value(value: Stamped | None) -> str | None:
    return value[1] if value is not None else None
