"""`session-bridge run` as a user runs it: a real process, its banner, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "session_bridge.cli", "run", "--data-dir", str(tmp_path / "d"),
         "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    banner: dict[str, str] = {}
    for line in process.stdout:  # the banner ends with the SDK line
        if "OTEL_EXPORTER_OTLP_ENDPOINT=" in line:
            banner["endpoint"] = line.split("OTEL_EXPORTER_OTLP_ENDPOINT=", 1)[1].strip()
            banner["protocol"] = process.stdout.readline().strip()
            break
        if line.strip().startswith("Data"):
            banner["data"] = line
    else:
        raise AssertionError(
            f"no banner; stderr: {process.stderr.read() if process.stderr else ''}"
        )
    return process, banner


def test_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process, banner = _start(tmp_path, "--log-format", "json")
    try:
        assert str(tmp_path / "d") in banner["data"]
        endpoint = banner["endpoint"]
        # the protocol too: an SDK given only the endpoint may send gRPC to the HTTP port
        assert banner["protocol"] == "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        provider = TracerProvider(resource=Resource.create({"service.name": "cli-test"}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
        )
        with provider.get_tracer("t").start_as_current_span(
            "turn", attributes={"session.id": "cli"}
        ):
            pass
        provider.shutdown()
        session = httpx.get(f"{endpoint}/api/v1/sessions/cli", timeout=10).json()
        assert session["span_count"] == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None
    records = [json.loads(line) for line in process.stderr.read().splitlines() if line.strip()]
    messages = [r["msg"] for r in records]
    assert "bridge started" in messages and "stopped" in messages
    started = next(r for r in records if r["msg"] == "bridge started")
    assert started["data_dir"] == str(tmp_path / "d")
    # uvicorn's records carry the message again with colour codes: not in the JSON
    assert all("\x1b" not in str(value) for r in records for value in r.values())
    assert any(r["logger"].startswith("uvicorn") for r in records)


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    first, banner = _start(tmp_path)
    try:
        port = banner["endpoint"].rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "session_bridge.cli", "run", "--data-dir", str(tmp_path / "e"),
             "--grpc", "127.0.0.1:0", "--http", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False, env={**os.environ},
        )  # fmt: skip
        assert second.returncode == 1
        assert f"cannot listen for HTTP on 127.0.0.1:{port}" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 0


def test_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("storage:\n  sqlite:\n    synchronous: never\n")
    result = subprocess.run(
        [sys.executable, "-m", "session_bridge.cli", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "storage.sqlite.synchronous" in result.stderr
