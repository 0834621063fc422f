"""The load senders: gRPC (``TraceService/Export``) and HTTP (``POST /v1/traces``,
``application/x-protobuf``) clients that send pre-built requests to 127.0.0.1, and the loop
that keeps N of them in flight until a deadline or a request count.

gRPC uses the generated stub on a channel wrapper with identity (de)serializers, so it sends
the pre-serialized bytes; `--channels` connections are shared round-robin by the workers.
HTTP opens one keep-alive connection per worker, a minimal HTTP/1.1 client over a raw socket
whose request head is pre-built too.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from processes import cpu_jiffies

HOST = "127.0.0.1"  # the only host this tool ever targets
HTTP_PATH = "/v1/traces"

Sender = Callable[[bytes], tuple[bool, str, int]]
"""Sends one request; returns (accepted, error text, spans rejected via partial_success)."""


def _rejected(response: bytes) -> int:
    if not response:
        return 0
    msg = trace_service_pb2.ExportTraceServiceResponse.FromString(response)
    return int(msg.partial_success.rejected_spans)


class _IdentityChannel:
    """Wraps a channel so a generated stub sends and returns raw bytes (no (de)serializer)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        return self._channel.unary_unary(method, _registered_method=_registered_method)


class GrpcClient:
    def __init__(self, port: int, timeout: float) -> None:
        self.channel = grpc.insecure_channel(
            f"{HOST}:{port}",
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                # its own TCP connection: grpc-core otherwise shares one between channels
                # to the same target, and `--channels` would not mean several clients
                ("grpc.use_local_subchannel_pool", 1),
            ],
        )
        grpc.channel_ready_future(self.channel).result(timeout=timeout)
        # the generated stub, on a channel wrapper that drops its (de)serializers
        self.stub = trace_service_pb2_grpc.TraceServiceStub(  # type: ignore[no-untyped-call]
            _IdentityChannel(self.channel)
        )
        self.timeout = timeout

    def sender(self) -> Sender:
        export = self.stub.Export
        timeout = self.timeout

        def send(body: bytes) -> tuple[bool, str, int]:
            try:
                response = export(body, timeout=timeout)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                return False, f"grpc {code.name if code else exc!r}", 0
            return True, "", _rejected(response)

        return send

    def close(self) -> None:
        self.channel.close()


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client over a raw socket (one per worker thread)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def _read_until(self, sock: socket.socket, marker: bytes) -> int:
        while (pos := self.buf.find(marker)) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by server")
            self.buf += chunk
        return pos

    def _read_exact(self, sock: socket.socket, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed by server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def request(self, payload: bytes) -> tuple[int, bytes]:
        """Send a complete pre-built HTTP request; return (status, body)."""
        sock = self.sock or self._connect()
        sock.sendall(payload)
        end = self._read_until(sock, b"\r\n\r\n")
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4 :]
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exact(sock, int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                end = self._read_until(sock, b"\r\n")
                size = int(self.buf[:end].split(b";")[0], 16)
                self.buf = self.buf[end + 2 :]
                chunks.append(self._read_exact(sock, size + 2)[:size])
                if size == 0:
                    break
            body = b"".join(chunks)
        else:  # body delimited by connection close
            body = self.buf
            while chunk := sock.recv(65536):
                body += chunk
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


def http_prefix(port: int, body_size: int) -> bytes:
    return (
        f"POST {HTTP_PATH} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "User-Agent: session-bridge-loadgen/1\r\n"
        "Content-Type: application/x-protobuf\r\n"
        "Accept: application/x-protobuf\r\n"
        f"Content-Length: {body_size}\r\n"
        "\r\n"
    ).encode("ascii")


def http_sender(port: int, timeout: float) -> tuple[Sender, Callable[[], None]]:
    conn = HttpConnection(port, timeout)

    def send(payload: bytes) -> tuple[bool, str, int]:
        try:
            status, body = conn.request(payload)
        except (OSError, ValueError, IndexError) as exc:
            conn.close()
            return False, f"http {type(exc).__name__}: {exc}", 0
        if status != 200:
            return False, f"http {status}", 0
        try:
            return True, "", _rejected(body)
        except Exception:  # a non-protobuf 200 body still counts as accepted
            return True, "", 0

    return send, conn.close


def open_senders(
    transport: str, ports: Sequence[int], concurrency: int, channels: int, timeout: float
) -> tuple[list[Sender], Callable[[], None]]:
    """`concurrency` senders spread round-robin over `ports` (bridge replicas), and what
    closes them all."""
    # gRPC: `channels` connections shared round-robin by the workers, as several
    # SDK exporters would open (HTTP opens one keep-alive connection per worker anyway)
    grpc_clients = (
        [
            GrpcClient(ports[n % len(ports)], timeout)
            # the same number of connections to every port
            for n in range(-(-min(channels, concurrency) // len(ports)) * len(ports))
        ]
        if transport == "grpc"
        else []
    )
    senders: list[Sender] = []
    closers: list[Callable[[], None]] = [client.close for client in grpc_clients]
    for n in range(concurrency):
        if grpc_clients:
            senders.append(grpc_clients[n % len(grpc_clients)].sender())
        else:
            send, close = http_sender(ports[n % len(ports)], timeout)
            senders.append(send)
            closers.append(close)

    def close_all() -> None:
        for close in closers:
            close()

    return senders, close_all


# --------------------------------------------------------------------------- the loop


@dataclass
class WorkerStats:
    ok: int = 0
    spans: int = 0
    rejected: int = 0
    errors: int = 0
    error_samples: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


@dataclass
class Load:
    """What one timed load did."""

    stats: list[WorkerStats]
    elapsed_s: float
    cpu_s: float  # this process's CPU time meanwhile
    jiffies: list[int]  # /proc/stat's counters meanwhile (`cpu_jiffies`)
    stopped_by: str  # "time" or "requests"


def send_load(
    senders: Sequence[Sender],
    build: Callable[[int], tuple[bytes, int]],
    seconds: float,
    max_requests: int,
) -> Load:
    """Each sender in a thread of its own sends requests `build(0)`, `build(1)`, ... one at
    a time, until `seconds` have passed or `max_requests` were sent."""
    counter: Iterator[int] = itertools.count()
    start_gate = threading.Event()
    stats = [WorkerStats() for _ in senders]
    deadline = 0.0
    stopped_by = "time"

    def worker(send: Sender, st: WorkerStats) -> None:
        nonlocal stopped_by
        start_gate.wait()
        perf = time.perf_counter
        lat = st.latencies
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= max_requests:
                stopped_by = "requests"
                return
            if perf() >= deadline:
                return
            payload, n = build(i)
            t0 = perf()
            ok, err, rejected = send(payload)
            lat.append(perf() - t0)
            if ok:
                st.ok += 1
                st.spans += n
                st.rejected += rejected
            else:
                st.errors += 1
                st.error_samples[err] = st.error_samples.get(err, 0) + 1

    threads = [
        threading.Thread(target=worker, args=(s, st), daemon=True)
        for s, st in zip(senders, stats, strict=True)
    ]
    for th in threads:
        th.start()
    jiffies0 = cpu_jiffies()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    start_gate.set()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    jiffies = [b - a for a, b in zip(jiffies0, cpu_jiffies(), strict=True)]
    return Load(stats, elapsed, cpu, jiffies, stopped_by)
