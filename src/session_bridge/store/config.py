"""`storage:` — which store backend holds the data, each backend's own block, retention.

A backend's block is named by its type (`storage.sqlite`, `storage.postgres`);
`storage.backend` picks one of them. The backends themselves are registered in
`store.factory.BACKENDS` under the same names (a test keeps the two in step).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from session_bridge.configkit import NOT_BOOL, Duration, DurationValue, Section, between, one_of

SYNCHRONOUS = ("full", "normal", "extra")  # SQLite's PRAGMA synchronous levels offered


class SqliteConfig(Section):
    TYPE: ClassVar[str] = "sqlite"

    synchronous: Annotated[str, one_of(*SYNCHRONOUS)] = "full"


_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _dsn(value: str) -> str:
    if value.strip():
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict  # only when PostgreSQL is configured

        try:
            conninfo_to_dict(value)
        except ProgrammingError as exc:
            raise ValueError(f"not a libpq connection string or URI: {exc}") from exc
    return value


def _schema(value: str) -> str:
    if not _SQL_IDENTIFIER.match(value):
        raise ValueError(f"must be a lower-case SQL identifier (a-z, 0-9, _), got {value!r}")
    return value


with warnings.catch_warnings():  # `schema` is the option's name; BaseModel.schema is legacy
    warnings.filterwarnings("ignore", 'Field name "schema"')

    class PostgresConfig(Section):
        TYPE: ClassVar[str] = "postgres"

        dsn: Annotated[str, AfterValidator(_dsn)] = ""
        schema: Annotated[str, AfterValidator(_schema)] = "public"  # type: ignore[assignment]
        pool_size: Annotated[int, NOT_BOOL, between(2, 100)] = 4
        connect_timeout: Annotated[DurationValue, between(0.1, 600)] = Duration(10.0)


_Age = Annotated[DurationValue, between(0, 100 * 365 * 86400)]


class RetentionConfig(Section):
    spans: _Age = Duration(0.0)
    sessions: _Age = Duration(0.0)
    interval: Annotated[DurationValue, between(1, 86400)] = Duration(60.0)
    batch_size: Annotated[int, NOT_BOOL, between(1, 100_000)] = 1000

    def check(self, path: str) -> list[str]:
        if self.sessions and not self.spans:
            return [
                f"{path}.sessions: set {path}.spans too (a session's spans and traces must"
                " not outlive it)"
            ]
        if self.sessions and self.sessions < self.spans:
            return [
                f"{path}.sessions: must be at least {path}.spans ({self.spans:g}s),"
                f" got {self.sessions:g}s"
            ]
        return []


BACKEND_TYPES = (SqliteConfig.TYPE, PostgresConfig.TYPE)


class StorageConfig(Section):
    backend: Annotated[str, one_of(*BACKEND_TYPES)] = SqliteConfig.TYPE
    data_dir: str = "./session-bridge-data"
    sqlite: SqliteConfig = Field(default_factory=SqliteConfig)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @property
    def data_path(self) -> Path:
        """The data directory, absolute: the SQLite database, the lock, the metrics of
        the worker processes and the file exporter's default output live there."""
        return Path(self.data_dir).expanduser().resolve()

    def check(self, path: str) -> list[str]:
        dsn = self.postgres.dsn.strip()
        if self.backend == PostgresConfig.TYPE and not dsn:
            return [f"{path}.postgres.dsn: required when {path}.backend is postgres"]
        if self.backend == SqliteConfig.TYPE and dsn:
            return [
                f"{path}.postgres.dsn: set, but {path}.backend is sqlite"
                f" (set {path}.backend: postgres to use PostgreSQL)"
            ]
        return []
