"""The PostgreSQL server the tests use: 127.0.0.1:5432, trust auth (override with
SESSION_BRIDGE_TEST_PG, a libpq connection string to a maintenance database).

Each test session works in a database of its own (`sbt_<pid>`, dropped at the end,
and left-overs of sessions that died are dropped at the next start); each test in a
schema of its own in it. The server is required: when it cannot be reached the
PostgreSQL tests fail, they are never skipped.
"""

from __future__ import annotations

import os
import uuid

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_DSN = os.environ.get(
    "SESSION_BRIDGE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
START_HINT = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        where = conninfo_to_dict(ADMIN_DSN)
        raise RuntimeError(
            f"the PostgreSQL tests need the server at {where.get('host')}:{where.get('port')}"
            f" ({exc}); {START_HINT}"
        ) from exc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create_test_database(suffix: str = "") -> str:
    """A fresh, empty database for this test session; returns its connection string."""
    name = f"sbt_{os.getpid()}{suffix}"
    with _admin() as conn:
        for (existing,) in conn.execute("SELECT datname FROM pg_database WHERE datname ~ '^sbt_'"):
            pid = str(existing)[4:].split("_")[0]
            if existing == name or not (pid.isdigit() and _alive(int(pid))):
                drop_database_named(conn, str(existing))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(ADMIN_DSN, dbname=name)


def drop_database(dsn: str) -> None:
    with _admin() as conn:
        drop_database_named(conn, str(conninfo_to_dict(dsn)["dbname"]))


def drop_database_named(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def new_schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def copy_into_older_schema(dsn: str, source: str, target: str) -> None:
    """Copy the store's tables from `source` into `target`, a schema an older release
    made: only the columns `target` has (later migrations add some)."""
    with psycopg.connect(dsn) as conn:
        for table in ("resources", "spans", "traces", "sessions"):
            names = sql.SQL(", ").join(
                sql.Identifier(str(name))
                for (name,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (target, table),
                )
            )
            conn.execute(
                sql.SQL("INSERT INTO {}.{} ({}) SELECT {} FROM {}.{}").format(
                    sql.Identifier(target), sql.Identifier(table), names, names,
                    sql.Identifier(source), sql.Identifier(table),
                )
            )  # fmt: skip
