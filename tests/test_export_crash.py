"""`kill -9` of a bridge process in the middle of a load, then a restart on the same data
dir: every span acknowledged to the client reaches the ingestion endpoint; a span that
arrives twice arrives with the same event id (so the endpoint overwrites it)."""

from __future__ import annotations

import os
import signal
import threading
from collections import defaultdict
from pathlib import Path

import httpx

from tests.export_helpers import request_of, turn
from tests.ingestion_server import IngestionServer
from tests.test_cli import _start


def _config(path: Path, server: IngestionServer) -> Path:
    path.write_text(
        "exporters:\n"
        "  - type: ingestion\n"
        f"    base_url: {server.base_url}\n"
        f"    public_key: {server.public_key}\n"
        f"    secret_key: {server.secret_key}\n"
        "    settle_delay: 0s\n"
        "    flush_interval: 20ms\n"
        "    max_batch_size: 64KiB\n"
        "    retry: {initial_interval: 20ms, max_interval: 200ms}\n"
    )
    return path


def test_kill_9_mid_load_then_restart_delivers_every_acknowledged_span(tmp_path: Path) -> None:
    server = IngestionServer()
    server.delay_s = 0.03  # the exporter lags behind the load: the kill finds work in flight
    config = _config(tmp_path / "bridge.yaml", server)
    process, banner = _start(tmp_path, "--config", str(config))
    acknowledged: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=banner["endpoint"], timeout=10) as client:
            for i in range(400):  # bounded: the kill comes long before
                turns = [turn(f"sess-kill-{i % 7}", index=i * 4 + k) for k in range(4)]
                try:
                    response = client.post(
                        "/v1/traces",
                        content=request_of(turns).SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"},
                    )
                except httpx.HTTPError:
                    return  # the bridge is gone: this request was never acknowledged
                if response.status_code == 200:
                    acknowledged.update(s for t in turns for s in t.span_ids)
                if stop.is_set():
                    return

    try:
        sender = threading.Thread(target=load)
        sender.start()
        server.wait_for(lambda s: len(s.received) >= 5 and len(acknowledged) >= 300)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        stop.set()
        sender.join(timeout=30)
        delivered_before = server.observation_ids()
        assert acknowledged - delivered_before, "the kill should leave spans to deliver"

        server.delay_s = 0.0
        restarted, _ = _start(tmp_path, "--config", str(config))
        try:
            server.wait_for(lambda s: s.observation_ids() >= acknowledged, timeout_s=60)
        finally:
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        server.stop()
    envelope_ids: dict[str, set[str]] = defaultdict(set)
    for event in server.snapshot():
        if event["type"] != "trace-create":
            envelope_ids[event["body"]["id"]].add(event["id"])
    assert all(len(ids) == 1 for ids in envelope_ids.values())
    assert not server.invalid, server.invalid[:5]
