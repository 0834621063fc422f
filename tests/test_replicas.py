"""Three `session-bridge run` processes on one PostgreSQL, fed at once by several clients
(duplicates, session ids reaching another replica than the rest of their trace), give
the rollups of one bridge on SQLite fed the same data; and a replica killed with
SIGKILL in the middle of it loses nothing acknowledged and counts nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from session_bridge.rollup.rollup import Rollup
from session_bridge.store.base import SessionQuery, Store
from session_bridge.store.config import StorageConfig
from session_bridge.store.factory import open_store
from tests.workload import Delivery, agent_traffic

PROTO = {"Content-Type": "application/x-protobuf"}


@dataclass
class BridgeProcess:
    process: subprocess.Popen[str]
    endpoint: str  # http://host:port

    @classmethod
    def start(cls, *args: str) -> BridgeProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "session_bridge.cli", "run",
             "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "warning", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        for line in process.stdout:  # the banner ends with the SDK line
            if "OTEL_EXPORTER_OTLP_ENDPOINT=" in line:
                return cls(process, line.split("=", 1)[1].strip())
        raise AssertionError(f"no banner: {process.stderr.read() if process.stderr else ''}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=30) == 0


def _send(endpoints: list[str], deliveries: list[Delivery], clients: int) -> int:
    """Deliver everything, `clients` at a time, each retrying until acknowledged (as an
    SDK retries: a 503, a refused or reset connection); `endpoints` may change meanwhile.
    Returns how many attempts failed."""
    pending = list(deliveries)
    lock = threading.Lock()
    errors: list[str] = []
    failed: list[int] = []

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while True:
                with lock:
                    if not pending or errors:
                        return
                    delivery = pending.pop()
                body = delivery.request.SerializeToString()
                deadline = time.monotonic() + 60
                while True:
                    try:
                        url = f"{endpoints[delivery.target]}/v1/traces"
                        response = http.post(url, content=body, headers=PROTO)
                        if response.status_code == 200:
                            break
                        assert response.status_code == 503, response.text
                    except httpx.TransportError:
                        failed.append(delivery.target)
                    if time.monotonic() > deadline:
                        errors.append(f"not acknowledged within 60 s: {delivery.target}")
                        return
                    time.sleep(0.05)

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(client) for _ in range(clients)]
    for future in running:
        future.result()  # a client's own failure (an unexpected answer) fails the test
    assert not errors, errors
    assert not pending, f"{len(pending)} deliveries never sent"
    return len(failed)


def _rollups(store: Store) -> dict[str, Rollup]:
    rows = store.list_sessions(SessionQuery("default", page_size=1000))
    store.close()
    return {row.session_id: row.rollup for row in rows}


@pytest.mark.parametrize("kill", [False, True], ids=["steady", "kill-9"])
def test_three_replicas_equal_one_sqlite_bridge(
    pg_dsn: str, pg_schema: str, tmp_path: Path, kill: bool
) -> None:
    storage = StorageConfig(backend="postgres")
    storage.postgres.dsn, storage.postgres.schema = pg_dsn, pg_schema
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{pg_dsn}'\n"
        f"    schema: {pg_schema}\n"
    )
    deliveries = agent_traffic(7 if kill else 5, replicas=3, sessions=40)
    replicas = [BridgeProcess.start("--config", str(config)) for _ in range(3)]
    reference = BridgeProcess.start("--data-dir", str(tmp_path / "sqlite"))
    try:
        _send([reference.endpoint] * 3, deliveries, clients=1)
        reference.stop()
        endpoints = [r.endpoint for r in replicas]
        killer = threading.Thread(target=_kill_and_restart, args=(replicas, endpoints, config))
        if kill:
            killer.start()
        failed = _send(endpoints, deliveries, clients=6)
        if kill:
            killer.join()
            assert failed > 0  # the kill came while requests were in flight: they were resent
            assert replicas[1].process.returncode is None  # the restarted one
        expected = _rollups(open_store(StorageConfig(data_dir=str(tmp_path / "sqlite"))))
        assert len(expected) == 40
        actual = _rollups(open_store(storage))
        assert actual.keys() == expected.keys()
        for session_id, rollup in expected.items():
            assert actual[session_id] == rollup, session_id
    finally:
        for bridge in [*replicas, reference]:
            if bridge.process.poll() is None:
                bridge.process.kill()
            bridge.process.wait(timeout=30)


def _kill_and_restart(replicas: list[BridgeProcess], endpoints: list[str], config: Path) -> None:
    """SIGKILL replica 1 once it has acknowledged some requests, then start it again."""
    victim = replicas[1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _accepted(victim.endpoint) < 100:
        time.sleep(0.01)
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=30)
    replicas[1] = BridgeProcess.start("--config", str(config))
    endpoints[1] = replicas[1].endpoint


def _accepted(endpoint: str) -> float:
    metric = 'session_bridge_receiver_accepted_spans_total{transport="http"} '
    for line in httpx.get(f"{endpoint}/metrics", timeout=10).text.splitlines():
        if line.startswith(metric):
            return float(line.removeprefix(metric))
    return 0.0


def test_replicas_sharing_a_data_dir_keep_their_metrics_apart(
    pg_dsn: str, pg_schema: str, tmp_path: Path
) -> None:
    # with map workers, a bridge's processes sum their metrics through files in the data
    # dir; bridges sharing PostgreSQL may share that dir, and each has a directory of its own
    data_dir = tmp_path / "shared"
    stale = data_dir / ".metrics" / "999999999"  # a bridge no longer running (past pid_max)
    stale.mkdir(parents=True)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{pg_dsn}'\n"
        f"    schema: {pg_schema}\n"
    )
    args = ("--config", str(config), "--data-dir", str(data_dir), "--workers", "2")
    first = BridgeProcess.start(*args)
    second = BridgeProcess.start(*args)
    try:
        (delivery, *_) = agent_traffic(1, replicas=2, sessions=2)
        spans = sum(len(s.spans) for r in delivery.request.resource_spans for s in r.scope_spans)
        assert _send([first.endpoint] * 2, [delivery], clients=1) == 0
        assert _accepted(first.endpoint) == spans
        assert _accepted(second.endpoint) == 0
        assert not stale.exists()
    finally:
        second.stop()
        first.stop()
