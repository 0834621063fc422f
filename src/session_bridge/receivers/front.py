"""The front every OTLP request passes before its signal's handler: traces, logs and
metrics, over HTTP and gRPC alike.

OTLP/HTTP: the content type (415), the API key (401 with `WWW-Authenticate`), the
body read up to the size limit (413), its decompression within the same limit (415
with `Accept-Encoding` for an unknown encoding, 400 for a damaged body). OTLP/gRPC:
the API key (UNAUTHENTICATED); grpcio itself bounds the message and decompresses it.
Errors carry a `google.rpc.Status` whose code matches the HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fastapi import Request, Response
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.requests import ClientDisconnect

from session_bridge.enrich.client_address import header
from session_bridge.keys import IngestAuth, UnauthenticatedError
from session_bridge.otlp.codec import (
    SUPPORTED_ENCODINGS,
    BodyFormat,
    DecodeFailure,
    body_format,
    decompress,
    encode,
)
from session_bridge.otlp.status import code_for_http
from session_bridge.telemetry import BridgeMetrics


def error_response(
    status: int, message: str, fmt: BodyFormat, headers: dict[str, str] | None = None
) -> Response:
    body = status_pb2.Status(code=code_for_http(status), message=message)
    return Response(encode(body, fmt), status_code=status, media_type=fmt.value, headers=headers)


def rich_status(code: int, message: str, retry_after_s: int | None = None) -> grpc.Status:
    """A gRPC status with its `google.rpc.Status` (and RetryInfo, when to retry) attached."""
    status = status_pb2.Status(code=code, message=message)
    if retry_after_s is not None:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after_s))
        )
        status.details.append(detail)
    return rpc_status.to_status(status)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request the front let through: its body decompressed, and whose it is."""

    data: bytes
    fmt: BodyFormat
    project_id: str


@dataclass(frozen=True, slots=True)
class Front:
    auth: IngestAuth
    max_body_bytes: int
    metrics: BridgeMetrics

    async def admit(self, request: Request) -> Admitted | Response:
        """The request's body and project, or the error response to answer with."""
        fmt = body_format(request.headers.get("content-type"))
        if fmt is None:
            self.metrics.failed_requests.labels("http", "content_type").inc()
            return error_response(
                415,
                f"unsupported Content-Type {request.headers.get('content-type')!r}; "
                f"use {BodyFormat.PROTOBUF.value} or {BodyFormat.JSON.value}",
                BodyFormat.JSON,
            )
        try:
            project_id = self.auth.project(request.headers.get("authorization"))
        except UnauthenticatedError as exc:
            self.metrics.failed_requests.labels("http", "401").inc()
            return error_response(401, exc.message, fmt, {"WWW-Authenticate": "Basic, Bearer"})
        try:
            body = await _read_body(request, self.max_body_bytes)
            data = decompress(body, request.headers.get("content-encoding"), self.max_body_bytes)
        except DecodeFailure as exc:
            return self.refuse(exc, fmt)
        except ClientDisconnect:  # gone mid-body (or cut by read_timeout): nobody to answer
            self.metrics.failed_requests.labels("http", "disconnected").inc()
            return error_response(400, "the client disconnected before the body ended", fmt)
        return Admitted(data, fmt, project_id)

    def refuse(self, failure: DecodeFailure, fmt: BodyFormat) -> Response:
        """The answer to a body that cannot be used (read, decompressed or parsed)."""
        self.metrics.failed_requests.labels("http", str(failure.status)).inc()
        headers = None
        if failure.status == 415:
            headers = {"Accept-Encoding": ", ".join(SUPPORTED_ENCODINGS)}
        return error_response(failure.status, failure.message, fmt, headers)

    async def grpc_project(self, context: grpc.aio.ServicerContext) -> str:
        """The project of the call's API key; aborts the call with UNAUTHENTICATED."""
        metadata = context.invocation_metadata() or ()
        try:
            return self.auth.project(header(metadata, "authorization"))
        except UnauthenticatedError as exc:
            self.metrics.failed_requests.labels("grpc", "401").inc()
            await context.abort_with_status(rich_status(code_pb2.UNAUTHENTICATED, exc.message))
            raise AssertionError("unreachable") from exc  # abort_with_status raises


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise DecodeFailure(413, f"request body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise DecodeFailure(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
