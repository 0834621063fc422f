"""The `ingestion` exporter against a real ingestion endpoint (tests/ingestion_server.py)
that validates every event against the OpenAPI schema and answers like the real one."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from session_bridge import cli
from session_bridge.config import BridgeConfig, ByteSize, Duration
from session_bridge.mapping.langfuse_events import TRUNCATED_KEY
from tests.conftest import RunningBridge
from tests.export_helpers import (
    eventually,
    exporting_config,
    ingestion,
    metric,
    post,
    refuse_tool_spans,
    request_of,
    send,
    turn,
)
from tests.ingestion_server import Fault, IngestionServer
from tests.otlp_builders import proto_request, proto_span

NAMESPACE = uuid.UUID("6f0d3c52-4a8e-4b7c-9a51-0e9f2b1c7d40")


def start(
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    data_dir: Path,
    server: IngestionServer,
    **kw: Any,
) -> RunningBridge:
    return start_bridge(exporting_config(data_dir, ingestion(server, **kw)))


def merged_traces(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trace-creates merged as the server merges them: by envelope timestamp, later
    non-empty values win."""
    traces: dict[str, dict[str, Any]] = {}
    creates = [e for e in events if e["type"] == "trace-create"]
    for event in sorted(creates, key=lambda e: e["timestamp"]):
        body = traces.setdefault(event["body"]["id"], {})
        body.update({k: v for k, v in event["body"].items() if v not in (None, "", [], {})})
    return traces


