"""The store the configuration asks for (`storage.backend`), opened and migrated."""

from __future__ import annotations

from pathlib import Path

from session_bridge.config import StorageConfig
from session_bridge.store import pg_schema
from session_bridge.store.base import Store
from session_bridge.store.postgres import (
    PostgresSettings,
    PostgresStore,
    describe_dsn,
    migrate_schema,
)
from session_bridge.store.sqlite import SCHEMA_VERSION, SqliteStore


def sqlite_path(storage: StorageConfig) -> Path:
    return Path(storage.data_dir).expanduser().resolve() / "bridge.db"


def postgres_settings(storage: StorageConfig) -> PostgresSettings:
    pg = storage.postgres
    return PostgresSettings(pg.dsn, pg.schema, pg.pool_size, float(pg.connect_timeout))


def open_store(storage: StorageConfig, *, shared_writers: bool = False) -> Store:
    """Open (and migrate) the configured store; `ConnectionError` if PostgreSQL is
    unreachable. `shared_writers`: several bridge processes write to it at once."""
    if storage.backend == "postgres":
        return PostgresStore(postgres_settings(storage))
    return SqliteStore(
        sqlite_path(storage),
        synchronous=storage.sqlite.synchronous,
        shared_writers=shared_writers,
    )


def describe_storage(storage: StorageConfig) -> str:
    """Where the data lives, for the banner and the logs (never a password)."""
    if storage.backend == "postgres":
        return f"{describe_dsn(storage.postgres.dsn)} schema {storage.postgres.schema} (PostgreSQL)"
    return f"{sqlite_path(storage).parent} (SQLite)"


def migrate(storage: StorageConfig) -> str:
    """Bring the configured store's schema up to date; say what was done."""
    where = describe_storage(storage)
    if storage.backend == "postgres":
        applied = migrate_schema(postgres_settings(storage))
        if not applied:
            return f"{where}: already at schema version {pg_schema.LATEST}, nothing to do"
        return f"{where}: applied migration(s) {', '.join(map(str, applied))}"
    open_store(storage).close()  # SQLite migrates on open
    return f"{where}: at schema version {SCHEMA_VERSION}"
