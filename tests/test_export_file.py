"""The `file` exporter (the default), the exporters' configuration, and retention holding
back what is not exported yet."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from session_bridge import cli
from session_bridge.config import BridgeConfig, ByteSize, ConfigError, parse
from session_bridge.export.file import FileExporterConfig
from session_bridge.mapping.mapper import map_request
from session_bridge.proto.session_bridge.v1.records_pb2 import SpanRecord
from session_bridge.store.base import WriteBatch
from session_bridge.store.sqlite import SqliteStore
from session_bridge.store.sqlite_export_log import SqliteExportLog
from tests.conftest import RunningBridge, make_config
from tests.export_helpers import (
    eventually,
    exporting_config,
    metric,
    quick,
    request_of,
    send,
    turn,
)
from tests.ingestion_server import schema_errors


def _lines(path: Path) -> list[dict[str, Any]]:
    # read, not exists() then read: the exporter may rotate the file in between
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines()]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A base-128 varint at `at` (a length-delimited record's length): (value, next)."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def test_the_file_exporter_writes_what_would_be_sent(
    start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    config = make_config(tmp_path / "d")
    assert config.exporters == []  # none by default: it is turned on
    config.exporters = [quick(FileExporterConfig())]
    bridge = start_bridge(config)
    turns = [turn("sess-file", index=i) for i in range(3)]
    send(bridge, turns)
    path = tmp_path / "d" / "export" / "file.jsonl"
    eventually(lambda: len(_lines(path)) == 12, what="3 trace-creates and 9 observations")
    for event in _lines(path):
        assert not schema_errors(event)
    assert {e["body"]["id"] for e in _lines(path) if e["type"] != "trace-create"} == {
        s for t in turns for s in t.span_ids
    }


def test_the_file_is_rotated(
    start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    exporter = quick(
        FileExporterConfig(max_file_size=ByteSize(8192), max_files=3, max_batch_size=ByteSize(4096))
    )
    bridge = start_bridge(exporting_config(tmp_path / "d", exporter))
    for i in range(12):
        send(bridge, [turn("sess-rotate", index=i)])
    folder = tmp_path / "d" / "export"
    # every span written, so no rotation is under way while the files are listed
    eventually(
        lambda: metric(bridge, "session_bridge_exporter_sent_spans_total", "file") == 36,
        what="every span written",
    )
    assert sum(e["type"] != "trace-create" for p in folder.iterdir() for e in _lines(p)) >= 12
    assert sorted(p.name for p in folder.iterdir()) == [
        "file.jsonl",
        "file.jsonl.1",
        "file.jsonl.2",
    ]
    assert all(p.stat().st_size <= 8192 for p in folder.iterdir())


def test_the_protobuf_format_holds_session_records(
    start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    exporter = quick(FileExporterConfig(format="protobuf", path=str(tmp_path / "out.binpb")))
    bridge = start_bridge(exporting_config(tmp_path / "d", exporter))
    t = turn("sess-pb", user="u-pb")
    send(bridge, [t])
    records: list[SpanRecord] = []

    def read() -> bool:
        data = (tmp_path / "out.binpb").read_bytes() if (tmp_path / "out.binpb").exists() else b""
        records.clear()
        at = 0
        while at < len(data):
            size, at = _varint(data, at)
            records.append(SpanRecord.FromString(data[at : at + size]))
            at += size
        return len(records) == 3

    eventually(read, what="3 records")
    assert [r.span_id.hex() for r in records] == t.span_ids
    assert all(r.session_id == "sess-pb" and r.user_id == "u-pb" for r in records)
    assert [r.sequence for r in records] == sorted(r.sequence for r in records)
    chat = records[0]
    assert chat.event_type == "llm_call" and chat.llm.input_tokens == 1200 and chat.cost_usd > 0
    assert Span.FromString(chat.otlp_span).name == "chat gpt-4o" and chat.otlp_resource


def test_exporter_configuration_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse("exporters:\n  - type: kafka\n  - type: otlp\n    endpoitn: http://x\n")
    problems = "\n".join(caught.value.problems)
    assert "exporters[0].type: must be one of debug, file, ingestion, otlp, got 'kafka'" in problems
    assert "exporters[1].endpoitn: unknown key" in problems
    with pytest.raises(ConfigError) as caught:
        parse(
            "exporters:\n"
            "  - type: otlp\n"
            "  - type: file\n    format: csv\n"
            "  - type: ingestion\n    max_batch_size: 5MB\n    base_url: http://x\n"
            "    public_key: pk\n    secret_key: sk\n"
            "  - type: file\n"
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "exporters[0].endpoint: required",
        "exporters[1].format: must be one of ingestion, protobuf",
        "exporters[2].max_batch_size: must be between 1024 and 3500000",
        "exporters[3].name: 'file' is used by another exporter",
    ):
        assert expected in problems
    config = tmp_path / "c.yaml"
    config.write_text("exporters:\n  - type: ingestion\n")
    assert cli.main(["check-config", str(config)]) == 1
    assert parse("exporters: []").exporters == []


def test_ingestion_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", "https://cloud.example")
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-1")
    config = parse("exporters:\n  - type: ingestion\n")
    from session_bridge.export.ingestion import IngestionExporter

    exporter = IngestionExporter(config.exporters[0])  # type: ignore[arg-type]
    assert exporter.url == "https://cloud.example/api/public/ingestion"
    exporter.close()


def test_retention_keeps_what_an_exporter_has_not_delivered(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bridge.db")
    export_log = SqliteExportLog(tmp_path / "bridge.db")
    try:
        assert export_log.cursor("slow") == 0
        for i in range(3):
            mapped = map_request(request_of([turn(f"s-{i}", index=i)]))
            store.write(WriteBatch("default", mapped.records, mapped.resources))
        future = time.time_ns() + 10**18
        assert store.expire(future, None, 100).spans == 0  # nothing delivered yet
        export_log.commit("slow", 6, [])  # the first two traces are delivered
        assert store.expire(future, None, 100).spans == 6
        export_log.commit("slow", export_log.head(), [])
        expired = store.expire(future, None, 100)
        assert expired.traces == 0  # the newest span stays: log positions are never reused
        export_log.keep_cursors([])  # the exporter left the configuration
        assert export_log.head() == 9
    finally:
        export_log.close()
        store.close()
