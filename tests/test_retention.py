"""Retention on both stores: expired traces leave with their spans in bounded batches,
sessions stay (or go after their own age), and ingestion is not held up."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from session_bridge.config import Duration
from session_bridge.mapping.mapper import map_request
from session_bridge.store.base import Store, WriteBatch
from session_bridge.store.config import RetentionConfig
from session_bridge.store.postgres import PostgresSettings, PostgresStore
from session_bridge.store.retention import RetentionWorker
from tests.otlp_builders import proto_request, proto_span

S = 1_000_000_000
DAY = 86_400 * S
NOW = time.time_ns()


def _trace(store: Store, session: str | None, ended_ago: int, spans: int = 2) -> bytes:
    trace_id = os.urandom(16)
    end = NOW - ended_ago
    attributes = {"session.id": session} if session else {}
    request = proto_request(
        [
            proto_span(trace_id, os.urandom(8), f"s{i}", attributes, start=end - S, end=end)
            for i in range(spans)
        ]
    )
    mapped = map_request(request)
    store.write(WriteBatch("default", mapped.records, mapped.resources))
    return trace_id


def _worker(
    store: Store,
    spans: Duration,
    sessions: Duration = Duration(0.0),
    interval: Duration = Duration(60.0),
) -> RetentionWorker:
    # model_construct: a test interval shorter than the configuration allows
    config = RetentionConfig.model_construct(
        batch_size=2, spans=spans, sessions=sessions, interval=interval
    )
    return RetentionWorker(store, config, clock=lambda: NOW)


def test_expired_traces_go_with_their_spans_and_sessions_stay(
    store_factory: Callable[[], Store],
) -> None:
    store = store_factory()
    old = [_trace(store, "old", 10 * DAY) for _ in range(5)]
    unnamed = _trace(store, None, 9 * DAY, spans=1)
    recent = _trace(store, "old", 60 * S)
    before = store.get_session("default", "old")
    assert before is not None and before.rollup.trace_count == 6

    total = _worker(store, spans=Duration(7 * 86_400)).run_once()  # 3 batches of 2 traces

    assert (total.traces, total.spans, total.sessions) == (6, 11, 0)
    assert store.trace_spans("default", [*old, unnamed]) == []
    assert len(store.trace_spans("default", [recent])) == 2
    assert [t.trace_id for t in store.session_traces("default", "old")] == [recent]
    assert store.get_session("default", "old") == before  # the session still counts them all


def test_sessions_go_after_their_own_age(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    _trace(store, "ancient", 40 * DAY)
    _trace(store, "old", 10 * DAY)
    _trace(store, "recent", 60 * S)  # (SQLite keeps the newest span, whatever its age)
    total = _worker(store, spans=Duration(7 * 86_400), sessions=Duration(30 * 86_400)).run_once()
    assert (total.traces, total.sessions) == (2, 1)
    assert store.get_session("default", "ancient") is None
    assert store.get_session("default", "old") is not None


def test_the_worker_runs_in_the_background(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    trace = _trace(store, "bg", 2 * DAY)
    _trace(store, "recent", 60 * S)
    worker = _worker(store, spans=Duration(86_400), interval=Duration(0.05))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while store.trace_spans("default", [trace]) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.close()
    assert store.trace_spans("default", [trace]) == []


def test_postgres_retention_skips_traces_a_write_holds(pg_dsn: str, pg_schema: str) -> None:
    store = PostgresStore(PostgresSettings(pg_dsn, pg_schema))
    try:
        held, free = _trace(store, "s", 10 * DAY), _trace(store, "s", 10 * DAY)
        with psycopg.connect(pg_dsn) as writer:  # a replica's write in progress on `held`
            writer.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            writer.execute("SELECT 1 FROM traces WHERE trace_id = %s FOR UPDATE", (held,))
            started = time.monotonic()
            total = _worker(store, spans=Duration(86_400)).run_once()
            assert time.monotonic() - started < 5  # did not wait for the writer
            assert total.traces == 1 and store.trace_spans("default", [free]) == []
            assert len(store.trace_spans("default", [held])) == 2
        assert _worker(store, spans=Duration(86_400)).run_once().traces == 1  # its turn now
    finally:
        store.close()
