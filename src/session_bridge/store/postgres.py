"""PostgreSQL store: any number of bridge replicas sharing one database.

A group of export requests (see `store/writer.py`) is written in one transaction of
four statements, one per table, each carrying all its rows at once:

1. `resources`: INSERT … SELECT FROM unnest(arrays) … ON CONFLICT DO NOTHING.
2. `spans`: binary COPY into a temporary table, then INSERT … SELECT … ON CONFLICT DO
   NOTHING RETURNING the keys really inserted. Only those spans count, so a span resent
   to any replica, or to several at once, counts once: the primary key decides, and a
   second inserter of the same key waits for the first transaction, then finds the
   conflict.
3. `traces`: one upsert per trace that got new spans (the rows travel as one JSON array,
   as for sessions). It merges the new spans' rollup into the trace's (SQL generated
   from `ROLLUP_COLUMNS`, see `merge_sql.py`) and binds the trace to a session if it had
   none: `session_id = COALESCE(stored, named)`. The write that binds it records its
   transaction id in `bound_by`, so RETURNING tells, per trace, its session, whether
   this very statement named it, and its merged rollup.
4. `sessions`: one upsert per session, merging what each trace adds
   (`binding.session_contribution`): the whole trace and one more trace when this write
   named it, else only the new spans.

Why a trace is counted exactly once across replicas: the upsert of step 3 locks the
trace's row until commit, so writes to one trace are serialized there, each seeing the
row the previous one committed. A write that finds the trace unnamed only adds to the
trace; the write that names it moves everything committed before it (the trace's
rollup, read under the lock, plus its own spans) into the session; every later write
finds it named and adds only its own spans. No rollup is read, merged in Python and
written back: every merge happens in an upsert.

No global lock, no deadlock: every transaction takes its row locks in one order —
resources, spans, traces, sessions, each sorted by key (`ORDER BY` in the statement).
`spans.session_id` is written as the session named in the same group; when the trace
turns out to be named otherwise (another replica named it first) or is named now with
spans stored before, the affected spans are renamed after step 3, under the trace's lock.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from session_bridge.model import SpanRecord
from session_bridge.rollup.binding import TraceDelta, fold_by_trace, session_contribution
from session_bridge.rollup.rollup import (
    USAGE_COLUMNS,
    Rollup,
    merge,
    shrinks,
    usage_change,
    with_usage,
)
from session_bridge.rollup.usage import UsageSpan, usage_rollup
from session_bridge.store import columns, pg_schema
from session_bridge.store.base import Expired, NeedsRecords, WriteBatch, WriteResult
from session_bridge.store.merge_sql import merge_assignments
from session_bridge.store.search import SqlDialect
from session_bridge.store.sql_reads import SqlReads

log = logging.getLogger(__name__)

Connection = psycopg.Connection[TupleRow]
T = TypeVar("T")

_RETRIES = 3  # attempts at a transaction the server rolled back or lost the connection of

_PG_TYPE = {"TEXT": "text", "BIGINT": "bigint"}
_ROLLUP_COLS = ", ".join(columns.COLUMN_NAMES)


class PostgresDialect(SqlDialect):
    """How `store.search` compiles for PostgreSQL (JSON arrays are kept as text)."""

    mark = "%s"

    def json_text(self, column: str, key: str) -> str:
        return f"({column}::json ->> '{key}')"

    def array_elements(self, column: str) -> str:
        return f"json_array_elements_text({column}::json) AS e(value)"

    def array_length(self, column: str) -> str:
        return f"json_array_length({column}::json)"

    def contains(self, haystack: str, needle: str) -> str:
        return f"strpos({haystack}, {needle}) > 0"


POSTGRES = PostgresDialect()


# The spans of a write go to a temporary table (one per connection, emptied at each
# commit) by binary COPY, then into `spans` in one statement.
_SPAN_TYPES = {
    "trace_id": "bytea", "span_id": "bytea", "parent_span_id": "bytea", "project_id": "text",
    "name": "text", "kind": "int4", "start_ns": "int8", "end_ns": "int8", "status_code": "int4",
    "status_message": "text", "event_type": "text", "is_error": "bool", "service": "text",
    "environment": "text", "session_id": "text", "user_id": "text", "provider": "text",
    "model": "text", "input_tokens": "int8", "output_tokens": "int8", "cache_read_tokens": "int8",
    "cache_creation_tokens": "int8", "reasoning_tokens": "int8", "cost_usd": "float8",
    "response_id": "text", "scope_name": "text", "resource_key": "bytea", "otlp_span": "bytea",
    "ingestion_event": "bytea", "trace_fields": "bytea",
}  # fmt: skip
_SPAN_COLUMNS = ", ".join(columns.SPAN_WRITE_COLUMNS)
# (with the compression method of `spans`, from PostgreSQL 14: pg_schema's migration 6)
_CREATE_SPAN_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS span_in (LIKE spans{}) ON COMMIT DELETE ROWS"
)
_COMPRESSION_METHODS = 140000  # the server version that has them
_COPY_SPANS = f"COPY span_in ({_SPAN_COLUMNS}) FROM STDIN (FORMAT BINARY)"

_INSERT_RESOURCES = """
INSERT INTO resources (resource_key, resource)
SELECT d.k, d.r FROM unnest(%s::bytea[], %s::bytea[]) AS d(k, r) ORDER BY d.k
ON CONFLICT DO NOTHING"""

_INSERT_SPANS = f"""
INSERT INTO spans ({_SPAN_COLUMNS})
SELECT {_SPAN_COLUMNS} FROM span_in ORDER BY project_id, trace_id, span_id
ON CONFLICT DO NOTHING
RETURNING project_id, trace_id, span_id"""


def _from_json(names: Sequence[str], first: int) -> str:
    """The SELECT list reading rollup columns from the JSON array row `r`, from index `first`."""
    types = dict(columns.sql_columns())
    return ", ".join(
        f"(r->>{first + i})::{_PG_TYPE[types[name].split()[0]]} AS {name}"
        for i, name in enumerate(names)
    )


# Trace and session rows travel as one JSON array of rows each (trace ids in hex).
_UPSERT_TRACES = f"""
INSERT INTO traces AS cur (trace_id, project_id, session_id, bound_by, {_ROLLUP_COLS})
SELECT decode(r->>0, 'hex'), r->>1, r->>2,
  CASE WHEN r->>2 IS NOT NULL THEN pg_current_xact_id() END,
  {_from_json(columns.COLUMN_NAMES, 3)}
