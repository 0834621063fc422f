"""The whole flow in one run: the parse-and-walk reference, ingest only, and end to end
(OTLP in -> the ingestion endpoint's acknowledgement of the last span) on SQLite and on
PostgreSQL with 1 and 3 replicas, each as spans/s, as a ratio to the reference measured in
the same run, and with the peak RSS of the bridge's process tree; then the `file`
exporter's cost on ingest and the peak RSS with a 1M-span backlog.

    .venv/bin/python benchmarks/suite.py                       # everything, about 6 minutes
    .venv/bin/python benchmarks/suite.py --seconds 5 --backlog 200000 --json out.json
    .venv/bin/python benchmarks/suite.py --skip pg,backlog --transports http

Every bridge runs on the shipped defaults (no `--workers`, no tuning); the end-to-end rows
add one `ingestion` exporter pointed at benchmarks/ingestion_sink.py. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import run
from bridge import PG_DSN, default_bridge_cmd, drop_schemas
from deployment import Deployment, deliver, drain_backlog
from measure import TRANSPORTS, measure
from processes import CLK_TCK, BenchError, Children, interrupt_on_signals
from report import text_table, versions

SECTIONS = ("reference", "ingest", "sqlite", "pg", "backlog")
SCHEMA_PREFIX = f"suite_{os.getpid()}_"
NO_EXPORTERS = "ingest, defaults + exporters: {}"
FILE_ONLY = "ingest, defaults + file exporter"  # exporters: {file: {}}
# end to end on the defaults, as a share of the walk reference: the goal, and the floor
TARGET_RATIOS = (0.5, 0.3)


@dataclass
class Row:
    """One line of the report."""

    section: str
    name: str
    transport: str
    ok: bool = True
    error: str = ""
    spans_per_s: float = 0.0
    ratio: float | None = None  # spans_per_s / the reference's on the same transport
    peak_rss_mb: float = 0.0  # sum of VmHWM over every process of the bridge tree(s)
    processes: int = 0  # how many processes that sum covers
    cpu_pct: float = 0.0  # the bridge tree(s) during the load; 100 = one core
    cpu_us_per_span: float = 0.0  # the bridge tree(s)' CPU time per acknowledged span
    detail: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- measurements


def deployment(
    children: Children, workdir: Path, args: argparse.Namespace, **kw: Any
) -> Deployment:
    """The sink and the bridges of one row, on the shipped defaults."""
    return Deployment(
        children, workdir, bridge_cmd=args.bridge_cmd, pg_dsn=args.pg_dsn,
        schema_prefix=SCHEMA_PREFIX, keep_file_exporter=args.keep_file_exporter,
        ready_timeout=args.ready_timeout, **kw,
    )  # fmt: skip


def end_to_end(
    children: Children,
    workdir: Path,
    args: argparse.Namespace,
    backend: str,
    replicas: int,
    transport: str,
) -> Row:
    """Load for --seconds, then wait until the sink holds every acknowledged span."""
    section = "sqlite" if backend == "sqlite" else "pg"
    name = "end to end, SQLite" if backend == "sqlite" else f"end to end, PostgreSQL x{replicas}"
    dep = deployment(children, workdir, args, backend=backend, replicas=replicas)
    try:
        roles0 = dep.ticks_by_role()
        done = deliver(
            dep, transport, args.seconds, args.max_requests or 10_000_000, args.concurrency,
            args.seed, args.drain_timeout,
        )  # fmt: skip
        result, stats, acked = done.load, done.sink, done.acknowledged
        if acked == 0:
            raise BenchError(f"no span acknowledged: {result['errors']}")
        roles1 = dep.ticks_by_role()
        rss, procs = dep.peak_rss()
        elapsed = stats["last_at"] - done.started_at
        detail = {
            "acknowledged": acked,
            "delivered": stats["observations"],
            "duplicates": stats["duplicates"],
            "requests_failed": result["requests_failed"],
            "errors": result["errors"],
            "ingest_spans_per_s": result["spans_per_s"],
            "export_lag_after_load_s": round(max(stats["last_at"] - done.loaded_at, 0.0), 1),
            "requests_to_sink": stats["requests"],
            "sustained_spans_per_s": round(done.sustained_spans_per_s or 0.0, 1),
            "peak_pss_mb": dep.peak_pss_mb(),
            "other_cpu_pct": done.other_cpu_pct,
            # where the CPU went: the bridge process(es), the map workers, the export processes
            "cpu_us_per_span_by_role": {
                name: round((roles1[name] - roles0.get(name, 0)) / CLK_TCK * 1e6 / acked, 1)
                for name in sorted(roles1)
            },
        }
        row = Row(section, name, transport, peak_rss_mb=rss, processes=procs, detail=detail)
        cpu_s = (sum(roles1.values()) - sum(roles0.values())) / CLK_TCK
        row.cpu_pct = round(100.0 * cpu_s / max(elapsed, 1e-9))
        row.cpu_us_per_span = round(cpu_s * 1e6 / acked, 1)
        if not done.delivered:
            row.ok = False
            row.error = (
                f"delivered {stats['observations']} of {acked} acknowledged spans within "
                f"{args.drain_timeout:.0f}s after the load"
            )
        else:
            row.spans_per_s = round(acked / elapsed, 1)
        return row
    except BenchError as exc:
        raise BenchError(f"{exc}\n{dep.log_tails()}") from None
    finally:
        dep.stop()


def backlog(children: Children, workdir: Path, args: argparse.Namespace) -> Row:
    """The sink down while --backlog spans are accepted over HTTP, then up: peak RSS of the
    bridge tree while it holds and drains the backlog (which lives on disk, in the store)."""
    dep = deployment(children, workdir, args, sink_down=True)
    try:
        drain = drain_backlog(dep, args.backlog, args.concurrency, args.seed, args.backlog_timeout)
        result, stats, acked = drain.delivery.load, drain.delivery.sink, drain.delivery.acknowledged
        rss, procs = dep.peak_rss()
        row = Row(
            "backlog", f"backlog of {acked:,} spans", "http", peak_rss_mb=rss, processes=procs
        )
        row.detail = {
            "acknowledged": acked,
            "delivered": stats["observations"],
            "duplicates": stats["duplicates"],
            "requests_failed_while_down": result["requests_failed"],
            "ingest_spans_per_s": result["spans_per_s"],
            "peak_rss_mb_with_backlog_before_drain": drain.peak_rss_mb_before,
            "peak_rss_now_sum_mb_during_drain": round(drain.peak_rss_now_kb / 1024, 1),
            "drain_s": round(drain.drain_s, 1),
            "data_dir_mb": round(dep.data_dir_bytes() / 1e6),
        }
        if not drain.delivery.delivered:
            row.ok = False
            row.error = f"drained {stats['observations']} of {acked} spans"
        else:
            row.spans_per_s = round(acked / max(drain.drain_s, 1e-9), 1)  # the drain rate
        return row
    except BenchError as exc:
        raise BenchError(f"{exc}\n{dep.log_tails()}") from None
    finally:
        dep.stop()


def ingest(
    children: Children,
    workdir: Path,
    args: argparse.Namespace,
    target: str,
    transport: str,
    config: Path | None,
) -> dict[str, Any]:
    """run.py's measurement (warm-up, then --seconds of load) of one server."""
    rargs = run.parse_args(
        [
            "--targets",
            "walk",
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--concurrency",
            str(args.concurrency),
            "--seed",
            str(args.seed),
            "--bridge-workers",
            "0",
            "--ready-timeout",
            str(args.ready_timeout),
            "--max-requests",
            str(args.max_requests),
        ]
    )
    rargs.bridge_cmd = args.bridge_cmd
    rargs.bridge_config = config
    return measure(target, transport, rargs, children, workdir)


