"""Exporting from PostgreSQL: every acknowledged span reaches a real ingestion endpoint
from any number of replicas, in steady state sent by exactly one of them; a replica
killed with SIGKILL mid-export is taken over; dead letters and retention work there too."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from session_bridge import cli
from session_bridge.config import BridgeConfig
from session_bridge.store.config import StorageConfig
from session_bridge.store.factory import open_store
from tests.conftest import RunningBridge
from tests.export_helpers import (
    eventually,
    exporting_config,
    ingestion,
    metric,
    refuse_tool_spans,
    request_of,
    send,
    turn,
)
from tests.ingestion_server import IngestionServer
from tests.test_replicas import PROTO, BridgeProcess


def _on_postgres(config: BridgeConfig, dsn: str, schema: str) -> BridgeConfig:
    config.storage.backend = "postgres"
    config.storage.postgres.dsn = dsn
    config.storage.postgres.schema = schema
    return config


def _config_file(tmp_path: Path, dsn: str, schema: str, server: IngestionServer) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{dsn}'\n    schema: {schema}\n"
        "exporters:\n  - type: ingestion\n"
        f"    base_url: {server.base_url}\n"
        f"    public_key: {server.public_key}\n    secret_key: {server.secret_key}\n"
        "    settle_delay: 0s\n    flush_interval: 20ms\n"
        "    retry: {initial_interval: 20ms, max_interval: 200ms}\n"
    )
    return path


def _id_counts(server: IngestionServer) -> Counter[str]:
    return Counter(e["body"]["id"] for e in server.snapshot() if e["type"] != "trace-create")


def test_sdk_spans_reach_the_ingestion_endpoint_from_postgres(
    server: IngestionServer,
    pg_dsn: str,
    pg_schema: str,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
) -> None:
    config = _on_postgres(exporting_config(tmp_path / "d", ingestion(server)), pg_dsn, pg_schema)
    bridge = start_bridge(config)
    provider = TracerProvider(resource=Resource.create({"service.name": "pg-export"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(f"{bridge.http_url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    span_ids = set()
    for i in range(5):
        with tracer.start_as_current_span(
            f"turn {i}", attributes={"session.id": "sess-pg"}
        ) as root:
            with tracer.start_as_current_span(
                "chat",
                attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
            ) as chat:
                span_ids.add(format(chat.get_span_context().span_id, "016x"))
            span_ids.add(format(root.get_span_context().span_id, "016x"))
    provider.shutdown()
    server.wait_for(lambda s: s.observation_ids() >= span_ids)
    # a trace-create from spans sent before the root (settle_delay 0) may lack the session
    traces = [e for e in server.snapshot() if e["type"] == "trace-create"]
    assert {t["body"].get("sessionId") for t in traces} - {None} == {"sess-pg"}
    first = server.snapshot()
    # a restart resends nothing that was delivered: the cursor is durable in PostgreSQL
    bridge.stop()
    again = start_bridge(config)
    send(again, [turn("sess-pg-2")])
    server.wait_for(lambda s: any(e["body"].get("sessionId") == "sess-pg-2" for e in s.snapshot()))
    assert not {e["id"] for e in first} & {e["id"] for e in server.snapshot()[len(first) :]}


def _lease_holder(dsn: str, schema: str, *, missing_ok: bool = False) -> int | None:
    """The pid of the bridge process holding the ingestion exporter's lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
            " AND a.application_name LIKE 'otel-session-bridge export pid %%'"
        ).fetchone()
    if row is None:
        assert missing_ok, "no replica holds the exporter"
        return None
    return int(str(row[0]).rsplit(" ", 1)[1])