FROM jsonb_array_elements(%s::jsonb) AS r
ORDER BY 2, 1
ON CONFLICT (project_id, trace_id) DO UPDATE SET
  session_id = COALESCE(cur.session_id, EXCLUDED.session_id),
  bound_by = CASE WHEN cur.session_id IS NULL THEN EXCLUDED.bound_by ELSE cur.bound_by END,
  {merge_assignments("cur", "EXCLUDED", exclude=USAGE_COLUMNS)}
RETURNING trace_id, project_id, session_id,
  bound_by IS NOT DISTINCT FROM pg_current_xact_id(), {_ROLLUP_COLS}"""

# the spans of some traces, as the usage rule reads them (`rollup/usage.py`)
_USAGE_SPANS = f"""
SELECT project_id, trace_id, {", ".join(columns.USAGE_SPAN_COLUMNS)} FROM spans
WHERE (project_id, trace_id) IN (SELECT * FROM unnest(%s::text[], %s::bytea[]))"""

_SET_TRACE_USAGE = f"""
UPDATE traces AS t SET
  {", ".join(f"{n} = x.{n}" for n in columns.USAGE_COLUMN_NAMES)}
FROM (SELECT r->>0 AS project_id, decode(r->>1, 'hex') AS trace_id,
  {_from_json(columns.USAGE_COLUMN_NAMES, 2)}
  FROM jsonb_array_elements(%s::jsonb) AS r) AS x
