"""The `debug` exporter: logs what it would send, as the Collector's debug exporter does.
Nothing leaves the bridge; useful to see what a configuration exports, and the smallest
example of an exporter (this module, its config model and one line in
`export/config.py`'s registry)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from session_bridge.configkit import one_of
from session_bridge.export.base import Exporter, SendResult, Unit
from session_bridge.export.common import ExporterCommon
from session_bridge.store.export_log import LogEntry

log = logging.getLogger(__name__)


class DebugExporterConfig(ExporterCommon):
    type: str = "debug"
    # basic: one line per request; detailed: also one line per span
    verbosity: Annotated[str, one_of("basic", "detailed")] = "basic"


class DebugExporter(Exporter):
    def __init__(self, config: DebugExporterConfig) -> None:
        self.name = config.label
        self.max_request_bytes = int(config.max_batch_size)
        self._detailed = config.verbosity == "detailed"

    def describe(self) -> str:
        return f"{self.name}: the bridge's log ({'detailed' if self._detailed else 'basic'})"

    def units(self, entries: Sequence[LogEntry]) -> list[Unit]:
        return [Unit(_line(e).encode(), [e]) for e in entries]

    def send(self, units: Sequence[Unit]) -> SendResult:
        entries = [e for u in units for e in u.entries]
        sessions = {e.span.session_id for e in entries if e.span.session_id}
        log.info(
            "exporter %s: %d spans, %d traces, %d sessions",
            self.name,
            len(entries),
            len({e.span.trace_id for e in entries}),
            len(sessions),
        )
        if self._detailed:
            for unit in units:
                log.info("exporter %s: %s", self.name, unit.payload.decode())
        return SendResult()


def _line(entry: LogEntry) -> str:
    span = entry.span
    usage = (
        f" model={span.llm.model} tokens={span.llm.input_tokens}+{span.llm.output_tokens}"
        if span.llm
        else ""
    )
    return (
        f"{entry.project_id} session={span.session_id or '-'} trace={span.trace_id.hex()}"
        f" span={span.span_id.hex()} {span.event_type.value} {span.name!r}{usage}"
    )


def create(config: DebugExporterConfig, data_dir: Path) -> DebugExporter:
    return DebugExporter(config)
