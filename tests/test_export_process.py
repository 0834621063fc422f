"""With map workers, the exporters run in a process of their own (`export/process.py`): it
delivers every span with events built from the stored spans (replicas sharing PostgreSQL
build them at ingest instead), spans whose session is known without the settle delay,
its metrics and health reach the bridge's `/metrics` and `/readyz`, its back-pressure
reaches the receivers, a killed export process is started again with nothing lost, and
it dies with the bridge."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx
import psycopg
import psycopg.sql
import pytest

from session_bridge.server import ProcessPlan, process_plan
from tests.export_helpers import Turn, eventually, request_of, turn
from tests.ingestion_server import IngestionServer
from tests.test_replicas import PROTO, BridgeProcess

EXPORT_MODULE = "session_bridge.export.process"
MAP_WORKER_MODULE = "session_bridge.ingest.workers"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("workers", "exporting", "plan"),
    [
        (1, True, ProcessPlan(map_workers=0, export_process=False)),
        (1, False, ProcessPlan(map_workers=0, export_process=False)),
        (2, True, ProcessPlan(map_workers=1, export_process=True)),
        (2, False, ProcessPlan(map_workers=2, export_process=False)),
        (8, True, ProcessPlan(map_workers=7, export_process=True)),
    ],
)
def test_the_workers_share_the_cores_with_the_export_process(
    workers: int, exporting: bool, plan: ProcessPlan
) -> None:
    assert process_plan(workers, exporting=exporting) == plan


def _start(
    tmp_path: Path,
    server: IngestionServer,
    extra: str = "",
    storage: str = "",
    settle_delay: str = "0s",
) -> BridgeProcess:
    config = tmp_path / "bridge.yaml"
    config.write_text(
        storage + "exporters:\n  ingestion:\n"
        f"    base_url: {server.base_url}\n"
        f"    public_key: {server.public_key}\n    secret_key: {server.secret_key}\n"
        f"    settle_delay: {settle_delay}\n    flush_interval: 20ms\n"
        "    retry: {initial_interval: 20ms, max_interval: 200ms}\n" + extra
    )
    return BridgeProcess.start(
        "--config", str(config), "--data-dir", str(tmp_path / "d"), "--workers", "2"
    )


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(child) for child in f.read().split()]
    return found


def _children_running(bridge: BridgeProcess, module: str) -> list[int]:
    found = []
    for child in _children(bridge.process.pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if module.encode() in f.read():
                    found.append(child)
        except FileNotFoundError:
            continue
    return found


def _export_process(bridge: BridgeProcess) -> int | None:
    return next(iter(_children_running(bridge, EXPORT_MODULE)), None)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _post(bridge: BridgeProcess, turns: list[Turn]) -> httpx.Response:
    body = request_of(turns).SerializeToString()
    return httpx.post(f"{bridge.endpoint}/v1/traces", content=body, headers=PROTO, timeout=10)


def _metric(bridge: BridgeProcess, name: str) -> float:
    text = httpx.get(f"{bridge.endpoint}/metrics", timeout=10).text
    prefix = f'{name}{{exporter="ingestion"}} '
    return next(
        (float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0
    )


def test_spans_of_a_trace_whose_session_is_known_go_without_the_settle_delay(
    server: IngestionServer, tmp_path: Path
) -> None:
    # a settle delay far beyond the wait below: what arrives went without it
    bridge = _start(tmp_path, server, settle_delay="10m")
    try:
        turns = [turn("sess-early", index=i) for i in range(3)]  # each root names the session
        assert _post(bridge, turns).status_code == 200
        expected = {x for t in turns for x in t.span_ids}
        server.wait_for(lambda s: s.observation_ids() >= expected)
        creates = [e["body"] for e in server.snapshot() if e["type"] == "trace-create"]
        assert {c["id"] for c in creates} == {t.trace_id.hex() for t in turns}
        assert {c.get("sessionId") for c in creates} == {"sess-early"}
    finally:
        bridge.stop()


def test_the_export_process_delivers_events_built_from_the_stored_spans(
    server: IngestionServer, tmp_path: Path
) -> None:
    bridge = _start(tmp_path, server)
    try:
        assert _export_process(bridge) is not None
        # `--workers 2`: the export process is one of the two, the other maps
        assert len(_children_running(bridge, MAP_WORKER_MODULE)) == 1
        turns = [turn(f"sess-{i % 3}", index=i) for i in range(12)]
        for i in range(0, 12, 4):
            assert _post(bridge, turns[i : i + 4]).status_code == 200
        expected = {x for t in turns for x in t.span_ids}
        server.wait_for(lambda s: s.observation_ids() >= expected)
        # the export process's metrics are the bridge's
        eventually(lambda: _metric(bridge, "session_bridge_exporter_sent_spans_total") == 36)
        assert httpx.get(f"{bridge.endpoint}/readyz", timeout=10).status_code == 200
    finally:
        bridge.stop()
    with sqlite3.connect(tmp_path / "d" / "bridge.db") as db:  # ingest built no event
        assert db.execute("SELECT count(*) FROM spans WHERE ingestion_event IS NULL").fetchone()[
            0
        ] == len(expected)
    assert len(server.observation_ids()) == len(expected)


def test_replicas_sharing_a_store_build_the_events_at_ingest(
    server: IngestionServer, pg_dsn: str, pg_schema: str, tmp_path: Path
) -> None:
    # the work spreads over the replicas; the one exporting reads and sends
    storage = f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{pg_dsn}'\n"
    bridge = _start(tmp_path, server, storage=storage + f"    schema: {pg_schema}\n")
    try:
        assert _export_process(bridge) is not None
        turns = [turn("sess-pg", index=i) for i in range(4)]
        assert _post(bridge, turns).status_code == 200
        expected = {x for t in turns for x in t.span_ids}
        server.wait_for(lambda s: s.observation_ids() >= expected)
    finally:
        bridge.stop()
    with psycopg.connect(pg_dsn) as db:
        table = psycopg.sql.Identifier(pg_schema, "spans")
        query = psycopg.sql.SQL("SELECT count(*) FROM {} WHERE ingestion_event IS NOT NULL")
        row = db.execute(query.format(table)).fetchone()
    assert row is not None and row[0] == len(expected)


def test_a_killed_export_process_is_started_again_and_loses_nothing(
    server: IngestionServer, tmp_path: Path
) -> None:
    bridge = _start(tmp_path, server)
    try:
        first = _export_process(bridge)
        assert first is not None
        server.down = True  # its requests fail: the kill finds work undelivered
        turns = [turn("sess-kill", index=i) for i in range(6)]
        assert _post(bridge, turns).status_code == 200
        eventually(lambda: len(server.received) > 0, what="a failed attempt")
        os.kill(first, signal.SIGKILL)
        eventually(lambda: not _alive(first), what="the kill")
        eventually(
            lambda: _export_process(bridge) not in (None, first), what="a new export process"
        )
        server.down = False
        expected = {x for t in turns for x in t.span_ids}
        server.wait_for(lambda s: s.observation_ids() >= expected)
        eventually(lambda: httpx.get(f"{bridge.endpoint}/readyz", timeout=10).status_code == 200)
    finally:
        bridge.stop()


def test_the_export_process_reports_health_and_back_pressure(
    server: IngestionServer, tmp_path: Path
) -> None:
    # a tiny queue, and credentials the server refuses: nothing can leave
    bridge = _start(tmp_path, server, "    queue_capacity: 4KiB\n    max_batch_size: 4KiB\n")
    server.secret_key = "sk-rotated"
    try:
        assert _post(bridge, [turn("sess-full", index=i) for i in range(4)]).status_code == 200

        def refused() -> bool:
            return _post(bridge, [turn("sess-full")]).status_code == 503

        eventually(refused, what="back-pressure from the export process")
        answer = _post(bridge, [turn("sess-full")])
        assert "queue_capacity" in answer.text
        ready = httpx.get(f"{bridge.endpoint}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "credentials" in ready.text
    finally:
        bridge.stop()


def test_the_export_process_dies_with_the_bridge(server: IngestionServer, tmp_path: Path) -> None:
    bridge = _start(tmp_path, server)
    child = _export_process(bridge)
    assert child is not None
    os.kill(bridge.process.pid, signal.SIGKILL)
    bridge.process.wait(timeout=10)
    eventually(lambda: not _alive(child), timeout_s=10, what="the export process ending")