WHERE t.project_id = x.project_id AND t.trace_id = x.trace_id"""


def _session_union(column: str) -> str:
    return f"""COALESCE((SELECT json_agg(v ORDER BY v COLLATE "C")::text FROM (
    SELECT DISTINCT m.v FROM traces t, json_array_elements_text(t.{column}::json) AS m(v)
    WHERE t.project_id = s.project_id AND t.session_id = s.session_id) AS u(v)), '[]')"""


# a session whose models or providers a trace no longer has: a union cannot drop members,
# so they are taken again from its traces (after the upserts: under its row lock)
_RETAKE_SESSION_SETS = f"""
UPDATE sessions AS s SET models = {_session_union("models")},
  providers = {_session_union("providers")}
WHERE (s.project_id, s.session_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"""

_UPSERT_SESSIONS = f"""
INSERT INTO sessions AS cur (project_id, session_id, {_ROLLUP_COLS})
SELECT r->>0, r->>1, {_from_json(columns.COLUMN_NAMES, 2)}
FROM jsonb_array_elements(%s::jsonb) AS r
ORDER BY 1, 2
ON CONFLICT (project_id, session_id) DO UPDATE SET
  {merge_assignments("cur", "EXCLUDED")}"""

# spans stored before their trace was named (by this write) take its session
_NAME_EARLIER_SPANS = """
UPDATE spans SET session_id = d.session_id
FROM unnest(%s::text[], %s::bytea[], %s::text[]) AS d(project_id, trace_id, session_id)
WHERE spans.project_id = d.project_id AND spans.trace_id = d.trace_id
  AND spans.session_id IS NULL"""

# spans of this write whose trace another write had named otherwise
_RENAME_NEW_SPANS = """
UPDATE spans SET session_id = d.session_id
FROM unnest(%s::text[], %s::bytea[], %s::bytea[], %s::text[])
  AS d(project_id, trace_id, span_id, session_id)
WHERE spans.project_id = d.project_id AND spans.trace_id = d.trace_id
  AND spans.span_id = d.span_id"""

# Retention takes trace rows with SKIP LOCKED: it never waits for a write in progress,
# and a write to a trace being expired waits for that short transaction, then finds
# the trace gone and starts it afresh.
# A trace with a span that some exporter has not delivered is kept: a span not yet
# numbered in the export log, or numbered past the lowest cursor.
_EXPIRE_TRACES = """
WITH hold AS (
  SELECT min(position) AS cursor FROM export_cursors
), doomed AS (
  SELECT project_id, trace_id FROM traces tr WHERE end_ns < %s
    AND NOT EXISTS (
      SELECT 1 FROM spans s, hold, export_log_state st
      WHERE s.project_id = tr.project_id AND s.trace_id = tr.trace_id
        AND hold.cursor IS NOT NULL AND s.log_xid IS NOT NULL
        AND (s.log_xid >= st.sequenced_below OR EXISTS (
          SELECT 1 FROM export_log e WHERE e.log_xid = s.log_xid AND e.position > hold.cursor)))
  ORDER BY end_ns LIMIT %s
  FOR UPDATE SKIP LOCKED
), spans_gone AS (
  DELETE FROM spans WHERE (project_id, trace_id) IN (SELECT project_id, trace_id FROM doomed)
  RETURNING 1
), traces_gone AS (
  DELETE FROM traces WHERE (project_id, trace_id) IN (SELECT project_id, trace_id FROM doomed)
  RETURNING 1
)
SELECT (SELECT count(*) FROM traces_gone), (SELECT count(*) FROM spans_gone)"""

# positions every exporter has passed (none are pruned while no exporter is configured)
_PRUNE_EXPORT_LOG = (
    "DELETE FROM export_log WHERE position < (SELECT min(position) FROM export_cursors)"
)

_EXPIRE_SESSIONS = """
WITH doomed AS (
  SELECT project_id, session_id FROM sessions WHERE end_ns < %s ORDER BY end_ns LIMIT %s
  FOR UPDATE SKIP LOCKED
)
DELETE FROM sessions USING doomed
WHERE sessions.project_id = doomed.project_id AND sessions.session_id = doomed.session_id"""


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    dsn: str
    schema: str = "public"
    pool_size: int = 4
    connect_timeout_s: float = 10.0


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a connection string, without its password."""
    params = conninfo_to_dict(dsn)
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def migrate_schema(settings: PostgresSettings) -> list[int]:
    """Apply the pending migrations (see `pg_schema`); return the versions applied."""
    try:
        with psycopg.connect(settings.dsn, **connect_kwargs(settings)) as conn:
            return pg_schema.migrate(conn, settings.schema)
    except psycopg.OperationalError as exc:
        raise _unreachable(settings, exc) from exc


def connect_kwargs(settings: PostgresSettings) -> dict[str, Any]:
    return {
        "autocommit": True,
        "connect_timeout": max(1, round(settings.connect_timeout_s)),
        "application_name": "otel-session-bridge",
    }


def _unreachable(settings: PostgresSettings, exc: Exception) -> ConnectionError:
    return ConnectionError(f"cannot use PostgreSQL at {describe_dsn(settings.dsn)}: {exc}")


class PostgresStore(SqlReads):
    dialect = POSTGRES
    span_join = "s.project_id = t.project_id AND s.trace_id = t.trace_id"
    needs_records = True

    def __init__(self, settings: PostgresSettings) -> None:
        self._settings = settings
        self.applied_migrations = migrate_schema(settings)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            settings.dsn,
            min_size=1,
            max_size=settings.pool_size,
            timeout=settings.connect_timeout_s,
            kwargs=connect_kwargs(settings),
            configure=self._configure,
            open=False,
            name="session-bridge",
        )
        try:
            self._pool.open(wait=True, timeout=settings.connect_timeout_s)
        except psycopg.Error as exc:
            self._pool.close()
            raise _unreachable(settings, exc) from exc

    # -- connections ---------------------------------------------------------------------

    def _configure(self, conn: Connection) -> None:
        schema = sql.Identifier(self._settings.schema)
        conn.execute(sql.SQL("SET search_path TO {}").format(schema))
        like = " INCLUDING COMPRESSION" if conn.info.server_version >= _COMPRESSION_METHODS else ""
        conn.execute(_CREATE_SPAN_STAGING.format(like))

    def _retrying(self, work: Callable[[Connection], T]) -> T:
        """`work` on a pooled connection, again (on another connection) when the server
        rolled the transaction back (deadlock, serialization) or the connection was lost
        (a restarted server): every write is idempotent, spans being keyed."""
        for attempt in range(1, _RETRIES + 1):
            with self._pool.connection() as conn:
                try:
                    return work(conn)
                except psycopg.errors.TransactionRollback as exc:
                    if attempt == _RETRIES:
                        raise
                    log.warning("transaction rolled back (%s); retrying", exc.sqlstate)
                except psycopg.OperationalError as exc:
                    if not conn.broken or attempt == _RETRIES:
                        raise
                    log.warning("lost a connection to PostgreSQL (%s); retrying", exc)
            time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writes --------------------------------------------------------------------------

    def write_many(self, batches: Sequence[WriteBatch]) -> list[WriteResult | Exception]:
        """Group commit: every batch in one transaction; if that fails for anything but
        the database being unreachable, each batch alone, so a bad one fails alone."""
        if not batches:
            return []
        try:
            return list(self._write(batches))
        except psycopg.OperationalError as exc:  # unreachable, or retried in vain
            return [exc for _ in batches]
        except Exception as exc:
            if len(batches) == 1:
                return [exc]
            log.warning("a group of %d writes failed (%s); writing each alone", len(batches), exc)
        results: list[WriteResult | Exception] = []
        for batch in batches:
            try:
                results += self._write([batch])
            except Exception as exc:
                results.append(exc)
        return results

    def _write(self, batches: Sequence[WriteBatch]) -> list[WriteResult]:
        return self._retrying(lambda conn: _write_group(conn, batches))

    # -- reads (the queries themselves are in `sql_reads`) -------------------------------

    def _rows(self, sql: str, params: Sequence[Any]) -> list[TupleRow]:
        return self._retrying(lambda conn: conn.execute(sql, params).fetchall())

    def expire(
        self, traces_before_ns: int | None, sessions_before_ns: int | None, limit: int
    ) -> Expired:
        expired = Expired()
        with self._pool.connection() as conn:
            if traces_before_ns is not None:
                row = conn.execute(_EXPIRE_TRACES, (traces_before_ns, limit)).fetchone()
                expired.traces, expired.spans = (int(n) for n in row) if row else (0, 0)
                conn.execute(_PRUNE_EXPORT_LOG)
            if sessions_before_ns is not None:
                expired.sessions = conn.execute(
                    _EXPIRE_SESSIONS, (sessions_before_ns, limit)
                ).rowcount
        return expired

    def ping(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._pool.close()


# -- the write of one group -------------------------------------------------------------


# A trace is one project's: traces are keyed by (project_id, trace_id), spans by
# (project_id, trace_id, span_id), and a group may hold batches of several projects.
TraceKey = tuple[str, bytes]  # (project_id, trace_id)
SpanKey = tuple[str, bytes, bytes]  # (project_id, trace_id, span_id)


def _write_group(conn: Connection, batches: Sequence[WriteBatch]) -> list[WriteResult]:
    owner: dict[SpanKey, tuple[int, SpanRecord]] = {}
    resources: dict[bytes, bytes] = {}
    counts: list[int] = []
    for index, batch in enumerate(batches):
        if batch.records is None:
            raise NeedsRecords("PostgreSQL writes need the records")
        resources.update(batch.resources)
        counts.append(len(batch.records))
        project = batch.project_id
        for record in batch.records:
            owner.setdefault((project, record.trace_id, record.span_id), (index, record))
    guesses: dict[TraceKey, str | None] = {}  # the session a trace is named in this group
    for (project, trace_id, _), (_, record) in owner.items():
        if guesses.get((project, trace_id)) is None:
            guesses[project, trace_id] = record.session_id
    with conn.transaction():
        if resources:
            keys = sorted(resources)
            conn.execute(_INSERT_RESOURCES, (keys, [resources[k] for k in keys]), binary=True)
        _copy_spans(conn, _span_rows(owner, guesses))
        inserted = conn.execute(_INSERT_SPANS, binary=True).fetchall()
        new_keys = {(p, bytes(t), bytes(s)) for p, t, s in inserted}
        if new_keys:
            _fold(conn, [(key, owner[key][1]) for key in new_keys], guesses)
    stored = [0] * len(batches)
    for key in new_keys:
        stored[owner[key][0]] += 1
    return [
        WriteResult(stored=n, duplicates=count - n) for n, count in zip(stored, counts, strict=True)
    ]


def _fold(
    conn: Connection,
    new: list[tuple[SpanKey, SpanRecord]],
    guesses: dict[TraceKey, str | None],
) -> None:
    """Steps 3 and 4: fold the new spans into their traces, and traces into sessions."""
    by_project: dict[str, list[SpanRecord]] = {}
    for (project, _, _), record in new:
        by_project.setdefault(project, []).append(record)
    deltas: dict[TraceKey, TraceDelta] = {
        (project, tid): delta
        for project, records in by_project.items()
        for tid, delta in fold_by_trace(records).items()
    }
    traces = _json_rows(
        (tid.hex(), project, delta.session_id, *columns.to_row(delta.rollup))
        for (project, tid), delta in deltas.items()
    )
    contributions: dict[tuple[str, str], Rollup] = {}
    earlier: list[tuple[str, bytes, str]] = []  # traces named now, with spans stored before
    renamed: dict[TraceKey, str] = {}  # traces whose new spans were stored under another name
    recompute: dict[TraceKey, tuple[str | None, Rollup]] = {}  # session, usage before
    for tid, project, session_id, newly_bound, *rollup in conn.execute(
        _UPSERT_TRACES, (traces,), binary=True
    ).fetchall():
        trace = (project, bytes(tid))
        if session_id != _text(guesses[trace]):
            renamed[trace] = session_id
        delta = deltas[trace].rollup
        after = columns.from_row(rollup)
        if after.span_count > delta.span_count:
            # a stored trace: it kept its usage (the upsert merges the others only);
            # when either side has usage, the trace's spans decide it (below)
            if delta.request_count or after.request_count:
                recompute[trace] = (session_id, after)
            delta = with_usage(delta, _NO_USAGE)
            if newly_bound and session_id is not None:
                earlier.append((*trace, session_id))
        if session_id is None:
            continue
        key = (project, session_id)
        add = session_contribution(delta, after, newly_bound=newly_bound)
        contributions[key] = merge(contributions[key], add) if key in contributions else add
    shrunk: set[tuple[str, str]] = set()
    if recompute:
        for trace, usage in _recomputed_usage(conn, list(recompute)).items():
            session_id, before = recompute[trace]
            if session_id is None:
                continue
            key = (trace[0], session_id)
            change = usage_change(before, usage)
            contributions[key] = merge(contributions[key], change)
            if shrinks(before, usage):
                shrunk.add(key)
    if earlier:
        conn.execute(_NAME_EARLIER_SPANS, _columns_of(earlier, 3), binary=True)
    if renamed:
        keys = [(*key, renamed[key[:2]]) for key, _ in new if key[:2] in renamed]
        conn.execute(_RENAME_NEW_SPANS, _columns_of(keys, 4), binary=True)
    sessions = _json_rows((*key, *columns.to_row(add)) for key, add in contributions.items())
    conn.execute(_UPSERT_SESSIONS, (sessions,))
    if shrunk:
        conn.execute(_RETAKE_SESSION_SETS, _columns_of(sorted(shrunk), 2))


_NO_USAGE = Rollup()


def _recomputed_usage(conn: Connection, traces: list[TraceKey]) -> dict[TraceKey, Rollup]:
    """The usage of these (locked) traces from their stored spans, written to them."""
    spans: dict[TraceKey, list[UsageSpan]] = {trace: [] for trace in traces}
    for project, trace_id, *row in conn.execute(
        _USAGE_SPANS, _columns_of(traces, 2), binary=True
    ).fetchall():
        spans[project, bytes(trace_id)].append(columns.usage_span_of(row))
    usage = {trace: usage_rollup(of_trace) for trace, of_trace in spans.items()}
    rows = _json_rows(
        (project, trace_id.hex(), *columns.usage_row(u)) for (project, trace_id), u in usage.items()
    )
    conn.execute(_SET_TRACE_USAGE, (rows,))
    return usage


def _copy_spans(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    with conn.cursor().copy(_COPY_SPANS) as copy:
        copy.set_types([_SPAN_TYPES[name] for name in columns.SPAN_WRITE_COLUMNS])
        for row in rows:
            copy.write_row(row)


def _json_rows(rows: Iterable[tuple[Any, ...]]) -> str:
    clean = [[_text(v) if isinstance(v, str) else v for v in row] for row in rows]
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"))


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: it becomes U+FFFD (the raw span keeps it)."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def _columns_of(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as `width` column lists, for `unnest`."""
    return [[row[i] for row in rows] for i in range(width)]


def _span_rows(
    owned: dict[SpanKey, tuple[int, SpanRecord]], guesses: dict[TraceKey, str | None]
) -> Iterable[tuple[Any, ...]]:
    for (project_id, trace_id, _), (_, r) in owned.items():
        values = columns.span_values(r, project_id, guesses[project_id, trace_id])
        yield tuple(_text(v) if isinstance(v, str) else v for v in values)
