"""One ingest measurement of one server (the bridge or a reference receiver) on one
transport: start it on free 127.0.0.1 ports, wait until it is ready, warm up, run the load
generator for the measurement, and record acknowledged spans/s, latency, the server tree's
peak RSS and PSS and the CPU used by the server, the client and everything else; then the
median of repeated measurements."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bridge
from processes import (
    CLK_TCK,
    HERE,
    BenchError,
    Children,
    ProcessWatcher,
    other_cpu_pct,
    port_pair,
    run_loadgen,
    tail,
    wait_ready,
)

REFERENCE = HERE / "reference_servers.py"
TARGETS = ("noop", "walk", "bridge", "bridge-pg")
BRIDGES = ("bridge", "bridge-pg")  # targets that are `session-bridge run` (SQLite, PostgreSQL)
TRANSPORTS = ("grpc", "http")


@dataclass
class RunResult:
    target: str
    transport: str
    ok: bool = False
    error: str = ""
    spans_per_s: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    rss_processes: int = 0
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    ratio_vs_walk: float | None = None
    repeats: list[dict[str, Any]] = field(default_factory=list)
    loadgen: dict[str, Any] = field(default_factory=dict)


def bridge_target(target: str) -> tuple[str, int | None]:
    """("bridge-pg", 3) for "bridge-pg x3" (a --replicas row); (target, None) otherwise."""
    name, _, count = target.partition(" x")
    return name, int(count) if count else None


def schema_prefix(pid: int) -> str:
    """The prefix of the schemas bridge-pg measurements of process `pid` create."""
    return f"bench_{pid}_"


def pg_bridge_config(args: argparse.Namespace, workdir: Path, port: int) -> Path:
    """A config for bridge-pg: PostgreSQL at --pg-dsn, in a fresh schema of this run."""
    path = workdir / f"bridge-pg-{port}.yaml"
    path.write_text(bridge.postgres_yaml(args.pg_dsn, f"{schema_prefix(os.getpid())}{port}"))
    return path


def server_command(
    target: str, grpc_port: int, http_port: int, args: argparse.Namespace, workdir: Path
) -> list[str]:
    name, replicas = bridge_target(target)
    if name in BRIDGES:
        data_dir = Path(tempfile.mkdtemp(prefix="bridge-data-", dir=workdir))
        config = args.bridge_config
        if name == "bridge-pg":
            config = pg_bridge_config(args, workdir, grpc_port)
        workers = replicas or args.bridge_workers
        return bridge.run_command(args.bridge_cmd, data_dir, grpc_port, http_port, config, workers)
    return [
        sys.executable,
        str(REFERENCE),
        "--mode",
        target,
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
        "--grpc-impl",
        args.grpc_impl,
        "--grpc-workers",
        str(args.grpc_workers),
    ]


def measure(
    target: str, transport: str, args: argparse.Namespace, children: Children, workdir: Path
) -> dict[str, Any]:
    grpc_port, http_port = port_pair()
    log = workdir / f"{target}-{transport}-{grpc_port}.log"
    cmd = server_command(target, grpc_port, http_port, args, workdir)
    try:
        server = children.start(cmd, log)
    except OSError as exc:
        raise BenchError(f"cannot start {cmd[0]}: {exc}") from exc
    watcher = ProcessWatcher(server.pid)
    watcher.start()

    def load(seconds: float) -> dict[str, Any]:
        port = grpc_port if transport == "grpc" else http_port
        return run_loadgen(
            children, log, transport, [port], seconds, args.concurrency,
            max_requests=args.max_requests, seed=args.seed,
        )  # fmt: skip

    try:
        wait_ready(server, grpc_port, http_port, args.ready_timeout, log)
        if args.warmup > 0:
            warm = load(args.warmup)
            if warm["requests_ok"] == 0:
                raise BenchError(f"warm-up: no request accepted; errors: {warm['errors']}")
        ticks0 = watcher.total_ticks()
        result = load(args.seconds)
        ticks1 = watcher.total_ticks()
        if server.poll() is not None:
            raise BenchError(f"server died during the run (code {server.returncode}):\n{tail(log)}")
        watcher.stop()
        elapsed = result["elapsed_s"] or 1.0
        result["server_cpu_pct"] = round(100.0 * (ticks1 - ticks0) / CLK_TCK / elapsed, 1)
        result["other_cpu_pct"] = other_cpu_pct(result, ticks1 - ticks0)
        result["peak_rss_kb"] = sum(watcher.hwm.values())
        result["peak_pss_kb"] = watcher.peak_pss
        result["rss_processes"] = len(watcher.hwm)
        result["server_log"] = str(log)
        return result
    finally:
        watcher.stop()
        children.end(server)


def summarize(
    target: str, transport: str, runs: list[dict[str, Any]], max_error_rate: float
) -> RunResult:
    """The median of `runs` of one pair, failed if no span was acknowledged or more than
    `max_error_rate` of the requests failed."""
    res = RunResult(target, transport, repeats=runs)
    best = sorted(runs, key=lambda r: r["spans_per_s"])[len(runs) // 2]  # the median run
    res.loadgen = best
    res.spans_per_s = statistics.median(r["spans_per_s"] for r in runs)
    res.latency_p50_ms = best["latency_p50_ms"]
    res.latency_p99_ms = best["latency_p99_ms"]
    res.peak_rss_mb = round(max(r["peak_rss_kb"] for r in runs) / 1024, 1)
    res.peak_pss_mb = round(max(r["peak_pss_kb"] for r in runs) / 1024, 1)
    res.rss_processes = max(r["rss_processes"] for r in runs)
    res.server_cpu_pct = best["server_cpu_pct"]
    res.client_cpu_pct = best["client_cpu_pct"]
    res.other_cpu_pct = best["other_cpu_pct"]
    sent = sum(r["requests_ok"] + r["requests_failed"] for r in runs)
    failed = sum(r["requests_failed"] for r in runs)
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    if sum(r["spans_acknowledged"] for r in runs) == 0:
        res.error = f"no span acknowledged; errors: {errors}"
    elif sent and failed / sent > max_error_rate:
        res.error = f"{failed}/{sent} requests failed: {errors}"
    else:
        res.ok = True
    return res