def ingest_row(section: str, name: str, result: dict[str, Any], transport: str) -> Row:
    row = Row(section, name, transport, spans_per_s=float(result["spans_per_s"]))
    row.peak_rss_mb = round(result["peak_rss_kb"] / 1024, 1)
    row.processes = int(result["rss_processes"])
    row.cpu_pct = float(result["server_cpu_pct"])
    if row.spans_per_s:
        row.cpu_us_per_span = round(row.cpu_pct / 100 * 1e6 / row.spans_per_s, 1)
    row.detail = {
        "requests_failed": result["requests_failed"],
        "errors": result["errors"],
        "p99_ms": result["latency_p99_ms"],
        "other_cpu_pct": result["other_cpu_pct"],
    }
    if result["requests_failed"] or not result["spans_acknowledged"]:
        row.ok = False
        row.error = f"{result['requests_failed']} requests failed: {result['errors']}"
    return row


# --------------------------------------------------------------------------- the run


@dataclass
class Step:
    section: str
    name: str
    transport: str
    measure: Callable[[Children, Path], Row]


def ingest_step(
    args: argparse.Namespace, section: str, name: str, target: str, transport: str,
    config: Path | None,
) -> Step:  # fmt: skip
    def measure(children: Children, workdir: Path) -> Row:
        result = ingest(children, workdir, args, target, transport, config)
        return ingest_row(section, name, result, transport)

    return Step(section, name, transport, measure)


