"""Hypothesis strategies shared by the rollup tests, derived from `ROLLUP_COLUMNS`."""

from __future__ import annotations

from hypothesis import strategies as st

from session_bridge.rollup.rollup import ROLLUP_COLUMNS, Merge, Rollup


def rollups(
    texts: st.SearchStrategy[str], bound: st.SearchStrategy[int], count: st.SearchStrategy[int]
) -> st.SearchStrategy[Rollup]:
    """Rollups whose MIN/MAX columns draw from `bound` (or are unset), SUM columns from
    `count`, UNION and EARLIEST columns from `texts` (EARLIEST stamps 0..5, to force ties)."""
    by_rule = {
        Merge.MIN: st.none() | bound,
        Merge.MAX: st.none() | bound,
        Merge.SUM: count,
        Merge.UNION: st.frozensets(texts, max_size=4),
        Merge.EARLIEST: st.none() | st.tuples(st.integers(0, 5), texts),
    }
    return st.builds(Rollup, **{name: by_rule[rule] for name, rule in ROLLUP_COLUMNS.items()})
