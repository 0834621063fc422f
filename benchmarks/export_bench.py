"""The export path, measured: the bridge with an `ingestion` exporter in front of a fast
ingestion endpoint (benchmarks/ingestion_sink.py), each in its own process, loaded by
benchmarks/loadgen.py over OTLP/HTTP.

1. end to end: spans/s from the first request of the load generator to the endpoint's
   acknowledgement of the last span (and the ingest rate and export lag on the way);
2. backlog drain: the endpoint down while `--backlog` spans (default 1,000,000) are
   accepted, then up: how long the backlog takes to drain, and the bridge's RSS (the
   backlog lives on disk, in the store; memory stays bounded).

    .venv/bin/python benchmarks/export_bench.py                  # both, about 5 minutes
    .venv/bin/python benchmarks/export_bench.py --backlog 200000 --seconds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from run import (
    HOST,
    LOADGEN,
    Children,
    ProcessWatcher,
    free_port,
    http_ready,
    tail,
    tcp_open,
)

HERE = Path(__file__).resolve().parent
SINK = HERE / "ingestion_sink.py"
SPANS_PER_REQUEST = 512


def get_json(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def post_empty(port: int, path: str) -> None:
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _wait(check: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Setup:
    """A sink and a bridge exporting to it, in a work dir of their own."""

    def __init__(self, children: Children, workdir: Path, *, down: bool) -> None:
        self.children = children
        self.sink_port = free_port()
        sink_cmd = [sys.executable, str(SINK), "--port", str(self.sink_port)]
        self.sink = children.start(sink_cmd + (["--down"] if down else []), workdir / "sink.log")
        _wait(lambda: self._sink_up(), 30, "the sink")
        self.grpc_port, self.http_port = free_port(), free_port()
        config = workdir / "bridge.yaml"
        config.write_text(
            "exporters:\n  - type: ingestion\n"
            f"    base_url: http://{HOST}:{self.sink_port}\n"
            "    public_key: pk-bench\n    secret_key: sk-bench\n"
            "    retry: {max_interval: 1s}\n"
        )
        cmd = [sys.executable, "-m", "session_bridge.cli", "run", "--config", str(config),
               "--data-dir", str(workdir / "data"), "--grpc", f"{HOST}:{self.grpc_port}",
               "--http", f"{HOST}:{self.http_port}"]  # fmt: skip
        self.log = workdir / "bridge.log"
        self.bridge = children.start(cmd, self.log)
        self.watcher = ProcessWatcher(self.bridge.pid)
        self.watcher.start()
        _wait(lambda: http_ready(self.http_port) and tcp_open(self.grpc_port), 60, "the bridge")

    def _sink_up(self) -> bool:
        try:
            get_json(self.sink_port, "/stats")
        except OSError:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        return get_json(self.sink_port, "/stats")

    def load(self, seconds: float, max_requests: int, concurrency: int) -> dict[str, Any]:
        cmd = [sys.executable, str(LOADGEN), "--transport", "http", "--port", str(self.http_port),
               "--seconds", str(seconds), "--concurrency", str(concurrency),
               "--max-requests", str(max_requests), "--json"]  # fmt: skip
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=seconds + 120
        )
        if out.returncode != 0 and not out.stdout.strip():
            raise SystemExit(f"load generator failed: {out.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def peak_rss_mb(self) -> float:
        self.watcher.sample()
        return round(self.watcher.hwm.get(self.bridge.pid, 0) / 1024, 1)

    def stop(self) -> None:
        self.watcher.stop()
        for proc in (self.bridge, self.sink):
            Children.stop(proc)
            self.children.procs.remove(proc)


def end_to_end(children: Children, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    setup = Setup(children, workdir, down=False)
    try:
        result = setup.load(args.seconds, 10_000_000, args.concurrency)
        loaded_at = time.monotonic()
        acked = int(result["spans_acknowledged"])
        started_at = loaded_at - float(result["elapsed_s"])
        _wait(lambda: setup.stats()["observations"] >= acked, 600, "the last span at the sink")
        stats = setup.stats()
        return {
            "spans": acked,
            "ingest_spans_per_s": result["spans_per_s"],
            "end_to_end_spans_per_s": round(acked / (stats["last_at"] - started_at), 1),
            "export_lag_after_load_s": round(max(stats["last_at"] - loaded_at, 0.0), 2),
            "requests_to_sink": stats["requests"],
            "mean_request_mb": round(stats["bytes"] / max(stats["requests"], 1) / 1e6, 2),
            "peak_rss_mb": setup.peak_rss_mb(),
            "requests_failed": result["requests_failed"],
        }
    except BaseException:
        print(tail(setup.log), file=sys.stderr)
        raise
    finally:
        setup.stop()


def drain(children: Children, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    setup = Setup(children, workdir, down=True)
    try:
        requests = math.ceil(args.backlog / SPANS_PER_REQUEST)
        result = setup.load(3600, requests, args.concurrency)
        acked = int(result["spans_acknowledged"])
        rss_before = setup.peak_rss_mb()
        peak = {"rss_kb": 0}
        done = threading.Event()

        def sample() -> None:  # the bridge's resident memory while it drains
            while not done.wait(0.25):
                peak["rss_kb"] = max(peak["rss_kb"], _rss_kb(setup.bridge.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        post_empty(setup.sink_port, "/up")
        up_at = time.monotonic()
        _wait(lambda: setup.stats()["observations"] >= acked, 3600, "the backlog to drain")
        stats = setup.stats()
        done.set()
        sampler.join()
        drained_s = stats["last_at"] - up_at
        return {
            "backlog_spans": acked,
            "ingest_spans_per_s": result["spans_per_s"],
            "requests_failed_during_ingest": result["requests_failed"],
            "drain_s": round(drained_s, 1),
            "drain_spans_per_s": round(acked / drained_s, 1),
            "peak_rss_mb_during_drain": round(peak["rss_kb"] / 1024, 1),
            "peak_rss_mb_overall": max(setup.peak_rss_mb(), rss_before),
            "data_dir_mb": round(
                sum(p.stat().st_size for p in (workdir / "data").rglob("*") if p.is_file()) / 1e6
            ),
        }
    except BaseException:
        print(tail(setup.log), file=sys.stderr)
        raise
    finally:
        setup.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="end-to-end load duration")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="spans in the outage")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip", choices=("e2e", "drain"), action="append", default=[])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    children = Children()
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
            if "e2e" not in args.skip:
                (Path(tmp) / "e2e").mkdir()
                results["end_to_end"] = end_to_end(children, Path(tmp) / "e2e", args)
                print(json.dumps({"end_to_end": results["end_to_end"]}, indent=2), flush=True)
            if "drain" not in args.skip:
                (Path(tmp) / "drain").mkdir()
                results["drain"] = drain(children, Path(tmp) / "drain", args)
                print(json.dumps({"drain": results["drain"]}, indent=2), flush=True)
    finally:
        children.stop_all()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
