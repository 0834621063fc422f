"""OTLP/HTTP receiver: `POST /v1/traces` (and the Langfuse-style alias path).

Answers per the OTLP specification: the response has the request's content
type; errors carry a `google.rpc.Status`; 400 for a malformed body, 413 when
it is too large, 415 for an unsupported content type or encoding, 503 with
`Retry-After` when the client should retry. Content type, key, size and
encoding are checked by the front that logs and metrics pass too.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from session_bridge.enrich.client_address import ClientAddressResolver, RequestInfo
from session_bridge.ingest.pipeline import IngestPipeline, RetryableError
from session_bridge.ingest.prepare import RawRequest
from session_bridge.otlp.codec import DecodeFailure, encode
from session_bridge.receivers.front import Front, error_response

log = logging.getLogger(__name__)

TRACES_PATHS = ("/v1/traces", "/api/public/otel/v1/traces")


def traces_router(
    pipeline: IngestPipeline, front: Front, addresses: ClientAddressResolver
) -> APIRouter:
    router = APIRouter()

    async def export_traces(request: Request) -> Response:
        admitted = await front.admit(request)
        if isinstance(admitted, Response):
            return admitted
        fmt = admitted.fmt
        try:
            client_ip = addresses.resolve(
                request.client.host if request.client else None,
                request.headers.get("forwarded"),
                request.headers.get("x-forwarded-for"),
            )
            raw = RawRequest(admitted.data, fmt, admitted.project_id, RequestInfo(client_ip))
            outcome = await pipeline.export(raw, "http")
        except DecodeFailure as exc:
            return front.refuse(exc, fmt)
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
