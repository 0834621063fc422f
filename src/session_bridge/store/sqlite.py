"""SQLite store (WAL): the embedded default.

One writer (the pipeline's writer thread) and any number of readers, each on its
own connection. A write is one `BEGIN IMMEDIATE … COMMIT` per export
request; with `synchronous=FULL` (the default) the commit is on disk before the
request is acknowledged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from session_bridge.rollup.binding import (
    RollupPlan,
    TraceDelta,
    TraceState,
    fold_by_trace,
    plan_from_deltas,
    plan_rollups,
)
from session_bridge.rollup.rollup import merge
from session_bridge.rollup.usage import usage_rollup
from session_bridge.store import columns
from session_bridge.store.base import Expired, NeedsRecords, WriteBatch, WriteResult
from session_bridge.store.config import SYNCHRONOUS
from session_bridge.store.search import SQLITE
from session_bridge.store.sql_reads import SqlReads, chunks

# 4: spans keyed by (trace_no, span_id) rather than (trace_id, span_id)
# 5: traces keyed by (project_id, trace_id): two projects sharing a trace id get a trace each
# 6: spans keep the model response they report (`response_id`): usage by the span tree
# 7: spans keep the ingestion event built at ingest (`columns.SPAN_EXPORT_COLUMNS`)
SCHEMA_VERSION = 7
_OLDEST_READABLE = 4  # no release ever wrote an older layout
_WAL_RESTART_FRAMES = 4096  # ~16 MiB of 4 KiB pages: then the WAL should start over
_WAL_KEEP_BYTES = 64 * 1024 * 1024

_ROLLUP_DDL = ",\n  ".join(f"{name} {sqltype}" for name, sqltype in columns.sql_columns())
_ROLLUP_COLS = ", ".join(columns.COLUMN_NAMES)
_ROLLUP_MARKS = ", ".join("?" for _ in columns.COLUMN_NAMES)
_UPDATE_TRACE = ", ".join(
    f"{name} = excluded.{name}" for name in ("session_id", *columns.COLUMN_NAMES)
)
_UPDATE_ROLLUP = ", ".join(f"{name} = excluded.{name}" for name in columns.COLUMN_NAMES)

# Version 4, the first released layout: a new database starts from it and takes every
# upgrade after it (`_UPGRADES`), as an existing one does.
_SCHEMA_V4 = f"""
CREATE TABLE IF NOT EXISTS resources (
  resource_key BLOB PRIMARY KEY,
  resource BLOB NOT NULL
);
-- Spans are found by (trace_no, span_id): trace_no numbers traces in the order they are
-- first seen, so new spans append to that index instead of landing at random places in
-- it (a random key, such as trace_id, dirties a page per insert and costs more as the
-- table grows).
CREATE TABLE IF NOT EXISTS spans (
  trace_no INTEGER NOT NULL,
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
  otlp_span BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_no, span_id);
