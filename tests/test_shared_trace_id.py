"""Two projects sending spans with the same trace id (a W3C `traceparent` crossing
tenants does this) get two independent traces: each is bound to its own project's
session, counted once in its own project, and no read of one project returns a span,
an input or an output of the other, on every API shape and on both backends (and
through the map workers' batch tables on SQLite)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from session_bridge.store import pg_schema
from session_bridge.store import sqlite as sqlite_store
from session_bridge.store.postgres import PostgresSettings, migrate_schema
from tests import pg
from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import T0, new_span_id, new_trace_id, proto_request, proto_span
from tests.test_api_auth import (
    ACME_BASIC,
    ACME_BEARER,
    GLOBEX_BASIC,
    GLOBEX_BEARER,
    KEYS,
    SEARCH,
    call,
)

PROTO = {"Content-Type": "application/x-protobuf"}
TRACE = bytes.fromhex(new_trace_id())
A_ROOT, A_CHILD = bytes.fromhex(new_span_id()), bytes.fromhex(new_span_id())
B_FRESH = bytes.fromhex(new_span_id())
A_SESSION, B_SESSION = "shared-a", "shared-b"


def _span(
    span_id: bytes, session_id: str, marker: str, parent: bytes = b"", start: int = T0
) -> Any:
    return proto_span(
        TRACE,
        span_id,
        f"{marker}-turn",
        {
            "session.id": session_id,
            "openinference.span.kind": "LLM",
            "llm.model_name": f"{marker.lower()}-model",
            "input.value": f"{marker}-PROMPT",
            "output.value": f"{marker}-ANSWER",
        },
        parent=parent,
        start=start,
    )


def _post(bridge: RunningBridge, headers: dict[str, str], spans: list[Any]) -> None:
    body = proto_request(spans).SerializeToString()
    response = bridge.client.post("/v1/traces", content=body, headers={**PROTO, **headers})
    assert response.status_code == 200, response.text


@dataclass
class Views:
    """What project acme reads of its session, through every API shape."""

    v1: dict[str, Any]
    public: dict[str, Any]
    traces: dict[str, Any]
    search: dict[str, Any]


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _acme_views(bridge: RunningBridge) -> Views:
    return Views(
        v1=_ok(call(bridge, "GET", f"/api/v1/sessions/{A_SESSION}", ACME_BEARER)),
        public=_ok(call(bridge, "GET", f"/api/public/sessions/{A_SESSION}", ACME_BASIC)),
        traces=_ok(
            call(bridge, "GET", f"/api/projects/acme/sessions/{A_SESSION}/traces", ACME_BEARER)
        ),
        search=_ok(
            call(bridge, "POST", "/v2/projects/acme/sessions/search", ACME_BEARER, **SEARCH)
        ),
    )


def _span_ids(traces_page: dict[str, Any]) -> set[str]:
    return {event["spanId"] for event in traces_page["events"]}


def _config(data_dir: Path, workers: int = 1, pg_dsn: str | None = None, schema: str = "") -> Any:
    config = make_config(data_dir, auth={"api_keys": KEYS})
    config.receivers.otlp.auth = "required"  # the key names the project
    config.receivers.otlp.workers = workers
    if pg_dsn is not None:
        config.storage.backend = "postgres"
        config.storage.postgres.dsn = pg_dsn
        config.storage.postgres.schema = schema
    return config


def _send_acme(bridge: RunningBridge) -> None:
    _post(
        bridge,
        ACME_BEARER,
        [_span(A_ROOT, A_SESSION, "ACME"), _span(A_CHILD, A_SESSION, "ACME", A_ROOT, T0 + 1)],
    )


def _send_globex(bridge: RunningBridge) -> None:
    """One span with acme's trace id, then one with acme's trace id and span id."""
    _post(bridge, GLOBEX_BEARER, [_span(B_FRESH, B_SESSION, "GLOBEX", start=T0 + 2)])
    _post(bridge, GLOBEX_BEARER, [_span(A_ROOT, B_SESSION, "GLOBEX", B_FRESH, T0 + 3)])


def assert_acme_untouched(bridge: RunningBridge, before: Views) -> None:
    after = _acme_views(bridge)
    assert _span_ids(after.traces) == {A_ROOT.hex(), A_CHILD.hex()}
    assert "GLOBEX" not in str(after)
    assert after.v1["trace_count"] == 1 and after.v1["span_count"] == 2
    assert after == before
    assert "ACME-PROMPT" in str(after.public) and "ACME-ANSWER" in str(after.search)


def assert_globex_sees_only_its_own(bridge: RunningBridge) -> None:
    traces = _ok(
        call(bridge, "GET", f"/api/projects/globex/sessions/{B_SESSION}/traces", GLOBEX_BEARER)
    )
    assert _span_ids(traces) == {B_FRESH.hex(), A_ROOT.hex()}
    listing = _ok(call(bridge, "GET", "/api/v1/sessions", GLOBEX_BEARER))
    assert [(s["session.id"], s["trace_count"], s["span_count"]) for s in listing["items"]] == [
        (B_SESSION, 1, 2)
    ]
    answers = [
        traces,
        listing,
        _ok(call(bridge, "GET", f"/api/v1/sessions/{B_SESSION}", GLOBEX_BEARER)),
        _ok(call(bridge, "GET", "/api/public/sessions", GLOBEX_BASIC)),
        _ok(call(bridge, "GET", f"/api/public/sessions/{B_SESSION}", GLOBEX_BASIC)),
        _ok(call(bridge, "POST", "/v2/projects/globex/sessions/search", GLOBEX_BEARER, **SEARCH)),
        _ok(call(bridge, "GET", "/api/projects/globex/sessions/generations", GLOBEX_BEARER)),
        _ok(
            call(bridge, "GET", f"/api/projects/globex/sessions/{B_SESSION}/metrics", GLOBEX_BEARER)
        ),
    ]
    exported = call(
        bridge, "GET", "/api/projects/globex/sessions/export?format=jsonl", GLOBEX_BEARER
    )
    assert exported.status_code == 200
    for answer in [*map(str, answers), exported.text]:  # (acme's names, model, prompts)
        assert "acme" not in answer.lower() and A_SESSION not in answer
    assert "GLOBEX-turn" in str(traces) and "GLOBEX-PROMPT" in str(answers[4])
    assert "GLOBEX-turn" in exported.text
    for path, headers in (
        (f"/api/projects/globex/sessions/{A_SESSION}/traces", GLOBEX_BEARER),
        (f"/api/v1/sessions/{A_SESSION}", GLOBEX_BEARER),
        (f"/api/public/sessions/{A_SESSION}", GLOBEX_BASIC),
    ):
        assert call(bridge, "GET", path, headers).status_code == 404


@dataclass
class Shared:
    bridge: RunningBridge
    before: Views  # acme's views before globex sent anything


@pytest.fixture(
    scope="module",
    params=[("sqlite", 1), ("sqlite", 2), ("postgres", 1)],
    ids=["sqlite", "sqlite-workers", "postgres"],
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    backend, workers = request.param
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
    schema = pg.new_schema_name()
    bridge = RunningBridge(_config(tmp_path_factory.mktemp("shared"), workers, dsn, schema))
    try:
        _send_acme(bridge)
        before = _acme_views(bridge)
        _send_globex(bridge)
        yield Shared(bridge, before)
    finally:
        bridge.stop()
        if dsn is not None:
            pg.drop_schema(dsn, schema)


def test_the_first_project_keeps_its_trace_untouched(shared: Shared) -> None:
    assert_acme_untouched(shared.bridge, shared.before)


def test_the_second_project_reads_only_its_own_spans(shared: Shared) -> None:
    assert_globex_sees_only_its_own(shared.bridge)


# -- a database written by the previous schema -------------------------------------------


def _sqlite_layout(path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows: list[tuple[Any, ...]] = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 2"
        ).fetchall()
        return [*rows, *conn.execute("PRAGMA user_version").fetchall()]


def test_a_sqlite_database_of_schema_4_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    """The data written by a bridge, copied into a database laid out as schema 4 was, is
    read back unchanged after the upgrade; the upgraded layout is a new database's."""
    written = RunningBridge(_config(tmp_path / "written"))
    try:
        _send_acme(written)
        before = _acme_views(written)
    finally:
        written.stop()
    old = tmp_path / "old" / "bridge.db"
    old.parent.mkdir()
    with contextlib.closing(sqlite3.connect(old, isolation_level=None)) as conn:
        conn.executescript(sqlite_store._SCHEMA_V4)
        conn.execute("ATTACH ? AS written", (str(tmp_path / "written" / "bridge.db"),))
        for table in ("resources", "spans", "traces", "sessions"):
            names = ", ".join(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
            conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM written.{table}")
        conn.execute("PRAGMA user_version = 4")
        traces = conn.execute("SELECT trace_no, project_id, session_id FROM traces").fetchall()
    migrated = RunningBridge(_config(tmp_path / "old"))
    try:
        assert_acme_untouched(migrated, before)
        _send_globex(migrated)
        assert_acme_untouched(migrated, before)
        assert_globex_sees_only_its_own(migrated)
    finally:
        migrated.stop()
    with contextlib.closing(sqlite3.connect(old)) as conn:
        assert (
            conn.execute(
                "SELECT trace_no, project_id, session_id FROM traces WHERE project_id = 'acme'"
            ).fetchall()
            == traces
        )
    assert _sqlite_layout(old) == _sqlite_layout(tmp_path / "written" / "bridge.db")


def _pg_keys(dsn: str, schema: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {
            str(name): str(definition)
            for name, definition in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (schema,)
            )
        }


def test_a_postgres_schema_of_migration_1_is_migrated_and_keeps_its_data(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data written by a bridge, copied into a schema that only migration 1 made (as
    the previous release left it), is read back unchanged after the later migrations."""
    written, old = pg.new_schema_name(), pg.new_schema_name()
    try:
        bridge = RunningBridge(_config(tmp_path / "w", pg_dsn=pg_dsn, schema=written))
        try:
            _send_acme(bridge)
            before = _acme_views(bridge)
        finally:
            bridge.stop()
        with monkeypatch.context() as previous_release:
            previous_release.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:1])
            previous_release.setattr(pg_schema, "LATEST", 1)
            assert migrate_schema(PostgresSettings(pg_dsn, old)) == [1]
        pg.copy_into_older_schema(pg_dsn, written, old)
        migrated = RunningBridge(_config(tmp_path / "o", pg_dsn=pg_dsn, schema=old))
        try:
            assert_acme_untouched(migrated, before)
            _send_globex(migrated)
            assert_acme_untouched(migrated, before)
            assert_globex_sees_only_its_own(migrated)
        finally:
            migrated.stop()
        keys = _pg_keys(pg_dsn, old)
        assert "(project_id, trace_id, span_id)" in keys["spans_pkey"]
        assert "(project_id, trace_id)" in keys["traces_pkey"]
        assert keys == {
            name: definition.replace(f"{written}.", f"{old}.")
            for name, definition in _pg_keys(pg_dsn, written).items()
        }
    finally:
        pg.drop_schema(pg_dsn, written)
        pg.drop_schema(pg_dsn, old)
