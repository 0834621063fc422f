"""The `debug` exporter (the smallest exporter: one module and one registry line) logs
what it would send; its settings are checked like every exporter's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from session_bridge.config import BridgeConfig, ConfigError, parse
from session_bridge.export.debug import DebugExporterConfig
from tests.conftest import RunningBridge
from tests.export_helpers import eventually, exporting_config, quick, send, turn


def test_debug_exporter_logs_each_request_and_span(
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="session_bridge.export.debug")
    config = exporting_config(tmp_path / "d", quick(DebugExporterConfig(verbosity="detailed")))
    bridge = start_bridge(config)
    send(bridge, [turn("sess-debug", index=0), turn("sess-debug", index=1)])

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "session_bridge.export.debug"]

    eventually(lambda: any("6 spans, 2 traces, 1 sessions" in m for m in logged()), what="log")
    spans = [m for m in logged() if "session=sess-debug" in m]
    assert len(spans) == 6
    assert any("llm_call 'chat gpt-4o' model=gpt-4o-2024-08-06 tokens=1200+150" in m for m in spans)


def test_debug_exporter_settings_are_checked() -> None:
    config = parse("exporters:\n  debug/mine:\n    verbosity: detailed\n")
    assert [(e.type, e.label) for e in config.exporters] == [("debug", "mine")]
    with pytest.raises(ConfigError, match=r"exporters\.debug\.verbosity: must be one of"):
        parse("exporters:\n  debug:\n    verbosity: loud\n")
