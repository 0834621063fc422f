"""The span columns are declared once (`store/columns.py`); the SQLite and PostgreSQL
tables, the PostgreSQL copy types, the row codecs and the record offered downstream
(proto/session_bridge/v1/records.proto) are held to that one list."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import psycopg

from session_bridge.export.records import from_proto, to_proto
from session_bridge.model import EventType, LlmUsage, SpanRecord
from session_bridge.proto.session_bridge.v1.records_pb2 import LlmUsage as LlmUsageRecord
from session_bridge.proto.session_bridge.v1.records_pb2 import SpanRecord as SpanRecordProto
from session_bridge.store import columns, postgres
from session_bridge.store.export_log import LogEntry
from session_bridge.store.postgres import PostgresSettings, migrate_schema
from session_bridge.store.sqlite import SqliteStore

# what the stores keep beside the declared columns: the SQLite trace number (spans find
# their trace by it) and PostgreSQL's writing transaction (the export log's position)
SQLITE_ONLY = {"trace_no"}
POSTGRES_ONLY = {"log_xid"}
# columns the downstream record names otherwise, or carries another way
RECORD_NAMES = {"start_ns": "start_time_unix_nano", "end_ns": "end_time_unix_nano"}
IN_THE_RECORD_LLM = {"provider", "model", "input_tokens", "output_tokens", "cache_read_tokens",
                     "cache_creation_tokens", "reasoning_tokens"}  # fmt: skip
NOT_IN_THE_RECORD = {"resource_key"}  # the record carries the resource itself (otlp_resource)


def test_the_sqlite_table_is_the_declared_columns(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "b.db").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "b.db")) as conn:
        names = {row[1] for row in conn.execute("PRAGMA table_info(spans)")}
    assert names == set(columns.SPAN_WRITE_COLUMNS) | SQLITE_ONLY


def test_the_postgres_table_is_the_declared_columns(pg_dsn: str, pg_schema: str) -> None:
    migrate_schema(PostgresSettings(pg_dsn, pg_schema))
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'spans'",
            (pg_schema,),
        ).fetchall()
    assert {name for (name,) in rows} == set(columns.SPAN_WRITE_COLUMNS) | POSTGRES_ONLY
    assert set(postgres._SPAN_TYPES) == set(columns.SPAN_WRITE_COLUMNS)


def test_the_row_codecs_are_the_declared_columns() -> None:
    span = SpanRecord(os.urandom(16), os.urandom(8), None, "n", 1, 1, 2, 0, "", EventType.SPAN,
                      False, llm=LlmUsage(model="m"), response_id="r", otlp_span=b"x")  # fmt: skip
    assert len(columns.span_row(span, "p")) == len(columns.SPAN_WRITE_COLUMNS) - 1  # + session
    read = columns.span_from_row([getattr(span, c, None) for c in columns.SPAN_COLUMNS])
    assert read.response_id == "r" and read.otlp_span == b"x"


def test_a_stored_span_reads_back_field_by_field() -> None:
    # every field a value of its own: `span_from_row` builds records positionally
    llm = LlmUsage("prov", "mod", 11, 12, 13, 14, 15)
    span = SpanRecord(os.urandom(16), os.urandom(8), os.urandom(8), "name", 3, 100, 200, 2,
                      "status", EventType.LLM_CALL, True, "svc", "env", "sess", "user",
                      llm=llm, cost_usd=0.5, scope_name="scope", otlp_span=b"span",
                      resource_key=b"res", response_id="resp")  # fmt: skip
    row = dict(zip(columns.SPAN_WRITE_COLUMNS, columns.span_values(span, "p", "sess"), strict=True))
    assert columns.span_from_row([row[c] for c in columns.SPAN_COLUMNS]) == span


def test_the_downstream_record_carries_every_column() -> None:
    fields = set(SpanRecordProto.DESCRIPTOR.fields_by_name)
    llm_fields = set(LlmUsageRecord.DESCRIPTOR.fields_by_name)
    for column in columns.SPAN_COLUMNS:
        if column in NOT_IN_THE_RECORD:
            continue
        if column in IN_THE_RECORD_LLM:
            assert column in llm_fields, column
        else:
            assert RECORD_NAMES.get(column, column) in fields, column
    entry = LogEntry(7, "p", SpanRecord(os.urandom(16), os.urandom(8), None, "n", 1, 1, 2, 0,
                                        "", EventType.LLM_CALL, False, response_id="resp-1",
                                        llm=LlmUsage(model="m", input_tokens=3)), b"", None, 0)  # fmt: skip
    back = from_proto(to_proto(entry))
    assert back.span == entry.span and back.position == 7
