"""The listeners' connection limits over real sockets: header, body and idle timeouts,
the connection caps, and TCP_NODELAY on accepted sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from session_bridge.config import BridgeConfig, Duration
from tests.conftest import RunningBridge, make_config
from tests.export_helpers import eventually

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GIVE_UP_S = 15.0  # far beyond every timeout configured here: only a hung test reaches it


def _config(tmp_path: Path, **http: object) -> BridgeConfig:
    config = make_config(tmp_path / "data")
    for key, value in http.items():
        setattr(config.receivers.otlp.protocols.http, key, value)
    return config


def _connect(bridge: RunningBridge) -> socket.socket:
    host, port = bridge.http_url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=GIVE_UP_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    received = b""
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the connection was not closed; got {received!r}")


def _trickle_until_closed(sock: socket.socket, data: bytes) -> bytes:
    """Send `data` a byte at a time, as a slowloris client does, until the server closes
    the connection; returns what it sent back."""
    sock.settimeout(0.05)  # how often a byte goes out, not a measured time
    received = b""
    deadline = time.monotonic() + GIVE_UP_S
    index = 0
    while time.monotonic() < deadline:
        try:
            sock.sendall(data[index % len(data) : index % len(data) + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        index += 1
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    else:
        raise AssertionError("the connection was not closed")
    sock.settimeout(GIVE_UP_S)
    return received + _read_until_closed(sock)


def _get(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One keep-alive GET; returns the response (headers and a Content-Length body)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bridge\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {response!r}"
        response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ).split(b":")[1]
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_slowloris_headers_are_cut_after_read_header_timeout(
    tmp_path: Path,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    sockets: list[socket.socket],
) -> None:
    bridge = start_bridge(_config(tmp_path, read_header_timeout=0.5, read_timeout=60))
    sock = _connect(bridge)
    sockets.append(sock)
    header = b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nX-Padding: " + b"a" * 10_000
    answer = _trickle_until_closed(sock, header)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"read_header_timeout" in answer


def test_a_connection_that_sends_nothing_is_closed_after_read_header_timeout(
    tmp_path: Path,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    sockets: list[socket.socket],
) -> None:
    bridge = start_bridge(_config(tmp_path, read_header_timeout=0.5, idle_timeout=60))
    sock = _connect(bridge)
    sockets.append(sock)
    assert _read_until_closed(sock) == b""  # nothing was asked: nothing to answer


def test_a_chunked_body_that_never_ends_is_cut_after_read_timeout(
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    sockets: list[socket.socket],
) -> None:
    bridge = start_bridge(_config(tmp_path, read_header_timeout=60, read_timeout=1))
    sock = _connect(bridge)
    sockets.append(sock)
    sock.sendall(
        b"POST /v1/traces HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-protobuf\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer = _trickle_until_closed(sock, b"1\r\n\x0a\r\n")  # one-byte chunks, never the last
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"read_timeout" in answer
    # the bridge still serves everyone else
    assert bridge.client.get("/healthz").status_code == 200
    # and the handler saw a client gone mid-body, not an error of its own
    eventually(
        lambda: 'reason="disconnected",transport="http"} 1.0' in bridge.client.get("/metrics").text,
        what="the cut body counted as a disconnection",
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_idle_kept_alive_connection_is_closed_after_idle_timeout(
    tmp_path: Path,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    sockets: list[socket.socket],
) -> None:
    bridge = start_bridge(_config(tmp_path, read_header_timeout=60, idle_timeout=0.5))
    sock = _connect(bridge)
    sockets.append(sock)
    assert _get(sock).startswith(b"HTTP/1.1 200 ")
    assert _get(sock).startswith(b"HTTP/1.1 200 ")  # kept alive between requests
    assert _read_until_closed(sock) == b""


def test_connections_beyond_max_connections_are_closed_at_once(
    tmp_path: Path,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    sockets: list[socket.socket],
) -> None:
    bridge = start_bridge(_config(tmp_path, max_connections=3))
    held = [_connect(bridge) for _ in range(3)]
    sockets.extend(held)
    for sock in held:  # answered: each one is accepted and counted
        assert _get(sock).startswith(b"HTTP/1.1 200 ")
    extra = _connect(bridge)
    sockets.append(extra)
    assert _read_until_closed(extra) == b""
    assert _get(held[0]).startswith(b"HTTP/1.1 200 ")  # the ones held still work
    held[1].close()
    deadline = time.monotonic() + GIVE_UP_S  # once the server saw the close, there is room
    while True:
        retry = _connect(bridge)
        sockets.append(retry)
        try:
            if _get(retry).startswith(b"HTTP/1.1 200 "):
                break
        except (AssertionError, ConnectionResetError):
            assert time.monotonic() < deadline, "no room after a connection was closed"


def test_accepted_http_sockets_have_tcp_nodelay(
    tmp_path: Path,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    sockets: list[socket.socket],
) -> None:
    bridge = start_bridge(_config(tmp_path))
    sock = _connect(bridge)
    sockets.append(sock)
    assert _get(sock).startswith(b"HTTP/1.1 200 ")
    server = bridge.bridge._http
    assert server is not None
    connections = list(server.server_state.connections)
    assert connections
    for protocol in connections:
        accepted = protocol.transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def _grpc_call(target: str) -> grpc.StatusCode | None:
    async def call() -> grpc.StatusCode | None:
        async with grpc.aio.insecure_channel(
            target, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            try:
                await channel.unary_unary(EXPORT)(b"", timeout=GIVE_UP_S)
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return None

    return asyncio.run(call())


def test_grpc_connections_beyond_max_connections_are_refused(
    tmp_path: Path, start_bridge: Callable[[BridgeConfig], RunningBridge]
) -> None:
    config = make_config(tmp_path / "data")
    config.receivers.otlp.protocols.grpc.max_connections = 1

    async def scenario(target: str) -> tuple[grpc.StatusCode | None, grpc.StatusCode | None]:
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(target, options=options) as held:
            await held.unary_unary(EXPORT)(b"", timeout=GIVE_UP_S)  # connected, counted
            async with grpc.aio.insecure_channel(target, options=options) as extra:
                try:
                    await extra.unary_unary(EXPORT)(b"", timeout=GIVE_UP_S)
                    refused = None
                except grpc.aio.AioRpcError as exc:
                    refused = exc.code()
            try:
                await held.unary_unary(EXPORT)(b"", timeout=GIVE_UP_S)
                still = None
            except grpc.aio.AioRpcError as exc:
                still = exc.code()
        return refused, still

    bridge = start_bridge(config)
    refused, still = asyncio.run(scenario(bridge.grpc_endpoint))
    assert refused == grpc.StatusCode.UNAVAILABLE
    assert still is None
    deadline = time.monotonic() + GIVE_UP_S  # once the server saw the close, there is room
    while _grpc_call(bridge.grpc_endpoint) is not None:
        assert time.monotonic() < deadline, "no room after the gRPC connection was closed"


def test_an_idle_grpc_connection_is_closed_after_max_connection_idle(
    tmp_path: Path, start_bridge: Callable[[BridgeConfig], RunningBridge]
) -> None:
    config = make_config(tmp_path / "data")
    keepalive = config.receivers.otlp.protocols.grpc.keepalive
    keepalive.server_parameters.max_connection_idle = Duration(0.5)

    async def scenario(target: str) -> grpc.ChannelConnectivity:
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            await channel.unary_unary(EXPORT)(b"", timeout=GIVE_UP_S)
            assert channel.get_state() == grpc.ChannelConnectivity.READY
            async with asyncio.timeout(GIVE_UP_S):  # the server's GOAWAY makes it idle
                await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
            return channel.get_state()

    bridge = start_bridge(config)
    assert asyncio.run(scenario(bridge.grpc_endpoint)) == grpc.ChannelConnectivity.IDLE
