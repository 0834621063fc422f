"""Group commit: batches waiting together share one transaction, yet fail alone."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from session_bridge.mapping.mapper import map_request
from session_bridge.store.base import SessionQuery, Store, WriteBatch, WriteResult
from session_bridge.store.writer import GroupCommitWriter
from tests.otlp_builders import proto_request, proto_span


def _batch(session: str, spans: int = 3) -> WriteBatch:
    request = proto_request(
        [
            proto_span(os.urandom(16), os.urandom(8), "s", {"session.id": session})
            for _ in range(spans)
        ]
    )
    mapped = map_request(request)
    return WriteBatch("default", mapped.records, mapped.resources)


def _sessions(store: Store) -> dict[str, int]:
    rows = store.list_sessions(SessionQuery(project_id="default", page_size=100))
    return {row.session_id: row.rollup.span_count for row in rows}


def test_a_failing_batch_does_not_sink_its_group(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    bad = _batch("bad")
    assert bad.records is not None
    bad.records[1].name = object()  # type: ignore[assignment]  # cannot be stored
    results = store.write_many([_batch("one"), bad, _batch("two")])
    assert isinstance(results[0], WriteResult) and isinstance(results[2], WriteResult)
    assert isinstance(results[1], Exception)
    assert _sessions(store) == {"one": 3, "two": 3}  # nothing of "bad", not even its first span


def test_waiting_batches_share_a_commit(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    groups: list[int] = []
    gate = threading.Event()
    write_many = store.write_many

    def counting(batches: Sequence[WriteBatch]) -> list[WriteResult | Exception]:
        gate.wait(timeout=30)  # hold the first commit until the others are queued
        groups.append(len(batches))
        return write_many(batches)

    store.write_many = counting  # type: ignore[method-assign]
    writer = GroupCommitWriter(store, max_group=16)
    futures = [writer.submit(_batch(f"s{i}")) for i in range(10)]
    gate.set()
    assert [f.result(timeout=30).stored for f in futures] == [3] * 10
    writer.close()
    assert sum(groups) == 10
    assert len(groups) <= 2  # the first alone (taken before the rest queued), then the rest
    assert len(_sessions(store)) == 10


def test_span_rows_bind_as_sql_types(tmp_path: Path) -> None:
    """The store's sqlite3 adapters (a speed-up) leave None, bool and bytes as NULL, 0/1
    and BLOB."""
    import sqlite3

    from session_bridge.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "s.db")
    request = proto_request(
        [proto_span(os.urandom(16), os.urandom(8), "root", {"session.id": "types"}, status_code=2)]
    )
    mapped = map_request(request)
    store.write_many([WriteBatch("default", mapped.records, mapped.resources)])
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    row = conn.execute(
        "SELECT typeof(parent_span_id), is_error, typeof(is_error), typeof(otlp_span),"
        " typeof(model) FROM spans"
    ).fetchone()
    assert row == ("null", 1, "integer", "blob", "null")


def test_the_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL starts over only if a transaction begins with every frame copied. Under
    steady load the writer appends before the checkpointer has copied the last frames
    (here: a reader holds them back), so without the writer's help the WAL grew with
    every write (360 MB in a 10 s benchmark)."""
    from session_bridge.store import sqlite

    monkeypatch.setattr(sqlite, "_WAL_RESTART_FRAMES", 64)
    store = sqlite.SqliteStore(tmp_path / "s.db")
    checkpointer = store._checkpointer
    wal = tmp_path / "s.db-wal"

    def restarts() -> int:  # the WAL header's checkpoint sequence: +1 each time it starts over
        return int.from_bytes(wal.read_bytes()[12:16], "big")

    store.write(_batch("a", spans=200))
    reader = store._reader()
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM spans").fetchone()  # holds the frames of "a"
    store.write(_batch("b", spans=200))
    checkpointer.checkpoint()  # copies what it may: not "b", which came after the reader
    reader.execute("COMMIT")
    assert checkpointer.restart_wanted.is_set()
    before = restarts()
    store.write(_batch("c", spans=200))  # copies the rest first, so this one starts over
    assert restarts() == before + 1
    assert not checkpointer.restart_wanted.is_set()
    assert wal.stat().st_size <= sqlite._WAL_KEEP_BYTES
    assert _sessions(store) == {"a": 200, "b": 200, "c": 200}
    store.close()
