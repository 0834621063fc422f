"""Side-by-side OTLP ingest benchmark: the bridge against two reference receivers.

For each transport x target it starts the server in its own process on free 127.0.0.1 ports,
waits for ``GET /readyz`` = 200 and for the gRPC port to accept connections, runs a short
warm-up, then the measurement with ``benchmarks/loadgen.py`` in a separate process, stops the
server and records acknowledged spans/s, latency, the server's peak RSS (VmHWM, summed over its
child processes if it has any) and the CPU used by the server and the client.

The machine is shared and noisy, so read the ratios (vs ``walk`` on the same transport) rather
than absolute numbers. See benchmarks/README.md.

    .venv/bin/python benchmarks/run.py                       # noop, walk, bridge; grpc and http
    .venv/bin/python benchmarks/run.py --targets noop,walk --seconds 5 --json out.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bridge import PG_DSN, default_bridge_cmd, drop_schemas
from measure import (
    BRIDGES,
    TARGETS,
    TRANSPORTS,
    RunResult,
    bridge_target,
    measure,
    schema_prefix,
    summarize,
)
from processes import BenchError, Children, interrupt_on_signals
from report import NOT_RUN, report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="OTLP ingest throughput: bridge vs reference receivers (127.0.0.1 only)."
    )
    p.add_argument(
        "--targets",
        default="noop,walk,bridge",
        help=f"comma list of {','.join(TARGETS)} (default: noop,walk,bridge)",
    )
    p.add_argument(
        "--transports", default=",".join(TRANSPORTS), help="comma list of grpc,http (default: both)"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="measurement length (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up length, 0 = none (2)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each pair N times, interleaved; report the median (1)",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="also stop each measurement after this many requests (0 = no limit)",
    )
    p.add_argument(
        "--max-error-rate",
        type=float,
        default=0.0,
        help="fraction of failed requests tolerated before a run fails (0)",
    )
    p.add_argument(
        "--grpc-impl",
        choices=["sync", "aio"],
        default="aio",
        help="grpcio server flavour of the reference servers (aio: measured faster)",
    )
    p.add_argument(
        "--grpc-workers",
        type=int,
        default=4,
        help="thread pool size of the reference servers' sync gRPC server (4)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=1,
        help="traffic seed: same traffic shape for every target (ids stay unique)",
    )
    p.add_argument(
        "--bridge-cmd",
        default=None,
        help="bridge executable (default: session-bridge next to this python)",
    )
    p.add_argument(
        "--bridge-config", type=Path, default=None, help="passed as --config (not to bridge-pg)"
    )
    p.add_argument(
        "--pg-dsn",
        default=PG_DSN,
        help="PostgreSQL of bridge-pg: a fresh schema per measurement, dropped at the end",
    )
    p.add_argument(
        "--replicas",
        default="",
        help="e.g. 1,2,3: measure each bridge target with that many map workers (--workers N)"
        " instead of --bridge-workers",
    )
    p.add_argument(
        "--bridge-workers",
        type=int,
        default=2,
        help="bridge map worker processes, passed as --workers (default 2: this machine's cores)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for a server to be ready (60)",
    )
    p.add_argument("--json", type=Path, default=None, help="write results to this file")
    p.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep server logs and bridge data here (default: temp dir, removed)",
    )
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    if bad := [t for t in args.targets if t not in TARGETS]:
        p.error(f"unknown target(s): {bad}")
    if args.replicas:  # one row per bridge target and process count
        counts = [int(n) for n in args.replicas.split(",")]
        args.targets = [
            row
            for t in args.targets
            for row in ([f"{t} x{n}" for n in counts] if t in BRIDGES else [t])
        ]
    if bad := [t for t in args.transports if t not in TRANSPORTS]:
        p.error(f"unknown transport(s): {bad}")
    if args.concurrency < 1 or args.repeat < 1 or args.seconds <= 0:
        p.error("--concurrency and --repeat must be >= 1, --seconds > 0")
    if args.bridge_cmd:
        args.bridge_cmd = args.bridge_cmd.split()
    else:
        args.bridge_cmd = default_bridge_cmd()
    return args


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[RunResult], bool]:
    """Measure every pair (interleaved when repeating); return results and 'interrupted'."""
    children = Children()
    pairs = [(tg, tr) for tr in args.transports for tg in args.targets]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {pair: [] for pair in pairs}
    failures: dict[tuple[str, str], str] = {}
    print(
        f"{len(pairs)} pair(s) x {args.repeat}, {args.seconds:g}s each (+{args.warmup:g}s "
        f"warm-up), concurrency {args.concurrency}, {os.cpu_count()} CPUs",
        file=sys.stderr,
    )
    interrupted = False
    try:
        for rep in range(args.repeat):
            for target, transport in pairs:
                if (target, transport) in failures:
                    continue
                print(
                    f"[{rep + 1}/{args.repeat}] {target:6s} {transport:4s} ... ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                try:
                    one = measure(target, transport, args, children, workdir)
                except BenchError as exc:
                    failures[(target, transport)] = str(exc)
                    print(f"FAILED: {exc}", file=sys.stderr)
                    continue
                runs[(target, transport)].append(one)
                print(
                    f"{one['spans_per_s']:>11,.0f} spans/s  p99 {one['latency_p99_ms']:.1f} ms"
                    f"  errors {one['requests_failed']}",
                    file=sys.stderr,
                )
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted; stopping child processes", file=sys.stderr)
    finally:
        children.stop_all()

    results: list[RunResult] = []
    for pair in pairs:
        if pair in failures:
            results.append(RunResult(*pair, error=failures[pair]))
        elif runs[pair]:
            results.append(summarize(*pair, runs[pair], args.max_error_rate))
        else:
            results.append(RunResult(*pair, error=NOT_RUN))
    walk = {r.transport: r.spans_per_s for r in results if r.target == "walk" and r.ok}
    for r in results:
        if r.ok and walk.get(r.transport):
            r.ratio_vs_walk = round(r.spans_per_s / walk[r.transport], 3)
    return results, interrupted


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_signals()
    tmp = None
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        workdir = args.log_dir
    else:
        tmp = tempfile.TemporaryDirectory(prefix="otlp-bench-")
        workdir = Path(tmp.name)
    try:
        results, interrupted = run_all(args, workdir)
        report(results, args)
    finally:
        if tmp is not None:
            tmp.cleanup()
        if any(bridge_target(t)[0] == "bridge-pg" for t in args.targets):
            drop_schemas(args.pg_dsn, schema_prefix(os.getpid()))
    return 130 if interrupted else (0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    sys.exit(main())
