"""Configuration: defaults, ${env:VAR} substitution, every bad key named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from session_bridge.config import BridgeConfig, ConfigError, load, parse, substitute_env
from tests.conftest import REPO


def test_empty_file_gives_defaults() -> None:
    assert parse("") == BridgeConfig()
    assert BridgeConfig().receivers.otlp.protocols.grpc.endpoint == "127.0.0.1:4317"
    assert BridgeConfig().receivers.otlp.max_request_body_size == 16 * 1024 * 1024
    assert BridgeConfig().sessions.inactivity_timeout == 1800


def test_documented_config_file_is_valid_and_equals_the_defaults() -> None:
    assert load(REPO / "config" / "bridge.yaml", environ={}) == BridgeConfig()


def test_units() -> None:
    config = parse(
        "receivers:\n  otlp:\n    max_request_body_size: 4MiB\n"
        "sessions:\n  inactivity_timeout: 5m\n"
    )
    assert config.receivers.otlp.max_request_body_size == 4 * 1024 * 1024
    assert config.sessions.inactivity_timeout == 300


def test_env_substitution() -> None:
    env = {"GRPC_ADDR": "0.0.0.0:5317", "EMPTY": ""}
    text = (
        "a: ${env:GRPC_ADDR} b: ${GRPC_ADDR} c: ${env:MISSING:-dflt} "
        "d: ${env:EMPTY:-x} e: ${env:MISSING}"
    )
    assert substitute_env(text, env) == "a: 0.0.0.0:5317 b: 0.0.0.0:5317 c: dflt d: x e: "


def test_env_in_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("storage:\n  data_dir: ${env:BRIDGE_DATA:-/var/lib/bridge}\n")
    assert load(path, environ={"BRIDGE_DATA": "/data"}).storage.data_dir == "/data"
    assert load(path, environ={}).storage.data_dir == "/var/lib/bridge"


def test_every_problem_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(
            """
receivers:
  otlp:
    protocols:
      grpc:
        endpoitn: 127.0.0.1:4317
      http:
        endpoint: nonsense
    max_request_body_size: lots
    max_pending_requests: 0
storage:
  sqlite:
    synchronous: sometimes
sessions:
  inactivity_timeout: soon
api: []
extra: 1
"""
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "receivers.otlp.protocols.grpc.endpoitn: unknown key",
        "receivers.otlp.protocols.http.endpoint: expected host:port",
        "receivers.otlp.max_request_body_size: expected a size",
        "receivers.otlp.max_pending_requests: must be between",
        "storage.sqlite.synchronous: must be one of full, normal, extra",
        "sessions.inactivity_timeout: expected a duration",
        "api: expected a mapping",
        "extra: unknown key",
    ):
        assert expected in problems
    assert len(caught.value.problems) == 8


def test_invalid_yaml() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse("a: [unclosed")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "session_bridge.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_command(tmp_path: Path) -> None:
    good = _cli("check-config", str(REPO / "config" / "bridge.yaml"))
    assert good.returncode == 0, good.stderr
    assert "ok" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers:\n  otlp:\n    grcp: {}\nlog:\n  format: xml\n")
    result = _cli("check-config", str(bad))
    assert result.returncode == 1
    assert "receivers.otlp.grcp: unknown key" in result.stderr
    assert "log.format: must be one of text, json" in result.stderr
    missing = _cli("check-config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr
