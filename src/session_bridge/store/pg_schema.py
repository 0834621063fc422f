"""Versioned PostgreSQL schema migrations, applied at start and by `session-bridge migrate`.

Each migration runs once, in order, in one transaction with its row in
`schema_migrations`; an advisory lock (per schema) lets replicas that start together
take turns, so re-running is a no-op. A migration is history: never edit one that
has shipped, add the next. After migrating, the rollup columns of `traces` and
`sessions` are checked against `ROLLUP_COLUMNS` (through `columns.COLUMN_NAMES`), so
a rollup column added without its migration stops the bridge at start.

Text columns use the "C" collation: ordering and comparisons are by code point, as
in SQLite and in Python, whatever the database's locale.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from session_bridge.store import columns


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


_ROLLUP_V1 = """
  start_ns bigint,
  end_ns bigint,
  trace_count bigint NOT NULL DEFAULT 0,
  span_count bigint NOT NULL DEFAULT 0,
  error_count bigint NOT NULL DEFAULT 0,
  services text COLLATE "C" NOT NULL DEFAULT '[]',
  user_id text COLLATE "C",
  user_id_stamp bigint,
  environment text COLLATE "C",
  environment_stamp bigint,
  client text COLLATE "C",
  client_stamp bigint,
  geo text COLLATE "C",
  geo_stamp bigint,
  request_count bigint NOT NULL DEFAULT 0,
  input_tokens bigint NOT NULL DEFAULT 0,
  output_tokens bigint NOT NULL DEFAULT 0,
  cache_read_tokens bigint NOT NULL DEFAULT 0,
  cache_creation_tokens bigint NOT NULL DEFAULT 0,
  reasoning_tokens bigint NOT NULL DEFAULT 0,
  cost_nano_usd bigint NOT NULL DEFAULT 0,
  unpriced_count bigint NOT NULL DEFAULT 0,
  models text COLLATE "C" NOT NULL DEFAULT '[]',
  providers text COLLATE "C" NOT NULL DEFAULT '[]'"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "resources, spans, traces (trace->session binding) and sessions",
        f"""
CREATE TABLE resources (
  resource_key bytea PRIMARY KEY,
  resource bytea NOT NULL
);
CREATE TABLE spans (
  trace_id bytea NOT NULL,
  span_id bytea NOT NULL,
  parent_span_id bytea,
  project_id text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  kind integer NOT NULL,
  start_ns bigint NOT NULL,
  end_ns bigint NOT NULL,
  status_code integer NOT NULL,
  status_message text COLLATE "C" NOT NULL,
  event_type text COLLATE "C" NOT NULL,
  is_error boolean NOT NULL,
  service text COLLATE "C",
  environment text COLLATE "C",
  session_id text COLLATE "C",
  user_id text COLLATE "C",
  provider text COLLATE "C",
  model text COLLATE "C",
  input_tokens bigint,
  output_tokens bigint,
  cache_read_tokens bigint,
  cache_creation_tokens bigint,
  reasoning_tokens bigint,
  cost_usd double precision,
  scope_name text COLLATE "C" NOT NULL,
  resource_key bytea NOT NULL,
  otlp_span bytea NOT NULL,
  PRIMARY KEY (trace_id, span_id)
);
-- bound_by: the transaction that named the trace's session (see store/postgres.py)
CREATE TABLE traces (
  trace_id bytea PRIMARY KEY,
  project_id text COLLATE "C" NOT NULL,
  session_id text COLLATE "C",
  bound_by xid8,{_ROLLUP_V1}
);
CREATE INDEX traces_by_session ON traces (project_id, session_id) WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_end ON traces (end_ns);
CREATE TABLE sessions (
  project_id text COLLATE "C" NOT NULL,
  session_id text COLLATE "C" NOT NULL,{_ROLLUP_V1},
  PRIMARY KEY (project_id, session_id)
);
CREATE INDEX sessions_by_start ON sessions (project_id, start_ns, session_id);
CREATE INDEX sessions_by_user ON sessions (project_id, user_id, start_ns);
CREATE INDEX sessions_by_end ON sessions (end_ns);
""",
    ),
    Migration(
        2,
        "traces keyed by (project_id, trace_id), spans by (project_id, trace_id, span_id)",
        # every row keeps its project; the old keys were unique, so the new ones are
        """
ALTER TABLE spans DROP CONSTRAINT spans_pkey;
ALTER TABLE spans ADD PRIMARY KEY (project_id, trace_id, span_id);
ALTER TABLE traces DROP CONSTRAINT traces_pkey;
ALTER TABLE traces ADD PRIMARY KEY (project_id, trace_id);
""",
    ),
    Migration(
        3,
        "the export log: each span's writing transaction, positions, cursors, dead letters",
        """
-- spans stored before this migration keep NULL: they are in no exporter's queue
ALTER TABLE spans ADD COLUMN log_xid xid8;
ALTER TABLE spans ALTER COLUMN log_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX spans_by_log_xid ON spans (log_xid);
CREATE SEQUENCE export_log_position;
CREATE TABLE export_log (
  position bigint PRIMARY KEY,
  log_xid xid8 NOT NULL UNIQUE,
  spans bigint NOT NULL,
  bytes bigint NOT NULL
);
CREATE TABLE export_log_state (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  sequenced_below xid8 NOT NULL
);
INSERT INTO export_log_state (sequenced_below) VALUES (pg_current_xact_id());
CREATE TABLE export_cursors (
  exporter text COLLATE "C" PRIMARY KEY,
  position bigint NOT NULL,
  updated_ns bigint NOT NULL
);
CREATE TABLE dead_letters (
  id bigserial PRIMARY KEY,
  exporter text COLLATE "C" NOT NULL,
  letter bytea NOT NULL  -- session_bridge.v1.DeadLetter
);
CREATE INDEX dead_letters_by_exporter ON dead_letters (exporter, id);
""",
    ),
    Migration(
        4,
        "spans keep the model response they report: usage by the span tree",
        # spans and rollups stored before keep what they were counted as; a trace written
        # to again is recomputed by the new rule (its older spans have no response id)
        """
ALTER TABLE spans ADD COLUMN response_id text COLLATE "C";
""",
    ),
    Migration(
        5,
        "spans keep the ingestion event built at ingest",
        """
-- spans stored before keep NULL: their events are built when they are sent
ALTER TABLE spans ADD COLUMN ingestion_event bytea;
ALTER TABLE spans ADD COLUMN trace_fields bytea;
""",
    ),
    Migration(
        6,
        "spans' stored bytes are compressed with lz4 where the server has it",
        # A span row with its ingestion event is past PostgreSQL's 2 kB toast threshold,
        # so the server compresses nearly every span's event as it is written and
        # decompresses it as it is exported. With lz4 instead of the default pglz, the
        # server's CPU per span written fell from 50-59 to 40-45 us, for the same table
        # size. Values stored before stay as they are; a server built without lz4, or
        # older than 14, keeps pglz. (The write's staging table takes the method from
        # `spans`: a value compressed there is stored as it is.)
        """
DO $$
BEGIN
  -- (as text: a server older than 14 does not parse SET COMPRESSION)
  EXECUTE 'ALTER TABLE spans ALTER COLUMN otlp_span SET COMPRESSION lz4, '
    || 'ALTER COLUMN ingestion_event SET COMPRESSION lz4, '
    || 'ALTER COLUMN trace_fields SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
  RAISE NOTICE 'lz4 is not available on this server: spans stay compressed with pglz';
END
$$;
""",
    ),
)

LATEST = MIGRATIONS[-1].version


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> list[int]:
    """Bring `schema` up to `LATEST`; return the versions applied now (empty: no-op)."""
    applied_now: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"session-bridge:{schema}",))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, description text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {int(str(v)) for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        if done and max(done) > LATEST:
            raise RuntimeError(
                f"schema {schema!r} is at version {max(done)}, newer than this bridge"
                f" ({LATEST}); upgrade the bridge"
            )
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
            applied_now.append(migration.version)
        _check_rollup_layout(conn, schema)
    return applied_now


def _check_rollup_layout(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    expected = set(columns.COLUMN_NAMES)
    for table, keys in (("traces", {"trace_id", "project_id", "session_id", "bound_by"}),
                        ("sessions", {"project_id", "session_id"})):  # fmt: skip
        found = {
            str(name)
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s",
                (schema, table),
            )
        }
        if found - keys != expected:
            raise RuntimeError(
                f"{schema}.{table} does not have the rollup columns of ROLLUP_COLUMNS"
                f" (missing: {sorted(expected - found)}, extra: {sorted(found - keys - expected)});"
                " add a migration to store/pg_schema.py"
            )
