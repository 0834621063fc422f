"""The store the configuration asks for (`storage.backend`), opened and migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from session_bridge.config import StorageConfig
from session_bridge.store.base import Store
from session_bridge.store.sqlite import SCHEMA_VERSION, SqliteStore

if TYPE_CHECKING:
    from session_bridge.store.postgres import PostgresSettings

# The PostgreSQL modules are imported where they are used: a SQLite bridge never loads
# the driver (tens of MB in every process).


def sqlite_path(storage: StorageConfig) -> Path:
    return Path(storage.data_dir).expanduser().resolve() / "bridge.db"


def postgres_settings(storage: StorageConfig) -> PostgresSettings:
    from session_bridge.store.postgres import PostgresSettings

    pg = storage.postgres
    return PostgresSettings(pg.dsn, pg.schema, pg.pool_size, float(pg.connect_timeout))


def open_store(storage: StorageConfig) -> Store:
    """Open (and migrate) the configured store; `ConnectionError` if PostgreSQL is
    unreachable."""
    if storage.backend == "postgres":
        from session_bridge.store.postgres import PostgresStore

        return PostgresStore(postgres_settings(storage))
    path = sqlite_path(storage)
    try:
        return SqliteStore(path, synchronous=storage.sqlite.synchronous)
    except sqlite3.Error as exc:  # e.g. "unable to open database file": name the file
        raise OSError(f"cannot open the SQLite database {path}: {exc}") from exc


def describe_storage(storage: StorageConfig) -> str:
    """Where the data lives, for the banner and the logs (never a password)."""
    if storage.backend == "postgres":
        from session_bridge.store.postgres import describe_dsn

        return f"{describe_dsn(storage.postgres.dsn)} schema {storage.postgres.schema} (PostgreSQL)"
    return f"{sqlite_path(storage).parent} (SQLite)"


def migrate(storage: StorageConfig) -> str:
    """Bring the configured store's schema up to date; say what was done."""
    where = describe_storage(storage)
    if storage.backend == "postgres":
        from session_bridge.store import pg_schema
        from session_bridge.store.postgres import migrate_schema

        applied = migrate_schema(postgres_settings(storage))
        if not applied:
            return f"{where}: already at schema version {pg_schema.LATEST}, nothing to do"
        return f"{where}: applied migration(s) {', '.join(map(str, applied))}"
    open_store(storage).close()  # SQLite migrates on open
    return f"{where}: at schema version {SCHEMA_VERSION}"
