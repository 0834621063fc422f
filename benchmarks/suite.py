"""The whole flow in one run: the parse-and-walk reference, ingest only, and end to end
(OTLP in -> the ingestion endpoint's acknowledgement of the last span) on SQLite and on
PostgreSQL with 1 and 3 replicas, each as spans/s, as a ratio to the reference measured in
the same run, and with the peak RSS of the bridge's process tree; then the `file`
exporter's cost on ingest and the peak RSS with a 1M-span backlog.

    .venv/bin/python benchmarks/suite.py                       # everything, 15-20 minutes
    .venv/bin/python benchmarks/suite.py --seconds 5 --backlog 200000 --json out.json
    .venv/bin/python benchmarks/suite.py --skip pg,backlog --transports http

Every bridge runs on the shipped defaults (no `--workers`, no tuning); the end-to-end rows
add one `ingestion` exporter pointed at benchmarks/ingestion_sink.py. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import run
from export_bench import get_json, post_empty
from run import HOST, LOADGEN, Children, ProcessWatcher, free_port, tail

HERE = Path(__file__).resolve().parent
SINK = HERE / "ingestion_sink.py"
SPANS_PER_REQUEST = 512
SECTIONS = ("reference", "ingest", "sqlite", "pg", "backlog")
SCHEMA_PREFIX = f"suite_{os.getpid()}_"
NO_EXPORTERS = "ingest, defaults + exporters: {}"
FILE_ONLY = "ingest, defaults + file exporter"  # exporters: {file: {}}


class SuiteError(Exception):
    pass


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
    detail: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the sink


def _until(check: Any, timeout_s: float, what: str, interval: float = 0.1) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise SuiteError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval)


def _sink_up(port: int) -> bool:
    try:
        get_json(port, "/stats")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- a deployment


def exporter_yaml(sink_port: int, keep_file: bool) -> str:
    text = (
        "exporters:\n"
        "  ingestion:\n"
        f"    base_url: http://{HOST}:{sink_port}\n"
        "    public_key: pk-bench\n"
        "    secret_key: sk-bench-0123456789\n"
    )
    return text + ("  file: {}\n" if keep_file else "")


class Deployment:
    """The sink and N bridge replicas exporting to it: one on SQLite, or N sharing one
    fresh PostgreSQL schema (dropped by `stop`). Each replica is a `session-bridge run`
    process of its own with the same config file."""

    def __init__(
        self,
        children: Children,
        workdir: Path,
        args: argparse.Namespace,
        *,
        backend: str,
        replicas: int,
        sink_down: bool = False,
    ) -> None:
        self.children = children
        self.args = args
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.watchers: list[ProcessWatcher] = []
        self.logs: list[Path] = []
        self.schema = ""
        self.sink_port = free_port()
        sink_cmd = [sys.executable, str(SINK), "--port", str(self.sink_port)]
        if sink_down:
            sink_cmd.append("--down")
        self.sink = children.start(sink_cmd, workdir / "sink.log")
        try:
            _until(lambda: _sink_up(self.sink_port), 30, "the ingestion sink")
            config = workdir / "bridge.yaml"
            text = exporter_yaml(self.sink_port, args.keep_file_exporter)
            if backend == "pg":
                self.schema = f"{SCHEMA_PREFIX}{self.sink_port}"
                dsn = args.pg_dsn.replace("'", "''")
                text = (
                    f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{dsn}'\n"
                    f"    schema: {self.schema}\n" + text
                )
            config.write_text(text)
            self.ports: dict[str, list[int]] = {"grpc": [], "http": []}
            for n in range(replicas):
                grpc_port, http_port = free_port(), free_port()
                log = workdir / f"bridge-{n}.log"
                cmd = [
                    *args.bridge_cmd,
                    "run",
                    "--config",
                    str(config),
                    "--data-dir",
                    str(workdir / f"data-{n}"),
                    "--grpc",
                    f"{HOST}:{grpc_port}",
                    "--http",
                    f"{HOST}:{http_port}",
                ]
                proc = children.start(cmd, log)
                self.procs.append(proc)
                self.logs.append(log)
                watcher = ProcessWatcher(proc.pid)
                watcher.start()
                self.watchers.append(watcher)
                self.ports["grpc"].append(grpc_port)
                self.ports["http"].append(http_port)
            for proc, log, grpc_port, http_port in zip(
                self.procs, self.logs, self.ports["grpc"], self.ports["http"], strict=True
            ):
                run.wait_ready(proc, grpc_port, http_port, args.ready_timeout, log)
        except BaseException:
            self.stop()
            raise

    def stats(self) -> dict[str, Any]:
        return get_json(self.sink_port, "/stats")

    def load(self, transport: str, seconds: float, max_requests: int) -> dict[str, Any]:
        """The load generator against every replica (connections round-robin)."""
        ports = ",".join(str(p) for p in self.ports[transport])
        cmd = [
            sys.executable,
            str(LOADGEN),
            "--transport",
            transport,
            "--ports",
            ports,
            "--seconds",
            str(seconds),
            "--concurrency",
            str(self.args.concurrency),
            "--max-requests",
            str(max_requests),
            "--seed",
            str(self.args.seed),
            "--json",
        ]
        limit = seconds + 120
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=limit)
        except subprocess.TimeoutExpired:
            raise SuiteError(f"load generator did not finish within {limit:.0f}s") from None
        try:
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise SuiteError(f"load generator failed: {out.stderr[-2000:]}") from None
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise SuiteError(f"a bridge exited (code {proc.returncode}):\n{tail(log)}")
        return result

    def ticks(self) -> int:
        return sum(w.total_ticks() for w in self.watchers)

    def peak_rss(self) -> tuple[float, int]:
        """Sum of VmHWM over every process seen in the replicas' trees, in MB; how many."""
        for w in self.watchers:
            w.sample()
        hwm = [kb for w in self.watchers for kb in w.hwm.values()]
        return round(sum(hwm) / 1024, 1), len(hwm)

    def rss_now_kb(self) -> int:
        """Sum of VmRSS over the replicas' trees now."""
        total = 0
        for proc in self.procs:
            for pid in run.descendants(proc.pid):
                text = run._read(f"/proc/{pid}/status") or ""
                for line in text.splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{tail(log)}" for log in self.logs)

    def stop(self) -> None:
        for w in self.watchers:
            w.stop()
        for proc in [*self.procs, self.sink]:
            Children.stop(proc)
            with contextlib.suppress(ValueError):
                self.children.procs.remove(proc)
        if self.schema:
            drop_schemas(self.args.pg_dsn, self.schema)