def test_every_span_arrives_as_valid_events(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    bridge = start(start_bridge, tmp_path / "d", server)
    turns = [turn("sess-e2e", index=i) for i in range(5)]
    send(bridge, turns)
    expected = {s for t in turns for s in t.span_ids}
    server.wait_for(lambda s: s.observation_ids() >= expected)
    events = server.snapshot()
    by_span = {e["body"]["id"]: e for e in events if e["type"] != "trace-create"}
    traces = merged_traces(events)
    for t in turns:
        trace = traces[t.trace_id.hex()]
        assert trace["sessionId"] == "sess-e2e" and trace["userId"] == "u-1"
        assert trace["name"] == "invoke_agent support"
        assert trace["environment"] == "prod" and trace["version"] == "1.4.2"
        assert trace["input"].startswith("question") and trace["output"].startswith("answer")
        root = by_span[t.root.span_id.hex()]
        assert root["type"] == "span-create" and "parentObservationId" not in root["body"]
        chat, tool = (by_span[s.span_id.hex()] for s in t.children)
        assert chat["type"] == "generation-create"
        body = chat["body"]
        assert body["parentObservationId"] == t.root.span_id.hex()
        assert body["traceId"] == t.trace_id.hex()
        assert body["model"] == "gpt-4o-2024-08-06"
        assert body["usageDetails"] == {
            "input": 1000, "output": 150, "total": 1350, "input_cached_tokens": 200
        }  # fmt: skip
        assert body["costDetails"]["total"] > 0
        assert body["modelParameters"] == {"temperature": 0.2, "max_tokens": "1024"}
        assert body["startTime"].endswith("Z") and body["endTime"] > body["startTime"]
        assert tool["type"] == "span-create" and tool["body"]["level"] == "ERROR"
        # deterministic envelope ids: a resend overwrites instead of duplicating
        name = f"generation-create:{t.trace_id.hex()}:{body['id']}"
        assert chat["id"] == str(uuid.uuid5(NAMESPACE, name))
    eventually(
        lambda: metric(bridge, "session_bridge_exporter_sent_spans_total", "ingestion") == 15
    )
    assert metric(bridge, "session_bridge_exporter_queue_spans", "ingestion") == 0


def test_session_named_by_a_later_span_is_merged_into_the_trace(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    bridge = start(start_bridge, tmp_path / "d", server)
    t = turn("sess-late")
    send_children = proto_request(t.children, {"service.name": "agent"})
    assert post(bridge, send_children).status_code == 200
    server.wait_for(lambda s: s.observation_ids() >= {c.span_id.hex() for c in t.children})
    assert "sessionId" not in merged_traces(server.snapshot())[t.trace_id.hex()]
    assert post(bridge, proto_request([t.root], {"service.name": "agent"})).status_code == 200
    server.wait_for(lambda s: t.root.span_id.hex() in s.observation_ids())
    assert merged_traces(server.snapshot())[t.trace_id.hex()]["sessionId"] == "sess-late"


def test_endpoint_down_then_back_delivers_everything_in_order(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    server.down = True
    bridge = start(start_bridge, tmp_path / "d", server, unhealthy_after=Duration(0.3))
    turns = [turn(f"sess-down-{i % 3}", index=i) for i in range(30)]
    for i in range(0, 30, 5):
        send(bridge, turns[i : i + 5])
    eventually(lambda: sum(r.status == 0 for r in server.received) >= 3, what="retries")
    eventually(lambda: bridge.client.get("/readyz").status_code == 503, what="unhealthy")
    assert "ingestion" in json.dumps(bridge.client.get("/readyz").json())
    assert metric(bridge, "session_bridge_exporter_send_failed_spans_total", "ingestion") > 0
    assert server.snapshot() == []
    server.down = False
    expected = {s for t in turns for s in t.span_ids}
    server.wait_for(lambda s: s.observation_ids() >= expected)
    eventually(lambda: bridge.client.get("/readyz").status_code == 200, what="healthy again")
    order = [e["body"]["id"] for e in server.snapshot() if e["type"] != "trace-create"]
    assert len(order) == len(set(order)) == 90  # each once: nothing was half-delivered
    for t in turns:  # in the order the store committed them: children, then root
        assert [order.index(s) for s in t.span_ids] == sorted(order.index(s) for s in t.span_ids)


def test_throttling_honours_retry_after(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    server.fail_next(Fault(429, {"Retry-After": "1"}, {"message": "rate limited"}))
    bridge = start(start_bridge, tmp_path / "d", server)
    t = turn("sess-429")
    send(bridge, [t])
    server.wait_for(lambda s: s.observation_ids() >= set(t.span_ids))
    throttled, retried = server.received[0], server.received[1]
    assert throttled.status == 429
    assert retried.at - throttled.at >= 0.95  # backoff alone would be <= 0.2 s


def test_server_errors_slow_answers_and_dropped_connections_are_retried(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    server.fail_next(
        Fault(500, body={"message": "S3 upload failed"}),
        Fault(0),  # connection dropped without an answer
        Fault(503, delay_s=0.2),  # slow, then unavailable
        Fault(207, delay_s=1.5),  # slower than the exporter's timeout
    )
    bridge = start(start_bridge, tmp_path / "d", server, timeout=Duration(0.5))
    t = turn("sess-faults")
    send(bridge, [t])
    # the slow answer is logged when it ends, after the resend that delivered may have been
    # (the resend's own answer is logged just after its events are kept)
    server.wait_for(lambda s: s.observation_ids() >= set(t.span_ids) and len(s.received) >= 5)
    assert [r.status for r in server.received[:5]] == [500, 0, 503, 207, 207]
    assert len(server.observation_ids()) == 3


def test_per_event_server_errors_resend_only_those_events(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    failed_once: set[str] = set()

    def flaky(event: dict[str, Any]) -> tuple[int, str] | None:
        if event["type"] == "generation-create" and event["id"] not in failed_once:
            failed_once.add(event["id"])
            return 500, "Internal Server Error"
        return None

    server.rule = flaky
    bridge = start(start_bridge, tmp_path / "d", server)
    turns = [turn("sess-5xx", index=i) for i in range(3)]
    send(bridge, turns)
    server.wait_for(lambda s: s.observation_ids() >= {x for t in turns for x in t.span_ids})
    first, second = server.received[0], server.received[1]
    assert first.events == 12 and second.events == 3  # only the 3 generations again
    assert len(failed_once) == 3


def _config_file(tmp_path: Path, data_dir: Path, server: IngestionServer) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"storage:\n  data_dir: {data_dir}\n"
        "exporters:\n  - type: ingestion\n"
        f"    base_url: {server.base_url}\n"
        f"    public_key: {server.public_key}\n    secret_key: {server.secret_key}\n"
    )
    return path


def test_per_event_400_is_dead_lettered_and_replayed_after_the_fix(
    server: IngestionServer,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.rule = refuse_tool_spans
    data_dir = tmp_path / "d"
    bridge = start(start_bridge, data_dir, server)
    turns = [turn("sess-dlq", index=i) for i in range(4)]
    send(bridge, turns)
    eventually(lambda: metric(bridge, "session_bridge_exporter_dead_letters", "ingestion") == 4)
    tools = {t.children[1].span_id.hex() for t in turns}
    assert not tools & server.observation_ids()
    assert server.observation_ids() >= {x for t in turns for x in t.span_ids} - tools
    config = _config_file(tmp_path, data_dir, server)

    assert cli.main(["dlq", "list", "--config", str(config), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["span_id"] for r in rows} == tools
    assert all(r["status"] == 400 and "not accepted here" in r["message"] for r in rows)
    assert all(r["session_id"] == "sess-dlq" and r["exporter"] == "ingestion" for r in rows)

    assert cli.main(["dlq", "replay", "--config", str(config)]) == 1  # still refused
    assert "0 delivered, 4 failed again" in capsys.readouterr().out
    server.rule = None  # the endpoint is fixed
    assert cli.main(["dlq", "replay", "--config", str(config)]) == 0
    assert "4 delivered, 0 failed again" in capsys.readouterr().out
    assert server.observation_ids() >= tools
    assert cli.main(["dlq", "list", "--config", str(config)]) == 0
    assert "0 in the dead-letter store" in capsys.readouterr().out


def test_exhausted_retry_budget_dead_letters_then_purge(
    server: IngestionServer,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.down = True
    data_dir = tmp_path / "d"
    bridge = start(start_bridge, data_dir, server)
    bridge.bridge.config.exporters[0].retry.max_elapsed_time = Duration(0.3)
    send(bridge, [turn("sess-budget")])
    eventually(lambda: metric(bridge, "session_bridge_exporter_dead_letters", "ingestion") == 3)
    config = _config_file(tmp_path, data_dir, server)
    assert cli.main(["dlq", "list", "--config", str(config)]) == 0
    assert "gave up after" in capsys.readouterr().out
    assert cli.main(["dlq", "purge", "--config", str(config)]) == 2  # says what to purge
    assert cli.main(["dlq", "purge", "--config", str(config), "--exporter", "ingestion"]) == 0
    assert "purged 3" in capsys.readouterr().out


def test_a_request_over_the_body_limit_is_split(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    server.body_limit = 40_000  # smaller than what the exporter packs
    bridge = start(start_bridge, tmp_path / "d", server)
    turns = [turn("sess-413", index=i) for i in range(20)]
    send(bridge, turns)
    server.wait_for(lambda s: s.observation_ids() >= {x for t in turns for x in t.span_ids})
    assert server.received[0].status == 413
    assert all(r.size <= 40_000 for r in server.received if r.status == 207)


def test_an_oversized_record_is_cut_not_rejected(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    bridge = start(start_bridge, tmp_path / "d", server)
    t = turn("sess-big", payload="x" * 3_000_000)
    send(bridge, [t])
    server.wait_for(lambda s: t.root.span_id.hex() in s.observation_ids())
    root = next(e for e in server.snapshot() if e["body"]["id"] == t.root.span_id.hex())
    assert len(json.dumps(root).encode()) <= 1_000_000
    assert root["body"]["input"].startswith("xxxx")
    assert "[truncated by otel-session-bridge: 3000000 bytes" in root["body"]["input"]
    trace = merged_traces(server.snapshot())[t.trace_id.hex()]
    assert "truncated" in trace["input"]
    assert all(r.size <= 3_500_000 for r in server.received)
    assert TRUNCATED_KEY in json.dumps(root["body"]) or isinstance(root["body"]["metadata"], str)


def test_refused_credentials_keep_everything_queued_and_the_bridge_unhealthy(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    bridge = start(start_bridge, tmp_path / "d", server, secret_key="sk-lf-rotated")
    t = turn("sess-401")
    send(bridge, [t])
    eventually(lambda: bridge.client.get("/readyz").status_code == 503, what="unhealthy")
    assert "credentials" in json.dumps(bridge.client.get("/readyz").json())
    assert metric(bridge, "session_bridge_exporter_healthy", "ingestion") == 0
    assert metric(bridge, "session_bridge_exporter_queue_spans", "ingestion") == 3
    assert metric(bridge, "session_bridge_exporter_dead_letters", "ingestion") == 0
    server.secret_key = "sk-lf-rotated"  # the key the bridge has becomes valid
    server.wait_for(lambda s: s.observation_ids() >= set(t.span_ids))
    eventually(lambda: bridge.client.get("/readyz").status_code == 200, what="healthy again")


def refused_http(bridge: RunningBridge) -> float:
    prefix = 'session_bridge_receiver_refused_spans_total{transport="http"} '
    lines = bridge.client.get("/metrics").text.splitlines()
    return next((float(line[len(prefix) :]) for line in lines if line.startswith(prefix)), 0.0)


def _rich_status(error: grpc.RpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no google.rpc.Status in the trailers")


def test_a_full_queue_refuses_retryably_and_the_sdk_retry_succeeds_later(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    server.down = True
    bridge = start(
        start_bridge,
        tmp_path / "d",
        server,
        queue_capacity=ByteSize(1024),
        max_batch_size=ByteSize(1024),
    )
    first = [turn("sess-full", index=i) for i in range(2)]
    send(bridge, first)  # accepted: the queue had room
    eventually(lambda: metric(bridge, "session_bridge_exporter_queue_size", "ingestion") >= 1024)
    refused = post(bridge, request_of([turn("sess-full")]))
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert "queue_capacity" in status_pb2.Status.FromString(refused.content).message
    with (
        grpc.insecure_channel(bridge.grpc_endpoint) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        TraceServiceStub(channel).Export(request_of([turn("sess-full")]))  # type: ignore[no-untyped-call]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    status = _rich_status(caught.value)
    info = error_details_pb2.RetryInfo()
    assert status.code == code_pb2.UNAVAILABLE and status.details[0].Unpack(info)

    provider = TracerProvider(resource=Resource.create({"service.name": "sdk"}))
    exporter = OTLPSpanExporter(endpoint=f"{bridge.http_url}/v1/traces", timeout=30)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sdk_done = threading.Event()

    def sdk_send() -> None:  # SimpleSpanProcessor exports (and retries) as the span ends
        with provider.get_tracer("t").start_as_current_span(
            "later", attributes={"session.id": "s-sdk"}
        ):
            pass
        sdk_done.set()

    before = refused_http(bridge)
    sender = threading.Thread(target=sdk_send)
    sender.start()
    eventually(lambda: refused_http(bridge) > before, what="the SDK's first attempt refused")
    assert not sdk_done.is_set()
    server.down = False  # the queue drains; the SDK's next attempt is accepted
    sender.join(timeout=40)
    assert sdk_done.is_set()
    provider.shutdown()
    eventually(lambda: bridge.get_session("s-sdk")["span_count"] == 1)
    server.wait_for(lambda s: any(e["body"].get("name") == "later" for e in s.snapshot()))
    assert server.observation_ids() >= {x for t in first for x in t.span_ids}


def test_shutdown_leaves_undelivered_spans_for_the_next_start(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    server.down = True
    bridge = start(start_bridge, tmp_path / "d", server)
    turns = [turn("sess-restart", index=i) for i in range(10)]
    send(bridge, turns)
    eventually(lambda: len(server.received) >= 2, what="attempts")
    started = time.monotonic()
    bridge.stop()
    assert time.monotonic() - started < 10
    server.down = False
    again = start(start_bridge, tmp_path / "d", server)
    server.wait_for(lambda s: s.observation_ids() >= {x for t in turns for x in t.span_ids})
    assert again.get_session("sess-restart")["span_count"] == 30


def test_spans_with_invalid_ids_never_reach_the_log(
    server: IngestionServer, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    bridge = start(start_bridge, tmp_path / "d", server)
    good = proto_span(os.urandom(16), os.urandom(8), "ok", {"session.id": "s-ids"})
    bad = proto_span(os.urandom(16), b"\0" * 8, "zero id", {"session.id": "s-ids"})
    assert post(bridge, proto_request([good, bad])).status_code == 200
    server.wait_for(lambda s: good.span_id.hex() in s.observation_ids())
    assert len(server.observation_ids()) == 1
