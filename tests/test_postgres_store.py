"""PostgreSQL store: merges in SQL equal `rollup.merge`, replicas racing on the same
traces count every span once, migrations, and errors worth a clear message."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from session_bridge.mapping.mapper import map_request
from session_bridge.rollup.rollup import Rollup, merge
from session_bridge.store import columns
from session_bridge.store.base import SessionQuery, WriteBatch, WriteResult
from session_bridge.store.merge_sql import merge_assignments
from session_bridge.store.pg_schema import MIGRATIONS
from session_bridge.store.postgres import PostgresSettings, PostgresStore, migrate_schema
from session_bridge.store.sqlite import SqliteStore
from tests import pg, strategies
from tests.otlp_builders import proto_request, proto_span
from tests.workload import agent_traffic

# -- the generated merge SQL is `rollup.merge` ------------------------------------------

# code points that sort differently by locale than by value, to pin COLLATE "C"
rollups = strategies.rollups(
    st.text(alphabet="aAzZé€ÿ😀 _-", max_size=3),
    st.integers(-(2**40), 2**40),
    st.integers(0, 2**40),
)


@pytest.fixture
def probe(pg_dsn: str, pg_schema: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection with a one-row table laid out like `traces` and `sessions`."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg_schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        ddl = ", ".join(f"{name} {kind}" for name, kind in columns.sql_columns())
        conn.execute(f"CREATE TABLE probe (id integer PRIMARY KEY, {ddl})")
        yield conn


_COLS = ", ".join(columns.COLUMN_NAMES)
_MARKS = ", ".join(["%s"] * len(columns.COLUMN_NAMES))
_UPSERT = (
    f"INSERT INTO probe AS cur (id, {_COLS}) VALUES (1, {_MARKS}) ON CONFLICT (id)"
    f" DO UPDATE SET {merge_assignments('cur', 'EXCLUDED')} RETURNING {_COLS}"
)


# and sums near the 64-bit limit: both merges saturate there
large_rollups = strategies.rollups(
    st.text(alphabet="ab", max_size=2), st.integers(0, 2**40), st.integers(2**62, 2**63 - 1)
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=rollups | large_rollups, b=rollups | large_rollups)
def test_sql_merge_is_rollup_merge(
    probe: psycopg.Connection[tuple[object, ...]], a: Rollup, b: Rollup
) -> None:
    probe.execute("DELETE FROM probe")
    probe.execute(_UPSERT, columns.to_row(a))
    row = probe.execute(_UPSERT, columns.to_row(b)).fetchone()
    assert row is not None
    assert columns.from_row(row) == merge(a, b)


# -- replicas racing on the same traces -------------------------------------------------


def _batches(seed: int, replicas: int) -> list[tuple[int, WriteBatch]]:
    out = []
    for delivery in agent_traffic(seed, replicas=replicas, sessions=16):
        mapped = map_request(delivery.request)
        out.append((delivery.target, WriteBatch("default", mapped.records, mapped.resources)))
    return out


def _race(stores: list[PostgresStore], batches: list[tuple[int, WriteBatch]], seed: int) -> int:
    """Several threads write the batches to their replicas at once, in groups of 1 to 3."""
    pending = list(batches)
    lock = threading.Lock()
    stored: list[int] = []

    def work(rng: random.Random) -> None:
        while True:
            with lock:
                if not pending:
                    return
                n = rng.randint(1, 3)
                take = pending[:n]
                del pending[:n]
            for target in {t for t, _ in take}:
                for result in stores[target].write_many([b for t, b in take if t == target]):
                    assert isinstance(result, WriteResult), result
                    with lock:
                        stored.append(result.stored)

    with ThreadPoolExecutor(6) as pool:  # a failed write fails the test here
        list(pool.map(work, [random.Random(seed * 100 + i) for i in range(6)]))
    return sum(stored)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_racing_replicas_count_every_span_once(
    pg_dsn: str, pg_schema: str, tmp_path: Path, seed: int
) -> None:
    batches = _batches(seed, replicas=3)
    reference = SqliteStore(tmp_path / "ref.db")
    for _, batch in batches:
        reference.write(batch)
    settings_ = PostgresSettings(pg_dsn, pg_schema, pool_size=3)
    stores = [PostgresStore(settings_) for _ in range(3)]
    try:
        stored = _race(stores, batches, seed)
        unique = {(r.trace_id, r.span_id) for _, b in batches for r in b.records or ()}
        assert stored == len(unique)  # each span stored once, however often it was sent

        query = SessionQuery("default", page_size=1000)
        expected = {row.session_id: row.rollup for row in reference.list_sessions(query)}
        actual = {row.session_id: row.rollup for row in stores[0].list_sessions(query)}
        assert actual == expected
        for session_id in expected:  # the traces, bound and rolled up alike
            assert stores[1].session_traces("default", session_id) == reference.session_traces(
                "default", session_id
            )
        with sqlite3.connect(tmp_path / "ref.db") as ref:
            ref_spans = set(ref.execute("SELECT trace_id, span_id, session_id FROM spans"))
        with psycopg.connect(pg_dsn) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            pg_spans = set(conn.execute("SELECT trace_id, span_id, session_id FROM spans"))
        assert pg_spans == ref_spans  # every span names its trace's session
    finally:
        for store in stores:
            store.close()
        reference.close()


# -- migrations -------------------------------------------------------------------------


def _catalog(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        columns_ = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        versions = conn.execute("SELECT version, description FROM schema_migrations").fetchall()
    return [*columns_, *indexes, *versions]


def _migrate_cli(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "session_bridge.cli", "migrate", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


ALL_VERSIONS = ", ".join(str(m.version) for m in MIGRATIONS)


def test_migrations_from_an_empty_database_then_a_no_op(pg_dsn: str, tmp_path: Path) -> None:
    empty = pg.create_test_database("_empty")
    try:
        config = tmp_path / "pg.yaml"
        config.write_text(f"storage:\n  backend: postgres\n  postgres:\n    dsn: '{empty}'\n")
        first = _migrate_cli(config)
        assert first.returncode == 0, first.stderr
        assert f"applied migration(s) {ALL_VERSIONS}" in first.stdout
        before = _catalog(empty)
        assert ("sessions", "session_id", "text", "NO", None) in before
        second = _migrate_cli(config)
        assert second.returncode == 0, second.stderr
        assert "nothing to do" in second.stdout
        assert _catalog(empty) == before
    finally:
        pg.drop_database(empty)


def _execute(dsn: str, schema: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(statement)


def test_span_bytes_are_stored_compressed_with_lz4(pg_dsn: str, pg_schema: str) -> None:
    """pglz compressing nearly every span's event held ingest back (pg_schema, migration 6)."""
    store = PostgresStore(PostgresSettings(pg_dsn, pg_schema))
    try:
        prompt = "summarise the quarterly report, section by section. " * 100  # past 2 kB
        span = proto_span(b"\x01" * 16, b"\x02" * 8, "chat", {"gen_ai.prompt": prompt})
        mapped = map_request(proto_request([span]))
        assert store.write(WriteBatch("default", mapped.records, mapped.resources)).stored == 1
    finally:
        store.close()
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        methods = conn.execute(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'spans'::regclass"
            " AND attname IN ('otlp_span', 'ingestion_event', 'trace_fields') ORDER BY attname"
        ).fetchall()
        stored = conn.execute("SELECT pg_column_compression(otlp_span) FROM spans").fetchall()
    assert methods == [("ingestion_event", "l"), ("otlp_span", "l"), ("trace_fields", "l")]
    assert stored == [("lz4",)]


