"""OTLP logs and metrics, passed through to the `otlp` exporter's endpoint.

An application that points all its OTLP exporters at the bridge loses no signal: the
bridge serves `/v1/logs` and `/v1/metrics` (HTTP, protobuf or JSON, compressed or not)
and `LogsService/Export`, `MetricsService/Export` (gRPC), and sends each request on to
the first `otlp` exporter's endpoint, answering with what the upstream answered. Nothing
is queued: when the upstream cannot take the data, the client is told to retry (503 +
Retry-After / UNAVAILABLE + RetryInfo), so it keeps it. With no `otlp` exporter, the
requests are answered per the specification as a partial success that rejects every
item, and the log says once that nothing consumes them.
"""

from __future__ import annotations

import logging
import math

import grpc
from fastapi import APIRouter, Request, Response
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from session_bridge.otlp.client import (
    LOGS,
    METRICS,
    Answer,
    AsyncUpstream,
    Signal,
    UpstreamSettings,
    Verdict,
)
from session_bridge.otlp.codec import DecodeFailure, encode, parse
from session_bridge.otlp.status import code_for_http
from session_bridge.receivers.front import Front, error_response, rich_status

log = logging.getLogger(__name__)


class Passthrough:
    def __init__(self, settings: UpstreamSettings | None, front: Front) -> None:
        self._upstream = AsyncUpstream(settings) if settings is not None else None
        self._front = front
        self._warned: set[str] = set()

    # -- the one place a request is handled ---------------------------------------------------

    async def forward(self, signal: Signal, request: Message) -> tuple[Answer, Message | None]:
        """Send `request` upstream: the answer, and the response message when delivered
        (or, with no upstream, the partial success that rejects every item)."""
        if self._upstream is None:
            return Answer(Verdict.OK, 200, ""), self._unconsumed(signal, request)
        answer = await self._upstream.export(signal, request.SerializeToString())
        if answer.verdict is not Verdict.OK:
            return answer, None
        response = signal.response()
        try:
            response.ParseFromString(answer.body)
        except DecodeError:
            response = signal.response()  # a 2xx is success whatever its body says
        return answer, response

    def _unconsumed(self, signal: Signal, request: Message) -> Message:
        if signal.name not in self._warned:
            self._warned.add(signal.name)
            log.warning(
                "OTLP %s arrive at the bridge but no `otlp` exporter is configured to pass"
                " them on: they are answered and dropped (configure an otlp exporter)",
                signal.name,
            )
        response = signal.response()
        partial = response.partial_success  # type: ignore[attr-defined]
        if signal is LOGS:
            partial.rejected_log_records = _log_records(request)
        else:
            partial.rejected_data_points = _data_points(request)
        partial.error_message = f"no upstream is configured for {signal.name}; dropped"
        return response

    # -- HTTP ---------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()
        for signal in (LOGS, METRICS):
            router.add_api_route(
                signal.path,
                self._http_handler(signal),
                methods=["POST"],
                include_in_schema=False,
                name=f"otlp_{signal.name}",
            )
        return router

    def _http_handler(self, signal: Signal):  # type: ignore[no-untyped-def]
        async def handle(request: Request) -> Response:
            admitted = await self._front.admit(request)
            if isinstance(admitted, Response):
                return admitted
            fmt = admitted.fmt
            message = signal.request()
            try:
                parse(message, admitted.data, fmt)
            except DecodeFailure as exc:
                return self._front.refuse(exc, fmt)
            answer, response = await self.forward(signal, message)
            if response is not None:
                return Response(encode(response, fmt), media_type=fmt.value)
            status = answer.status or 503
            headers = {}
            if answer.verdict is Verdict.RETRY:
                status = status if status in (429, 502, 503, 504) else 503
                headers["Retry-After"] = str(math.ceil(answer.retry_after_s or 1))
            return error_response(status, f"upstream: {answer.message}", fmt, headers)

        return handle

    # -- gRPC ---------------------------------------------------------------------------------

    def grpc_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        return tuple(
            grpc.method_handlers_generic_handler(
                signal.service, {"Export": grpc.unary_unary_rpc_method_handler(self._grpc(signal))}
            )
            for signal in (LOGS, METRICS)
        )

    def _grpc(self, signal: Signal):  # type: ignore[no-untyped-def]
        async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await self._front.grpc_project(context)
            message = signal.request()
            try:
                message.ParseFromString(body)
            except DecodeError as exc:
                await context.abort_with_status(
                    rich_status(code_pb2.INVALID_ARGUMENT, f"invalid request: {exc}")
                )
            answer, response = await self.forward(signal, message)
            if response is not None:
                return bytes(response.SerializeToString())
            if answer.verdict is Verdict.RETRY:
                code, delay = code_pb2.UNAVAILABLE, math.ceil(answer.retry_after_s or 1)
            elif answer.grpc_code is not None:
                code, delay = answer.grpc_code.value[0], None
            else:
                code, delay = code_for_http(answer.status), None
            await context.abort_with_status(rich_status(code, f"upstream: {answer.message}", delay))
            raise AssertionError("unreachable")  # abort_with_status raises

        return export

    async def close(self) -> None:
        if self._upstream is not None:
            await self._upstream.close()


def _log_records(request: Message) -> int:
    assert isinstance(request, ExportLogsServiceRequest)
    return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)


def _data_points(request: Message) -> int:
    assert isinstance(request, ExportMetricsServiceRequest)
    total = 0
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total
