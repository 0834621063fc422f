"""OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

The request is taken as raw bytes and parsed here, so that a malformed message
gets INVALID_ARGUMENT (grpcio would answer INTERNAL). Messages over the size
limit are refused by grpcio itself with RESOURCE_EXHAUSTED; gzip- and
deflate-compressed calls are decompressed by grpcio. Other encodings (a Collector's
`compression: zstd`) are refused by grpcio before the bridge sees the call: it knows
no others and takes no codec from Python.
"""

from __future__ import annotations

import logging

import grpc
from google.rpc import code_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from session_bridge.enrich.client_address import (
    ClientAddressResolver,
    grpc_peer_address,
    header,
)
from session_bridge.enrich.stage import RequestInfo
from session_bridge.pipeline import IngestPipeline, RetryableError
from session_bridge.prepare import RawRequest
from session_bridge.receivers.decode import BodyFormat, DecodeFailure
from session_bridge.receivers.front import Front, rich_status

log = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceReceiver:
    def __init__(
        self, pipeline: IngestPipeline, addresses: ClientAddressResolver, front: Front
    ) -> None:
        self._pipeline = pipeline
        self._addresses = addresses
        self._front = front

    async def export(self, body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        project_id = await self._front.grpc_project(context)
        metadata = context.invocation_metadata() or ()
        try:
            client_ip = self._addresses.resolve(
                grpc_peer_address(context.peer()),
                header(metadata, "forwarded"),
                header(metadata, "x-forwarded-for"),
            )
            raw = RawRequest(body, BodyFormat.PROTOBUF, project_id, RequestInfo(client_ip))
            outcome = await self._pipeline.export(raw, "grpc")
        except DecodeFailure as exc:
            await context.abort_with_status(
                rich_status(code_pb2.INVALID_ARGUMENT, f"invalid ExportTraceServiceRequest: {exc}")
            )
        except RetryableError as exc:
            await context.abort_with_status(
                rich_status(code_pb2.UNAVAILABLE, exc.message, exc.retry_after_s)
            )
        except Exception:
            log.exception("failed to process an OTLP/gRPC export")
            await context.abort_with_status(
                rich_status(code_pb2.INTERNAL, "internal error while processing the spans")
            )
        response = ExportTraceServiceResponse()
        if outcome.rejected or outcome.error_message:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.error_message
        return bytes(response.SerializeToString())

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            TRACE_SERVICE,
            {"Export": grpc.unary_unary_rpc_method_handler(self.export)},
        )


def create_server(
    receiver: TraceReceiver, endpoint: str, max_message_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server bound to `endpoint`; returns it and the bound port. A port
    already in use is an error rather than silently shared (no SO_REUSEPORT)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((receiver.handler(),))
    port = server.add_insecure_port(endpoint)
    if port == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {endpoint}")
    return server, port
