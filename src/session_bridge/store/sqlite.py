"""SQLite store (WAL): the embedded default.

One writer (the pipeline's writer thread) and any number of readers, each on
its own connection. A write is one `BEGIN IMMEDIATE … COMMIT` per export
request; with `synchronous=FULL` (the default) the commit is on disk before the
request is acknowledged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from session_bridge.model import SpanRecord
from session_bridge.rollup.binding import TraceState, plan_rollups
from session_bridge.rollup.rollup import merge
from session_bridge.store import columns
from session_bridge.store.base import (
    SessionQuery,
    SessionRow,
    Store,
    WriteBatch,
    WriteResult,
)

SCHEMA_VERSION = 1
_MAX_VARS = 500  # bound on host parameters per statement

_ROLLUP_DDL = ",\n  ".join(f"{name} {sqltype}" for name, sqltype in columns.sql_columns())
_ROLLUP_COLS = ", ".join(columns.COLUMN_NAMES)
_ROLLUP_MARKS = ", ".join("?" for _ in columns.COLUMN_NAMES)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS resources (
  resource_key BLOB PRIMARY KEY,
  resource BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS spans (
  trace_id BLOB NOT NULL,
  span_id BLOB NOT NULL,
  parent_span_id BLOB,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  kind INTEGER NOT NULL,
  start_ns INTEGER NOT NULL,
  end_ns INTEGER NOT NULL,
  status_code INTEGER NOT NULL,
  status_message TEXT NOT NULL,
  event_type TEXT NOT NULL,
  is_error INTEGER NOT NULL,
  service TEXT,
  environment TEXT,
  session_id TEXT,
  user_id TEXT,
  provider TEXT,
  model TEXT,
  input_tokens INTEGER,
  output_tokens INTEGER,
  cache_read_tokens INTEGER,
  cache_creation_tokens INTEGER,
  reasoning_tokens INTEGER,
  cost_usd REAL,
  scope_name TEXT NOT NULL,
  resource_key BLOB NOT NULL,
  otlp_span BLOB NOT NULL,
  PRIMARY KEY (trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS traces (
  trace_id BLOB PRIMARY KEY,
  project_id TEXT NOT NULL,
  session_id TEXT,
  {_ROLLUP_DDL}
);
CREATE INDEX IF NOT EXISTS traces_by_session ON traces (project_id, session_id)
  WHERE session_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS sessions (
  project_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  {_ROLLUP_DDL},
  PRIMARY KEY (project_id, session_id)
);
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (project_id, start_ns, session_id);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (project_id, user_id, start_ns);
"""

