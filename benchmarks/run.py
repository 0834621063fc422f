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
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
REFERENCE = HERE / "reference_servers.py"
HOST = "127.0.0.1"
TARGETS = ("noop", "walk", "bridge", "bridge-pg")
BRIDGES = ("bridge", "bridge-pg")  # targets that are `session-bridge run` (SQLite, PostgreSQL)
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
TRANSPORTS = ("grpc", "http")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOT_RUN = "not run (interrupted)"


# --------------------------------------------------------------------------- /proc helpers


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants (via /proc/<pid>/task/*/children)."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            text = _read(f"/proc/{p}/task/{tid}/children")
            if text:
                out.extend(int(c) for c in text.split())
    return out


def vm_hwm_kb(pid: int) -> int | None:
    text = _read(f"/proc/{pid}/status")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def pss_kb(pid: int) -> int | None:
    """Proportional set size: resident memory, pages shared with other processes divided
    among them (a tree's memory is the sum of its PSS; summing RSS counts shared pages,
    such as the interpreter and libraries, once per process)."""
    text = _read(f"/proc/{pid}/smaps_rollup")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 if it is gone)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return 0
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


class ProcessWatcher:
    """Samples a process tree: peak RSS per pid (VmHWM), the peak of the tree's summed PSS,
    and CPU ticks per pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.hwm: dict[int, int] = {}
        self.peak_pss = 0
        self.ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        with self._lock:
            pss = 0
            for p in descendants(self.pid):
                hwm = vm_hwm_kb(p)
                if hwm is not None:
                    self.hwm[p] = max(self.hwm.get(p, 0), hwm)
                    self.ticks[p] = max(self.ticks.get(p, 0), cpu_ticks(p))
                    pss += pss_kb(p) or 0
            self.peak_pss = max(self.peak_pss, pss)

    def total_ticks(self) -> int:
        self.sample()
        return sum(self.ticks.values())

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(2)


# --------------------------------------------------------------------------- processes


class Children:
    """Every subprocess we start, each in its own session so its whole group can be ended."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], log_path: Path, **kw: Any) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=kw.pop("stdout", log),
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kw,
            )
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int | None:
        """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        # the leader may be gone while group members linger
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2.0)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc, grace=2.0)
        self.procs.clear()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_ready(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- one measurement


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


class BenchError(Exception):
    pass


def bridge_target(target: str) -> tuple[str, int | None]:
    """("bridge-pg", 3) for "bridge-pg x3" (a --replicas row); (target, None) otherwise."""
    name, _, count = target.partition(" x")
    return name, int(count) if count else None


def pg_bridge_config(args: argparse.Namespace, workdir: Path, port: int) -> Path:
    """A config for bridge-pg: PostgreSQL at --pg-dsn, in a fresh schema of this run."""
    path = workdir / f"bridge-pg-{port}.yaml"
    schema = f"bench_{os.getpid()}_{port}"
    dsn = args.pg_dsn.replace("'", "''")
    path.write_text(
        f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{dsn}'\n    schema: {schema}\n"
    )
    return path


def drop_pg_schemas(args: argparse.Namespace) -> None:
    """Drop the schemas this run's bridge-pg measurements created."""
    import psycopg

    with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
        names = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"bench_{os.getpid()}_%",)
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def server_command(
    target: str, grpc_port: int, http_port: int, args: argparse.Namespace, workdir: Path
) -> list[str]:
    name, replicas = bridge_target(target)
    if name in BRIDGES:
        data_dir = Path(tempfile.mkdtemp(prefix="bridge-data-", dir=workdir))
        cmd = [
            *args.bridge_cmd,
            "run",
            "--data-dir",
            str(data_dir),
            "--grpc",
            f"{HOST}:{grpc_port}",
            "--http",
            f"{HOST}:{http_port}",
        ]
        if name == "bridge-pg":
            cmd += ["--config", str(pg_bridge_config(args, workdir, grpc_port))]
        elif args.bridge_config:
            cmd += ["--config", str(args.bridge_config)]
        workers = replicas or args.bridge_workers
        if workers:
            cmd += ["--workers", str(workers)]
        return cmd
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


def wait_ready(
    proc: subprocess.Popen[bytes], grpc_port: int, http_port: int, timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with code {proc.returncode}:\n{tail(log)}")
        if http_ready(http_port) and tcp_open(grpc_port):
            return
        time.sleep(0.1)
    raise BenchError(f"server not ready after {timeout:.0f}s:\n{tail(log)}")


def run_loadgen(
    children: Children,
    transport: str,
    port: int,
    seconds: float,
    args: argparse.Namespace,
    log: Path,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(LOADGEN),
        "--transport",
        transport,
        "--port",
        str(port),
        "--seconds",
        str(seconds),
        "--concurrency",
        str(args.concurrency),
        "--json",
        "--seed",
        str(args.seed),
    ]
    if args.max_requests:
        cmd += ["--max-requests", str(args.max_requests)]
    proc = children.start(cmd, log, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator did not finish within {seconds + 60:.0f}s") from None
    finally:
        Children.stop(proc)  # no-op when it has exited; ends it on timeout or Ctrl-C
        children.procs.remove(proc)
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError(f"load generator failed (exit {proc.returncode}):\n{tail(log)}") from None
    return result


def measure(
    target: str, transport: str, args: argparse.Namespace, children: Children, workdir: Path
) -> dict[str, Any]:
    grpc_port, http_port = free_port(), free_port()
    while http_port == grpc_port:
        http_port = free_port()
    log = workdir / f"{target}-{transport}-{grpc_port}.log"
    cmd = server_command(target, grpc_port, http_port, args, workdir)
    try:
        server = children.start(cmd, log)
    except OSError as exc:
        raise BenchError(f"cannot start {cmd[0]}: {exc}") from exc
    watcher = ProcessWatcher(server.pid)
    watcher.start()
    try:
        wait_ready(server, grpc_port, http_port, args.ready_timeout, log)
        port = grpc_port if transport == "grpc" else http_port
        if args.warmup > 0:
            warm = run_loadgen(children, transport, port, args.warmup, args, log)
            if warm["requests_ok"] == 0:
                raise BenchError(f"warm-up: no request accepted; errors: {warm['errors']}")
        ticks0 = watcher.total_ticks()
        result = run_loadgen(children, transport, port, args.seconds, args, log)
        ticks1 = watcher.total_ticks()
        if server.poll() is not None:
            raise BenchError(f"server died during the run (code {server.returncode}):\n{tail(log)}")
        watcher.stop()
        elapsed = result["elapsed_s"] or 1.0
        result["server_cpu_pct"] = round(100.0 * (ticks1 - ticks0) / CLK_TCK / elapsed, 1)
        # CPU taken by everything else (other processes, plus hypervisor steal)
        ours = result["server_cpu_pct"] + result["client_cpu_pct"]
        others = result["machine_cpu_pct"] + result.get("machine_steal_pct", 0.0) - ours
        result["other_cpu_pct"] = round(max(0.0, others), 1)
        result["peak_rss_kb"] = sum(watcher.hwm.values())
        result["peak_pss_kb"] = watcher.peak_pss
        result["rss_processes"] = len(watcher.hwm)
        result["server_log"] = str(log)
        return result
    finally:
        watcher.stop()
        Children.stop(server)
        children.procs.remove(server)


def summarize(
    target: str, transport: str, runs: list[dict[str, Any]], args: argparse.Namespace
) -> RunResult:
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
    elif sent and failed / sent > args.max_error_rate:
        res.error = f"{failed}/{sent} requests failed: {errors}"
    else:
        res.ok = True
    return res


# --------------------------------------------------------------------------- report


NOISY_OTHER_CPU = 30.0  # other processes' CPU (% of one core) above which a run is flagged

HEADER = ["target", "transport", "spans/s", "p50 ms", "p99 ms", "peak RSS MB", "peak PSS MB"]
HEADER += ["srv CPU%"]
HEADER += ["cli CPU%", "other CPU%", "vs walk", "status"]


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
    rows = [HEADER, *(fmt_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    right = {2, 3, 4, 6, 7, 8, 9, 10}
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
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


# --------------------------------------------------------------------------- main


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
        exe = Path(sys.executable).parent / "session-bridge"
        found = str(exe) if exe.exists() else shutil.which("session-bridge")
        args.bridge_cmd = [found or "session-bridge"]
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


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
            results.append(summarize(*pair, runs[pair], args))
        else:
            results.append(RunResult(*pair, error=NOT_RUN))
    walk = {r.transport: r.spans_per_s for r in results if r.target == "walk" and r.ok}
    for r in results:
        if r.ok and walk.get(r.transport):
            r.ratio_vs_walk = round(r.spans_per_s / walk[r.transport], 3)
    return results, interrupted


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
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
            drop_pg_schemas(args)
    return 130 if interrupted else (0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    sys.exit(main())
