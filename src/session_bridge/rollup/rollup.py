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
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from session_bridge.model import ClientInfo, GeoInfo, SpanRecord

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

if set(ROLLUP_COLUMNS) != {f.name for f in fields(Rollup)}:  # pragma: no cover - import-time check
    raise RuntimeError("ROLLUP_COLUMNS and Rollup disagree")


def _expression(rule: Merge, a: str, b: str) -> str:
    """Python source combining two values under `rule` (None means "no value yet")."""
    if rule is Merge.SUM:
        return f"{a} + {b}"
    if rule is Merge.UNION:
        return f"({a} | {b}) if {b} else {a}"
    pick = "max" if rule is Merge.MAX else "min"  # EARLIEST compares (stamp, value) pairs
    return f"{b} if {a} is None else ({a} if {b} is None else {pick}({a}, {b}))"


def _compile_merges() -> tuple[
    Callable[[Rollup, Rollup], Rollup], Callable[[Rollup, Rollup], None]
]:
    # Generated from ROLLUP_COLUMNS so that the rules stay in that one table while
    # the merge itself runs as straight-line code (it runs once per span on ingest).
    args = ", ".join(
        f"{name}=({_expression(rule, 'a.' + name, 'b.' + name)})"
        for name, rule in ROLLUP_COLUMNS.items()
    )
    body = "\n".join(
        f"    a.{name} = {_expression(rule, 'a.' + name, 'b.' + name)}"
        for name, rule in ROLLUP_COLUMNS.items()
    )
    source = f"def merge(a, b):\n    return Rollup({args})\n\ndef merge_into(a, b):\n{body}\n"
    namespace: dict[str, Any] = {"Rollup": Rollup}
    exec(compile(source, "<rollup merge>", "exec"), namespace)
    return namespace["merge"], namespace["merge_into"]


_merge, _merge_into = _compile_merges()


def merge(a: Rollup, b: Rollup) -> Rollup:
    """Combine two partial rollups into a new one. Commutative and associative."""
    return _merge(a, b)


def merge_into(a: Rollup, b: Rollup) -> None:
    """`a = merge(a, b)`, in place."""
    _merge_into(a, b)


def from_span(record: SpanRecord) -> Rollup:
    """The contribution of one span (trace_count is added when a trace joins a session)."""
    stamp = record.start_ns
    rollup = Rollup(
        start_ns=record.start_ns,
        end_ns=max(record.end_ns, record.start_ns),
        span_count=1,
        error_count=1 if record.is_error else 0,
        services=frozenset((record.service,)) if record.service else frozenset(),
        user_id=(stamp, record.user_id) if record.user_id else None,
        environment=(stamp, record.environment) if record.environment else None,
        client=(stamp, _compact_json(record.client)) if record.client else None,
        geo=(stamp, _compact_json(record.geo)) if record.geo else None,
    )
    llm = record.llm
    if llm is not None:
        rollup.request_count = 1
        rollup.input_tokens = llm.input_tokens
        rollup.output_tokens = llm.output_tokens
        rollup.cache_read_tokens = llm.cache_read_tokens
        rollup.cache_creation_tokens = llm.cache_creation_tokens
        rollup.reasoning_tokens = llm.reasoning_tokens
        if record.cost_usd is None:
            rollup.unpriced_count = 1
        else:
            rollup.cost_nano_usd = round(record.cost_usd * NANO_USD)
        if llm.model:
            rollup.models = frozenset((llm.model,))
        if llm.provider:
            rollup.providers = frozenset((llm.provider,))
    return rollup


def _compact_json(value: ClientInfo | GeoInfo) -> str:
    return _json_of_fields(tuple(getattr(value, name) for name in value.__slots__), value.__slots__)


@functools.lru_cache(maxsize=4096)
def _json_of_fields(values: tuple[Any, ...], names: tuple[str, ...]) -> str:
    # few distinct clients and places per process: encode each once
    return json.dumps(
        {name: v for name, v in zip(names, values, strict=True) if v is not None}, sort_keys=True
    )


def client_of(rollup: Rollup) -> ClientInfo | None:
    return ClientInfo(**json.loads(rollup.client[1])) if rollup.client else None


def geo_of(rollup: Rollup) -> GeoInfo | None:
    return GeoInfo(**json.loads(rollup.geo[1])) if rollup.geo else None


def stamped_value(value: Stamped | None) -> str | None:
    return value[1] if value is not None else None
