"""What the benchmarks print and write: aligned text tables, run.py's table and JSON
document, and the versions of what was measured."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict
from pathlib import Path

from measure import RunResult

NOT_RUN = "not run (interrupted)"
NOISY_OTHER_CPU = 30.0  # other processes' CPU (% of one core) above which a run is flagged

HEADER = ["target", "transport", "spans/s", "p50 ms", "p99 ms", "peak RSS MB", "peak PSS MB"]
HEADER += ["srv CPU%"]
HEADER += ["cli CPU%", "other CPU%", "vs walk", "status"]


def text_table(rows: Sequence[Sequence[str]], right: Collection[int]) -> list[str]:
    """`rows` (the header first) in aligned columns, the `right` ones right-aligned, with a
    rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def fmt_row(r: RunResult) -> list[str]:
    if not r.ok:
        first = r.error.splitlines()[0] if r.error else "failed"
        return [r.target, r.transport, *["-"] * 9, f"FAILED: {first[:80]}"]
    ratio = f"{r.ratio_vs_walk:.2f}x" if r.ratio_vs_walk is not None else "-"
    rss = f"{r.peak_rss_mb:.0f}" + (f" ({r.rss_processes} procs)" if r.rss_processes > 1 else "")
    status = "ok (noisy)" if r.other_cpu_pct > NOISY_OTHER_CPU else "ok"
    return [
        r.target, r.transport, f"{r.spans_per_s:,.0f}", f"{r.latency_p50_ms:.1f}",
        f"{r.latency_p99_ms:.1f}", rss, f"{r.peak_pss_mb:.0f}", f"{r.server_cpu_pct:.0f}",
        f"{r.client_cpu_pct:.0f}",
        f"{r.other_cpu_pct:.0f}", ratio, status,
    ]  # fmt: skip


def fmt_table(results: list[RunResult]) -> str:
    lines = text_table([HEADER, *(fmt_row(r) for r in results)], {2, 3, 4, 6, 7, 8, 9, 10})
    lines.append(
        "CPU% columns: 100 = one core busy, during the measurement (server process tree, load "
        "generator, everything else on the machine)."
    )
    if any(r.ok and r.other_cpu_pct > NOISY_OTHER_CPU for r in results):
        lines.append(
            f"(noisy) = other processes used more than {NOISY_OTHER_CPU:.0f}% of a core: "
            "compare ratios, and use --repeat N (interleaved runs, median reported)."
        )
    return "\n".join(lines)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    from importlib import metadata

    for dist in (
        "grpcio",
        "protobuf",
        "uvicorn",
        "starlette",
        "uvloop",
        "httptools",
        "otel-session-bridge",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    with contextlib.suppress(Exception):
        from google.protobuf.internal import api_implementation

        out["protobuf_backend"] = api_implementation.Type()
    return out


def report(results: list[RunResult], args: argparse.Namespace) -> None:
    print()
    print(fmt_table(results))
    multi = [r for r in results if r.rss_processes > 1]
    if multi:
        print(
            "\npeak RSS is the sum of the VmHWM of the server and its child processes for: "
            + ", ".join(f"{r.target}/{r.transport}" for r in multi)
        )
    for r in results:
        if not r.ok and r.error != NOT_RUN:
            print(f"\n{r.target}/{r.transport} failed:\n{r.error}")
    if args.json is not None:
        doc = {
            "meta": {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "versions": versions(),
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            },
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