def plan(args: argparse.Namespace, workdir: Path) -> list[Step]:
    """The measurements in run order, per transport the reference first."""
    no_exporters = workdir / "no-exporters.yaml"
    no_exporters.write_text("exporters: {}\n")
    file_only = workdir / "file-exporter.yaml"
    file_only.write_text("exporters:\n  file: {}\n")  # the file exporter on its defaults
    steps: list[Step] = []
    for t in args.transports:
        if "reference" not in args.skip:
            steps.append(ingest_step(args, "reference", "walk reference", "walk", t, None))
        if "ingest" not in args.skip:
            steps.append(ingest_step(args, "ingest", "ingest, defaults", "bridge", t, None))
            steps.append(ingest_step(args, "ingest", NO_EXPORTERS, "bridge", t, no_exporters))
            steps.append(ingest_step(args, "ingest", FILE_ONLY, "bridge", t, file_only))
        if "sqlite" not in args.skip:
            e2e = partial(end_to_end, args=args, backend="sqlite", replicas=1, transport=t)
            steps.append(Step("sqlite", "end to end, SQLite", t, e2e))
        if "pg" not in args.skip:
            for n in args.replicas:
                e2e = partial(end_to_end, args=args, backend="pg", replicas=n, transport=t)
                steps.append(Step("pg", f"end to end, PostgreSQL x{n}", t, e2e))
    if "backlog" not in args.skip and args.backlog > 0:
        name = f"backlog of {args.backlog:,} spans"
        steps.append(Step("backlog", name, "http", partial(backlog, args=args)))
    return steps


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], bool]:
    children = Children()
    rows: list[Row] = []
    interrupted = False
    steps = plan(args, workdir)
    print(f"{len(steps)} measurements, {args.seconds:g}s of load each", file=sys.stderr)
    try:
        for n, step in enumerate(steps):
            section, name, transport = step.section, step.name, step.transport
            print(
                f"[{n + 1}/{len(steps)}] {name} {transport} ... ",
                end="",
                file=sys.stderr,
                flush=True,
            )
            where = workdir / f"{n:02d}-{section}-{transport}"
            where.mkdir()
            started = time.monotonic()
            try:
                row = step.measure(children, where)
            except BenchError as exc:
                row = Row(section, name, transport, ok=False, error=str(exc))
            took = time.monotonic() - started
            print(
                f"{row.spans_per_s:,.0f} spans/s ({took:.0f}s)"
                if row.ok
                else f"FAILED: {row.error.splitlines()[0]}",
                file=sys.stderr,
            )
            rows.append(row)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted; stopping child processes", file=sys.stderr)
    finally:
        children.stop_all()
        if "pg" not in args.skip:
            with contextlib.suppress(Exception):
                drop_schemas(args.pg_dsn, SCHEMA_PREFIX)
    reference = reference_rates(rows)
    for r in rows:
        if r.ok and r.section != "backlog" and reference.get(r.transport):
            r.ratio = round(r.spans_per_s / reference[r.transport], 3)
            sustained = r.detail.get("sustained_spans_per_s")
            if sustained:
                r.detail["sustained_ratio"] = round(sustained / reference[r.transport], 3)
    return rows, interrupted


