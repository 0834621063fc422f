"""OTLP/gRPC receiver against the OTLP specification, over a real socket."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from session_bridge.config import ByteSize
from session_bridge.store.config import StorageConfig
from tests.conftest import RunningBridge, WriteBlocker, make_config
from tests.otlp_builders import proto_request, proto_span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def channel(bridge: RunningBridge) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(bridge.grpc_endpoint) as ch:
        yield ch


def _raw_call(channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)


def _rich_status(error: grpc.RpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no google.rpc.Status in the trailers")


def test_export_with_gzip(bridge: RunningBridge, channel: grpc.Channel) -> None:
    request = proto_request(
        [
            proto_span(
                os.urandom(16),
                os.urandom(8),
                "chat",
                {"session.id": "s-gz", "gen_ai.operation.name": "chat"},
            )
        ]
    )
    response = TraceServiceStub(channel).Export(request, compression=grpc.Compression.Gzip)  # type: ignore[no-untyped-call]
    assert response == ExportTraceServiceResponse()
    assert bridge.get_session("s-gz")["genai_usage"]["request_count"] == 1


def test_malformed_message_is_invalid_argument(
    bridge: RunningBridge, channel: grpc.Channel
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _raw_call(channel)(b"\xff\xff\xff\x0f not a protobuf")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in caught.value.details()


def test_partial_success(bridge: RunningBridge, channel: grpc.Channel) -> None:
    request = proto_request(
        [
            proto_span(os.urandom(16), os.urandom(8), "ok", {"session.id": "s-gp"}),
            proto_span(os.urandom(16), b"\0" * 8, "zero span id", {"session.id": "s-gp"}),
            proto_span(os.urandom(16), os.urandom(8), "bad parent", {}, parent=b"\1\2\3"),
        ]
    )
    response = TraceServiceStub(channel).Export(request)  # type: ignore[no-untyped-call]
    assert response.partial_success.rejected_spans == 2
    assert "span_id" in response.partial_success.error_message
    assert "parent_span_id" in response.partial_success.error_message
    assert bridge.get_session("s-gp")["span_count"] == 1


def test_message_over_limit_is_resource_exhausted(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path
) -> None:
    config = make_config(tmp_path / "small")
    config.receivers.otlp.max_request_body_size = ByteSize(64 * 1024)
    small = bridge_factory(config=config)
    big = proto_request(
        [proto_span(os.urandom(16), os.urandom(8), "x" * 70_000, {"session.id": "s-big"})]
    )
    with grpc.insecure_channel(small.grpc_endpoint) as ch, pytest.raises(grpc.RpcError) as caught:
        TraceServiceStub(ch).Export(big)  # type: ignore[no-untyped-call]
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _wait_for_metric(bridge: RunningBridge, line: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if line in bridge.client.get("/metrics").text:
            return
        time.sleep(0.02)
    raise AssertionError(f"metric {line!r} never appeared")


def test_overload_is_retryable_on_both_transports(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path, storage: StorageConfig
) -> None:
    config = make_config(tmp_path / "busy")
    config.receivers.otlp.max_pending_requests = 1
    busy = bridge_factory(config=config)
    # Another process-level writer holds the database: the bridge's write has to wait.
    blocker = WriteBlocker(storage, tmp_path / "busy")
    first = proto_request(
        [proto_span(os.urandom(16), os.urandom(8), "a", {"session.id": "s-busy"})]
    )
    results: dict[str, object] = {}
    with grpc.insecure_channel(busy.grpc_endpoint) as ch:
        stub = TraceServiceStub(ch)  # type: ignore[no-untyped-call]
        waiting = threading.Thread(target=lambda: results.setdefault("first", stub.Export(first)))
        waiting.start()
        _wait_for_metric(busy, "session_bridge_receiver_pending_requests 1.0")

        second = proto_request(
            [proto_span(os.urandom(16), os.urandom(8), "b", {"session.id": "s-busy"})]
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.Export(second)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        status = _rich_status(caught.value)
        assert status.code == code_pb2.UNAVAILABLE
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        assert retry.retry_delay.seconds >= 1

        response = busy.client.post(
            "/v1/traces",
            content=second.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert status_pb2.Status.FromString(response.content).code == code_pb2.UNAVAILABLE

        blocker.release()
        waiting.join(timeout=30)
    assert results["first"] == ExportTraceServiceResponse()
    assert busy.get_session("s-busy")["span_count"] == 1  # only what was acknowledged
