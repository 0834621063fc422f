"""The export path as deployed: the ingestion sink (`ingestion_sink.py`) and N bridge
replicas exporting to it, loaded by the load generator; and the two measurements made on
it, delivery (load, then until the sink holds every acknowledged span) and a backlog's drain
(the sink down while spans are accepted, then up)."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bridge
from processes import (
    HERE,
    HOST,
    BenchError,
    Children,
    ProcessWatcher,
    cpu_ticks,
    free_port,
    other_cpu_pct,
    port_pair,
    run_loadgen,
    tail,
    tree_rss_kb,
    vm_rss_kb,
    wait_ready,
    wait_until,
)

SINK = HERE / "ingestion_sink.py"
SPANS_PER_REQUEST = 512  # the load generator's default


# --------------------------------------------------------------------------- the sink's API


def get_json(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def post_empty(port: int, path: str) -> None:
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def sink_up(port: int) -> bool:
    try:
        get_json(port, "/stats")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- a deployment


class Deployment:
    """The sink and N bridge replicas exporting to it: one on SQLite, or N sharing one
    fresh PostgreSQL schema (`schema_prefix` + the sink's port, dropped by `stop`). Each
    replica is a `session-bridge run` process of its own with the same config file."""

    def __init__(
        self,
        children: Children,
        workdir: Path,
        *,
        bridge_cmd: list[str],
        backend: str = "sqlite",
        replicas: int = 1,
        pg_dsn: str = bridge.PG_DSN,
        schema_prefix: str = "",
        sink_down: bool = False,
        keep_file_exporter: bool = False,
        retry_max_interval: str = "",
        ready_timeout: float = 60.0,
    ) -> None:
        self.children = children
        self.workdir = workdir
        self.pg_dsn = pg_dsn
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
            wait_until(lambda: sink_up(self.sink_port), 30, "the ingestion sink")
            config = workdir / "bridge.yaml"
            text = bridge.ingestion_yaml(
                self.sink_port,
                keep_file=keep_file_exporter,
                retry_max_interval=retry_max_interval,
            )
            if backend == "pg":
                self.schema = f"{schema_prefix}{self.sink_port}"
                text = bridge.postgres_yaml(pg_dsn, self.schema) + text
            config.write_text(text)
            self.ports: dict[str, list[int]] = {"grpc": [], "http": []}
            for n in range(replicas):
                grpc_port, http_port = port_pair()
                log = workdir / f"bridge-{n}.log"
                data_dir = workdir / f"data-{n}"
                cmd = bridge.run_command(bridge_cmd, data_dir, grpc_port, http_port, config)
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
                wait_ready(proc, grpc_port, http_port, ready_timeout, log)
        except BaseException:
            self.stop()
            raise

    def stats(self) -> dict[str, Any]:
        return get_json(self.sink_port, "/stats")

    def load(
        self, transport: str, seconds: float, max_requests: int, concurrency: int, seed: int
    ) -> dict[str, Any]:
        """The load generator against every replica (connections round-robin)."""
        log = self.workdir / "loadgen.log"
        result = run_loadgen(
            self.children, log, transport, self.ports[transport], seconds, concurrency,
            max_requests=max_requests, seed=seed, slack=120,
        )  # fmt: skip
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise BenchError(f"a bridge exited (code {proc.returncode}):\n{tail(log)}")
        return result

    def sink_ticks(self) -> int:
        return cpu_ticks(self.sink.pid)

    def ticks_by_role(self) -> dict[str, int]:
        """CPU ticks so far of the replicas' processes, summed per `processes.role` (their
        sum: the whole trees')."""
        out: dict[str, int] = {}
        for w in self.watchers:
            w.sample()
            for pid, ticks in w.ticks.items():
                name = w.roles.get(pid, "bridge")
                out[name] = out.get(name, 0) + ticks
        return out

    def peak_rss(self) -> tuple[float, int]:
        """Sum of VmHWM over every process seen in the replicas' trees, in MB; how many."""
        for w in self.watchers:
            w.sample()
        hwm = [kb for w in self.watchers for kb in w.hwm.values()]
        return round(sum(hwm) / 1024, 1), len(hwm)

    def peak_pss_mb(self) -> float:
        """The peak of the replicas' trees' summed PSS, sampled 4 times a second, in MB:
        their memory with each shared page counted once (summing RSS counts it in every
        process that maps it)."""
        return round(sum(w.peak_pss for w in self.watchers) / 1024, 1)

    def first_peak_rss_mb(self) -> float:
        """VmHWM of the first replica's own process (not its children), in MB."""
        self.watchers[0].sample()
        return round(self.watchers[0].hwm.get(self.procs[0].pid, 0) / 1024, 1)

    def rss_now_kb(self) -> int:
        """Sum of VmRSS over the replicas' trees now."""
        return tree_rss_kb([proc.pid for proc in self.procs])

    def first_rss_now_kb(self) -> int:
        """VmRSS of the first replica's own process now."""
        return vm_rss_kb(self.procs[0].pid) or 0

    def data_dir_bytes(self) -> int:
        """What the first replica's data dir holds."""
        return sum(p.stat().st_size for p in (self.workdir / "data-0").rglob("*") if p.is_file())

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{tail(log)}" for log in self.logs)

    def stop(self) -> None:
        for w in self.watchers:
            w.stop()
        for proc in [*self.procs, self.sink]:
            self.children.end(proc)
        if self.schema:
            bridge.drop_schemas(self.pg_dsn, self.schema)


# --------------------------------------------------------------------------- measurements


@dataclass
class Delivery:
    """A load and what reached the sink afterwards."""

    load: dict[str, Any]  # the load generator's result
    sink: dict[str, Any]  # the sink's stats once every span arrived, or at the timeout
    acknowledged: int
    started_at: float  # time.monotonic() of the first request
    loaded_at: float  # ... and of the load's end
    at_load_end: dict[str, Any] | None = None  # the sink's stats as the load ended
    # CPU taken by everything but the bridges, the sink and the load generator while the
    # load ran (other processes, PostgreSQL among them, plus hypervisor steal): 100 = one core
    other_cpu_pct: float = 0.0

    @property
    def sustained_spans_per_s(self) -> float | None:
        """What reached the sink per second while the load ran, from its first delivery
        (the last flush and any settle delay, a fixed latency, left out)."""
        stats = self.at_load_end
        if not stats or not stats["first_at"]:
            return None
        window = float(stats["now"]) - float(stats["first_at"])
        return int(stats["observations"]) / window if window > 1.0 else None

    @property
    def delivered(self) -> bool:
        return int(self.sink["observations"]) >= self.acknowledged


def deliver(
    dep: Deployment,
    transport: str,
    seconds: float,
    max_requests: int,
    concurrency: int,
    seed: int,
    timeout_s: float,
    interval: float = 0.2,
) -> Delivery:
    """Load for `seconds`, then wait up to `timeout_s` until the sink holds every
    acknowledged span."""
    ours0 = sum(dep.ticks_by_role().values()) + dep.sink_ticks()
    result = dep.load(transport, seconds, max_requests, concurrency, seed)
    ours1 = sum(dep.ticks_by_role().values()) + dep.sink_ticks()
    loaded_at = time.monotonic()
    at_load_end = dep.stats()
    started_at = loaded_at - float(result["elapsed_s"])
    acked = int(result["spans_acknowledged"])
    with contextlib.suppress(BenchError):
        wait_until(lambda: dep.stats()["observations"] >= acked, timeout_s, "", interval)
    return Delivery(
        result, dep.stats(), acked, started_at, loaded_at, at_load_end,
        other_cpu_pct(result, ours1 - ours0),
    )  # fmt: skip


@dataclass
class Drain:
    """A backlog accepted while the sink was down, then drained."""

    delivery: Delivery  # loaded_at: the sink back up
    peak_rss_mb_before: float  # the replicas' trees with the backlog held, before the drain
    first_peak_rss_mb_before: float  # the first replica's own process, likewise
    peak_rss_now_kb: int  # the peak of the trees' summed VmRSS while draining
    first_peak_rss_now_kb: int  # the first replica's own process, likewise

    @property
    def drain_s(self) -> float:
        return float(self.delivery.sink["last_at"]) - self.delivery.loaded_at


def drain_backlog(
    dep: Deployment, spans: int, concurrency: int, seed: int, timeout_s: float
) -> Drain:
    """`spans` accepted over HTTP while the sink is down (it must have been started so),
    then the sink up: wait up to `timeout_s` until it holds every acknowledged span,
    sampling resident memory meanwhile."""
    requests = math.ceil(spans / SPANS_PER_REQUEST)
    result = dep.load("http", 3600, requests, concurrency, seed)
    acked = int(result["spans_acknowledged"])
    rss_before, _ = dep.peak_rss()
    first_before = dep.first_peak_rss_mb()
    peak = {"tree": 0, "first": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak["tree"] = max(peak["tree"], dep.rss_now_kb())
            peak["first"] = max(peak["first"], dep.first_rss_now_kb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    post_empty(dep.sink_port, "/up")
    up_at = time.monotonic()
    try:
        with contextlib.suppress(BenchError):
            wait_until(lambda: dep.stats()["observations"] >= acked, timeout_s, "", 0.5)
        stats = dep.stats()
    finally:
        done.set()
        sampler.join()
    delivery = Delivery(result, stats, acked, up_at - float(result["elapsed_s"]), up_at)
    return Drain(delivery, rss_before, first_before, peak["tree"], peak["first"])
