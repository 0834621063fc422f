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
from session_bridge.api.errors import install_error_handlers
from session_bridge.api.sessions import sessions_router
from session_bridge.config import BridgeConfig, split_endpoint
from session_bridge.enrich.client_address import ClientAddressResolver
from session_bridge.enrich.stage import Enricher
from session_bridge.pipeline import IngestPipeline
from session_bridge.receivers.grpc import TraceReceiver, create_server
from session_bridge.receivers.http import traces_router
from session_bridge.store.base import Store
from session_bridge.store.sqlite import SqliteStore
from session_bridge.telemetry import BridgeMetrics

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


def build_app(
    config: BridgeConfig,
    store: Store,
    pipeline: IngestPipeline,
    metrics: BridgeMetrics,
    addresses: ClientAddressResolver,
) -> FastAPI:
    app = FastAPI(
        title="otel-session-bridge",
        version=__version__,
        description="OTLP in, LLM and agent sessions out.",
    )
    install_error_handlers(app)
    app.include_router(
        traces_router(
            pipeline, metrics, int(config.receivers.otlp.max_request_body_size), addresses
        )
    )
    app.include_router(
        sessions_router(
            store,
            config.sessions.project_id,
            float(config.sessions.inactivity_timeout),
            config.api.default_page_size,
        )
    )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        try:
            store.ping()
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "store": str(exc)}, status_code=503)
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
        self._store: Store | None = None
        self._pipeline: IngestPipeline | None = None
        self.enricher: Enricher | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.endpoints: Endpoints | None = None

    async def start(self) -> Endpoints:
        cfg = self.config
        otlp = cfg.receivers.otlp
        store = SqliteStore(self.data_dir / "bridge.db", synchronous=cfg.storage.sqlite.synchronous)
        self._store = store
        metrics = BridgeMetrics()
        self.enricher = Enricher(cfg, metrics)
        addresses = ClientAddressResolver(cfg.enrich.client_address.trusted_proxies)
        pipeline = IngestPipeline(
            store,
            metrics,
            enricher=self.enricher,
            project_id=cfg.sessions.project_id,
            max_pending_requests=otlp.max_pending_requests,
            retry_after_s=max(1, round(otlp.retry_after)),
        )
        self._pipeline = pipeline
        grpc_endpoint = None
        if otlp.protocols.grpc.enabled:
            server, port = create_server(
                TraceReceiver(pipeline, addresses),
                otlp.protocols.grpc.endpoint,
                int(otlp.max_request_body_size),
            )
            await server.start()
            self._grpc = server
            grpc_endpoint = f"{split_endpoint(otlp.protocols.grpc.endpoint)[0]}:{port}"
        host, port = split_endpoint(otlp.protocols.http.endpoint)
        sock = _listen(host, port)
        app = build_app(cfg, store, pipeline, metrics, addresses)
        uv_config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="httptools",
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
        display_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.endpoints = Endpoints(grpc=grpc_endpoint, http=f"http://{display_host}:{bound_port}")
        return self.endpoints

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, finish the requests in flight, then close the store."""
        if self._http is not None:
            self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace_s)
        if self._http_task is not None:
            await self._http_task
        if self._pipeline is not None:
            self._pipeline.close()
        if self._store is not None:
            self._store.close()
        if self.enricher is not None:
            self.enricher.close()


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
