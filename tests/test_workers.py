"""`--workers N`: map worker processes prepare the requests of one bridge process; one
exact set of sessions, whatever worker prepared what."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.export_helpers import eventually
from tests.otlp_builders import json_request, json_span, new_span_id, new_trace_id

SESSIONS = 6
TRACES_PER_SESSION = 10
SPANS_PER_TRACE = 4

WorkersBridge = tuple[subprocess.Popen[str], str]  # the bridge process, its OTLP/HTTP endpoint


@pytest.fixture
def workers_bridge(tmp_path: Path) -> Iterator[WorkersBridge]:
    process = subprocess.Popen(
        [sys.executable, "-m", "session_bridge.cli", "run", "--data-dir", str(tmp_path / "d"),
         "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    endpoint = None
    for line in process.stdout:
        if "OTEL_EXPORTER_OTLP_ENDPOINT=" in line:
            endpoint = line.split("=", 1)[1].strip()
            break
    assert endpoint, process.stderr.read() if process.stderr else ""
    yield process, endpoint
    if process.poll() is None:
        process.kill()
        process.wait()


def _trace_requests() -> list[bytes]:
    """One request per trace; the session id rides on the last span only."""
    bodies = []
    for s in range(SESSIONS):
        for _ in range(TRACES_PER_SESSION):
            trace = new_trace_id()
            spans = [
                json_span(trace, new_span_id(), f"span-{i}", {"gen_ai.operation.name": "chat",
                          "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10})
                for i in range(SPANS_PER_TRACE - 1)
            ]  # fmt: skip
            spans.append(json_span(trace, new_span_id(), "root", {"session.id": f"w-{s}"}))
            bodies.append(json.dumps(json_request(spans)).encode())
    return bodies


def _worker_pids(process: subprocess.Popen[str]) -> list[int]:
    pids = []
    for child in psutil.Process(process.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                child.cmdline()
            ):
                pids.append(child.pid)
        except psutil.Error:  # gone meanwhile
            continue
    return pids


def test_map_workers_give_one_exact_set_of_sessions(workers_bridge: WorkersBridge) -> None:
    process, endpoint = workers_bridge
    bodies = _trace_requests()

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(base_url=endpoint, timeout=30) as client:  # one connection each
            for body in chunk:
                response = client.post(
                    "/v1/traces", content=body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 200, response.text

    chunks = [bodies[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, chunks))
    # every span counted once, wherever it landed
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        items = client.get("/api/v1/sessions", params={"page_size": 100}).json()["items"]
        assert sorted(s["session.id"] for s in items) == [f"w-{s}" for s in range(SESSIONS)]
        for session in items:
            assert session["trace_count"] == TRACES_PER_SESSION
            assert session["span_count"] == TRACES_PER_SESSION * SPANS_PER_TRACE
            assert session["genai_usage"]["total_input_tokens"] == TRACES_PER_SESSION * 30
        total = SESSIONS * TRACES_PER_SESSION * SPANS_PER_TRACE
        metrics = client.get("/metrics").text
        assert (
            f'session_bridge_receiver_accepted_spans_total{{transport="http"}} {total}.0' in metrics
        )

    # a worker that dies is replaced, and the bridge keeps serving
    first, second = _worker_pids(process)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = _worker_pids(process)
        if len(pids) == 2 and first not in pids:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the dead worker was not replaced")
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        for body in bodies[:8]:  # prepared again, by both workers: nothing new to count
            response = client.post(
                "/v1/traces", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200, response.text
        session = client.get("/api/v1/sessions/w-0").json()
        assert session["span_count"] == TRACES_PER_SESSION * SPANS_PER_TRACE

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE


def test_retries_are_counted_once_through_the_map_workers(workers_bridge: WorkersBridge) -> None:
    """A map worker sends a batch back as span rows only; when some of its spans are
    stored already, the store asks for the records, a worker prepares the request again
    with them, and only the new spans are folded."""
    process, endpoint = workers_bridge
    trace = new_trace_id()
    llm = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
           "gen_ai.usage.input_tokens": 10}  # fmt: skip
    root = json_span(trace, new_span_id(), "root", {"session.id": "retry-1"})
    first_call = json_span(trace, new_span_id(), "chat", llm)
    second_call = json_span(trace, new_span_id(), "chat", llm)
    requests = [[root, first_call], [root, first_call], [first_call, second_call]]
    for spans in requests:
        with httpx.Client(base_url=endpoint, timeout=30) as client:  # a new connection each
            response = client.post(
                "/v1/traces",
                content=json.dumps(json_request(spans)),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 200, response.text
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        session = client.get("/api/v1/sessions/retry-1").json()
        assert session["trace_count"] == 1
        assert session["span_count"] == 3
        assert session["genai_usage"]["request_count"] == 2
        assert session["genai_usage"]["total_input_tokens"] == 20
        metrics = client.get("/metrics").text
        assert 'session_bridge_receiver_duplicate_spans_total{transport="http"} 3.0' in metrics
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def test_map_workers_stop_when_the_bridge_is_gone(workers_bridge: WorkersBridge) -> None:
    process, _ = workers_bridge
    workers = _worker_pids(process)
    assert len(workers) == 2
    process.kill()  # the bridge process dies at once
    process.wait()
    for pid in workers:
        try:
            psutil.Process(pid).wait(timeout=30)
        except psutil.NoSuchProcess:
            continue


def test_a_killed_map_worker_is_started_again(workers_bridge: WorkersBridge) -> None:
    """The end of its socket tells the bridge the worker is gone: it is started again,
    and the bridge goes on accepting spans through both workers."""
    process, endpoint = workers_bridge
    first = sorted(_worker_pids(process))
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)

    def replaced() -> bool:  # two workers again, the killed one not among them
        now = _worker_pids(process)
        return len(now) == 2 and first[0] not in now

    eventually(replaced, 60, f"map worker {first[0]} replaced")
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        for body in _trace_requests()[:12]:  # spread over both workers (the least busy)
            response = client.post(
                "/v1/traces", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200, response.text
        items = client.get("/api/v1/sessions", params={"page_size": 100}).json()["items"]
        assert sum(s["span_count"] for s in items) == 12 * SPANS_PER_TRACE
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
