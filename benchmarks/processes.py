"""The benchmarks' child processes: each started in a session of its own so its whole group
can be ended (on failure, Ctrl-C or SIGTERM too); readiness waited for; the load generator
run as a child and its JSON result read; a process tree measured from /proc (peak RSS, PSS,
CPU ticks) while it runs. Everything listens on and connects to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement could not be made; the message says why (with a log tail)."""


# --------------------------------------------------------------------------- /proc


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _field_kb(path: str, name: str) -> int | None:
    """The value in kB of the line `name:` of a /proc file (None if the process is gone)."""
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
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
    """Peak resident memory of one process."""
    return _field_kb(f"/proc/{pid}/status", "VmHWM:")


def vm_rss_kb(pid: int) -> int | None:
    """Resident memory of one process now."""
    return _field_kb(f"/proc/{pid}/status", "VmRSS:")


def tree_rss_kb(pids: Sequence[int]) -> int:
    """Resident memory now, summed over the trees of `pids`."""
    return sum(vm_rss_kb(p) or 0 for pid in pids for p in descendants(pid))


def pss_kb(pid: int) -> int | None:
    """Proportional set size: resident memory, pages shared with other processes divided
    among them (a tree's memory is the sum of its PSS; summing RSS counts shared pages,
    such as the interpreter and libraries, once per process)."""
    return _field_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 if it is gone)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return 0
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def cpu_jiffies() -> list[int]:
    """[processes (user+nice+system), irq+softirq, steal, total] over all CPUs (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return [0, 0, 0, 0]
    v += [0] * (8 - len(v))
    return [v[0] + v[1] + v[2], v[5] + v[6], v[7], sum(v)]


def other_cpu_pct(load: dict[str, Any], ours_ticks: int) -> float:
    """CPU taken by everything else on the machine while a load ran (other processes,
    plus hypervisor steal), 100 = one core: the load generator's result (its machine
    counters and its own CPU) less `ours_ticks`, what the measured processes used."""
    elapsed = float(load["elapsed_s"]) or 1.0
    ours = 100.0 * ours_ticks / CLK_TCK / elapsed + float(load["client_cpu_pct"])
    machine = float(load["machine_cpu_pct"]) + float(load.get("machine_steal_pct", 0.0))
    return round(max(machine - ours, 0.0), 1)


# a bridge's child processes, by the module they run (the rest: the bridge process)
ROLES = {"session_bridge.export.process": "export", "session_bridge.ingest.workers": "map"}


def role(pid: int) -> str:
    """What a process of a bridge's tree does: `bridge`, `map` (a map worker) or `export`."""
    cmdline = _read(f"/proc/{pid}/cmdline") or ""
    return next((name for module, name in ROLES.items() if module in cmdline), "bridge")


class ProcessWatcher:
    """Samples a process tree: peak RSS per pid (VmHWM), the peak of the tree's summed PSS,
    and CPU ticks and role (`role`) per pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.hwm: dict[int, int] = {}
        self.peak_pss = 0
        self.ticks: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        with self._lock:
            pss = 0
            for p in descendants(self.pid):
                hwm = vm_hwm_kb(p)
                if hwm is not None:
                    # a child read between its fork and its exec shows the bridge's command
                    # line: its role is read again until it names a child's module
                    if self.roles.get(p, "bridge") == "bridge":
                        self.roles[p] = role(p)
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

    def end(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop one of ours and forget it."""
        self.stop(proc)
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc, grace=2.0)
        self.procs.clear()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP end a run as Ctrl-C does (every child stopped on the way out)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_pair() -> tuple[int, int]:
    """Two distinct free ports: a server's gRPC and HTTP ports."""
    grpc_port, http_port = free_port(), free_port()
    while http_port == grpc_port:
        http_port = free_port()
    return grpc_port, http_port


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


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, interval: float = 0.1
) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_ready(
    proc: subprocess.Popen[bytes], grpc_port: int, http_port: int, timeout: float, log: Path
) -> None:
    """Until the server answers `GET /readyz` 200 and its gRPC port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with code {proc.returncode}:\n{tail(log)}")
        if http_ready(http_port) and tcp_open(grpc_port):
            return
        time.sleep(0.1)
    raise BenchError(f"server not ready after {timeout:.0f}s:\n{tail(log)}")


# --------------------------------------------------------------------------- the load generator


def run_loadgen(
    children: Children,
    log: Path,
    transport: str,
    ports: Sequence[int],
    seconds: float,
    concurrency: int,
    *,
    max_requests: int = 0,
    seed: int = 1,
    slack: float = 60.0,
) -> dict[str, Any]:
    """`loadgen.py` against `ports` (connections round-robin) as a child process, its
    stderr appended to `log`; its JSON result. It may take `seconds` + `slack`."""
    cmd = [
        sys.executable,
        str(LOADGEN),
        "--transport",
        transport,
        "--ports",
        ",".join(str(p) for p in ports),
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
        "--json",
        "--seed",
        str(seed),
    ]
    if max_requests:
        cmd += ["--max-requests", str(max_requests)]
    proc = children.start(cmd, log, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=seconds + slack)
    except subprocess.TimeoutExpired:
        limit = seconds + slack
        raise BenchError(f"load generator did not finish within {limit:.0f}s") from None
    finally:
        children.end(proc)  # no-op when it has exited; ends it on timeout or Ctrl-C
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError(f"load generator failed (exit {proc.returncode}):\n{tail(log)}") from None
    return result
