"""A bridge with no API keys says loudly at start when it listens beyond loopback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import RunningBridge, make_config

LOUD = "NO API KEYS and listening on"


def _start(tmp_path: Path, http: str, caplog: pytest.LogCaptureFixture) -> RunningBridge:
    config = make_config(tmp_path / "d")
    config.receivers.otlp.protocols.http.endpoint = http
    caplog.set_level(logging.WARNING, logger="session_bridge")
    return RunningBridge(config)


def test_no_keys_on_all_interfaces_is_a_loud_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # an ephemeral port on every interface, for the moment of the test; only loopback talks
    bridge = _start(tmp_path, "0.0.0.0:0", caplog)
    try:
        assert bridge.bridge.open_to_network == ["0.0.0.0:0"]
        loud = [r for r in caplog.records if LOUD in r.getMessage()]
        assert len(loud) == 1 and loud[0].levelno == logging.WARNING
        assert "0.0.0.0:0" in loud[0].getMessage()
    finally:
        bridge.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_no_keys_on_loopback_is_the_plain_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    bridge = _start(tmp_path, f"{host}:0", caplog)
    try:
        assert bridge.bridge.open_to_network == []
        assert not [r for r in caplog.records if LOUD in r.getMessage()]
        assert any("no API keys configured" in r.getMessage() for r in caplog.records)
    finally:
        bridge.stop()
