"""The SQLite store's batch tables: a map worker ships a batch's span rows and trace deltas
as a serialized SQLite database (`batch_tables`), which the writer copies into `spans` and
(the traces new to the store) into `traces`, one statement each."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from session_bridge.ingest.workers import _batch_of, _shipped
from session_bridge.mapping.mapper import map_request
from session_bridge.rollup.binding import fold_by_trace
from session_bridge.store.base import NeedsRecords, SessionQuery, WriteBatch, WriteResult
from session_bridge.store.sqlite import SqliteStore, batch_tables, trace_rows
from tests.otlp_builders import proto_request, proto_span

LLM = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
       "gen_ai.usage.input_tokens": 7}  # fmt: skip


def _spans(trace: bytes, session: str, count: int) -> list[Span]:
    root = proto_span(trace, os.urandom(8), "root", {"session.id": session})
    return [root, *(proto_span(trace, os.urandom(8), "chat", LLM) for _ in range(count - 1))]


def _as_from_worker(batch: WriteBatch) -> WriteBatch:
    """`batch` as a map worker sends it: per-trace deltas and a span table, no records."""
    assert batch.records is not None
    batch.trace_deltas = fold_by_trace(batch.records)
    received = _batch_of(pickle.loads(pickle.dumps(_shipped(batch, with_records=False))))
    assert received.trace_deltas == batch.trace_deltas
    return received


def _batch(spans: list[Span]) -> WriteBatch:
    mapped = map_request(proto_request(spans))
    return WriteBatch("default", mapped.records, mapped.resources)


def _session(store: SqliteStore, session_id: str) -> tuple[int, int, int, int]:
    row = store.get_session("default", session_id)
    assert row is not None
    r = row.rollup
    return r.trace_count, r.span_count, r.request_count, r.input_tokens


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "s.db")
    yield store
    store.close()


def test_a_span_table_stores_each_span_once(store: SqliteStore) -> None:
    spans = _spans(os.urandom(16), "t-1", 4)
    batch = _as_from_worker(_batch([*spans, spans[2]]))  # the request repeats a span
    assert batch.span_count == 5
    assert store.write(batch) == WriteResult(stored=4, duplicates=1)
    assert _session(store, "t-1") == (1, 4, 3, 21)
    ids = {r.span_id for t in store.session_traces("default", "t-1")
           for r in store.trace_spans("default", [t.trace_id])}  # fmt: skip
    assert len(ids) == 4


def test_a_batch_with_new_traces_and_a_trace_stored_before(store: SqliteStore) -> None:
    named_late = os.urandom(16)
    store.write(_as_from_worker(_batch(_spans(named_late, "unused", 3)[1:])))  # no root yet
    root = proto_span(named_late, os.urandom(8), "root", {"session.id": "s-late"})
    store.write(_as_from_worker(_batch([root, *_spans(os.urandom(16), "s-late", 2)])))
    assert _session(store, "s-late") == (2, 5, 3, 21)
    traces = {t.trace_id: t.rollup.span_count for t in store.session_traces("default", "s-late")}
    assert traces[named_late] == 3 and sorted(traces.values()) == [2, 3]


def test_spans_keep_the_order_they_came_in(store: SqliteStore) -> None:
    trace = os.urandom(16)
    spans = _spans(trace, "t-order", 6)
    store.write(_as_from_worker(_batch(spans)))
    conn = store._reader()
    stored = [row[0] for row in conn.execute("SELECT span_id FROM spans ORDER BY rowid")]
    assert stored == [s.span_id for s in spans]


def test_a_partly_stored_span_table_asks_for_the_records(store: SqliteStore) -> None:
    trace = os.urandom(16)
    spans = _spans(trace, "t-2", 3)
    store.write(_as_from_worker(_batch(spans[:2])))
    later = _batch([spans[1], spans[2]])  # a retry: spans[1] is stored already
    with pytest.raises(NeedsRecords, match="1 of 2 spans were stored before"):
        store.write(_as_from_worker(later))
    assert _session(store, "t-2") == (1, 2, 1, 7)  # the refused batch left nothing behind
    assert store.write(later) == WriteResult(stored=1, duplicates=1)
    assert _session(store, "t-2") == (1, 3, 2, 14)


def test_a_span_table_that_cannot_be_stored_fails_alone(store: SqliteStore) -> None:
    good = _as_from_worker(_batch(_spans(os.urandom(16), "good", 2)))
    bad_batch = _batch(_spans(os.urandom(16), "bad", 3))
    rows = bad_batch.rows()
    rows[1] = (*rows[1][:4], None, *rows[1][5:])  # no name: spans.name is NOT NULL
    bad = _as_from_worker(bad_batch)
    assert bad.trace_deltas is not None
    bad.batch_tables = batch_tables(rows, trace_rows(bad.trace_deltas))
    results = store.write_many(
        [good, bad, _as_from_worker(_batch(_spans(os.urandom(16), "two", 2)))]
    )
    assert isinstance(results[1], Exception) and "NOT NULL" in str(results[1])
    listed = store.list_sessions(SessionQuery(project_id="default", page_size=10))
    assert {row.session_id: row.rollup.span_count for row in listed} == {"good": 2, "two": 2}
    (stored,) = store._reader().execute("SELECT count(*) FROM spans").fetchone()
    assert stored == 4
