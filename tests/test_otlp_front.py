"""The receivers' one front, over real sockets: every signal and transport is checked
the same way (key, size, content type, encodings), and a gRPC client on the HTTP port
is told what to set."""

from __future__ import annotations

import gzip
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import cramjam
import grpc
import lz4.frame
import pytest

from session_bridge.config import BridgeConfig
from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import new_span_id, new_trace_id, proto_request, proto_span
from tests.test_api_auth import ACME_BEARER, KEYS

PROTO = {"Content-Type": "application/x-protobuf"}
PATHS = ("/v1/traces", "/v1/logs", "/v1/metrics")
SERVICES = (
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
)
LIMIT = 64 * 1024


def _one_span(session: str) -> bytes:
    span = proto_span(
        bytes.fromhex(new_trace_id()), bytes.fromhex(new_span_id()), "chat", {"session.id": session}
    )
    return proto_request([span]).SerializeToString()


@pytest.fixture
def keyed(start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path) -> RunningBridge:
    config = make_config(tmp_path / "keyed", auth={"api_keys": KEYS})
    config.receivers.otlp.auth = "required"
    config.receivers.otlp.max_request_body_size = LIMIT  # type: ignore[assignment]
    return start_bridge(config)


@pytest.mark.parametrize("path", PATHS)
def test_every_signal_needs_the_key_over_http(keyed: RunningBridge, path: str) -> None:
    refused = keyed.client.post(path, content=b"", headers=PROTO)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Basic, Bearer"
    assert keyed.client.post(path, content=b"", headers={**PROTO, **ACME_BEARER}).status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_every_signal_needs_the_key_over_grpc(keyed: RunningBridge, service: str) -> None:
    with grpc.insecure_channel(keyed.grpc_endpoint) as channel:
        export = channel.unary_unary(f"/{service}/Export")
        with pytest.raises(grpc.RpcError) as caught:
            export(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        export(b"", metadata=(("authorization", ACME_BEARER["Authorization"]),), timeout=10)


def _raw_post(bridge: RunningBridge, path: str, head: str, body: bytes) -> bytes:
    """Sends a request head and part of a body that never ends; returns what comes back."""
    host, port = bridge.http_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            f"Authorization: {ACME_BEARER['Authorization']}\r\n{head}\r\n".encode()
            + body
        )
        return sock.recv(65536)


@pytest.mark.parametrize("path", PATHS)
def test_a_body_over_the_limit_is_413_before_it_is_read_whole(
    keyed: RunningBridge, path: str
) -> None:
    declared = _raw_post(keyed, path, f"Content-Length: {1 << 30}\r\n", b"\0" * 1024)
    assert declared.startswith(b"HTTP/1.1 413")
    chunk = b"\0" * 16384
    chunked = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 5  # past the limit, never ended
    streamed = _raw_post(keyed, path, "Transfer-Encoding: chunked\r\n", chunked)
    assert streamed.startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("path", PATHS)
def test_wrong_content_type_and_unknown_encoding_are_415(keyed: RunningBridge, path: str) -> None:
    wrong = keyed.client.post(
        path, content=b"x", headers={"Content-Type": "text/plain", **ACME_BEARER}
    )
    assert wrong.status_code == 415
    assert "text/plain" in wrong.json()["message"]
    unknown = keyed.client.post(
        path, content=b"x", headers={**PROTO, **ACME_BEARER, "Content-Encoding": "br"}
    )
    assert unknown.status_code == 415
    for encoding in ("gzip", "zstd", "snappy", "lz4"):
        assert encoding in unknown.headers["accept-encoding"]


_ENCODERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "snappy-block": ("snappy", lambda raw: bytes(cramjam.snappy.compress_raw(raw))),
    "snappy-framed": ("snappy", lambda raw: bytes(cramjam.snappy.compress(raw))),
    "x-snappy-framed": ("x-snappy-framed", lambda raw: bytes(cramjam.snappy.compress(raw))),
    "lz4": ("lz4", lz4.frame.compress),
}


@pytest.mark.parametrize("form", list(_ENCODERS))
def test_collector_encodings_are_accepted_and_bounded(keyed: RunningBridge, form: str) -> None:
    encoding, encoder = _ENCODERS[form]
    session = f"s-{form}"
    accepted = keyed.client.post(
        "/v1/traces",
        content=encoder(_one_span(session)),
        headers={**PROTO, **ACME_BEARER, "Content-Encoding": encoding},
    )
    assert accepted.status_code == 200, accepted.text
    bomb = encoder(b"\0" * (LIMIT * 16))
    assert len(bomb) < LIMIT
    refused = keyed.client.post(
        "/v1/logs", content=bomb, headers={**PROTO, **ACME_BEARER, "Content-Encoding": encoding}
    )
    assert refused.status_code == 413
    damaged = keyed.client.post(
        "/v1/metrics",
        content=encoder(b"abc" * 100)[:-5],
        headers={**PROTO, **ACME_BEARER, "Content-Encoding": encoding},
    )
    assert damaged.status_code == 400


def test_a_grpc_client_on_the_http_port_is_told_what_to_set(
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = start_bridge(make_config(tmp_path / "h2"))
    target = bridge.http_url.removeprefix("http://")
    with (
        caplog.at_level(logging.WARNING, "session_bridge.receivers.first_contact"),
        grpc.insecure_channel(target) as channel,
        pytest.raises(grpc.RpcError),
    ):
        channel.unary_unary(f"/{SERVICES[0]}/Export")(_one_span("s-h2"), timeout=5)
    assert any(
        "gRPC/HTTP2 to the OTLP/HTTP port" in r.message
        and "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in r.message
        for r in caplog.records
    )
    # an HTTP/1.1 request still works after the look at the opening bytes
    assert (
        bridge.client.post(
            "/v1/traces", content=gzip.compress(b""), headers={**PROTO, "Content-Encoding": "gzip"}
        ).status_code
        == 200
    )