def test_a_schema_newer_than_the_bridge_is_refused(pg_dsn: str, pg_schema: str) -> None:
    settings_ = PostgresSettings(pg_dsn, pg_schema)
    assert migrate_schema(settings_) == [m.version for m in MIGRATIONS]
    _execute(pg_dsn, pg_schema, "INSERT INTO schema_migrations VALUES (999, 'from the future')")
    with pytest.raises(RuntimeError, match="version 999, newer than this bridge"):
        migrate_schema(settings_)


def test_a_rollup_column_without_its_migration_stops_the_bridge(
    pg_dsn: str, pg_schema: str
) -> None:
    settings_ = PostgresSettings(pg_dsn, pg_schema)
    migrate_schema(settings_)
    _execute(pg_dsn, pg_schema, "ALTER TABLE sessions DROP COLUMN geo_stamp")
    with pytest.raises(RuntimeError, match=r"missing: \['geo_stamp'\].*add a migration"):
        PostgresStore(settings_)


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    settings_ = PostgresSettings(
        "host=127.0.0.1 port=1 user=bridge password=hunter2 dbname=db", connect_timeout_s=2
    )
    with pytest.raises(ConnectionError, match=r"PostgreSQL at 127\.0\.0\.1:1/db") as caught:
        PostgresStore(settings_)
    assert "hunter2" not in str(caught.value)


def test_text_with_nul_characters_is_stored(pg_dsn: str, pg_schema: str) -> None:
    store = PostgresStore(PostgresSettings(pg_dsn, pg_schema))
    try:
        span = proto_span(b"\1" * 16, b"\2" * 8, "na\0me", {"session.id": "s\0x", "user.id": "u\0"})
        mapped = map_request(proto_request([span]))
        assert store.write(WriteBatch("default", mapped.records, mapped.resources)).stored == 1
        session = store.get_session("default", "s\ufffdx")
        assert session is not None and session.rollup.user_id is not None
        assert session.rollup.user_id[1] == "u\ufffd"
        (stored,) = store.trace_spans("default", [b"\1" * 16])
        assert stored.name == "na\ufffdme" and stored.otlp_span == mapped.records[0].otlp_span
    finally:
        store.close()


def test_connections_lost_to_a_server_restart_are_replaced(pg_dsn: str, pg_schema: str) -> None:
    store = PostgresStore(PostgresSettings(pg_dsn, pg_schema, pool_size=3))
    try:
        for n in range(3):
            span = proto_span(bytes([n + 1]) * 16, b"\1" * 8, "s", {"session.id": "kept"})
            mapped = map_request(proto_request([span]))
            assert store.write(WriteBatch("default", mapped.records, mapped.resources)).stored
            with psycopg.connect(pg_dsn, autocommit=True) as admin:  # as a restart would
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = 'otel-session-bridge'"
                )
        session = store.get_session("default", "kept")
        assert session is not None and session.rollup.trace_count == 3
    finally:
        store.close()
