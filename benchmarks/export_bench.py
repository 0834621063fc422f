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
import sys
import tempfile
from pathlib import Path
from typing import Any

from bridge import default_bridge_cmd
from deployment import Deployment, deliver, drain_backlog
from processes import BenchError, Children

RETRY_MAX_INTERVAL = "1s"


def setup(children: Children, workdir: Path, *, down: bool) -> Deployment:
    """A sink and a bridge exporting to it, in a work dir of their own."""
    return Deployment(
        children, workdir, bridge_cmd=default_bridge_cmd(), sink_down=down,
        retry_max_interval=RETRY_MAX_INTERVAL,
    )  # fmt: skip


def end_to_end(children: Children, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    dep = setup(children, workdir, down=False)
    try:
        done = deliver(dep, "http", args.seconds, 10_000_000, args.concurrency, 1, 600, 0.1)
        if not done.delivered:
            raise BenchError("timed out after 600s waiting for the last span at the sink")
        result, stats, acked = done.load, done.sink, done.acknowledged
        return {
            "spans": acked,
            "ingest_spans_per_s": result["spans_per_s"],
            "end_to_end_spans_per_s": round(acked / (stats["last_at"] - done.started_at), 1),
            "export_lag_after_load_s": round(max(stats["last_at"] - done.loaded_at, 0.0), 2),
            "requests_to_sink": stats["requests"],
            "mean_request_mb": round(stats["bytes"] / max(stats["requests"], 1) / 1e6, 2),
            "peak_rss_mb": dep.first_peak_rss_mb(),
            "requests_failed": result["requests_failed"],
        }
    except BaseException:
        print(dep.log_tails(), file=sys.stderr)
        raise
    finally:
        dep.stop()


def drain(children: Children, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    dep = setup(children, workdir, down=True)
    try:
        backlog = drain_backlog(dep, args.backlog, args.concurrency, 1, 3600)
        if not backlog.delivery.delivered:
            raise BenchError("timed out after 3600s waiting for the backlog to drain")
        result, acked = backlog.delivery.load, backlog.delivery.acknowledged
        return {
            "backlog_spans": acked,
            "ingest_spans_per_s": result["spans_per_s"],
            "requests_failed_during_ingest": result["requests_failed"],
            "drain_s": round(backlog.drain_s, 1),
            "drain_spans_per_s": round(acked / backlog.drain_s, 1),
            "peak_rss_mb_during_drain": round(backlog.first_peak_rss_now_kb / 1024, 1),
            "peak_rss_mb_overall": max(dep.first_peak_rss_mb(), backlog.first_peak_rss_mb_before),
            "data_dir_mb": round(dep.data_dir_bytes() / 1e6),
        }
    except BaseException:
        print(dep.log_tails(), file=sys.stderr)
        raise
    finally:
        dep.stop()


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
    except BenchError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        children.stop_all()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
