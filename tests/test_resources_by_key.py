"""The one query of resources by key that the stores' query side and both export logs
use: every key found, across more keys than one IN list holds, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

import psycopg

from session_bridge.store.sql_reads import MAX_PARAMS, resources_by_key

KEYS = [i.to_bytes(8, "big") for i in range(2 * MAX_PARAMS + 7)]
STORED = {key: b"resource " + key for key in KEYS[::2]}  # every other key


def test_every_stored_key_is_found_on_sqlite() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE resources (resource_key BLOB PRIMARY KEY, resource BLOB)")
    conn.executemany("INSERT INTO resources VALUES (?, ?)", STORED.items())
    assert resources_by_key(conn.execute, "?", KEYS) == STORED
    assert resources_by_key(conn.execute, "?", []) == {}


def test_every_stored_key_is_found_on_postgresql(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:  # a transaction, rolled back on leaving
        conn.execute("CREATE TEMPORARY TABLE resources (resource_key BYTEA, resource BYTEA)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO resources VALUES (%s, %s)", list(STORED.items()))
        found = resources_by_key(lambda q, p: conn.execute(q.encode(), p), "%s", KEYS)
        conn.rollback()
    assert found == STORED
