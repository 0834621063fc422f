"""`rollup.merge` as SQL, generated from `ROLLUP_COLUMNS` over the layout of `columns`.

`merge_assignments(stored, incoming)` is the SET list of an
`INSERT … ON CONFLICT … DO UPDATE` that folds the incoming rollup columns into the
stored row in place, in one atomic statement (PostgreSQL):

* SUM: `stored + incoming`, saturating at 2^63 - 1 as `merge` does;
* MIN / MAX: `LEAST` / `GREATEST`, which skip NULLs as `merge` skips "no value yet";
* UNION: the sorted JSON array of both arrays' members (`columns` stores sets so);
* EARLIEST: the `(stamp, value)` pair that compares lower, ties broken by the value in
  code-point order (`COLLATE "C"`), as Python compares the tuples.

The right-hand sides of an UPDATE all read the row as it was, so the value and the
stamp of an EARLIEST column are decided by the same comparison.
"""

from __future__ import annotations

from collections.abc import Collection

from session_bridge.model import INT64_MAX
from session_bridge.rollup.rollup import ROLLUP_COLUMNS, Merge


def _union(old: str, new: str) -> str:
    members = (
        f"SELECT json_array_elements_text({old}::json)"
        f" UNION SELECT json_array_elements_text({new}::json)"
    )
    return (
        f"CASE WHEN {new} = '[]' OR {new} = {old} THEN {old} WHEN {old} = '[]' THEN {new}"
        f' ELSE (SELECT json_agg(m ORDER BY m COLLATE "C")::text FROM ({members}) AS u(m)) END'
    )


def _takes_incoming(old: str, new: str, stamp_old: str, stamp_new: str) -> str:
    return (
        f"{new} IS NOT NULL AND ({old} IS NULL"
        f' OR ({stamp_new}, {new} COLLATE "C") < ({stamp_old}, {old} COLLATE "C"))'
    )


def merge_expressions(
    stored: str, incoming: str, exclude: Collection[str] = ()
) -> list[tuple[str, str]]:
    """(column, SQL expression of its merged value) for every rollup column (but those
    of `exclude`), in table order; `stored` and `incoming` are the table aliases (e.g.
    `cur`, `EXCLUDED`)."""
    out: list[tuple[str, str]] = []
    for name, rule in ROLLUP_COLUMNS.items():
        if name in exclude:
            continue
        old, new = f"{stored}.{name}", f"{incoming}.{name}"
        if rule is Merge.SUM:  # saturating, as `merge`: never "bigint out of range"
            out.append((name, f"LEAST({old}::numeric + {new}, {INT64_MAX})::bigint"))
        elif rule is Merge.MIN:
            out.append((name, f"LEAST({old}, {new})"))
        elif rule is Merge.MAX:
            out.append((name, f"GREATEST({old}, {new})"))
        elif rule is Merge.UNION:
            out.append((name, _union(old, new)))
        else:
            stamp = f"{name}_stamp"
            take = _takes_incoming(old, new, f"{stored}.{stamp}", f"{incoming}.{stamp}")
            out.append((name, f"CASE WHEN {take} THEN {new} ELSE {old} END"))
            out.append(
                (stamp, f"CASE WHEN {take} THEN {incoming}.{stamp} ELSE {stored}.{stamp} END")
            )
    return out


def merge_assignments(stored: str, incoming: str, exclude: Collection[str] = ()) -> str:
    """`col = <merged value>, …` for the DO UPDATE SET of an upsert."""
    return ",\n  ".join(
        f"{name} = {expr}" for name, expr in merge_expressions(stored, incoming, exclude)
    )
