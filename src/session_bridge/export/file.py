"""The `file` exporter: what would be shipped, written to a local file with rotation.

`format: ingestion` (the default) writes JSON lines, one ingestion event per line,
exactly as the `ingestion` exporter would send them; `format: protobuf` writes
length-delimited `session_bridge.v1.SpanRecord` messages (each preceded by its size as a
varint, as `writeDelimitedTo` does). When the file would grow past `max_file_size` it is
renamed `<path>.1` (older ones shift up to `<path>.<max_files - 1>`, the oldest is
deleted) and a new one is started. A request is flushed (and, by default, fsynced)
before the exporter's cursor moves past it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, BinaryIO

from session_bridge.configkit import NOT_BOOL, ByteSize, SizeValue, between, one_of
from session_bridge.export.base import Exporter, Failure, SendResult, Unit
from session_bridge.export.common import ExporterCommon
from session_bridge.export.langfuse_events import DEFAULT_MAX_EVENT_BYTES, ingestion_units
from session_bridge.export.records import to_proto
from session_bridge.store.export_log import LogEntry

_EXTENSIONS = {"ingestion": ".jsonl", "protobuf": ".binpb"}


class FileExporterConfig(ExporterCommon):
    type: str = "file"
    path: str = ""  # default: <data_dir>/export/<name>.jsonl (.binpb for protobuf)
    format: Annotated[str, one_of("ingestion", "protobuf")] = "ingestion"
    max_file_size: Annotated[SizeValue, between(1024, 1 << 50)] = ByteSize(64 * 1024 * 1024)
    max_files: Annotated[int, NOT_BOOL, between(1, 1_000_000)] = 5
    fsync: bool = True


def default_path(config: FileExporterConfig, data_dir: Path) -> Path:
    return data_dir / "export" / f"{config.label}{_EXTENSIONS[config.format]}"


class FileExporter(Exporter):
    def __init__(self, config: FileExporterConfig, data_dir: Path) -> None:
        self.name = config.label
        self.max_request_bytes = int(config.max_batch_size)
        self.path = (
            Path(config.path).expanduser() if config.path else default_path(config, data_dir)
        )
        self._format = config.format
        self.sends_ingestion_events = config.format == "ingestion"
        self._max_event = min(DEFAULT_MAX_EVENT_BYTES, max(self.max_request_bytes - 1024, 16384))
        self._max_file_size = int(config.max_file_size)
        self._max_files = config.max_files
        self._fsync = config.fsync
        self._file: BinaryIO | None = None

    def describe(self) -> str:
        return f"{self.name}: {self.path} ({self._format})"

    def units(self, entries: Sequence[LogEntry]) -> list[Unit]:
        if self._format == "protobuf":
            return [Unit(_delimited(to_proto(e).SerializeToString()), [e]) for e in entries]
        return [
            Unit(u.payload + b"\n", u.entries, u.key)
            for u in ingestion_units(entries, self._max_event)
        ]

    def send(self, units: Sequence[Unit]) -> SendResult:
        data = b"".join(u.payload for u in units)
        try:
            out = self._open()
            if out.tell() and out.tell() + len(data) > self._max_file_size:
                out = self._rotate()
            out.write(data)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        except OSError as exc:
            self._close_file()
            return SendResult(
                retry=list(range(len(units))),
                problem=Failure(0, f"cannot write {self.path}: {exc}"),
            )
        return SendResult()

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across requests
        return self._file

    def _rotate(self) -> BinaryIO:
        # os.replace renames over the older file in one step: a reader never finds a
        # numbered file missing while it is being shifted (an unlink first left a gap)
        self._close_file()
        for index in range(self._max_files - 1, 0, -1):
            newer = self.path.with_name(f"{self.path.name}.{index - 1}") if index > 1 else self.path
            if newer.exists():
                os.replace(newer, self.path.with_name(f"{self.path.name}.{index}"))
        if self._max_files == 1:
            self.path.unlink(missing_ok=True)
        return self._open()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._close_file()


def _delimited(message: bytes) -> bytes:
    size = len(message)
    prefix = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        if size:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            return bytes(prefix) + message


def create(config: FileExporterConfig, data_dir: Path) -> FileExporter:
    return FileExporter(config, data_dir)
