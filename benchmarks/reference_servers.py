"""Reference OTLP/trace receivers that bound what a Python bridge can reach on this stack.

Each process serves BOTH transports:

* gRPC ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` (grpcio; a sync server
  with a thread pool, or ``grpc.aio`` in its own thread with ``--grpc-impl aio``);
* HTTP ``POST /v1/traces`` with ``application/x-protobuf`` bodies (uvicorn + a plain Starlette
  app, the same stack as the bridge's FastAPI app), plus ``GET /readyz`` for readiness.

Modes:

* ``noop``: parse the ``ExportTraceServiceRequest`` and discard it;
* ``walk``: parse, then walk the attributes of every resource and span into ``{key: value}``
  dicts with ``WhichOneof`` + ``getattr`` (roughly the per-span work of a simple Python mapper).

Usage: ``python benchmarks/reference_servers.py --mode walk --grpc-port 4317 --http-port 4318``
(always binds 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import threading
import zlib
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import uvicorn
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

HOST = "127.0.0.1"
MAX_MESSAGE = 64 * 1024 * 1024
ExportRequest = trace_service_pb2.ExportTraceServiceRequest
ExportResponse = trace_service_pb2.ExportTraceServiceResponse
EMPTY_RESPONSE = ExportResponse().SerializeToString()
PROTOBUF = "application/x-protobuf"

log = logging.getLogger("reference_servers")


def any_value(value: common_pb2.AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue`` (arrays and key/value lists recursively)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def walk(request: Any) -> int:
    """Turn every resource's and span's attributes into dicts; return the span count."""
    spans = 0
    out: list[dict[str, Any]] = []
    for rs in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
        out.append(resource)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append({kv.key: any_value(kv.value) for kv in span.attributes})
                spans += 1
    return spans


def noop(request: Any) -> int:
    return 0


PROCESSORS: dict[str, Callable[[Any], int]] = {"noop": noop, "walk": walk}


# --------------------------------------------------------------------------- gRPC


def make_servicer(process: Callable[[Any], int], aio: bool) -> Any:
    base = trace_service_pb2_grpc.TraceServiceServicer

    if aio:

        class AioServicer(base):  # type: ignore[misc, valid-type]
            async def Export(self, request: Any, context: Any) -> Any:
                process(request)
                return ExportResponse()

        return AioServicer()

    class SyncServicer(base):  # type: ignore[misc, valid-type]
        def Export(self, request: Any, context: Any) -> Any:
            process(request)
            return ExportResponse()

    return SyncServicer()


GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]


class SyncGrpc:
    def __init__(self, port: int, process: Callable[[Any], int], workers: int) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers), options=GRPC_OPTIONS
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            make_servicer(process, aio=False), self.server
        )
        if self.server.add_insecure_port(f"{HOST}:{port}") == 0:
            raise OSError(f"cannot bind gRPC port {port}")

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=1.0).wait(2.0)


class AioGrpc:
    """A ``grpc.aio`` server on its own asyncio loop in a background thread."""

    def __init__(self, port: int, process: Callable[[Any], int]) -> None:
        self.port = port
        self.process = process
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.server: Any = None
        self.thread = threading.Thread(target=self._run, name="grpc-aio", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.server = grpc.aio.server(options=GRPC_OPTIONS)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            make_servicer(self.process, aio=True), self.server
        )
        if self.server.add_insecure_port(f"{HOST}:{self.port}") == 0:
            raise OSError(f"cannot bind gRPC port {self.port}")
        await self.server.start()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self.server is not None:
            fut = asyncio.run_coroutine_threadsafe(self.server.stop(1.0), self.loop)
            try:
                fut.result(3.0)
            except Exception:  # shutting down anyway
                log.debug("grpc.aio stop failed", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(3.0)


# --------------------------------------------------------------------------- HTTP


def make_app(process: Callable[[Any], int]) -> Starlette:
    async def traces(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != PROTOBUF:
            return PlainTextResponse("unsupported media type", status_code=415)
        body = await request.body()
        encoding = request.headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                return PlainTextResponse(f"unsupported Content-Encoding: {encoding}", 400)
            message = ExportRequest.FromString(body)
        except (DecodeError, OSError, zlib.error) as exc:
            return PlainTextResponse(f"invalid request: {exc}", status_code=400)
        process(message)
        return Response(EMPTY_RESPONSE, media_type=PROTOBUF)

    async def readyz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/healthz", readyz, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Reference OTLP/trace receivers (127.0.0.1 only).")
    p.add_argument("--mode", choices=sorted(PROCESSORS), required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument(
        "--grpc-impl",
        choices=["sync", "aio"],
        default="aio",
        help="grpcio server flavour (default aio: measured faster here, see README)",
    )
    p.add_argument("--grpc-workers", type=int, default=4, help="sync server thread pool size")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    process = PROCESSORS[args.mode]
    grpc_server: SyncGrpc | AioGrpc
    if args.grpc_impl == "sync":
        grpc_server = SyncGrpc(args.grpc_port, process, args.grpc_workers)
    else:
        grpc_server = AioGrpc(args.grpc_port, process)
    grpc_server.start()
    config = uvicorn.Config(
        make_app(process),
        host=HOST,
        port=args.http_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    try:
        uvicorn.Server(config).run()  # handles SIGINT/SIGTERM and returns
    finally:
        grpc_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