def test_three_replicas_deliver_every_span_once_and_take_over_after_kill_9(
    server: IngestionServer, pg_dsn: str, pg_schema: str, tmp_path: Path
) -> None:
    config = _config_file(tmp_path, pg_dsn, pg_schema, server)
    replicas = [BridgeProcess.start("--config", str(config)) for _ in range(3)]
    try:
        turns = [turn(f"sess-{i % 4}", index=i) for i in range(30)]
        with httpx.Client(timeout=10) as http:
            for i, t in enumerate(turns):  # one session's turns spread over the replicas
                url = f"{replicas[i % 3].endpoint}/v1/traces"
                response = http.post(
                    url, content=request_of([t]).SerializeToString(), headers=PROTO
                )
                assert response.status_code == 200, response.text
        expected = {x for t in turns for x in t.span_ids}
        server.wait_for(lambda s: s.observation_ids() >= expected)
        counts = _id_counts(server)
        assert set(counts) == expected
        assert max(counts.values()) == 1, "steady state: no span sent twice"

        # the exporting replica dies while its requests fail: another one delivers them
        holder = _lease_holder(pg_dsn, pg_schema)
        assert holder is not None
        server.down = True
        more = [turn("sess-kill", index=i) for i in range(20)]
        survivor = next(r for r in replicas if r.process.pid != holder)
        with httpx.Client(timeout=10) as http:
            for t in more:
                response = http.post(
                    f"{survivor.endpoint}/v1/traces",
                    content=request_of([t]).SerializeToString(),
                    headers=PROTO,
                )
                assert response.status_code == 200, response.text
        before = len(server.received)
        eventually(lambda: len(server.received) > before, what="a failed attempt")
        os.kill(holder, signal.SIGKILL)
        eventually(
            lambda: _lease_holder(pg_dsn, pg_schema, missing_ok=True) not in (None, holder),
            what="another replica taking the exporter over",
        )
        server.down = False
        wanted = expected | {x for t in more for x in t.span_ids}
        server.wait_for(lambda s: s.observation_ids() >= wanted, timeout_s=60)
        assert set(_id_counts(server)) == wanted  # the same deterministic ids, whoever sent them
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.stop()
            else:
                replica.process.wait()


def test_dead_letters_and_replay_on_postgres(
    server: IngestionServer,
    pg_dsn: str,
    pg_schema: str,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.rule = refuse_tool_spans
    config = _on_postgres(exporting_config(tmp_path / "d", ingestion(server)), pg_dsn, pg_schema)
    bridge = start_bridge(config)
    turns = [turn("sess-dlq", index=i) for i in range(3)]
    send(bridge, turns)
    eventually(lambda: metric(bridge, "session_bridge_exporter_dead_letters", "ingestion") == 3)
    tools = {t.children[1].span_id.hex() for t in turns}
    path = _config_file(tmp_path, pg_dsn, pg_schema, server)
    assert cli.main(["dlq", "list", "--config", str(path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["span_id"] for r in rows} == tools
    server.rule = None
    assert cli.main(["dlq", "replay", "--config", str(path)]) == 0
    assert "3 delivered, 0 failed again" in capsys.readouterr().out
    assert server.observation_ids() >= tools
    assert cli.main(["dlq", "purge", "--config", str(path), "--all"]) == 0
    assert "purged 0" in capsys.readouterr().out


def test_retention_keeps_what_an_exporter_has_not_delivered_on_postgres(
    server: IngestionServer,
    pg_dsn: str,
    pg_schema: str,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
) -> None:
    server.down = True
    config = _on_postgres(exporting_config(tmp_path / "d", ingestion(server)), pg_dsn, pg_schema)
    bridge = start_bridge(config)
    t = turn("sess-retained")
    send(bridge, [t])
    storage = StorageConfig(backend="postgres")
    storage.postgres.dsn, storage.postgres.schema = pg_dsn, pg_schema
    store = open_store(storage)
    try:
        eventually(
            lambda: (
                metric(bridge, "session_bridge_exporter_send_failed_spans_total", "ingestion") > 0
            )
        )
        future = time.time_ns() + 3600 * 10**9
        assert store.expire(future, None, 100).traces == 0  # not delivered: kept
        server.down = False
        server.wait_for(lambda s: s.observation_ids() >= set(t.span_ids))

        def expired() -> bool:
            return store.expire(future, None, 100).traces == 1

        eventually(expired, what="the trace expired once delivered")
    finally:
        store.close()