CREATE TABLE IF NOT EXISTS traces (
  trace_no INTEGER PRIMARY KEY,
  trace_id BLOB NOT NULL UNIQUE,
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
-- partial: only LLM-call spans pay for it on ingest (the generations API lists them)
CREATE INDEX IF NOT EXISTS spans_llm_by_start ON spans (project_id, start_ns)
  WHERE event_type = 'llm_call';
CREATE INDEX IF NOT EXISTS traces_by_end ON traces (end_ns);
CREATE INDEX IF NOT EXISTS sessions_by_end ON sessions (end_ns);
"""

# A trace is one project's: (project_id, trace_id) is unique, no longer trace_id alone.
# trace_no stays (the spans and the export log name their trace by it); every row keeps
# its project. SQLite cannot drop a column's UNIQUE: the table is built again.
_TRACES_BY_PROJECT = f"""
CREATE TABLE traces_v5 (
  trace_no INTEGER PRIMARY KEY,
  trace_id BLOB NOT NULL,
  project_id TEXT NOT NULL,
  session_id TEXT,
  {_ROLLUP_DDL},
  UNIQUE (project_id, trace_id)
);
INSERT INTO traces_v5 (trace_no, trace_id, project_id, session_id, {_ROLLUP_COLS})
  SELECT trace_no, trace_id, project_id, session_id, {_ROLLUP_COLS} FROM traces;
DROP TABLE traces;
ALTER TABLE traces_v5 RENAME TO traces;
CREATE INDEX traces_by_session ON traces (project_id, session_id) WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_end ON traces (end_ns);
"""

# spans stored before keep NULL: their events are built when they are sent
_SPAN_EXPORT_FIELDS = "".join(
    f"ALTER TABLE spans ADD COLUMN {name} BLOB;\n" for name in columns.SPAN_EXPORT_COLUMNS
)

# Usage is decided by the span tree (`rollup/usage.py`), which reads the stored spans of
# a trace, and a model response reported twice counts once: spans keep its id. Spans and
# rollups stored before keep what they were counted as; a trace written to again is
# recomputed by the new rule (its spans stored before have no response id).
_RESPONSE_IDS = """
ALTER TABLE spans ADD COLUMN response_id TEXT;
"""

# version -> the script that brings a database at that version to the next one
_UPGRADES: dict[int, str] = {
    4: _TRACES_BY_PROJECT,
    5: _RESPONSE_IDS,
    6: _SPAN_EXPORT_FIELDS,
}

# sqlite3 binds only int, float, str and bytearray directly; None, bool and bytes (most
# of a span row) first go through a failed adapter lookup (~0.5 us each, ~2 us per span
# row). Registered adapters are found at once and are C callables: the values bind as
# before (NULL, 0/1, BLOB). For bytes, `bytes.__bytes__` (b itself) rather than `bytes`,
# whose call looks up `__bytes__` first: ~0.2 us less per value.
_NOTHING: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NOTHING.get)  # _NOTHING.get(None) is None
sqlite3.register_adapter(bool, int)
sqlite3.register_adapter(bytes, bytes.__bytes__)

# The spans of the batch being written, and its traces' deltas, sit in tables of their
# own, in the writer's schema `batch`: a map worker ships them as a serialized database
# that replaces the schema whole (`batch_tables`); any other batch has its spans loaded
# row by row (its traces are upserted, as are those of a batch with spans stored before).
# The spans then go into `spans`, and shipped traces new to the store into `traces`, each
# with one INSERT ... SELECT that runs in C without the GIL; a row-by-row insert releases
# and takes the GIL again for every row, and waits for it behind this process's receiving
# threads. Untyped columns, no constraint, no index (`WriteBatch.rows` holds each span
# once): `spans` and `traces` check the values.
_BATCH_COLUMNS = columns.SPAN_WRITE_COLUMNS[:-1]  # all but session_id: its trace's
_TRACE_BATCH_COLUMNS = ("trace_id", "session_id", *columns.COLUMN_NAMES)


def _batch_tables_sql(schema: str) -> tuple[str, str, str]:
    """The CREATE TABLEs of the batch tables in `schema`, and their INSERTs."""
    ddl, spans_load = _table_sql(schema, "spans", _BATCH_COLUMNS)
    trace_ddl, traces_load = _table_sql(schema, "traces", _TRACE_BATCH_COLUMNS)
    return f"{ddl}; {trace_ddl};", spans_load, traces_load


def _table_sql(schema: str, table: str, names: Sequence[str]) -> tuple[str, str]:
    marks = ", ".join("?" for _ in names)
    return (
        f"CREATE TABLE {schema}.{table} ({', '.join(names)})",
        f"INSERT INTO {schema}.{table} VALUES ({marks})",
    )


_TABLES_DDL, _TABLE_LOAD, _TRACES_TABLE_LOAD = _batch_tables_sql("main")  # a worker's own
_BATCH_DDL, _BATCH_LOAD, _ = _batch_tables_sql("batch")  # the writer's (traces: shipped only)
# CROSS JOIN keeps the batch's order: spans are stored (and exported) as received
_INSERT_SPANS = (
    f"INSERT INTO main.spans ({', '.join(_BATCH_COLUMNS)}, session_id, trace_no)"
    f" SELECT {', '.join('b.' + name for name in _BATCH_COLUMNS)}, t.session_id, t.trace_no"
    " FROM batch.spans b CROSS JOIN main.traces t"
    " ON t.project_id = b.project_id AND t.trace_id = b.trace_id"
)
_INSERT_NEW_SPANS = (
    f"{_INSERT_SPANS} WHERE NOT EXISTS"
    " (SELECT 1 FROM main.spans s WHERE s.trace_no = t.trace_no AND s.span_id = b.span_id)"
)
# a trace new to the store is its delta, named by its delta's session (`plan_from_deltas`)
_INSERT_NEW_TRACES = (
    f"INSERT INTO main.traces (project_id, {', '.join(_TRACE_BATCH_COLUMNS)})"
    f" SELECT ?1, {', '.join('b.' + name for name in _TRACE_BATCH_COLUMNS)} FROM batch.traces b"
    " WHERE NOT EXISTS"
    " (SELECT 1 FROM main.traces t WHERE t.project_id = ?1 AND t.trace_id = b.trace_id)"
)
# response_id was added after otlp_span (schema 6): reaching it reads past the raw span,
# so it is read only for spans that carry usage (the only ones the rule asks it of)
_USAGE_SPANS = (
    "SELECT "
    + ", ".join(
        "CASE WHEN input_tokens IS NOT NULL THEN response_id END" if n == "response_id" else n
        for n in columns.USAGE_SPAN_COLUMNS
    )
    + " FROM spans WHERE trace_no = ? AND project_id = ?"
)
_SET_TRACE_USAGE = (
    f"UPDATE traces SET {', '.join(n + ' = ?' for n in columns.USAGE_COLUMN_NAMES)}"
    " WHERE trace_no = ?"
)
_UPSERT_TRACES = (
    f"INSERT INTO traces (trace_id, project_id, session_id, {_ROLLUP_COLS})"
    f" VALUES (?, ?, ?, {_ROLLUP_MARKS})"
    f" ON CONFLICT (project_id, trace_id) DO UPDATE SET {_UPDATE_TRACE}"
)


def trace_rows(deltas: Mapping[bytes, TraceDelta]) -> list[tuple[Any, ...]]:
    """Per-trace deltas as rows of the batch table `traces`."""
    return [(tid, d.session_id, *columns.to_row(d.rollup)) for tid, d in deltas.items()]


def batch_tables(spans: Iterable[tuple[Any, ...]], traces: Iterable[tuple[Any, ...]]) -> bytes:
    """`columns.span_row` tuples and `trace_rows` as the serialized database that
    `WriteBatch.batch_tables` carries: a map worker binds the rows, so the writer only
    copies them."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_TABLES_DDL)
        conn.executemany(_TABLE_LOAD, spans)
        conn.executemany(_TRACES_TABLE_LOAD, traces)
        return conn.serialize()
    finally:
        conn.close()


class SqliteStore(SqlReads):
    dialect = SQLITE
    # (a span's project is its trace's; a database written before version 5 may hold spans
    # of another project under a trace: never read as the trace's)
    span_join = "s.trace_no = t.trace_no AND s.project_id = t.project_id"

    def __init__(self, path: Path, *, synchronous: str = "full") -> None:
        if synchronous.lower() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
        self._path = path
        self._synchronous = synchronous.upper()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect(cache_kib=16_000)  # indexes being updated stay hot
        self._migrate(self._writer)
        # Checkpoints copy the WAL back into the database; done by the checkpointer thread
        # (in parallel with the writer) instead of inside the commit that fills the WAL.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        # after the WAL restarts, its file is cut back to this size
        self._writer.execute(f"PRAGMA journal_size_limit={_WAL_KEEP_BYTES}")
        self._writer.execute("ATTACH ':memory:' AS batch")
        self._writer.executescript(_BATCH_DDL)
        self._checkpointer = _Checkpointer(self._connect(cache_kib=1_000))

    # -- connections ---------------------------------------------------------------------

    def _connect(self, cache_kib: int = 8_000) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute(f"PRAGMA cache_size=-{cache_kib}")
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
        """Bring the database to `SCHEMA_VERSION`, in one transaction: another process
        opening the same file meanwhile waits, then finds it done."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self._path} has schema version {version}, newer than this bridge "
                    f"({SCHEMA_VERSION}); upgrade the bridge"
                )
            if 0 < version < _OLDEST_READABLE:
                raise RuntimeError(
                    f"{self._path} has schema version {version}, written by a development"
                    " build before the first release; start with an empty data directory"
                )
            scripts = [_SCHEMA_V4] if version == 0 else []
            scripts += [_UPGRADES[v] for v in range(max(version, _OLDEST_READABLE), SCHEMA_VERSION)]
            for script in scripts:
                for statement in _statements(script):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # -- writes --------------------------------------------------------------------------

    def write_many(self, batches: Sequence[WriteBatch]) -> list[WriteResult | Exception]:
        """Group commit: one transaction (one fsync) for all batches, a savepoint each."""
        conn = self._writer
        results: list[WriteResult | Exception] = []
        if self._checkpointer.restart_wanted.is_set():
            self._checkpointer.restart_wanted.clear()
            # copy the few frames the checkpointer has not yet, between two transactions:
            # with every frame in the database, the next transaction starts the WAL over
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
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
        deltas = batch.trace_deltas
        if deltas is None:
            deltas = fold_by_trace(batch.records or ())
        shipped = batch.batch_tables
        if shipped is not None:
            conn.deserialize(shipped, name="batch")
        else:  # its traces go in through the upsert below: no table to bind them into
            conn.execute("DELETE FROM batch.spans")
            conn.executemany(_BATCH_LOAD, batch.rows())
        numbers, existing = self._trace_states(conn, batch.project_id, list(deltas))
        stored_before = self._stored_before(conn, list(numbers))
        if not stored_before:
            plan = plan_from_deltas(deltas, existing)  # the common case: no retries
        elif batch.records is not None:
            seen = self._existing_spans(conn, numbers)
            plan = plan_rollups(
                (r for r in batch.records if (r.trace_id, r.span_id) not in seen), existing
            )
        else:
            raise NeedsRecords(f"{stored_before} of {batch.received()} spans were stored before")
        if batch.resources:
            conn.executemany(
                "INSERT OR IGNORE INTO resources VALUES (?, ?)", batch.resources.items()
            )
        # a worker's trace rows are the new traces as stored, unless the batch holds spans
        # stored before (its deltas count them too)
        if shipped is not None and not stored_before:
            conn.execute(_INSERT_NEW_TRACES, (batch.project_id,))
            changed = [(tid, plan.traces[tid]) for tid in existing]
        else:
            changed = list(plan.traces.items())
        conn.executemany(
            _UPSERT_TRACES,
            [
                (tid, batch.project_id, state.session_id, *columns.to_row(state.rollup))
                for tid, state in changed
            ],
        )
        stored = conn.execute(_INSERT_NEW_SPANS if stored_before else _INSERT_SPANS).rowcount
        # spans stored before their trace was named now name its session too (a trace
        # first seen in this batch has no such spans: it was inserted named)
        orphans = [(sid, numbers[tid]) for tid, sid in plan.newly_bound.items() if tid in existing]
        if orphans:
            conn.executemany(
                "UPDATE spans SET session_id = ? WHERE trace_no = ? AND session_id IS NULL",
                orphans,
            )
        if plan.recompute:
            self._recompute_usage(conn, batch.project_id, plan, numbers)
        self._merge_sessions(conn, batch.project_id, plan.sessions, plan.shrunk)
        return WriteResult(stored=stored, duplicates=batch.received() - stored)

    @staticmethod
    def _recompute_usage(
        conn: sqlite3.Connection, project_id: str, plan: RollupPlan, numbers: dict[bytes, int]
    ) -> None:
        """The usage of the stored traces that new spans may change, from their spans
        (the new ones are stored by now), into the traces and the plan's sessions."""
        updates = []
        for tid in plan.recompute:
            number = numbers[tid]
            spans = conn.execute(_USAGE_SPANS, (number, project_id)).fetchall()
            usage = usage_rollup(columns.usage_span_of(row) for row in spans)
            plan.replace_usage(tid, usage)
            updates.append((*columns.usage_row(usage), number))
        conn.executemany(_SET_TRACE_USAGE, updates)

    @staticmethod
    def _stored_before(conn: sqlite3.Connection, stored_traces: Sequence[bytes]) -> int:
        """How many spans of the batch (`batch.spans`) these stored traces (of the batch's
        project) hold already."""
        count = 0
        # the batch table has no index: scan it, and look up only the spans of these traces
        for chunk in chunks(stored_traces):
            (found,) = conn.execute(
                "SELECT count(*) FROM batch.spans b"
                " CROSS JOIN main.traces t"
                " ON t.project_id = b.project_id AND t.trace_id = b.trace_id"
                " CROSS JOIN main.spans s ON s.trace_no = t.trace_no AND s.span_id = b.span_id"
                f" WHERE b.trace_id IN ({_marks(chunk)})",
                chunk,
            ).fetchone()
            count += found
        return count

    @staticmethod
    def _existing_spans(
        conn: sqlite3.Connection, numbers: dict[bytes, int]
    ) -> set[tuple[bytes, bytes]]:
        """(trace_id, span_id) of the stored spans of these (already stored) traces."""
        trace_of = {number: tid for tid, number in numbers.items()}
        seen: set[tuple[bytes, bytes]] = set()
        for chunk in chunks(list(trace_of)):
            for number, span_id in conn.execute(
                f"SELECT trace_no, span_id FROM spans WHERE trace_no IN ({_marks(chunk)})", chunk
            ):
                seen.add((trace_of[number], span_id))
        return seen

    @staticmethod
    def _trace_states(
        conn: sqlite3.Connection, project_id: str, trace_ids: Sequence[bytes]
    ) -> tuple[dict[bytes, int], dict[bytes, TraceState]]:
        """The trace numbers and states of the project's traces already stored."""
        numbers: dict[bytes, int] = {}
        states: dict[bytes, TraceState] = {}
        for chunk in chunks(trace_ids):
            for row in conn.execute(
                f"SELECT trace_id, trace_no, session_id, {_ROLLUP_COLS} FROM traces"
                f" WHERE project_id = ? AND trace_id IN ({_marks(chunk)})",
                (project_id, *chunk),
            ):
                numbers[row[0]] = row[1]
                states[row[0]] = TraceState(row[2], columns.from_row(row[3:]))
        return numbers, states

    @staticmethod
    def _merge_sessions(
        conn: sqlite3.Connection,
        project_id: str,
        deltas: dict[str, Any],
        shrunk: set[str],
    ) -> None:
        if not deltas:
            return
        merged = dict(deltas)
        ids = list(deltas)
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT session_id, {_ROLLUP_COLS} FROM sessions"
                f" WHERE project_id = ? AND session_id IN ({marks})",
                (project_id, *chunk),
            ):
                merged[row[0]] = merge(columns.from_row(row[1:]), deltas[row[0]])
        for session_id in shrunk:  # a union cannot drop members: take them from the traces
            models: set[str] = set()
            providers: set[str] = set()
            for trace_models, trace_providers in conn.execute(
                "SELECT models, providers FROM traces WHERE project_id = ? AND session_id = ?",
                (project_id, session_id),
            ):
                models.update(json.loads(trace_models))
                providers.update(json.loads(trace_providers))
            merged[session_id] = dataclasses.replace(
                merged[session_id], models=frozenset(models), providers=frozenset(providers)
            )
        # an upsert, not INSERT OR REPLACE: the row keeps its place, and only the indexes
        # whose columns changed (mostly sessions_by_end) are touched
        conn.executemany(
            f"INSERT INTO sessions (project_id, session_id, {_ROLLUP_COLS})"
            f" VALUES (?, ?, {_ROLLUP_MARKS})"
            f" ON CONFLICT (project_id, session_id) DO UPDATE SET {_UPDATE_ROLLUP}",
            [(project_id, sid, *columns.to_row(r)) for sid, r in merged.items()],
        )

    # -- reads (the queries themselves are in `sql_reads`) -------------------------------

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._reader().execute(sql, params).fetchall()
        return rows

    def expire(
        self, traces_before_ns: int | None, sessions_before_ns: int | None, limit: int
    ) -> Expired:
        """One short write transaction of its own connection: ingestion waits for it at
        most that long (busy_timeout), as for any other SQLite writer."""
        expired = Expired()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            if traces_before_ns is not None:
                doomed = [
                    row[0]
                    for row in conn.execute(
                        "SELECT trace_no FROM traces t WHERE end_ns < ? AND NOT EXISTS"
                        " (SELECT 1 FROM spans s WHERE s.trace_no = t.trace_no AND s.rowid > ?)"
                        " ORDER BY end_ns LIMIT ?",
                        (traces_before_ns, _export_hold(conn), limit),
                    )
                ]
                for chunk in chunks(doomed):
                    marks = _marks(chunk)
                    expired.spans += conn.execute(
                        f"DELETE FROM spans WHERE trace_no IN ({marks})", chunk
                    ).rowcount
                    conn.execute(f"DELETE FROM traces WHERE trace_no IN ({marks})", chunk)
                expired.traces = len(doomed)
            if sessions_before_ns is not None:
                expired.sessions = conn.execute(
                    "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions"
                    " WHERE end_ns < ? ORDER BY end_ns LIMIT ?)",
                    (sessions_before_ns, limit),
                ).rowcount
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        return expired

    def ping(self) -> None:
        self._reader().execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._checkpointer.stop()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()


