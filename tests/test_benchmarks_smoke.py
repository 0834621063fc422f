"""The benchmark suite's plumbing, run small: the walk reference and one end-to-end
measurement on SQLite (a bridge on its defaults plus an ingestion exporter, the sink, the
load generator), two requests of 512 spans each. Checks that the command runs and counts
right, not how fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_the_suite_measures_end_to_end_and_checks_every_span_arrived(tmp_path: Path) -> None:
    out = tmp_path / "suite.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "suite.py"),
           "--skip", "ingest,pg,backlog", "--transports", "http",
           "--max-requests", "2", "--seconds", "60", "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    walk, row = json.loads(out.read_text())["rows"]
    assert (walk["section"], walk["ok"]) == ("reference", True)
    assert (row["section"], row["transport"], row["ok"]) == ("sqlite", "http", True)
    assert row["ratio"] == round(row["spans_per_s"] / walk["spans_per_s"], 3)
    detail = row["detail"]
    assert detail["acknowledged"] == detail["delivered"] == 2 * 512
    assert detail["requests_failed"] == 0
    assert row["spans_per_s"] > 0 and row["peak_rss_mb"] > 0
    # the CPU split by process: the bridge, and on 2 cores or more its map worker(s) and
    # its export process
    several = len(os.sched_getaffinity(0)) > 1
    roles = {"bridge", "map", "export"} if several else {"bridge"}
    assert set(detail["cpu_us_per_span_by_role"]) == roles
    assert "end to end, SQLite" in done.stdout
    # the CPU per span that 0.5x and 0.3x of the walk leave at the CPU the bridge got
    budgets = [row["cpu_pct"] * 1e4 / (t * walk["spans_per_s"]) for t in (0.5, 0.3)]
    assert (
        f"CPU per span that 0.5x / 0.3x of the walk leaves end to end (http, at"
        f" {row['cpu_pct']:.0f}% CPU): {budgets[0]:.0f} / {budgets[1]:.0f} us;"
        f" spent {row['cpu_us_per_span']:.0f}"
    ) in done.stdout