def drop_schemas(dsn: str, name: str) -> None:
    """Drop schema `name`, or every schema starting with `name` if it ends in `_`."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        pattern = name.replace("_", r"\_") + ("%" if name.endswith("_") else "")
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (pattern,)
        ).fetchall()
        for (schema,) in rows:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# --------------------------------------------------------------------------- measurements


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
    dep = Deployment(children, workdir, args, backend=backend, replicas=replicas)
    try:
        ticks0 = dep.ticks()
        result = dep.load(transport, args.seconds, args.max_requests or 10_000_000)
        loaded_at = time.monotonic()
        started_at = loaded_at - float(result["elapsed_s"])
        acked = int(result["spans_acknowledged"])
        if acked == 0:
            raise SuiteError(f"no span acknowledged: {result['errors']}")
        with contextlib.suppress(SuiteError):
            _until(lambda: dep.stats()["observations"] >= acked, args.drain_timeout, "", 0.2)
        stats = dep.stats()
        ticks1 = dep.ticks()
        rss, procs = dep.peak_rss()
        elapsed = stats["last_at"] - started_at
        detail = {
            "acknowledged": acked,
            "delivered": stats["observations"],
            "duplicates": stats["duplicates"],
            "requests_failed": result["requests_failed"],
            "errors": result["errors"],
            "ingest_spans_per_s": result["spans_per_s"],
            "export_lag_after_load_s": round(max(stats["last_at"] - loaded_at, 0.0), 1),
            "requests_to_sink": stats["requests"],
        }
        row = Row(section, name, transport, peak_rss_mb=rss, processes=procs, detail=detail)
        row.cpu_pct = round(100.0 * (ticks1 - ticks0) / run.CLK_TCK / max(elapsed, 1e-9))
        if stats["observations"] < acked:
            row.ok = False
            row.error = (
                f"delivered {stats['observations']} of {acked} acknowledged spans within "
                f"{args.drain_timeout:.0f}s after the load"
            )
        else:
            row.spans_per_s = round(acked / elapsed, 1)
        return row
    except SuiteError as exc:
        raise SuiteError(f"{exc}\n{dep.log_tails()}") from None
    finally:
        dep.stop()


def backlog(children: Children, workdir: Path, args: argparse.Namespace) -> Row:
    """The sink down while --backlog spans are accepted over HTTP, then up: peak RSS of the
    bridge tree while it holds and drains the backlog (which lives on disk, in the store)."""
    dep = Deployment(children, workdir, args, backend="sqlite", replicas=1, sink_down=True)
    try:
        requests = math.ceil(args.backlog / SPANS_PER_REQUEST)
        result = dep.load("http", 3600, requests)
        acked = int(result["spans_acknowledged"])
        rss_loaded, _ = dep.peak_rss()
        peak = {"kb": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                peak["kb"] = max(peak["kb"], dep.rss_now_kb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        post_empty(dep.sink_port, "/up")
        up_at = time.monotonic()
        try:
            _until(lambda: dep.stats()["observations"] >= acked, args.backlog_timeout, "", 0.5)
        except SuiteError:
            pass
        finally:
            done.set()
            sampler.join()
        stats = dep.stats()
        rss, procs = dep.peak_rss()
        drained_s = stats["last_at"] - up_at
        data = sum(p.stat().st_size for p in (workdir / "data-0").rglob("*") if p.is_file())
        row = Row(
            "backlog", f"backlog of {acked:,} spans", "http", peak_rss_mb=rss, processes=procs
        )
        row.detail = {
            "acknowledged": acked,
            "delivered": stats["observations"],
            "duplicates": stats["duplicates"],
            "requests_failed_while_down": result["requests_failed"],
            "ingest_spans_per_s": result["spans_per_s"],
            "peak_rss_mb_with_backlog_before_drain": rss_loaded,
            "peak_rss_now_sum_mb_during_drain": round(peak["kb"] / 1024, 1),
            "drain_s": round(drained_s, 1),
            "data_dir_mb": round(data / 1e6),
        }
        if stats["observations"] < acked:
            row.ok = False
            row.error = f"drained {stats['observations']} of {acked} spans"
        else:
            row.spans_per_s = round(acked / max(drained_s, 1e-9), 1)  # the drain rate
        return row
    except SuiteError as exc:
        raise SuiteError(f"{exc}\n{dep.log_tails()}") from None
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
    try:
        return run.measure(target, transport, rargs, children, workdir)
    except run.BenchError as exc:
        raise SuiteError(str(exc)) from None


def ingest_row(section: str, name: str, result: dict[str, Any], transport: str) -> Row:
    row = Row(section, name, transport, spans_per_s=float(result["spans_per_s"]))
    row.peak_rss_mb = round(result["peak_rss_kb"] / 1024, 1)
    row.processes = int(result["rss_processes"])
    row.cpu_pct = float(result["server_cpu_pct"])
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
            except SuiteError as exc:
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
    reference = {r.transport: r.spans_per_s for r in rows if r.section == "reference" and r.ok}
    for r in rows:
        if r.ok and r.section != "backlog" and reference.get(r.transport):
            r.ratio = round(r.spans_per_s / reference[r.transport], 3)
    return rows, interrupted


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
        "check",
    ]
    table = [header]
    for r in rows:
        if not r.ok:
            table.append(
                [r.name, r.transport, "-", "-", "-", "-", "FAILED: " + r.error.splitlines()[0][:90]]
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
                check,
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = []
    for n, line in enumerate(table):
        cells = [
            c.rjust(w) if i in (2, 3, 4, 5) else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        "",
        "spans/s: ingest rows = acknowledged spans / load time; end-to-end rows = acknowledged",
        "  spans / (first request sent -> the sink's acknowledgement of the last span), every",
        "  acknowledged span checked delivered (distinct observation ids at the sink); backlog",
        "  row = the drain rate once the sink is back.",
        "peak RSS: sum of VmHWM over every process of the bridge tree(s) (bridge + map workers,",
        "  all replicas); CPU%: the bridge tree(s) while loaded, 100 = one core; other CPU:",
        "  everything else on the machine meanwhile (other sessions: above 30%, noisy).",
    ]
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
    p.add_argument("--pg-dsn", default=run.PG_DSN, help="fresh schema per measurement, dropped")
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
    if bad := [t for t in args.transports if t not in run.TRANSPORTS]:
        p.error(f"unknown transport(s): {bad}")
    if bad := [s for s in args.skip if s not in SECTIONS]:
        p.error(f"unknown section(s): {bad}")
    if args.seconds <= 0 or args.concurrency < max(args.replicas, default=1):
        p.error("--seconds must be > 0 and --concurrency at least the largest replica count")
    exe = Path(sys.executable).parent / "session-bridge"
    args.bridge_cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "session_bridge.cli"]
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
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
            "versions": run.versions(),
            "file_exporter_cost": file_exporter_cost(rows),
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 130 if interrupted else (0 if rows and all(r.ok for r in rows) else 1)


if __name__ == "__main__":
    raise SystemExit(main())
