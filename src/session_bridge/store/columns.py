"""How a `Rollup` is laid out in SQL columns, derived from `ROLLUP_COLUMNS`, and
how a stored span is read back.

SUM/MIN/MAX columns are integers, UNION columns a JSON array of sorted strings,
EARLIEST columns a text value plus an integer `<name>_stamp`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from session_bridge.model import EventType, LlmUsage, SpanRecord
from session_bridge.rollup.rollup import ROLLUP_COLUMNS, USAGE_COLUMNS, Merge, Rollup
from session_bridge.rollup.usage import UsageSpan


def sql_columns() -> list[tuple[str, str]]:
    """(column name, portable SQL type) for every rollup column, in table order."""
    out: list[tuple[str, str]] = []
    for name, rule in ROLLUP_COLUMNS.items():
        if rule is Merge.EARLIEST:
            out += [(name, "TEXT"), (f"{name}_stamp", "BIGINT")]
        elif rule is Merge.UNION:
            out.append((name, "TEXT NOT NULL DEFAULT '[]'"))
        elif rule is Merge.SUM:
            out.append((name, "BIGINT NOT NULL DEFAULT 0"))
        else:
            out.append((name, "BIGINT"))
    return out


COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in sql_columns())

# the usage columns (SUM and UNION columns: one SQL column each, of the field's name)
USAGE_COLUMN_NAMES: tuple[str, ...] = tuple(n for n in COLUMN_NAMES if n in USAGE_COLUMNS)
_USAGE_INDEXES = tuple(COLUMN_NAMES.index(n) for n in USAGE_COLUMN_NAMES)


def usage_row(rollup: Rollup) -> tuple[Any, ...]:
    """A rollup's usage columns as the values of `USAGE_COLUMN_NAMES`."""
    row = to_row(rollup)
    return tuple(row[i] for i in _USAGE_INDEXES)


# What `rollup.usage.UsageSpan` reads of a stored span, in its field order
USAGE_SPAN_COLUMNS = (
    "span_id", "parent_span_id", "start_ns", "response_id", "provider", "model", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens", "cost_usd",
)  # fmt: skip


def usage_span_of(row: Sequence[Any]) -> UsageSpan:
    """A row of `USAGE_SPAN_COLUMNS` as the usage rule reads it."""
    span_id, parent, start, response, provider, model, tokens_in, *rest = row
    if tokens_in is None:  # carries no usage: only its place in the tree matters
        return UsageSpan(bytes(span_id), bytes(parent) if parent is not None else None)
    out, cache_read, cache_creation, reasoning, cost = rest
    return UsageSpan(
        bytes(span_id),
        bytes(parent) if parent is not None else None,
        start,
        response,
        provider,
        model,
        tokens_in,
        out or 0,
        cache_read or 0,
        cache_creation or 0,
        reasoning or 0,
        cost,
    )


def _compile_row_codecs() -> tuple[
    Callable[[Rollup], tuple[Any, ...]], Callable[[Sequence[Any]], Rollup]
]:
    # Generated from ROLLUP_COLUMNS, as `rollup.merge` is: the writer converts a rollup
    # for every trace and session it touches, and a loop over the table with getattr
    # and a branch per column cost ~4x this straight-line code.
    cells: list[str] = []
    kwargs: list[str] = []
    i = 0
    for name, rule in ROLLUP_COLUMNS.items():
        if rule is Merge.EARLIEST:
            cells.append(f"*(r.{name}[::-1] if r.{name} is not None else _NO_STAMP)")
            kwargs.append(f"{name}=None if row[{i}] is None else (int(row[{i + 1}]), row[{i}])")
            i += 2
        elif rule is Merge.UNION:
            cells.append(f"_set_json(r.{name})")
            kwargs.append(f"{name}=_json_set(row[{i}])")
            i += 1
        else:
            cells.append(f"r.{name}")
            kwargs.append(f"{name}=row[{i}]")
            i += 1
    source = (
        f"def to_row(r):\n    return ({', '.join(cells)},)\n\n"
        f"def from_row(row):\n    return Rollup({', '.join(kwargs)})\n"
    )
    namespace: dict[str, Any] = {
        "Rollup": Rollup,
        "_NO_STAMP": (None, None),
        "_set_json": _set_json,
        "_json_set": _json_set,
    }
    exec(compile(source, "<rollup columns>", "exec"), namespace)
    return namespace["to_row"], namespace["from_row"]


@functools.lru_cache(maxsize=4096)
def _set_json(values: frozenset[str]) -> str:
    # the same few sets (services, models, providers) are written over and over
    return json.dumps(sorted(values))


@functools.lru_cache(maxsize=4096)
def _json_set(text: str) -> frozenset[str]:
    return frozenset(json.loads(text))


_to_row, _from_row = _compile_row_codecs()


def to_row(rollup: Rollup) -> tuple[Any, ...]:
    """A rollup as the values of `COLUMN_NAMES`."""
    return _to_row(rollup)


def from_row(row: Sequence[Any]) -> Rollup:
    """The rollup stored in the values of `COLUMN_NAMES`."""
    return _from_row(row)


# -- spans as the query side reads them back -----------------------------------------------

SPAN_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "event_type",
    "is_error",
    "service",
    "environment",
    "session_id",
    "user_id",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "cost_usd",
    "response_id",
    "scope_name",
    "resource_key",
    "otlp_span",
)


# -- spans as the stores write them ---------------------------------------------------------

# written, and read only by the export log (`store/export_log.py`)
SPAN_EXPORT_COLUMNS: tuple[str, ...] = ("ingestion_event", "trace_fields")

# `session_id` is last: it is the trace's, known only to the store at write time
SPAN_WRITE_COLUMNS: tuple[str, ...] = (
    *SPAN_COLUMNS[:3],
    "project_id",
    *(name for name in SPAN_COLUMNS[3:] if name != "session_id"),
    *SPAN_EXPORT_COLUMNS,
    "session_id",
)


def span_row(r: SpanRecord, project_id: str) -> tuple[Any, ...]:
    """A span as stored, in the order of `SPAN_WRITE_COLUMNS` but for the last one
    (`session_id`, its trace's, which the store appends)."""
    llm = r.llm
    return (
        r.trace_id,
        r.span_id,
        r.parent_span_id,
        project_id,
        r.name,
        r.kind,
        r.start_ns,
        r.end_ns,
        r.status_code,
        r.status_message,
        r.event_type.value,
        r.is_error,
        r.service,
        r.environment,
        r.user_id,
        llm.provider if llm else None,
        llm.model if llm else None,
        llm.input_tokens if llm else None,
        llm.output_tokens if llm else None,
        llm.cache_read_tokens if llm else None,
        llm.cache_creation_tokens if llm else None,
        llm.reasoning_tokens if llm else None,
        r.cost_usd,
        r.response_id,
        r.scope_name,
        r.resource_key,
        r.otlp_span,
        r.ingestion_event,
        r.trace_fields,
    )


def span_values(r: SpanRecord, project_id: str, session_id: str | None) -> tuple[Any, ...]:
    """A span as stored, in the order of `SPAN_WRITE_COLUMNS` (`session_id`: its trace's)."""
    return (*span_row(r, project_id), session_id)


def span_select(alias: str) -> str:
    """The SELECT list of `SPAN_COLUMNS` from table alias `alias`, for `span_from_row`."""
    return ", ".join(f"{alias}.{name}" for name in SPAN_COLUMNS)


def span_export_select(alias: str) -> str:
    """The SELECT list of `SPAN_EXPORT_COLUMNS` from table alias `alias`."""
    return ", ".join(f"{alias}.{name}" for name in SPAN_EXPORT_COLUMNS)


_EVENT_TYPES = {e.value: e for e in EventType}  # a lookup, ~5x cheaper than EventType(value)


def span_from_row(row: Sequence[Any]) -> SpanRecord:
    (
        trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code,
        status_message, event_type, is_error, service, environment, session_id, user_id,
        provider, model, input_tokens, output_tokens, cache_read, cache_creation, reasoning,
        cost_usd, response_id, scope_name, resource_key, otlp_span,
    ) = row  # fmt: skip
    event = _EVENT_TYPES.get(event_type) or EventType(event_type)
    llm = None
    # (usage columns are written for every span that carries usage: `span_row`)
    if event is EventType.LLM_CALL or input_tokens is not None:
        llm = LlmUsage(
            provider,
            model,
            input_tokens or 0,
            output_tokens or 0,
            cache_read or 0,
            cache_creation or 0,
            reasoning or 0,
        )
    # positional, in the dataclasses' field order (test_span_columns holds it): the
    # export log reads every span this way, and keywords cost twice as much. (Both
    # drivers return BLOB and bytea columns as bytes.)
    return SpanRecord(
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        start_ns,
        end_ns,
        status_code,
        status_message,
        event,
        bool(is_error),
        service,
        environment,
        session_id,
        user_id,
        None,  # client
        None,  # geo
        llm,
        cost_usd,
        scope_name,
        otlp_span,
        resource_key,
        response_id,
    )
