"""OTLP/HTTP receiver: `POST /v1/traces` (and the Langfuse-style alias path).

Answers per the OTLP specification: the response has the request's content
type; errors carry a `google.rpc.Status`; 400 for a malformed body, 413 when
it is too large, 415 for an unsupported content type or encoding, 503 with
`Retry-After` when the client should retry.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from session_bridge.enrich.client_address import ClientAddressResolver
from session_bridge.enrich.stage import RequestInfo
from session_bridge.keys import IngestAuth, UnauthenticatedError
from session_bridge.pipeline import IngestPipeline, RetryableError
from session_bridge.prepare import RawRequest
from session_bridge.receivers.decode import (
    SUPPORTED_ENCODINGS,
    BodyFormat,
    DecodeFailure,
    body_format,
    decompress,
    encode,
)
from session_bridge.telemetry import BridgeMetrics

log = logging.getLogger(__name__)

TRACES_PATHS = ("/v1/traces", "/api/public/otel/v1/traces")
_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    413: code_pb2.RESOURCE_EXHAUSTED,
}


def error_response(
    status: int, message: str, fmt: BodyFormat, headers: dict[str, str] | None = None
) -> Response:
    body = status_pb2.Status(code=_CODES.get(status, code_pb2.UNKNOWN), message=message)
    if status == 503:
        body.code = code_pb2.UNAVAILABLE
    elif status >= 500:
        body.code = code_pb2.INTERNAL
    return Response(encode(body, fmt), status_code=status, media_type=fmt.value, headers=headers)


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


def traces_router(
    pipeline: IngestPipeline,
    metrics: BridgeMetrics,
    max_body_bytes: int,
    addresses: ClientAddressResolver,
    auth: IngestAuth,
) -> APIRouter:
    router = APIRouter()

    async def export_traces(request: Request) -> Response:
        fmt = body_format(request.headers.get("content-type"))
        if fmt is None:
            metrics.failed_requests.labels("http", "content_type").inc()
            return error_response(
                415,
                f"unsupported Content-Type {request.headers.get('content-type')!r}; "
                f"use {BodyFormat.PROTOBUF.value} or {BodyFormat.JSON.value}",
                BodyFormat.JSON,
            )
        try:
            project_id = auth.project(request.headers.get("authorization"))
        except UnauthenticatedError as exc:
            metrics.failed_requests.labels("http", "401").inc()
            return error_response(401, exc.message, fmt, {"WWW-Authenticate": "Basic, Bearer"})
        try:
            body = await _read_body(request, max_body_bytes)
            data = decompress(body, request.headers.get("content-encoding"), max_body_bytes)
            client_ip = addresses.resolve(
                request.client.host if request.client else None,
                request.headers.get("forwarded"),
                request.headers.get("x-forwarded-for"),
            )
            raw = RawRequest(data, fmt, project_id, RequestInfo(client_ip))
            outcome = await pipeline.export(raw, "http")
        except DecodeFailure as exc:
            metrics.failed_requests.labels("http", str(exc.status)).inc()
            headers = (
                {"Accept-Encoding": ", ".join(SUPPORTED_ENCODINGS)} if exc.status == 415 else None
            )
            return error_response(exc.status, exc.message, fmt, headers)
        except RetryableError as exc:
            return error_response(503, exc.message, fmt, {"Retry-After": str(exc.retry_after_s)})
        except Exception:
            log.exception("failed to process an OTLP/HTTP export")
            return error_response(500, "internal error while processing the spans", fmt)
        response = ExportTraceServiceResponse()
        if outcome.rejected or outcome.error_message:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.error_message
        return Response(encode(response, fmt), media_type=fmt.value)

    for path in TRACES_PATHS:
        router.add_api_route(
            path,
            export_traces,
            methods=["POST"],
            include_in_schema=False,
            name=f"otlp_traces{path.replace('/', '_')}",
        )
    return router
