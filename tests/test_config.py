"""Configuration: defaults, ${env:VAR} substitution, every bad key named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from session_bridge.config import BridgeConfig, ConfigError, load, parse
from session_bridge.export.file import FileExporterConfig
from tests.conftest import REPO


def test_empty_file_gives_defaults() -> None:
    assert parse("") == BridgeConfig()
    assert BridgeConfig().receivers.otlp.protocols.grpc.endpoint == "127.0.0.1:4317"
    assert BridgeConfig().receivers.otlp.max_request_body_size == 16 * 1024 * 1024
    assert BridgeConfig().sessions.inactivity_timeout == 1800.0


def test_documented_config_file_is_valid_and_equals_the_defaults() -> None:
    assert load(REPO / "config" / "bridge.yaml", environ={}) == BridgeConfig()


def test_the_documented_file_exporter_is_the_file_exporter_with_its_defaults() -> None:
    """config/bridge.yaml shows the file exporter commented out (no exporter is the
    default): uncommented, it is a valid configuration with every default."""
    text = (REPO / "config" / "bridge.yaml").read_text()
    block = text[text.index("# exporters:\n") :].splitlines()
    yaml_lines = []
    for line in block:
        if not line.startswith("#"):
            break
        yaml_lines.append(line[2:])
    config = parse("\n".join(yaml_lines))
    assert [type(e).__name__ for e in config.exporters] == ["FileExporterConfig"]
    assert config.exporters == [FileExporterConfig()]


def test_units() -> None:
    config = parse(
        "receivers:\n  otlp:\n    max_request_body_size: 4MiB\n"
        "sessions:\n  inactivity_timeout: 5m\n"
    )
    assert config.receivers.otlp.max_request_body_size == 4 * 1024 * 1024
    assert config.sessions.inactivity_timeout == 300.0


def test_env_substitution(tmp_path: Path) -> None:
    env = {"HTTP_ADDR": "0.0.0.0:5317", "EMPTY": "", "DIR": "/data"}
    path = tmp_path / "c.yaml"
    path.write_text(
        """
receivers:
  otlp:
    protocols:
      http:
        endpoint: ${env:HTTP_ADDR}
storage:
  data_dir: '${DIR}/b'
  postgres:
    schema: ${env:MISSING:-dflt}
sessions:
  project_id: ${env:EMPTY:-x}
"""
    )
    config = load(path, environ=env)
    assert config.receivers.otlp.protocols.http.endpoint == "0.0.0.0:5317"
    assert config.storage.data_dir == "/data/b"
    assert config.storage.postgres.schema == "dflt"
    assert config.sessions.project_id == "x"


@pytest.mark.parametrize(
    "value",
    ["abc # not a comment", 'it\'s "quoted"', "two\nlines", "key: value", "{a: 1}", "- x", "0777"],
)
def test_env_value_stays_one_string(tmp_path: Path, value: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("privacy:\n  user_id_key: ${env:KEY}\nstorage:\n  data_dir: /d\n")
    config = load(path, environ={"KEY": value})
    assert config.privacy.user_id_key == value
    assert config.storage.data_dir == "/d"


def test_whole_env_value_is_typed_for_numbers_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
receivers:
  otlp:
    workers: ${env:N}
    protocols:
      grpc:
        enabled: ${env:ON}
storage:
  retention:
    spans: ${env:SPANS}
    sessions: 30d
sessions:
  project_id: ${env:N}
"""
    )
    config = load(path, environ={"N": "4", "ON": "false", "SPANS": "7d"})
    assert config.receivers.otlp.workers == 4
    assert config.receivers.otlp.protocols.grpc.enabled is False
    assert config.storage.retention.spans == 7 * 86400.0
    assert config.sessions.project_id == "4"  # a string option keeps the text
    with pytest.raises(
        ConfigError, match=r"receivers\.otlp\.workers: expected a number of processes or auto"
    ):
        load(path, environ={"N": "four", "ON": "false", "SPANS": "7d"})


def test_unset_env_without_default_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("storage:\n  data_dir: ${env:BRIDGE_NOWHERE}\n")
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert caught.value.problems == [
        "storage.data_dir: environment variable BRIDGE_NOWHERE is not set"
        " (set it, or give a default: ${env:BRIDGE_NOWHERE:-value})"
    ]
    result = subprocess.run(
        [sys.executable, "-m", "session_bridge.cli", "check-config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "BRIDGE_NOWHERE"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "environment variable BRIDGE_NOWHERE is not set" in result.stderr


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


def test_map_workers_default_to_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert BridgeConfig().receivers.otlp.workers == min(cores, 64)
    assert parse("receivers: {otlp: {workers: auto}}").receivers.otlp.workers == min(cores, 64)
    assert parse("receivers: {otlp: {workers: 3}}").receivers.otlp.workers == 3
