"""How a `Rollup` is laid out in SQL columns, derived from `ROLLUP_COLUMNS`.

SUM/MIN/MAX columns are integers, UNION columns a JSON array of sorted strings,
EARLIEST columns a text value plus an integer `<name>_stamp`.
"""

from __future__ import annotations

import json
from typing import Any

from session_bridge.rollup.rollup import ROLLUP_COLUMNS, Merge, Rollup


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


def to_row(rollup: Rollup) -> tuple[Any, ...]:
    row: list[Any] = []
    for name, rule in ROLLUP_COLUMNS.items():
        value = getattr(rollup, name)
        if rule is Merge.EARLIEST:
            row += [None, None] if value is None else [value[1], value[0]]
        elif rule is Merge.UNION:
            row.append(json.dumps(sorted(value)))
        else:
            row.append(value)
    return tuple(row)


def from_row(row: tuple[Any, ...] | list[Any]) -> Rollup:
    values: dict[str, Any] = {}
    i = 0
    for name, rule in ROLLUP_COLUMNS.items():
        if rule is Merge.EARLIEST:
            text, stamp = row[i], row[i + 1]
            values[name] = None if text is None else (int(stamp), text)
            i += 2
        elif rule is Merge.UNION:
            values[name] = frozenset(json.loads(row[i]))
            i += 1
        else:
            values[name] = row[i]
            i += 1
    return Rollup(**values)
