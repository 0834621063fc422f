"""An OTLP endpoint the bridge sends to (the `otlp` exporter's `endpoint`), over OTLP/HTTP
(protobuf) or gRPC, with the configured headers and compression; and how its answers
read, per the OTLP specification's retry rules: what to send again, what is final, what
needs a person (credentials, a wrong endpoint), what is too large.

`Upstream` is blocking (the exporter's thread); `AsyncUpstream` serves the logs and
metrics passthrough on the event loop. Both send serialized `Export*ServiceRequest`s.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from enum import Enum
from typing import Any

import grpc
import httpx
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from session_bridge.otlp.status import http_for_code, retry_after_seconds


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    path: str  # OTLP/HTTP
    service: str  # OTLP/gRPC
    request: type[Message]
    response: type[Message]

    @property
    def method(self) -> str:
        return f"/{self.service}/Export"


TRACES = Signal(
    "traces",
    "/v1/traces",
    "opentelemetry.proto.collector.trace.v1.TraceService",
    trace_service_pb2.ExportTraceServiceRequest,
    trace_service_pb2.ExportTraceServiceResponse,
)
LOGS = Signal(
    "logs",
    "/v1/logs",
    "opentelemetry.proto.collector.logs.v1.LogsService",
    logs_service_pb2.ExportLogsServiceRequest,
    logs_service_pb2.ExportLogsServiceResponse,
)
METRICS = Signal(
    "metrics",
    "/v1/metrics",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    metrics_service_pb2.ExportMetricsServiceRequest,
    metrics_service_pb2.ExportMetricsServiceResponse,
)


class Verdict(Enum):
    OK = "ok"
    RETRY = "retry"  # transient: send again later
    BLOCKED = "blocked"  # credentials or a wrong endpoint: keep the data, tell a person
    TOO_LARGE = "too_large"
    FAILED = "failed"  # final


@dataclass(slots=True)
class Answer:
    verdict: Verdict
    status: int  # HTTP status; gRPC codes as the Collector maps them (0: no answer)
    message: str
    body: bytes = b""  # the response message (serialized) when OK
    retry_after_s: float | None = None
    grpc_code: grpc.StatusCode | None = None  # set when the upstream speaks gRPC


PROTOBUF = "application/x-protobuf"
_HTTP_RETRY = frozenset({429, 502, 503, 504})
_HTTP_BLOCKED = frozenset({401, 403, 404, 405, 415})
_GRPC_RETRY = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_GRPC_BLOCKED = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_MESSAGE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """Where and how to send, read once from an `otlp` exporter's configuration."""

    endpoint: str
    grpc: bool
    headers: dict[str, str]
    gzip: bool
    timeout_s: float

    @property
    def grpc_target(self) -> str:
        return self.endpoint.split("://", 1)[-1]

    @property
    def grpc_secure(self) -> bool:
        return self.endpoint.startswith("https://")

    @property
    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple((k.lower(), v) for k, v in self.headers.items() if k.lower() != "user-agent")

    def grpc_channel(self, api: Any) -> Any:
        """A channel from `api` (the `grpc` module, or `grpc.aio`)."""
        if self.grpc_secure:
            return api.secure_channel(self.grpc_target, grpc.ssl_channel_credentials())
        return api.insecure_channel(self.grpc_target)

    def grpc_call(self, channel: Any, signal: Signal) -> tuple[Any, dict[str, Any]]:
        """The raw-bytes Export method of `channel` and the keyword arguments to call it with."""
        method = channel.unary_unary(
            signal.method, request_serializer=None, response_deserializer=None
        )
        options = {
            "timeout": self.timeout_s,
            "metadata": self.grpc_metadata,
            "compression": grpc.Compression.Gzip if self.gzip else None,
        }
        return method, options

    def http_request(self, signal: Signal, body: bytes) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of one OTLP/HTTP export."""
        headers = {**self.headers, "Content-Type": PROTOBUF}
        if self.gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return self.endpoint + signal.path, body, headers

    def describe(self) -> str:
        return f"{self.endpoint} ({'grpc' if self.grpc else 'http/protobuf'})"


def http_answer(response: httpx.Response) -> Answer:
    status = response.status_code
    if 200 <= status < 300:
        return Answer(Verdict.OK, status, "", response.content)
    message = _http_message(response)
    if status in _HTTP_RETRY:
        delay = retry_after_seconds(response.headers.get("retry-after"))
        return Answer(Verdict.RETRY, status, message, retry_after_s=delay)
    if status in _HTTP_BLOCKED:
        return Answer(Verdict.BLOCKED, status, message)
    if status == 413:
        return Answer(Verdict.TOO_LARGE, status, message)
    return Answer(Verdict.FAILED, status, message)


def transport_answer(exc: Exception) -> Answer:
    return Answer(Verdict.RETRY, 0, f"{type(exc).__name__}: {exc}")


def grpc_answer(error: grpc.RpcError) -> Answer:
    code: grpc.StatusCode = error.code()
    message = f"gRPC {code.name}: {error.details() or ''}"[:_MESSAGE_LIMIT]
    delay = _retry_info(error)
    status = http_for_code(code)
    if code in _GRPC_RETRY or (code is grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None):
        return Answer(Verdict.RETRY, status, message, retry_after_s=delay, grpc_code=code)
    if code in _GRPC_BLOCKED:
        return Answer(Verdict.BLOCKED, status, message, grpc_code=code)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Answer(Verdict.TOO_LARGE, status, message, grpc_code=code)
    return Answer(Verdict.FAILED, status, message, grpc_code=code)


def _retry_info(error: grpc.RpcError) -> float | None:
    trailers: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


def _http_message(response: httpx.Response) -> str:
    text = ""
    if response.headers.get("content-type", "").startswith(PROTOBUF):
        try:
            text = status_pb2.Status.FromString(response.content).message
        except DecodeError:
            text = ""
    else:
        text = response.text.strip()
    return (f"HTTP {response.status_code}" + (f": {text}" if text else ""))[:_MESSAGE_LIMIT]


class Upstream:
    """Blocking sends, from one exporter thread."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self._http: httpx.Client | None = None
        self._channel: grpc.Channel | None = None
        if settings.grpc:
            self._channel = settings.grpc_channel(grpc)
        else:
            self._http = httpx.Client(timeout=settings.timeout_s)

    def export(self, signal: Signal, body: bytes) -> Answer:
        if self._channel is not None:
            call, options = self.settings.grpc_call(self._channel, signal)
            try:
                reply = call(body, **options)
            except grpc.RpcError as error:
                return grpc_answer(error)
            return Answer(Verdict.OK, 200, "", bytes(reply))
        assert self._http is not None
        url, payload, headers = self.settings.http_request(signal, body)
        try:
            return http_answer(self._http.post(url, content=payload, headers=headers))
        except httpx.HTTPError as exc:
            return transport_answer(exc)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._channel is not None:
            self._channel.close()


class AsyncUpstream:
    """Sends from the event loop (the logs and metrics passthrough)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(timeout=settings.timeout_s)
        self._channel: grpc.aio.Channel | None = None

    async def export(self, signal: Signal, body: bytes) -> Answer:
        if self.settings.grpc:
            if self._channel is None:  # created on the loop that uses it
                self._channel = self.settings.grpc_channel(grpc.aio)
            call, options = self.settings.grpc_call(self._channel, signal)
            try:
                reply = await call(body, **options)
            except grpc.RpcError as error:
                return grpc_answer(error)
            return Answer(Verdict.OK, 200, "", bytes(reply))
        url, payload, headers = self.settings.http_request(signal, body)
        try:
            return http_answer(await self._http.post(url, content=payload, headers=headers))
        except httpx.HTTPError as exc:
            return transport_answer(exc)

    async def close(self) -> None:
        await self._http.aclose()
        if self._channel is not None:
            await self._channel.close()