def _export_hold(conn: sqlite3.Connection) -> int:
    """Retention keeps the spans above this rowid: those an exporter has not delivered yet
    (its cursor, `store/sqlite_export_log.py`), and the newest span, so that rowids, the export
    log's positions, are never reused."""
    (newest,) = conn.execute("SELECT max(rowid) FROM spans").fetchone()
    hold = int(newest or 0) - 1
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'export_cursors'").fetchone():
        (cursor,) = conn.execute("SELECT min(position) FROM export_cursors").fetchone()
        if cursor is not None:
            hold = min(hold, int(cursor))
    return hold


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one by one (`executescript` would commit first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


class _Checkpointer:
    """Copies committed WAL pages into the database file in the background.

    The WAL starts over from its beginning only when a write transaction begins with
    every frame already copied; under steady load the writer always appends before
    this thread catches up, and the WAL would grow without end. So once the WAL is
    long, `restart_wanted` asks the writer to copy the last frames itself between two
    transactions.
    """

    def __init__(self, conn: sqlite3.Connection, interval_s: float = 0.25) -> None:
        self._conn = conn
        self._interval_s = interval_s
        self.restart_wanted = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.checkpoint()

    def checkpoint(self) -> None:
        _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames > _WAL_RESTART_FRAMES:
            self.restart_wanted.set()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        with contextlib.suppress(sqlite3.OperationalError):  # busy: the next start finishes it
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
