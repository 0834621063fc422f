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
import socket

import grpc
from google.rpc import code_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from session_bridge.enrich.client_address import (
    ClientAddressResolver,
    RequestInfo,
    grpc_peer_address,
    header,
)
from session_bridge.ingest.pipeline import IngestPipeline, RetryableError
from session_bridge.ingest.prepare import RawRequest
from session_bridge.otlp.codec import BodyFormat, DecodeFailure
from session_bridge.receivers.config import GrpcConfig, split_endpoint
from session_bridge.receivers.front import Front, rich_status
from session_bridge.receivers.tls import TlsFiles, grpc_credentials

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


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_options(config: GrpcConfig, max_message_bytes: int) -> list[tuple[str, int]]:
    """grpcio channel arguments for the Collector-style settings of `config`."""
    params = config.keepalive.server_parameters
    policy = config.keepalive.enforcement_policy
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
        ("grpc.max_concurrent_streams", config.max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", config.max_connections),
        ("grpc.keepalive_time_ms", _ms(params.time)),
        ("grpc.keepalive_timeout_ms", _ms(params.timeout)),
        ("grpc.http2.min_ping_interval_without_data_ms", round(policy.min_time * 1000)),
        ("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)),
    ]
    if params.max_connection_idle:
        options.append(("grpc.max_connection_idle_ms", _ms(params.max_connection_idle)))
    if params.max_connection_age:
        options.append(("grpc.max_connection_age_ms", _ms(params.max_connection_age)))
    if params.max_connection_age_grace:
        options.append(("grpc.max_connection_age_grace_ms", _ms(params.max_connection_age_grace)))
    return options


def create_server(
    receiver: TraceReceiver, config: GrpcConfig, max_message_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server bound to `config.endpoint`, with TLS when `config.tls` has a
    certificate; returns it and the bound port. A port already in use is an error rather
    than silently shared (no SO_REUSEPORT)."""
    _check_free(config.endpoint)
    server = grpc.aio.server(options=server_options(config, max_message_bytes))
    server.add_generic_rpc_handlers((receiver.handler(),))
    try:
        if config.tls.enabled:
            credentials = grpc_credentials(TlsFiles(config.tls))
            port = server.add_secure_port(config.endpoint, credentials)
        else:
            port = server.add_insecure_port(config.endpoint)
    except RuntimeError as exc:  # grpc's "Failed to bind to address ..."
        raise OSError(f"cannot listen for OTLP/gRPC on {config.endpoint}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {config.endpoint}")
    return server, port


def _check_free(endpoint: str) -> None:
    """Bind and release `endpoint` first: a port in use becomes one clear line (grpc
    would log it from C and raise a generic RuntimeError)."""
    host, port = split_endpoint(endpoint)
    if port == 0:
        return
    fail = f"cannot listen for OTLP/gRPC on {endpoint}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise OSError(f"{fail}: {exc.strerror or exc}") from exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise OSError(f"{fail}: {exc.strerror}") from exc