_INSERT_SPAN = """
INSERT INTO spans (trace_id, span_id, parent_span_id, project_id, name, kind, start_ns, end_ns,
  status_code, status_message, event_type, is_error, service, environment, session_id, user_id,
  provider, model, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
  reasoning_tokens, cost_usd, scope_name, resource_key, otlp_span)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class SqliteStore(Store):
    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        if synchronous.lower() not in {"full", "normal", "extra"}:
            raise ValueError(f"synchronous must be full, normal or extra, not {synchronous!r}")
        self._path = path
        self._synchronous = synchronous.upper()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        self._migrate(self._writer)

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA cache_size=-32000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self._path} has schema version {version}, newer than this bridge "
                f"({SCHEMA_VERSION}); upgrade the bridge"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- writes --------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> WriteResult:
        (result,) = self.write_many([batch])
        if isinstance(result, Exception):
            raise result
        return result

    def write_many(self, batches: Sequence[WriteBatch]) -> list[WriteResult | Exception]:
        """Group commit: one transaction (one fsync) for all batches, a savepoint each."""
        conn = self._writer
        results: list[WriteResult | Exception] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for batch in batches:
                conn.execute("SAVEPOINT batch")
                try:
                    results.append(self._apply(conn, batch))
                except Exception as exc:
                    conn.execute("ROLLBACK TO batch")
                    results.append(exc)
                conn.execute("RELEASE batch")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not isinstance(exc, Exception):
                raise
            return [exc for _ in batches]
        return results

    def _apply(self, conn: sqlite3.Connection, batch: WriteBatch) -> WriteResult:
        unique: dict[tuple[bytes, bytes], SpanRecord] = {}
        for record in batch.records:
            unique.setdefault((record.trace_id, record.span_id), record)
        trace_ids = list({key[0] for key in unique})
        seen = self._existing_spans(conn, trace_ids)
        new = [r for key, r in unique.items() if key not in seen]
        existing = self._trace_states(conn, trace_ids)
        plan = plan_rollups(new, existing)
        if batch.resources:
            conn.executemany(
                "INSERT OR IGNORE INTO resources VALUES (?, ?)", batch.resources.items()
            )
        conn.executemany(_INSERT_SPAN, _span_rows(batch.project_id, new, plan.traces))
        conn.executemany(
            f"INSERT OR REPLACE INTO traces (trace_id, project_id, session_id, {_ROLLUP_COLS})"
            f" VALUES (?, ?, ?, {_ROLLUP_MARKS})",
            [
                (tid, batch.project_id, state.session_id, *columns.to_row(state.rollup))
                for tid, state in plan.traces.items()
            ],
        )
        for tid, session_id in plan.newly_bound.items():
            # spans stored before the trace was named now name their session too
            conn.execute(
                "UPDATE spans SET session_id = ? WHERE trace_id = ? AND session_id IS NULL",
                (session_id, tid),
            )
        self._merge_sessions(conn, batch.project_id, plan.sessions)
        return WriteResult(stored=len(new), duplicates=len(batch.records) - len(new))

    @staticmethod
    def _existing_spans(
        conn: sqlite3.Connection, trace_ids: Sequence[bytes]
    ) -> set[tuple[bytes, bytes]]:
        seen: set[tuple[bytes, bytes]] = set()
        for chunk in _chunks(trace_ids):
            marks = ",".join("?" * len(chunk))
            seen.update(
                conn.execute(
                    f"SELECT trace_id, span_id FROM spans WHERE trace_id IN ({marks})", chunk
                )
            )
        return seen

    @staticmethod
    def _trace_states(
        conn: sqlite3.Connection, trace_ids: Sequence[bytes]
    ) -> dict[bytes, TraceState]:
        states: dict[bytes, TraceState] = {}
        for chunk in _chunks(trace_ids):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT trace_id, session_id, {_ROLLUP_COLS} FROM traces"
                f" WHERE trace_id IN ({marks})",
                chunk,
            ):
                states[row[0]] = TraceState(row[1], columns.from_row(row[2:]))
        return states

    @staticmethod
    def _merge_sessions(conn: sqlite3.Connection, project_id: str, deltas: dict[str, Any]) -> None:
        if not deltas:
            return
        merged = dict(deltas)
        ids = list(deltas)
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT session_id, {_ROLLUP_COLS} FROM sessions"
                f" WHERE project_id = ? AND session_id IN ({marks})",
                (project_id, *chunk),
            ):
                merged[row[0]] = merge(columns.from_row(row[1:]), deltas[row[0]])
        conn.executemany(
            f"INSERT OR REPLACE INTO sessions (project_id, session_id, {_ROLLUP_COLS})"
            f" VALUES (?, ?, {_ROLLUP_MARKS})",
            [(project_id, sid, *columns.to_row(r)) for sid, r in merged.items()],
        )

    # -- reads ---------------------------------------------------------------------------

    def get_session(self, project_id: str, session_id: str) -> SessionRow | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {_ROLLUP_COLS} FROM sessions WHERE project_id = ? AND session_id = ?",
                (project_id, session_id),
            )
            .fetchone()
        )
        return None if row is None else SessionRow(project_id, session_id, columns.from_row(row))

    def list_sessions(self, query: SessionQuery) -> list[SessionRow]:
        where = ["project_id = ?"]
        args: list[Any] = [query.project_id]
        if query.user_id is not None:
            where.append("user_id = ?")
            args.append(query.user_id)
        if query.active_since_ns is not None:
            where.append("end_ns >= ?")
            args.append(query.active_since_ns)
        if query.inactive_before_ns is not None:
            where.append("end_ns < ?")
            args.append(query.inactive_before_ns)
        if query.start_from_ns is not None:
            where.append("start_ns >= ?")
            args.append(query.start_from_ns)
        if query.end_until_ns is not None:
            where.append("end_ns <= ?")
            args.append(query.end_until_ns)
        order = "DESC"
        if query.after is not None:
            where.append("(start_ns, session_id) < (?, ?)")
            args += list(query.after)
        elif query.before is not None:
            where.append("(start_ns, session_id) > (?, ?)")
            args += list(query.before)
            order = "ASC"
        sql = (
            f"SELECT session_id, {_ROLLUP_COLS} FROM sessions WHERE {' AND '.join(where)}"
            f" ORDER BY start_ns {order}, session_id {order} LIMIT ?"
        )
        args.append(query.page_size)
        rows = [
            SessionRow(query.project_id, row[0], columns.from_row(row[1:]))
            for row in self._reader().execute(sql, args)
        ]
        if order == "ASC":
            rows.reverse()
        return rows

    def ping(self) -> None:
        self._reader().execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _MAX_VARS):
        yield items[i : i + _MAX_VARS]


def _span_rows(
    project_id: str, records: list[SpanRecord], traces: dict[bytes, TraceState]
) -> Iterable[tuple[Any, ...]]:
    for r in records:
        llm = r.llm
        yield (
            r.trace_id,
            r.span_id,
            r.parent_span_id,
            project_id,
            r.name,
            r.kind,
            r.start_ns,
            r.end_ns,
            r.status_code,
            r.status_message,
            r.event_type.value,
            r.is_error,
            r.service,
            r.environment,
            traces[r.trace_id].session_id,
            r.user_id,
            llm.provider if llm else None,
            llm.model if llm else None,
            llm.input_tokens if llm else None,
            llm.output_tokens if llm else None,
            llm.cache_read_tokens if llm else None,
            llm.cache_creation_tokens if llm else None,
            llm.reasoning_tokens if llm else None,
            r.cost_usd,
            r.scope_name,
            r.resource_key,
            r.otlp_span,
        )
