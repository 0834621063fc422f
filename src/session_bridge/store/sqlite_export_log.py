"""The export log on the SQLite store: positions are `spans` rowids.

SQLite commits one write transaction at a time and gives a new row the largest rowid
so far plus one, so rowids grow in commit order and a reader never finds a gap that a
later commit fills. (Retention keeps the newest span and every span an exporter has not
passed, so rowids are never reused: see `SqliteStore.expire`.) Cursors and dead letters
live in the same database file, written by short transactions of their own with the
store's `synchronous` setting: durable by default.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from session_bridge.proto.session_bridge.v1.records_pb2 import DeadLetter
from session_bridge.store import columns
from session_bridge.store.export_log import (
    ExportLog,
    LogEntry,
    ResourceCache,
    StoredDeadLetter,
    entry_from_row,
)
from session_bridge.store.sql_reads import chunks, resources_by_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS export_cursors (
  exporter TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  exporter TEXT NOT NULL,
  letter BLOB NOT NULL  -- session_bridge.v1.DeadLetter
);
CREATE INDEX IF NOT EXISTS dead_letters_by_exporter ON dead_letters (exporter, id);
"""
_READ = f"""
SELECT s.rowid, s.project_id, s.resource_key, t.session_id, t.user_id, t.start_ns,
  {columns.span_export_select("s")}, {columns.span_select("s")}
FROM spans s
LEFT JOIN traces t ON t.trace_no = s.trace_no AND t.project_id = s.project_id
WHERE s.rowid > ? AND s.rowid <= ?
ORDER BY s.rowid
"""

# the first span in a range whose trace has no session yet (a span's `session_id` is its
# trace's: the store names the spans stored before their trace was). Rowid order: it
# stops there.
_FIRST_UNNAMED = """
SELECT rowid FROM spans WHERE rowid > ? AND rowid <= ? AND session_id IS NULL
ORDER BY rowid LIMIT 1
"""


class SqliteExportLog(ExportLog):
    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        self._path = path
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._resources = ResourceCache(self._fetch_resources)
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            # checkpoints are the store's (its checkpointer thread): a cursor commit that
            # finds the WAL long would otherwise copy it into the database itself
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def head(self) -> int:
        (head,) = self._conn().execute("SELECT max(rowid) FROM spans").fetchone()
        return int(head or 0)

    def cursor(self, exporter: str) -> int:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT position FROM export_cursors WHERE exporter = ?", (exporter,)
            ).fetchone()
            if row is None:
                row = (self.head(),)
                conn.execute(
                    "INSERT INTO export_cursors VALUES (?, ?, ?)",
                    (exporter, row[0], time.time_ns()),
                )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return int(row[0])

    def keep_cursors(self, exporters: Sequence[str]) -> None:
        marks = ",".join("?" * len(exporters)) or "NULL"
        self._conn().execute(
            f"DELETE FROM export_cursors WHERE exporter NOT IN ({marks})", tuple(exporters)
        )

    def read_after(self, cursor: int, until: int, max_bytes: int) -> list[LogEntry]:
        rows = []
        total = 0
        for row in self._conn().execute(_READ, (cursor, until)):
            rows.append(row)
            total += len(row[-1])  # otlp_span, what an entry counts for
            if total >= max_bytes:
                break
        resources = self._resources.resolve(row[2] for row in rows)
        return [entry_from_row(row, resources) for row in rows]

    def _fetch_resources(self, keys: list[bytes]) -> dict[bytes, bytes]:
        return resources_by_key(self._conn().execute, "?", keys)

    def named_through(self, after: int, until: int) -> int:
        row = self._conn().execute(_FIRST_UNNAMED, (after, until)).fetchone()
        return until if row is None else int(row[0]) - 1

    def bytes_between(self, after: int, until: int) -> int:
        (total,) = (
            self._conn()
            .execute(
                "SELECT sum(length(otlp_span)) FROM spans WHERE rowid > ? AND rowid <= ?",
                (after, until),
            )
            .fetchone()
        )
        return int(total or 0)

    def commit(self, exporter: str, cursor: int, dead_letters: Sequence[DeadLetter]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO dead_letters (exporter, letter) VALUES (?, ?)",
                [(exporter, letter.SerializeToString()) for letter in dead_letters],
            )
            conn.execute(
                "UPDATE export_cursors SET position = ?, updated_ns = ? WHERE exporter = ?",
                (cursor, time.time_ns(), exporter),
            )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def dead_letters(
        self, exporter: str | None, ids: Sequence[int] | None, limit: int, after_id: int = 0
    ) -> list[StoredDeadLetter]:
        found: list[StoredDeadLetter] = []
        for where, args in _filters(exporter, ids):
            rows = self._conn().execute(
                f"SELECT id, letter FROM dead_letters WHERE {where} AND id > ? ORDER BY id LIMIT ?",
                (*args, after_id, limit - len(found)),
            )
            found += [StoredDeadLetter(row[0], DeadLetter.FromString(row[1])) for row in rows]
            if len(found) >= limit:
                break
        return found

    def count_dead_letters(self, exporter: str | None) -> int:
        where, args = next(_filters(exporter, None))
        (count,) = (
            self._conn()
            .execute(f"SELECT count(*) FROM dead_letters WHERE {where}", args)
            .fetchone()
        )
        return int(count)

    def settle_dead_letters(
        self, delivered: Sequence[int], failed_again: Sequence[StoredDeadLetter]
    ) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in delivered])
            conn.executemany(
                "UPDATE dead_letters SET letter = ? WHERE id = ?",
                [(d.letter.SerializeToString(), d.id) for d in failed_again],
            )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def purge_dead_letters(self, exporter: str | None, ids: Sequence[int] | None) -> int:
        conn = self._conn()
        deleted = 0
        for where, args in _filters(exporter, ids):
            deleted += conn.execute(f"DELETE FROM dead_letters WHERE {where}", args).rowcount
        return deleted

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _filters(
    exporter: str | None, ids: Sequence[int] | None
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """WHERE clauses (with their arguments) selecting dead letters, `ids` in chunks."""
    base = ("exporter = ?", (exporter,)) if exporter is not None else ("1 = 1", ())
    if ids is None:
        yield base
        return
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        yield f"{base[0]} AND id IN ({marks})", (*base[1], *chunk)
