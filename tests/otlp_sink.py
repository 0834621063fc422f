"""A recording OTLP endpoint for the tests: OTLP/HTTP (protobuf, gzip) and OTLP/gRPC for
traces, logs and metrics, on 127.0.0.1; every request is parsed and kept with its
headers. `fail_next` scripts the next HTTP answers."""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.ingestion_server import post_handler

SIGNALS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "traces": ("opentelemetry.proto.collector.trace.v1.TraceService",
               ExportTraceServiceRequest, ExportTraceServiceResponse),
    "logs": ("opentelemetry.proto.collector.logs.v1.LogsService",
             ExportLogsServiceRequest, ExportLogsServiceResponse),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.MetricsService",
                ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}  # fmt: skip


@dataclass
class Recorded:
    signal: str
    transport: str
    message: Any
    headers: dict[str, str]


class OtlpSink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.fail: deque[int] = deque()  # HTTP statuses for the next HTTP requests
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), post_handler(self.answer_http))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.http_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._grpc.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    service,
                    {"Export": grpc.unary_unary_rpc_method_handler(self._grpc_export(name))},
                )
                for name, (service, _, _) in SIGNALS.items()
            )
        )
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self.grpc_endpoint = f"127.0.0.1:{port}"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(0)

    def of(self, signal: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.signal == signal]

    def spans(self) -> list[Any]:
        return [
            span
            for r in self.of("traces")
            for rs in r.message.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def wait_for(self, done: Callable[[OtlpSink], bool], timeout_s: float = 30.0) -> None:
        end = time.monotonic() + timeout_s
        while not done(self):
            if time.monotonic() > end:
                raise AssertionError(f"timed out; {len(self.requests)} requests")
            time.sleep(0.02)

    def _record(self, signal: str, transport: str, body: bytes, headers: dict[str, str]) -> bytes:
        _, request_type, response_type = SIGNALS[signal]
        message = request_type.FromString(body)
        with self.lock:
            self.requests.append(Recorded(signal, transport, message, headers))
        return bytes(response_type().SerializeToString())

    def _grpc_export(self, signal: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def export(body: bytes, context: grpc.ServicerContext) -> bytes:
            headers = {k: str(v) for k, v in context.invocation_metadata()}
            return self._record(signal, "grpc", body, headers)

        return export

    def answer_http(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        with self.lock:
            failure = self.fail.popleft() if self.fail else None
        signal = handler.path.rsplit("/", 1)[-1]
        if failure is not None or signal not in SIGNALS:
            status = failure or 404
            handler.send_response(status)
            if status in (429, 503):
                handler.send_header("Retry-After", "1")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if handler.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        reply = self._record(signal, "http", body, headers)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-protobuf")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)
