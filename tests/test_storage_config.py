"""`storage:` options: backends, PostgreSQL, retention; the deployment examples."""

from __future__ import annotations

import pytest

from session_bridge.config import ConfigError, load, parse
from session_bridge.store.factory import describe_storage
from tests.conftest import REPO, config_problems


def test_every_storage_problem_names_its_key() -> None:
    problems = config_problems(
        """
storage:
  backend: mysql
  postgres:
    dsn: "host=db port"
    schema: Bridge-Data
    pool_size: 1
    connect_timeout: soon
  retention:
    sessions: 1d
    batch_size: 0
"""
    )
    for expected in (
        "storage.backend: must be one of sqlite, postgres, got 'mysql'",
        "storage.postgres.dsn: not a libpq connection string or URI",
        "storage.postgres.schema: must be a lower-case SQL identifier",
        "storage.postgres.pool_size: must be between 2 and 100",
        "storage.postgres.connect_timeout: expected a duration",
        "storage.retention.sessions: set storage.retention.spans too",
        "storage.retention.batch_size: must be between 1 and 100000",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_backend_and_dsn_go_together() -> None:
    assert config_problems("storage:\n  backend: postgres\n") == [
        "storage.postgres.dsn: required when storage.backend is postgres"
    ]
    assert config_problems("storage:\n  postgres:\n    dsn: postgresql://db/bridge\n") == [
        "storage.postgres.dsn: set, but storage.backend is sqlite"
        " (set storage.backend: postgres to use PostgreSQL)"
    ]


def test_sessions_outlive_their_spans() -> None:
    assert config_problems("storage:\n  retention:\n    spans: 7d\n    sessions: 1d\n") == [
        "storage.retention.sessions: must be at least storage.retention.spans (604800s), got 86400s"
    ]
    retention = parse("storage:\n  retention:\n    spans: 7d\n    sessions: 30d\n").storage
    assert (retention.retention.spans, retention.retention.sessions) == (7 * 86400.0, 30 * 86400.0)


def test_deployment_examples_are_valid() -> None:
    env = {"BRIDGE_POSTGRES_DSN": "postgresql://bridge:secret@db.internal:6432/bridge"}
    gateway = load(REPO / "config" / "gateway.yaml", environ=env)
    assert gateway.storage.backend == "postgres"
    assert gateway.receivers.otlp.protocols.http.endpoint == "0.0.0.0:4318"
    description = describe_storage(gateway.storage)
    assert description == "db.internal:6432/bridge schema public (PostgreSQL)"
    with pytest.raises(
        ConfigError, match=r"storage\.postgres\.dsn: .*BRIDGE_POSTGRES_DSN is not set"
    ):
        load(REPO / "config" / "gateway.yaml", environ={})
    sidecar = load(REPO / "config" / "sidecar.yaml", environ={})
    assert sidecar.storage.backend == "sqlite"
    assert sidecar.storage.data_dir == "/var/lib/session-bridge"
