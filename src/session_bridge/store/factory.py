"""The store the configuration asks for (`storage.backend`), opened and migrated: one
registered backend per type name (`BACKENDS`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from session_bridge.store.base import Store
from session_bridge.store.config import StorageConfig
from session_bridge.store.export_log import ExportLog
from session_bridge.store.sqlite import SCHEMA_VERSION, SqliteStore

if TYPE_CHECKING:
    from session_bridge.store.postgres import PostgresSettings

# The PostgreSQL modules are imported where they are used: a SQLite bridge never loads
# the driver (tens of MB in every process).


class Backend(Protocol):
    # one bridge per data dir (its lock file): the database lives there
    exclusive_data_dir: bool

    def open(self, storage: StorageConfig) -> Store:
        """Open (and migrate) the store; `ConnectionError` if its server is unreachable."""

    def describe(self, storage: StorageConfig) -> str:
        """Where the data lives, for the banner and the logs (never a password)."""

    def migrate(self, storage: StorageConfig) -> str:
        """Bring the schema up to date; say what was done."""

    def has_data(self, storage: StorageConfig) -> bool:
        """Whether a bridge has created the store yet (False: nothing to inspect)."""

    def export_log(self, storage: StorageConfig) -> ExportLog:
        """The exporters' log, cursors and dead letters, kept in this store."""


def sqlite_path(storage: StorageConfig) -> Path:
    return storage.data_path / "bridge.db"


def postgres_settings(storage: StorageConfig) -> PostgresSettings:
    from session_bridge.store.postgres import PostgresSettings

    pg = storage.postgres
    return PostgresSettings(pg.dsn, pg.schema, pg.pool_size, float(pg.connect_timeout))


class _Sqlite:
    exclusive_data_dir = True

    def open(self, storage: StorageConfig) -> Store:
        path = sqlite_path(storage)
        try:
            return SqliteStore(path, synchronous=storage.sqlite.synchronous)
        except sqlite3.Error as exc:  # e.g. "unable to open database file": name the file
            raise OSError(f"cannot open the SQLite database {path}: {exc}") from exc

    def describe(self, storage: StorageConfig) -> str:
        return f"{storage.data_path} (SQLite)"

    def migrate(self, storage: StorageConfig) -> str:
        self.open(storage).close()  # SQLite migrates on open
        return f"{self.describe(storage)}: at schema version {SCHEMA_VERSION}"

    def has_data(self, storage: StorageConfig) -> bool:
        return sqlite_path(storage).exists()

    def export_log(self, storage: StorageConfig) -> ExportLog:
        from session_bridge.store.sqlite_export_log import SqliteExportLog

        return SqliteExportLog(sqlite_path(storage), synchronous=storage.sqlite.synchronous)


class _Postgres:
    exclusive_data_dir = False

    def open(self, storage: StorageConfig) -> Store:
        from session_bridge.store.postgres import PostgresStore

        return PostgresStore(postgres_settings(storage))

    def describe(self, storage: StorageConfig) -> str:
        from session_bridge.store.postgres import describe_dsn

        pg = storage.postgres
        return f"{describe_dsn(pg.dsn)} schema {pg.schema} (PostgreSQL)"

    def migrate(self, storage: StorageConfig) -> str:
        from session_bridge.store import pg_schema
        from session_bridge.store.postgres import migrate_schema

        where = self.describe(storage)
        applied = migrate_schema(postgres_settings(storage))
        if not applied:
            return f"{where}: already at schema version {pg_schema.LATEST}, nothing to do"
        return f"{where}: applied migration(s) {', '.join(map(str, applied))}"

    def has_data(self, storage: StorageConfig) -> bool:
        return True  # the server is asked when the store is opened

    def export_log(self, storage: StorageConfig) -> ExportLog:
        from session_bridge.store.pg_export_log import PostgresExportLog

        return PostgresExportLog(postgres_settings(storage))


BACKENDS: dict[str, Backend] = {"sqlite": _Sqlite(), "postgres": _Postgres()}


def backend(storage: StorageConfig) -> Backend:
    return BACKENDS[storage.backend]


def open_store(storage: StorageConfig) -> Store:
    """Open (and migrate) the configured store; `ConnectionError` if PostgreSQL is
    unreachable."""
    return backend(storage).open(storage)


def describe_storage(storage: StorageConfig) -> str:
    """Where the data lives, for the banner and the logs (never a password)."""
    return backend(storage).describe(storage)


def open_export_log(storage: StorageConfig) -> ExportLog:
    """The configured store's export log."""
    return backend(storage).export_log(storage)


def migrate(storage: StorageConfig) -> str:
    """Bring the configured store's schema up to date; say what was done."""
    return backend(storage).migrate(storage)
