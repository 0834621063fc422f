"""Shared fixtures: a real bridge on 127.0.0.1 ephemeral ports, and OTel SDK senders."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import psycopg.sql
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from session_bridge.config import BridgeConfig, ConfigError, parse
from session_bridge.server import Bridge, Endpoints
from session_bridge.store.base import Store
from session_bridge.store.config import StorageConfig
from session_bridge.store.factory import open_store
from tests import pg

if TYPE_CHECKING:
    from tests.ingestion_server import IngestionServer

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"


# Test tiers (the markers are registered in pyproject.toml; see CONTRIBUTING.md). Files are
# end-to-end unless listed here; a test that needs PostgreSQL (the `pg_dsn` fixture, or a
# backend parameter set to "postgres") is in the postgres tier instead of its file's.
UNIT_FILES = frozenset(
    {
        "test_client_address.py",
        "test_config_components.py",
        "test_deploy.py",
        "test_enrich_geoip.py",
        "test_enrich_pricing.py",
        "test_enrich_privacy.py",
        "test_enrich_useragent.py",
        "test_export_events.py",
        "test_export_runner.py",
        "test_group_commit.py",
        "test_ingestion_events.py",
        "test_mapping.py",
        "test_one_source.py",
        "test_otlp_values.py",
        "test_packaging.py",
        "test_rollup.py",
        "test_span_columns.py",
        "test_sqlite_span_table.py",
        "test_storage_config.py",
        "test_timefmt.py",
    }
)
BROWSER_FILES = frozenset({"test_ui.py"})


def _uses_postgres(item: pytest.Item) -> bool:
    if "pg_dsn" in getattr(item, "fixturenames", ()):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.params.values()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = item.path.name
        if _uses_postgres(item):
            tier = "postgres"
        elif name in UNIT_FILES:
            tier = "unit"
        elif name in BROWSER_FILES:
            tier = "browser"
        else:
            tier = "e2e"
        item.add_marker(tier)


class RunningBridge:
    """A bridge serving on its own event loop thread, like `session-bridge run` does."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.bridge = Bridge(config)
        self.endpoints: Endpoints = self._call(self.bridge.start())
        assert self.endpoints.grpc is not None
        self.grpc_endpoint: str = self.endpoints.grpc
        self.http_url = self.endpoints.http
        self.client = httpx.Client(base_url=self.http_url, timeout=10)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def stop(self) -> None:
        self.client.close()
        self._call(self.bridge.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- the query API, as a client sees it ---------------------------------------------

    def get_session(self, session_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def list_sessions(self, **params: Any) -> dict[str, Any]:
        response = self.client.get("/api/v1/sessions", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def all_sessions(self) -> dict[str, dict[str, Any]]:
        return {s["session.id"]: s for s in self.list_sessions(page_size=1000)["items"]}


class WriteBlocker:
    """Another writer holding the store, as another process would: the bridge's writes
    wait until `release`."""

    def __init__(self, storage: StorageConfig, data_dir: Path) -> None:
        self._conn: sqlite3.Connection | psycopg.Connection[tuple[Any, ...]]
        if storage.backend == "postgres":
            self._conn = psycopg.connect(storage.postgres.dsn)
            schema = psycopg.sql.Identifier(storage.postgres.schema)
            self._conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(schema))
            self._conn.execute("LOCK TABLE spans IN EXCLUSIVE MODE")
        else:
            self._conn = sqlite3.connect(data_dir / "bridge.db", isolation_level=None)
            self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self._conn.rollback()
        self._conn.close()


def config_problems(text: str) -> list[str]:
    """The problems `parse` names in a configuration document that must be invalid."""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value.problems


def make_config(data_dir: Path, **sections: dict[str, Any]) -> BridgeConfig:
    config = BridgeConfig()
    config.storage.data_dir = str(data_dir)
    # one process unless a test asks for map workers (the default, one per core, would
    # start processes for every bridge of the suite)
    config.receivers.otlp.workers = 1
    config.receivers.otlp.protocols.grpc.endpoint = "127.0.0.1:0"
    config.receivers.otlp.protocols.http.endpoint = "127.0.0.1:0"
    for section, values in sections.items():
        target = getattr(config, section)
        for key, value in values.items():
            setattr(target, key, value)
    return config


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """This test session's PostgreSQL database (required: an error, not a skip, without it)."""
    dsn = pg.create_test_database()
    yield dsn
    pg.drop_database(dsn)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A schema of this test's own in `pg_dsn`, dropped afterwards."""
    schema = pg.new_schema_name()
    yield schema
    pg.drop_schema(pg_dsn, schema)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageConfig:
    """Where a test's bridges and stores keep their data: every store test and every
    end-to-end test runs once on each backend."""
    config = StorageConfig(data_dir=str(tmp_path / "data"))
    if request.param == "postgres":
        config.backend = "postgres"
        config.postgres.dsn = request.getfixturevalue("pg_dsn")
        config.postgres.schema = request.getfixturevalue("pg_schema")
    return config


@pytest.fixture
def store_factory(storage: StorageConfig) -> Iterator[Callable[[], Store]]:
    """Opens stores on the test's backend (all on the same data), closed afterwards."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_store(storage))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def bridge_factory(
    tmp_path: Path, storage: StorageConfig
) -> Iterator[Callable[..., RunningBridge]]:
    running: list[RunningBridge] = []

    def start(data_dir: Path | None = None, config: BridgeConfig | None = None) -> RunningBridge:
        cfg = config or make_config(data_dir or tmp_path / "data")
        if storage.backend == "postgres":  # the test's own schema, whatever its data_dir
            cfg.storage.backend = storage.backend
            cfg.storage.postgres = storage.postgres
        bridge = RunningBridge(cfg)
        running.append(bridge)
        return bridge

    yield start
    for bridge in running:
        if bridge._thread.is_alive():
            bridge.stop()


@pytest.fixture
def bridge(bridge_factory: Callable[..., RunningBridge]) -> RunningBridge:
    return bridge_factory()


def sdk_provider(bridge: RunningBridge, transport: str, resource: dict[str, Any]) -> TracerProvider:
    """A TracerProvider exporting to the bridge with the official OTLP exporter."""
    exporter: GrpcSpanExporter | HttpSpanExporter
    if transport == "grpc":
        exporter = GrpcSpanExporter(endpoint=bridge.grpc_endpoint, insecure=True)
    else:
        exporter = HttpSpanExporter(endpoint=f"{bridge.http_url}/v1/traces")
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@pytest.fixture
def start_bridge() -> Iterator[Callable[[BridgeConfig], RunningBridge]]:
    """Starts bridges on exactly the configuration given (no storage parametrisation),
    stopped after the test."""
    running: list[RunningBridge] = []

    def start(config: BridgeConfig) -> RunningBridge:
        running.append(RunningBridge(config))
        return running[-1]

    yield start
    for bridge in running:
        if bridge._thread.is_alive():
            bridge.stop()


@pytest.fixture
def server() -> Iterator[IngestionServer]:
    """A real ingestion endpoint on loopback; every event the bridge sent must be valid."""
    from tests.ingestion_server import IngestionServer  # it reads this module's TEST_DATA

    endpoint = IngestionServer()
    yield endpoint
    endpoint.stop()
    assert not endpoint.invalid, endpoint.invalid[:5]
