"""`session-bridge run` refusing to start: one clear line naming the problem, exit 1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.test_cli import _start


def _run(data_dir: Path, grpc: str = "127.0.0.1:0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "session_bridge.cli", "run", "--data-dir", str(data_dir),
         "--grpc", grpc, "--http", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "E1" in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_grpc_port_in_use_is_one_clean_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        line = _one_error_line(_run(tmp_path / "d", f"127.0.0.1:{port}"))
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}: Address already in use" in line


def test_unusable_data_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    line = _one_error_line(_run(tmp_path / "a-file" / "d"))
    assert str(tmp_path / "a-file" / "d") in line


def test_unopenable_database_is_named(tmp_path: Path) -> None:
    (tmp_path / "d" / "bridge.db").mkdir(parents=True)  # SQLite: unable to open database file
    line = _one_error_line(_run(tmp_path / "d"))
    assert f"cannot open the SQLite database {tmp_path / 'd' / 'bridge.db'}" in line


def test_second_bridge_on_one_data_dir_is_refused_with_the_holder(tmp_path: Path) -> None:
    first, _ = _start(tmp_path)
    try:
        line = _one_error_line(_run(tmp_path / "d"))
        assert f"the data dir {tmp_path / 'd'} is in use by another bridge" in line
        assert f"pid {first.pid} on {socket.gethostname()}" in line
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    # the lock goes with the process: the next bridge starts
    again, _ = _start(tmp_path)
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=30) == 0
    assert os.path.exists(tmp_path / "d" / "bridge.lock")