def reference_rates(rows: list[Row]) -> dict[str, float]:
    """The walk reference's spans/s, per transport."""
    return {r.transport: r.spans_per_s for r in rows if r.section == "reference" and r.ok}


def cpu_budgets(rows: list[Row]) -> list[str]:
    """Per end-to-end SQLite row: the CPU per span that each of `TARGET_RATIOS` would leave,
    at the CPU the bridge's processes got (their CPU%), beside what they spent: the rate
    is that CPU over the CPU per span, so a ratio is reached when its budget is not spent."""
    reference = reference_rates(rows)
    lines = []
    for r in rows:
        walk = reference.get(r.transport)
        if r.section != "sqlite" or not r.ok or not walk or not r.cpu_us_per_span:
            continue
        budgets = " / ".join(f"{r.cpu_pct * 1e4 / (t * walk):.0f}" for t in TARGET_RATIOS)
        targets = " / ".join(f"{t}x" for t in TARGET_RATIOS)
        lines.append(
            f"CPU per span that {targets} of the walk leaves end to end ({r.transport},"
            f" at {r.cpu_pct:.0f}% CPU): {budgets} us; spent {r.cpu_us_per_span:.0f}"
        )
    return lines


def file_exporter_cost(rows: list[Row]) -> dict[str, float]:
    """Per transport: 1 - (ingest with only the file exporter) / (ingest with none)."""
    out = {}
    for transport in {r.transport for r in rows}:
        by_name = {r.name: r for r in rows if r.transport == transport and r.ok}
        on = by_name.get(FILE_ONLY)
        off = by_name.get(NO_EXPORTERS)
        if on and off and off.spans_per_s:
            out[transport] = round(1.0 - on.spans_per_s / off.spans_per_s, 3)
    return out


def format_report(rows: list[Row]) -> str:
    header = [
        "measurement",
        "transport",
        "spans/s",
        "vs walk",
        "peak RSS MB (procs)",
        "CPU%",
        "CPU us/span",
        "check",
    ]
    table = [header]
    for r in rows:
        if not r.ok:
            table.append(
                [r.name, r.transport, *["-"] * 5, "FAILED: " + r.error.splitlines()[0][:90]]
            )
            continue
        d = r.detail
        if "delivered" in d:
            check = f"delivered {d['delivered']:,}/{d['acknowledged']:,}"
            check += f", {d['duplicates']} resent" if d["duplicates"] else ""
            if r.section == "backlog":
                check += f", drain {d['drain_s']}s"
            else:
                check += f", ingest {d['ingest_spans_per_s']:,.0f}/s"
                if d.get("sustained_spans_per_s"):
                    check += f", sustained {d['sustained_spans_per_s']:,.0f}/s"
                    if d.get("sustained_ratio"):
                        check += f" ({d['sustained_ratio']:.2f}x)"
                if d.get("peak_pss_mb"):
                    check += f", PSS {d['peak_pss_mb']:.0f} MB"
                by_role = d.get("cpu_us_per_span_by_role") or {}
                if by_role:
                    check += ", us/span " + " ".join(f"{k} {v:.0f}" for k, v in by_role.items())
                if "other_cpu_pct" in d:
                    check += f", other CPU {d['other_cpu_pct']:.0f}%"
        else:
            check = f"p99 {d['p99_ms']:.0f} ms, other CPU {d['other_cpu_pct']:.0f}%"
        if d.get("requests_failed"):
            check += f", {d['requests_failed']} requests refused"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        table.append(
            [
                r.name,
                r.transport,
                f"{r.spans_per_s:,.0f}",
                ratio,
                f"{r.peak_rss_mb:.0f} ({r.processes})",
                f"{r.cpu_pct:.0f}",
                f"{r.cpu_us_per_span:.0f}" if r.cpu_us_per_span else "-",
                check,
            ]
        )
    lines = text_table(table, {2, 3, 4, 5, 6})
    lines += [
        "",
        "spans/s: ingest rows = acknowledged spans / load time; end-to-end rows = acknowledged",
        "  spans / (first request sent -> the sink's acknowledgement of the last span), every",
        "  acknowledged span checked delivered (distinct observation ids at the sink); backlog",
        "  row = the drain rate once the sink is back. sustained: what reached the sink per",
        "  second while the load ran, from its first delivery (without the fixed latency of",
        "  the last flush, and of the settle delay where a session is not known yet, which",
        "  first -> last includes).",
        "CPU us/span: the bridge tree(s)' CPU time per acknowledged span (end to end: from the",
        "  first request until the last span reached the sink); end-to-end rows split it by",
        "  process role: the bridge process(es), the map workers, the export process(es).",
        "peak RSS: sum of VmHWM over every process of the bridge tree(s) (bridge, map workers,",
        "  export process, all replicas); PSS (end to end): the peak of the trees' summed PSS,",
        "  each shared page counted once; CPU%: the bridge tree(s) while loaded, 100 = one core;",
        "  other CPU: everything else on the machine while the load ran (other sessions, the",
        "  PostgreSQL server, hypervisor steal; not the bridges, the sink or the load",
        "  generator): past 30% a row is noisy.",
    ]
    lines += cpu_budgets(rows)
    cost = file_exporter_cost(rows)
    for transport, value in sorted(cost.items()):
        lines.append(f"the file exporter's cost on ingest ({transport}): {value:.0%}")
    for r in rows:
        if r.section == "backlog" and r.ok:
            d = r.detail
            lines.append(
                f"backlog: {d['acknowledged']:,} spans held on disk ({d['data_dir_mb']} MB): "
                f"peak RSS {d['peak_rss_mb_with_backlog_before_drain']:.0f} MB before the drain,"
                f" {r.peak_rss_mb:.0f} MB overall (VmHWM sum); summed VmRSS while draining "
                f"peaked at {d['peak_rss_now_sum_mb_during_drain']:.0f} MB"
            )
    for r in rows:
        if not r.ok:
            lines.append(f"\n{r.name} / {r.transport} failed:\n{r.error}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=10.0, help="load per measurement (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up of ingest rows (2)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    p.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="also end each load after this many requests of 512 spans (0: no limit)",
    )
    p.add_argument("--transports", default="grpc,http", help="comma list (grpc,http)")
    p.add_argument("--replicas", default="1,3", help="PostgreSQL replica counts (1,3)")
    p.add_argument("--backlog", type=int, default=1_000_000, help="spans; 0 skips it")
    p.add_argument("--skip", default="", help=f"comma list of {','.join(SECTIONS)}")
    p.add_argument(
        "--keep-file-exporter",
        action="store_true",
        help="end-to-end configs keep the default file exporter beside ingestion",
    )
    p.add_argument("--pg-dsn", default=PG_DSN, help="fresh schema per measurement, dropped")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        help="end to end: how long after the load every span must be at the sink",
    )
    p.add_argument("--backlog-timeout", type=float, default=1800.0)
    p.add_argument("--ready-timeout", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write every row here")
    p.add_argument("--log-dir", type=Path, help="keep logs and data here (default: removed)")
    args = p.parse_args(argv)
    args.transports = [t for t in args.transports.split(",") if t]
    args.replicas = [int(n) for n in args.replicas.split(",") if n]
    args.skip = [s for s in args.skip.split(",") if s]
    if bad := [t for t in args.transports if t not in TRANSPORTS]:
        p.error(f"unknown transport(s): {bad}")
    if bad := [s for s in args.skip if s not in SECTIONS]:
        p.error(f"unknown section(s): {bad}")
    if args.seconds <= 0 or args.concurrency < max(args.replicas, default=1):
        p.error("--seconds must be > 0 and --concurrency at least the largest replica count")
    args.bridge_cmd = default_bridge_cmd()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_signals()
    with contextlib.ExitStack() as stack:
        if args.log_dir is not None:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="suite-", dir=args.log_dir))
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="suite-")))
        rows, interrupted = run_all(args, workdir)
    print()
    print(format_report(rows))
    if args.json:
        doc = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "versions": versions(),
            "file_exporter_cost": file_exporter_cost(rows),
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 130 if interrupted else (0 if rows and all(r.ok for r in rows) else 1)


if __name__ == "__main__":
    raise SystemExit(main())
