"""Wiring: config -> store, pipeline, receivers and query API, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from session_bridge import __version__
from session_bridge.api.agent_traces import agent_traces_router
from session_bridge.api.auth import ApiAuth
from session_bridge.api.errors import install_error_handlers, install_openapi
from session_bridge.api.langfuse import langfuse_router
from session_bridge.api.search import search_router
from session_bridge.api.sessions import sessions_router
from session_bridge.api.ui import install_ui
from session_bridge.config import BridgeConfig, join_endpoint, split_endpoint
from session_bridge.enrich.client_address import ClientAddressResolver
from session_bridge.enrich.stage import Enricher
from session_bridge.export.service import ExportService, upstream_settings
from session_bridge.keys import IngestAuth, KeyRing
from session_bridge.pipeline import IngestPipeline, LocalPreparer, Preparer
from session_bridge.receivers.first_contact import OtlpHttpProtocol
from session_bridge.receivers.front import Front
from session_bridge.receivers.grpc import TraceReceiver, create_server
from session_bridge.receivers.http import traces_router
from session_bridge.receivers.passthrough import Passthrough
from session_bridge.store.base import Store
from session_bridge.store.factory import describe_storage, open_store
from session_bridge.store.retention import RetentionWorker
from session_bridge.store.writer import GroupCommitWriter
from session_bridge.telemetry import BridgeMetrics
from session_bridge.workers import MapWorkerPool

log = logging.getLogger(__name__)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the bridge stops both servers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass(frozen=True)
class Endpoints:
    grpc: str | None  # host:port
    http: str  # http://host:port

    @property
    def otlp_http_env(self) -> str:
        return f"OTEL_EXPORTER_OTLP_ENDPOINT={self.http}"

    @property
    def otlp_protocol_env(self) -> str:
        # without it, some SDKs (Python's zero-code setup) send gRPC to the HTTP port
        return "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"


def build_app(
    config: BridgeConfig,
    store: Store,
    pipeline: IngestPipeline,
    metrics: BridgeMetrics,
    addresses: ClientAddressResolver,
    front: Front,
    exports: ExportService | None = None,
) -> FastAPI:
    app = FastAPI(
        title="otel-session-bridge",
        version=__version__,
        description="OTLP in, LLM and agent sessions out.",
    )
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(traces_router(pipeline, front, addresses))
    auth = ApiAuth(front.auth.keys, config.sessions.project_id)
    timeout_s = float(config.sessions.inactivity_timeout)
    app.include_router(sessions_router(store, auth, timeout_s, config.api.default_page_size))
    app.include_router(langfuse_router(store, auth))
    app.include_router(agent_traces_router(store, auth))
    app.include_router(search_router(store, auth, timeout_s))
    install_ui(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        try:
            store.ping()
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "store": str(exc)}, status_code=503)
        failing = exports.problems() if exports is not None else []
        if failing:
            return JSONResponse({"status": "unavailable", "exporters": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return app


class Bridge:
    """One running bridge: start() binds and serves, stop() drains and closes."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.data_dir = Path(config.storage.data_dir).expanduser().resolve()
        self.storage_description = describe_storage(config.storage)
        self._store: Store | None = None
        self._retention: RetentionWorker | None = None
        self._pipeline: IngestPipeline | None = None
        self.exports: ExportService | None = None
        self._passthrough: Passthrough | None = None
        self.enrich_description: list[str] = []
        self._grpc: grpc.aio.Server | None = None
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.endpoints: Endpoints | None = None

    async def start(self) -> Endpoints:
        """Build everything, then listen and serve."""
        cfg = self.config
        otlp = cfg.receivers.otlp
        store = open_store(cfg.storage)
        self._store = store
        if cfg.storage.retention.spans:
            self._retention = RetentionWorker(store, cfg.storage.retention)
            self._retention.start()
        metrics = BridgeMetrics()
        # before the receivers: every committed span is in every exporter's queue
        self.exports = ExportService.open(
            cfg.exporters, cfg.storage, self.data_dir, metrics.exporter
        )
        if self.exports is not None:
            self.exports.start()
        preparer: Preparer
        if otlp.workers > 1:
            pool = MapWorkerPool(cfg, otlp.workers)
            self.enrich_description = await asyncio.to_thread(pool.start)
            preparer = pool
        else:
            enricher = Enricher(cfg, metrics)
            self.enrich_description = enricher.describe()
            preparer = LocalPreparer(enricher)
        addresses = ClientAddressResolver(cfg.enrich.client_address.trusted_proxies)
        keys = KeyRing.from_config(cfg.auth.api_keys)
        ingest_auth = IngestAuth(keys, otlp.auth, cfg.sessions.project_id)
        pipeline = IngestPipeline(
            GroupCommitWriter(store),
            metrics,
            preparer,
            records_required=store.needs_records,
            max_pending_requests=otlp.max_pending_requests,
            retry_after_s=max(1, round(otlp.retry_after)),
            admission=self.exports,
        )
        self._pipeline = pipeline
        front = Front(ingest_auth, int(otlp.max_request_body_size), metrics)
        passthrough = Passthrough(upstream_settings(cfg.exporters), front)
        self._passthrough = passthrough
        grpc_endpoint = None
        if otlp.protocols.grpc.enabled:
            server, port = create_server(
                TraceReceiver(pipeline, addresses, front),
                otlp.protocols.grpc.endpoint,
                int(otlp.max_request_body_size),
            )
            server.add_generic_rpc_handlers(passthrough.grpc_handlers())
            await server.start()
            self._grpc = server
            grpc_endpoint = join_endpoint(split_endpoint(otlp.protocols.grpc.endpoint)[0], port)
        host, port = split_endpoint(otlp.protocols.http.endpoint)
        sock = _listen(host, port)
        app = build_app(cfg, store, pipeline, metrics, addresses, front, self.exports)
        app.include_router(passthrough.router())
        uv_config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=OtlpHttpProtocol,  # httptools, which tells a gRPC client what to set
            timeout_graceful_shutdown=5,
        )
        self._http = _Uvicorn(uv_config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                await self._http_task  # raises the start-up error
                raise OSError(f"cannot serve HTTP on {otlp.protocols.http.endpoint}")
            await asyncio.sleep(0.01)
        bound_host, bound_port = sock.getsockname()[:2]
        self.endpoints = Endpoints(
            grpc=grpc_endpoint, http=f"http://{join_endpoint(bound_host, bound_port)}"
        )
        if keys.is_open:
            log.warning(
                "no API keys configured (auth.api_keys): the query APIs are open to anyone"
                " who can reach %s",
                self.endpoints.http,
            )
        else:
            log.info(
                "API keys configured for %d project(s); every query API needs one",
                len({k.project_id for k in cfg.auth.api_keys}),
            )
        return self.endpoints

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, finish the requests in flight, then close the store."""
        if self._http is not None:
            self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace_s)
        if self._http_task is not None:
            await self._http_task
        if self._pipeline is not None:  # the writes in flight, then the map workers stop
            await asyncio.to_thread(self._pipeline.close)
        if self.exports is not None:  # the batches in flight, then the rest waits in the log
            await asyncio.to_thread(self.exports.close, grace_s)
        if self._passthrough is not None:
            await self._passthrough.close()
        if self._retention is not None:
            self._retention.close()
        if self._store is not None:
            self._store.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen for HTTP on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock
