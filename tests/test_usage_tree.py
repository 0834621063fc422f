"""Usage is counted by the span tree, whatever the order the spans arrive in.

Within a trace a span's usage counts iff no descendant of it carries usage, and spans
reporting the same model response count once. Random traces (wrappers repeating their
children's usage, one response reported twice, parents that arrive late or never,
spans sent twice) are written in random orders and cuts, to SQLite and to several
PostgreSQL replicas at once; the sessions and traces must equal a direct computation
of the rule over all the spans.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_bridge.mapping.mapper import map_request
from session_bridge.model import EventType, LlmUsage, SpanRecord
from session_bridge.rollup.binding import fold_by_trace
from session_bridge.rollup.rollup import NANO_USD, USAGE_COLUMNS, Rollup
from session_bridge.rollup.usage import counted_records
from session_bridge.store import pg_schema
from session_bridge.store import sqlite as sqlite_layout
from session_bridge.store.base import NeedsRecords, SessionQuery, Store, WriteBatch, WriteResult
from session_bridge.store.postgres import PostgresSettings, PostgresStore, migrate_schema
from session_bridge.store.sqlite import SCHEMA_VERSION, SqliteStore, batch_tables, trace_rows
from tests import pg
from tests.otlp_builders import T0, proto_request, proto_span

MODELS = ("wrapper-model", "m1", "m2")
_SETS = {"models", "providers"}


@dataclass(frozen=True)
class Draft:
    parent: int | None  # index of an earlier span of the trace; -1: a parent never sent
    usage: tuple[int, int, int, int, int] | None  # tokens: in, out, cache r/w, reasoning
    model: int
    response: str | None
    cost_milli: int | None
    start: int
    session: bool  # names the trace's session


drafts = st.builds(
    Draft,
    parent=st.none() | st.integers(-1, 6),
    usage=st.none() | st.tuples(*[st.integers(0, 50)] * 5),
    model=st.integers(0, 2),
    response=st.none() | st.sampled_from(["r1", "r2"]),
    cost_milli=st.none() | st.integers(0, 9),
    start=st.integers(0, 3),  # ties, to pin the choice among a response's spans
    session=st.booleans(),
)
traces = st.lists(st.lists(drafts, min_size=1, max_size=7), min_size=1, max_size=4)


def _records(drawn: list[list[Draft]]) -> list[SpanRecord]:
    records = []
    for t, trace in enumerate(drawn):
        trace_id = (t + 1).to_bytes(16, "big")
        session = f"s{t % 2}"  # two sessions, each of some traces
        for i, d in enumerate(trace):
            parent: bytes | None = None
            if d.parent == -1:
                parent = b"\xff" * 8  # a parent that never arrives
            elif d.parent is not None and d.parent < i:
                parent = (d.parent + 1).to_bytes(8, "big")
            llm = None
            if d.usage is not None:
                tokens_in, out, cache_read, cache_write, reasoning = d.usage
                llm = LlmUsage(
                    "p", MODELS[d.model], tokens_in, out, cache_read, cache_write, reasoning
                )
            records.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=(i + 1).to_bytes(8, "big"),
                    parent_span_id=parent,
                    name=f"span {i}",
                    kind=1,
                    start_ns=1000 + d.start,
                    end_ns=2000,
                    status_code=0,
                    status_message="",
                    event_type=EventType.LLM_CALL if llm else EventType.SPAN,
                    is_error=False,
                    session_id=session if d.session else None,
                    llm=llm,
                    cost_usd=None if llm is None or d.cost_milli is None else d.cost_milli / 1000,
                    response_id=d.response if llm is not None else None,
                )
            )
    return records


def _direct(records: list[SpanRecord]) -> tuple[dict[str, Rollup], dict[bytes, Rollup]]:
    """The rule, computed naively over all the spans: the usage of each named trace and
    the usage and trace count of each session."""
    by_trace: dict[bytes, list[SpanRecord]] = {}
    for r in records:
        by_trace.setdefault(r.trace_id, []).append(r)
    sessions: dict[str, Rollup] = {}
    trace_usage: dict[bytes, Rollup] = {}
    for trace_id, spans in by_trace.items():
        parent = {s.span_id: s.parent_span_id for s in spans}

        def ancestors(span: SpanRecord, parent: dict[bytes, bytes | None] = parent) -> set[bytes]:
            out, at = set(), span.parent_span_id
            while at is not None and at not in out:
                out.add(at)
                at = parent.get(at)
            return out

        carriers = [s for s in spans if s.llm is not None]
        leaves = [c for c in carriers if not any(c.span_id in ancestors(d) for d in carriers)]
        counted = [c for c in leaves if c.response_id is None]
        for response in {c.response_id for c in leaves if c.response_id is not None}:
            same = [c for c in leaves if c.response_id == response]
            counted.append(min(same, key=lambda c: (-c.start_ns, c.span_id)))
        usage = Rollup()
        for c in counted:
            assert c.llm is not None
            usage.request_count += 1
            usage.input_tokens += c.llm.input_tokens
            usage.output_tokens += c.llm.output_tokens
            usage.cache_read_tokens += c.llm.cache_read_tokens
            usage.cache_creation_tokens += c.llm.cache_creation_tokens
            usage.reasoning_tokens += c.llm.reasoning_tokens
            if c.cost_usd is None:
                usage.unpriced_count += 1
            else:
                usage.cost_nano_usd += round(c.cost_usd * NANO_USD)
            usage.models |= {c.llm.model} if c.llm.model else set()
            usage.providers |= {c.llm.provider} if c.llm.provider else set()
        trace_usage[trace_id] = usage
        named = {s.session_id for s in spans if s.session_id}
        if named:
            (session,) = named
            total = sessions.setdefault(session, Rollup())
            total.trace_count += 1
            total.span_count += len(spans)
            for name in USAGE_COLUMNS:
                value = getattr(usage, name)
                joined = (
                    getattr(total, name) | value if name in _SETS else getattr(total, name) + value
                )
                setattr(total, name, joined)
    # the per-span view (the API's per-call breakdowns) counts the same spans
    counted_ids = counted_records(records)
    for trace_id, usage in trace_usage.items():
        calls = [r for r in by_trace[trace_id] if (trace_id, r.span_id) in counted_ids]
        assert len(calls) == usage.request_count
        assert sum(r.llm.input_tokens for r in calls if r.llm) == usage.input_tokens
    return sessions, trace_usage


def _usage(rollup: Rollup) -> dict[str, object]:
    return {f.name: getattr(rollup, f.name) for f in fields(Rollup) if f.name in USAGE_COLUMNS}


def _deliveries(records: list[SpanRecord], rng: random.Random) -> list[list[SpanRecord]]:
    """The spans shuffled and cut into requests, some of them sent twice."""
    order = records[:]
    order += [r for r in records if rng.random() < 0.2]  # resent
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(order)), min(len(order) - 1, rng.randint(0, 5))))
    return [order[i:j] for i, j in zip([0, *cuts], [*cuts, len(order)], strict=True)]


def _batch(project: str, records: list[SpanRecord], shipped: bool) -> WriteBatch:
    """A request as the writer gets it: with its records, or as a map worker ships it
    (span rows and trace deltas in batch tables)."""
    deltas = fold_by_trace(records)
    batch = WriteBatch(project, records, {}, deltas)
    if not shipped:
        return batch
    tables = batch_tables(batch.rows(), trace_rows(deltas))
    return WriteBatch(project, None, {}, deltas, tables, len(records))


def _write(store: Store, project: str, records: list[SpanRecord], shipped: bool) -> None:
    (result,) = store.write_many([_batch(project, records, shipped)])
    if isinstance(result, NeedsRecords):  # spans stored before: the writer sends them all
        (result,) = store.write_many([_batch(project, records, shipped=False)])
    assert isinstance(result, WriteResult), result


def _check(store: Store, project: str, records: list[SpanRecord]) -> None:
    sessions, trace_usage = _direct(records)
    rows = store.list_sessions(SessionQuery(project, page_size=100))
    assert {row.session_id for row in rows} == set(sessions)
    for row in rows:
        expected = sessions[row.session_id]
        assert _usage(row.rollup) == _usage(expected)
        assert (row.rollup.trace_count, row.rollup.span_count) == (
            expected.trace_count,
            expected.span_count,
        )
        for trace in store.session_traces(project, row.session_id):
            assert _usage(trace.rollup) == _usage(trace_usage[trace.trace_id])


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path_factory.mktemp("usage") / "bridge.db")
    yield store
    store.close()


@settings(max_examples=150, deadline=None)
@given(drawn=traces, seed=st.integers(0, 2**32))
def test_sqlite_usage_is_the_span_tree_rule_in_any_order(
    sqlite_store: SqliteStore, drawn: list[list[Draft]], seed: int
) -> None:
    records = _records(drawn)
    rng = random.Random(seed)
    project = f"p-{uuid.uuid4().hex}"  # each example a project of its own
    for delivery in _deliveries(records, rng):
        _write(sqlite_store, project, delivery, shipped=rng.random() < 0.5)
    _check(sqlite_store, project, records)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=traces, seed=st.integers(0, 2**32))
def test_postgres_replicas_count_usage_by_the_span_tree_in_any_order(
    pg_replicas: list[PostgresStore], drawn: list[list[Draft]], seed: int
) -> None:
    records = _records(drawn)
    rng = random.Random(seed)
    project = f"p-{uuid.uuid4().hex}"
    deliveries = _deliveries(records, rng)
    lock = threading.Lock()

    def send(replica: int) -> None:
        while True:
            with lock:
                if not deliveries:
                    return
                delivery = deliveries.pop()
            _write(pg_replicas[replica], project, delivery, shipped=False)

    with ThreadPoolExecutor(len(pg_replicas)) as pool:  # a failed write fails the test here
        list(pool.map(send, range(len(pg_replicas))))
    _check(pg_replicas[0], project, records)


@pytest.fixture
def pg_replicas(pg_dsn: str, pg_schema: str) -> Iterator[list[PostgresStore]]:
    settings_ = PostgresSettings(pg_dsn, pg_schema, pool_size=2)
    stores = [PostgresStore(settings_) for _ in range(3)]
    yield stores
    for store in stores:
        store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store: Store
    if request.param == "postgres":
        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        store = PostgresStore(PostgresSettings(dsn, schema))
    else:
        store = SqliteStore(tmp_path / "bridge.db")
    yield store
    store.close()


def test_a_wrapper_counts_until_its_children_arrive(any_store: Store) -> None:
    """A wrapper span first counts alone; when the calls inside it arrive, they count
    instead (its model leaves the session), and a later duplicate of a call changes
    nothing."""
    store = any_store
    drawn = [
        [
            Draft(None, (100, 10, 0, 0, 0), 0, None, None, 0, True),  # the agent run
            Draft(0, (60, 4, 0, 0, 0), 1, "r1", 1, 0, False),
            Draft(0, (40, 6, 0, 0, 0), 2, "r2", None, 0, False),
        ]
    ]
    wrapper, first, second = _records(drawn)
    _write(store, "default", [wrapper], shipped=False)
    (row,) = store.list_sessions(SessionQuery("default", page_size=10))
    assert (row.rollup.request_count, row.rollup.input_tokens) == (1, 100)
    assert row.rollup.models == {"wrapper-model"}
    shipped = not store.needs_records
    _write(store, "default", [first, second], shipped=shipped)
    _write(store, "default", [first], shipped=shipped)
    (row,) = store.list_sessions(SessionQuery("default", page_size=10))
    assert (row.rollup.request_count, row.rollup.input_tokens) == (2, 100)
    assert (row.rollup.output_tokens, row.rollup.unpriced_count) == (10, 1)
    assert row.rollup.models == {"m1", "m2"}
    (trace,) = store.session_traces("default", row.session_id)
    assert _usage(trace.rollup) == _usage(row.rollup)


# -- stores of the previous layout -------------------------------------------------------

_WRAPPER_THEN_CALL = [
    [
        Draft(None, (100, 10, 0, 0, 0), 0, None, None, 0, True),  # an agent run, with usage
        Draft(0, (70, 7, 5, 0, 0), 1, "r1", 2, 0, False),  # the call inside it, later
    ]
]


def _copy_tables(conn: sqlite3.Connection, source: Path) -> None:
    conn.execute("ATTACH ? AS written", (str(source),))
    for table in ("resources", "spans", "traces", "sessions"):
        names = ", ".join(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
        conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM written.{table}")
    conn.execute("DETACH written")


def _after_the_call_arrives(store: Store) -> None:
    wrapper, call = _records(_WRAPPER_THEN_CALL)
    before = store.get_session("default", "s0")
    assert before is not None and (before.rollup.request_count, before.rollup.input_tokens) == (
        1,
        100,
    )
    _write(store, "default", [call], shipped=False)
    after = store.get_session("default", "s0")
    assert after is not None
    assert _usage(after.rollup) == _usage(_direct([wrapper, call])[0]["s0"])
    assert after.rollup.input_tokens == 70 and after.rollup.models == {"m1"}


def test_a_sqlite_database_of_schema_5_is_migrated_and_recounted_when_written(
    tmp_path: Path,
) -> None:
    """Spans stored by the previous layout (no response ids) are read by the rule when
    their trace is written to again."""
    written = tmp_path / "written.db"
    store = SqliteStore(written)
    wrapper, _ = _records(_WRAPPER_THEN_CALL)
    _write(store, "default", [wrapper], shipped=False)
    store.close()
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old, isolation_level=None)) as conn:
        conn.executescript(sqlite_layout._SCHEMA_V4)
        conn.executescript(sqlite_layout._UPGRADES[4])
        _copy_tables(conn, written)
        conn.execute("PRAGMA user_version = 5")
    migrated = SqliteStore(old)
    try:
        with contextlib.closing(sqlite3.connect(old)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("SELECT response_id FROM spans").fetchall() == [(None,)]
        _after_the_call_arrives(migrated)
    finally:
        migrated.close()


def test_a_postgres_schema_of_migration_3_is_migrated_and_recounted_when_written(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written, old = pg.new_schema_name(), pg.new_schema_name()
    try:
        store = PostgresStore(PostgresSettings(pg_dsn, written))
        wrapper, _ = _records(_WRAPPER_THEN_CALL)
        _write(store, "default", [wrapper], shipped=False)
        store.close()
        with monkeypatch.context() as previous_release:
            previous_release.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:3])
            previous_release.setattr(pg_schema, "LATEST", 3)
            assert migrate_schema(PostgresSettings(pg_dsn, old)) == [1, 2, 3]
        pg.copy_into_older_schema(pg_dsn, written, old)
        migrated = PostgresStore(PostgresSettings(pg_dsn, old))
        try:
            assert migrated.applied_migrations == [m.version for m in pg_schema.MIGRATIONS[3:]]
            _after_the_call_arrives(migrated)
        finally:
            migrated.close()
    finally:
        pg.drop_schema(pg_dsn, written)
        pg.drop_schema(pg_dsn, old)


def test_usage_is_read_from_any_span_and_counted_once_per_call(tmp_path: Path) -> None:
    """A span with tokens but no operation counts; a wrapper with a model and its
    children's total (no agent keyword) does not count on top of them; a call traced by
    the client and by an instrumentation (one response id) counts once."""
    trace, wrapper, inner, twin, lone = (
        os.urandom(16), os.urandom(8), os.urandom(8), os.urandom(8), os.urandom(8)
    )  # fmt: skip
    usage = {"gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 3}
    spans = [
        proto_span(trace, lone, "work", {"session.id": "s", "gen_ai.usage.input_tokens": 7}),
        proto_span(
            trace,
            wrapper,
            "step",
            {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 60},
        ),
        proto_span(
            trace,
            inner,
            "chat",
            {"gen_ai.operation.name": "chat", "gen_ai.response.id": "r", **usage},
            parent=wrapper,
        ),
        proto_span(
            trace,
            twin,
            "anthropic.chat",
            {"gen_ai.operation.name": "chat", "gen_ai.response.id": "r", **usage},
            parent=wrapper,
            start=T0 - 1,  # the outer of the two: the inner one (started last) is kept
        ),
    ]
    store = SqliteStore(tmp_path / "bridge.db")
    try:
        for span in spans:  # one request each, in an order that needs recounting
            mapped = map_request(proto_request([span]))
            _write(store, "default", mapped.records, shipped=False)
        session = store.get_session("default", "s")
        assert session is not None
        assert (session.rollup.request_count, session.rollup.input_tokens) == (2, 7 + 30)
    finally:
        store.close()
