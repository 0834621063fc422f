"""The configured exporters, started and stopped together; what the receivers (admission)
and `/readyz` (health) read from them."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from session_bridge.export.config import ExporterCommon, create_exporter
from session_bridge.export.otlp import OtlpExporterConfig
from session_bridge.export.otlp import upstream_settings as upstream_settings_of
from session_bridge.export.runner import ExporterRunner
from session_bridge.store.config import StorageConfig
from session_bridge.store.export_log import ExportLog
from session_bridge.store.factory import open_export_log
from session_bridge.telemetry import ExporterMetrics

if TYPE_CHECKING:
    from session_bridge.otlp.client import UpstreamSettings

log = logging.getLogger(__name__)


def upstream_settings(exporters: list[ExporterCommon]) -> UpstreamSettings | None:
    """Where OTLP logs and metrics are passed: the first `otlp` exporter's endpoint."""
    for config in exporters:
        if isinstance(config, OtlpExporterConfig):
            return upstream_settings_of(config)
    return None


class Exports(Protocol):
    """What the bridge uses of its exporters, wherever they run (`ExportService` in this
    process, `export.process.ExportProcess` in a process of their own)."""

    @property
    def wants_ingestion_events(self) -> bool: ...

    def start(self) -> None: ...

    def refusal(self) -> str | None: ...

    def problems(self) -> list[str]: ...

    def describe(self) -> list[str]: ...

    def close(self, deadline_s: float) -> None: ...


class ExportService:
    def __init__(self, export_log: ExportLog, runners: list[ExporterRunner]) -> None:
        self.log = export_log
        self.runners = runners

    @classmethod
    def open(
        cls,
        exporters: list[ExporterCommon],
        storage: StorageConfig,
        data_dir: Path,
        metrics: ExporterMetrics,
    ) -> ExportService | None:
        export_log = open_export_log(storage)
        export_log.keep_cursors([config.label for config in exporters])
        if not exporters:
            export_log.close()
            return None
        runners = [
            ExporterRunner(create_exporter(config, data_dir), export_log, config, metrics)
            for config in exporters
        ]
        return cls(export_log, runners)

    def start(self) -> None:
        """Each exporter's cursor exists once this returns: from then on, every span the
        store commits is in every exporter's queue."""
        for runner in self.runners:
            runner.start()
            log.info("exporter %s started", runner.exporter.describe())

    @property
    def wants_ingestion_events(self) -> bool:
        """Whether ingest should build each span's ingestion event (an exporter sends them)."""
        return any(runner.exporter.sends_ingestion_events for runner in self.runners)

    def refusal(self) -> str | None:
        """Why receivers must refuse new spans now (an exporter's queue is full), or None."""
        for runner in self.runners:
            if runner.backlog_bytes >= runner.capacity:
                return (
                    f"exporter {runner.name} has {runner.backlog_bytes} bytes waiting"
                    f" (queue_capacity {runner.capacity}); retry later"
                )
        return None

    def problems(self) -> list[str]:
        return [p for p in (runner.health() for runner in self.runners) if p is not None]

    def describe(self) -> list[str]:
        return [runner.exporter.describe() for runner in self.runners]

    def close(self, deadline_s: float) -> None:
        """Let each exporter finish its request in flight, up to `deadline_s` in all."""
        for runner in self.runners:
            runner.request_stop()
        end = time.monotonic() + deadline_s
        stopped = [runner.close(max(end - time.monotonic(), 0.0)) for runner in self.runners]
        if all(stopped):
            self.log.close()
