"""Wiring: config -> store, pipeline, receivers and query API, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Generator
from dataclasses import dataclass

import grpc
import uvicorn
from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse

from session_bridge import __version__
from session_bridge.api.agent_traces import agent_traces_router
from session_bridge.api.auth import ApiAuth
from session_bridge.api.errors import install_error_handlers, install_openapi
from session_bridge.api.langfuse import langfuse_router
from session_bridge.api.raw_path import RawPathRouting
from session_bridge.api.search import search_router
from session_bridge.api.sessions import sessions_router
from session_bridge.api.span_tree import span_tree_router
from session_bridge.api.ui import install_ui
from session_bridge.api.usage import usage_router
from session_bridge.config import BridgeConfig
from session_bridge.enrich.client_address import ClientAddressResolver
from session_bridge.export.process import EXPORT_PROCESS_NICE, ExportProcess, ExportSettings
from session_bridge.export.service import Exports, ExportService, upstream_settings
from session_bridge.ingest.pipeline import IngestPipeline, LocalPreparer, Preparer
from session_bridge.ingest.workers import MapWorkerPool, WorkerSettings
from session_bridge.keys import IngestAuth, KeyRing
from session_bridge.receivers.config import join_endpoint, split_endpoint
from session_bridge.receivers.connections import (
    HttpLimits,
    listen,
    protocol_class,
    warn_if_connections_exceed_file_limit,
)
from session_bridge.receivers.front import Front
from session_bridge.receivers.grpc import TraceReceiver, create_server
from session_bridge.receivers.http import traces_router
from session_bridge.receivers.passthrough import Passthrough
from session_bridge.receivers.tls import TlsFiles, http_context, reload_http_context
from session_bridge.store.base import Store
from session_bridge.store.factory import backend, describe_storage, open_store
from session_bridge.store.lock import DataDirLock
from session_bridge.store.retention import RetentionWorker
from session_bridge.store.writer import GroupCommitWriter
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
    http: str  # http://host:port, or https:// with TLS
    grpc_tls: str = ""  # "", "TLS" or "mutual TLS"

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
    exports: Exports | None = None,
) -> FastAPI:
    auth = ApiAuth(front.auth.keys, config.sessions.project_id)
    public = set(config.api.public_endpoints)
    openapi_guarded = "openapi" not in public and not front.auth.keys.is_open
    app = FastAPI(
        title="otel-session-bridge",
        version=__version__,
        description="OTLP in, LLM and agent sessions out.",
        # guarded: served below behind a key (and without /docs, which could not send one)
        openapi_url=None if openapi_guarded else "/openapi.json",
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RawPathRouting)  # session ids holding `/`: routed on the raw path
    app.include_router(traces_router(pipeline, front, addresses))
    timeout_s = float(config.sessions.inactivity_timeout)
    app.include_router(sessions_router(store, auth, timeout_s, config.api.default_page_size))
    app.include_router(langfuse_router(store, auth))
    app.include_router(agent_traces_router(store, auth))
    app.include_router(search_router(store, auth, timeout_s))
    app.include_router(span_tree_router(store, auth, timeout_s))
    app.include_router(usage_router(store, auth, timeout_s))
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

    guard = [Depends(auth.any_key)]
    if openapi_guarded:

        @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
        def openapi_document() -> JSONResponse:
            return JSONResponse(app.openapi())

    metrics_guard = [] if "metrics" in public else guard

    @app.get("/metrics", tags=["health"], response_class=Response, dependencies=metrics_guard)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return app


@dataclass(frozen=True)
class ProcessPlan:
    """The processes that share a bridge's CPU work, beside the bridge process itself."""

    map_workers: int  # map worker processes (0: the bridge process maps)
    export_process: bool  # the exporters run in a process of their own


def process_plan(workers: int, *, exporting: bool) -> ProcessPlan:
    """`receivers.otlp.workers` processes share the work of ingest and export, one per core
    by default: with exporters, one of them is the export process and the others map
    (measured on 2 cores: one map worker beside the export process delivers as fast as
    two, in 85 MB less). `workers: 1`: the bridge process does it all, in threads."""
    if workers <= 1:
        return ProcessPlan(map_workers=0, export_process=False)
    if exporting:
        return ProcessPlan(map_workers=workers - 1, export_process=True)
    return ProcessPlan(map_workers=workers, export_process=False)


class Bridge:
    """One running bridge: start() binds and serves, stop() drains and closes."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.data_dir = config.storage.data_path
        self.storage_description = describe_storage(config.storage)
        self._lock: DataDirLock | None = None
        self._store: Store | None = None
        self._retention: RetentionWorker | None = None
        self._pipeline: IngestPipeline | None = None
        self.exports: Exports | None = None
        self.processes = process_plan(
            config.receivers.otlp.workers, exporting=bool(config.exporters)
        )
        self._passthrough: Passthrough | None = None
        self.enrich_description: list[str] = []
        self._grpc: grpc.aio.Server | None = None
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._tls_reload: asyncio.Task[None] | None = None
        self.endpoints: Endpoints | None = None
        self.open_to_network: list[str] = []  # non-loopback endpoints served with no API keys

    async def start(self) -> Endpoints:
        """Build everything, then listen and serve."""
        cfg = self.config
        otlp = cfg.receivers.otlp
        if backend(cfg.storage).exclusive_data_dir:
            self._lock = DataDirLock(self.data_dir)
        store = open_store(cfg.storage)
        self._store = store
        if cfg.storage.retention.spans:
            self._retention = RetentionWorker(store, cfg.storage.retention)
            self._retention.start()
        metrics = BridgeMetrics()
        plan = self.processes
        # before the receivers: every committed span is in every exporter's queue
        if plan.export_process:
            shared_store = not backend(cfg.storage).exclusive_data_dir
            exporting = ExportSettings(
                cfg.exporters, cfg.storage, self.data_dir, cfg.log, events_at_ingest=shared_store
            )
            self.exports = ExportProcess(exporting)
        else:
            self.exports = ExportService.open(
                cfg.exporters, cfg.storage, self.data_dir, metrics.exporter
            )
        if self.exports is not None:
            self.exports.start()
        preparer: Preparer
        events = self.exports is not None and self.exports.wants_ingestion_events
        if plan.map_workers:
            # with an export process, the map workers yield it the CPU: spans are delivered
            # as fast as they come, instead of ingest outrunning export into a backlog
            nice = EXPORT_PROCESS_NICE if plan.export_process else 0
            mapping = worker_settings(cfg, ingestion_events=events, nice=nice)
            pool = MapWorkerPool(mapping, plan.map_workers)
            self.enrich_description = await asyncio.to_thread(pool.start)
            preparer = pool
        else:
            from session_bridge.enrich.stage import Enricher  # megabytes of data: only here

            enricher = Enricher(cfg, metrics)
            self.enrich_description = enricher.describe()
            preparer = LocalPreparer(enricher, ingestion_events=events)
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
                otlp.protocols.grpc,
                int(otlp.max_request_body_size),
            )
            server.add_generic_rpc_handlers(passthrough.grpc_handlers())
            await server.start()
            self._grpc = server
            grpc_endpoint = join_endpoint(split_endpoint(otlp.protocols.grpc.endpoint)[0], port)
        http_cfg = otlp.protocols.http
        grpc_cfg = otlp.protocols.grpc
        warn_if_connections_exceed_file_limit(
            http_cfg.max_connections + (grpc_cfg.max_connections if grpc_cfg.enabled else 0)
        )
        context = self._http_tls()
        host, port = split_endpoint(http_cfg.endpoint)
        sock = listen(host, port)
        app = build_app(cfg, store, pipeline, metrics, addresses, front, self.exports)
        app.include_router(passthrough.router())
        limits = HttpLimits(
            float(http_cfg.read_header_timeout),
            float(http_cfg.read_timeout),
            http_cfg.max_connections,
        )
        uv_config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=protocol_class(limits),  # httptools, with timeouts and first-contact advice
            ws="none",  # no WebSocket routes: an upgrade request is answered as plain HTTP
            timeout_keep_alive=float(http_cfg.idle_timeout),  # type: ignore[arg-type]
            timeout_graceful_shutdown=5,
            ssl_context_factory=(lambda _config, _default: context) if context else None,
        )
        self._http = _Uvicorn(uv_config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                await self._http_task  # raises the start-up error
                raise OSError(f"cannot serve HTTP on {otlp.protocols.http.endpoint}")
            await asyncio.sleep(0.01)
        bound_host, bound_port = sock.getsockname()[:2]
        grpc_tls = grpc_cfg.tls
        self.endpoints = Endpoints(
            grpc=grpc_endpoint,
            http=f"{'https' if context else 'http'}://{join_endpoint(bound_host, bound_port)}",
            grpc_tls=(
                ("mutual TLS" if grpc_tls.client_ca_file else "TLS") if grpc_tls.enabled else ""
            ),
        )
        listening = [otlp.protocols.http.endpoint]
        if otlp.protocols.grpc.enabled:
            listening.append(otlp.protocols.grpc.endpoint)
        exposed = [e for e in listening if not _loopback(split_endpoint(e)[0])]
        if keys.is_open and exposed:
            self.open_to_network = exposed
            log.warning(
                "NO API KEYS and listening on %s, beyond this machine: anyone who can reach it"
                " reads every session and can send spans; configure auth.api_keys",
                ", ".join(exposed),
            )
        elif keys.is_open:
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

    def _http_tls(self) -> ssl.SSLContext | None:
        """The HTTP listener's TLS context (None: plain HTTP), reloaded if configured."""
        tls = self.config.receivers.otlp.protocols.http.tls
        if not tls.enabled:
            return None
        files = TlsFiles(tls)
        context = http_context(files)
        if tls.reload_interval:
            self._tls_reload = asyncio.create_task(reload_http_context(context, files))
        return context

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, finish the requests in flight, then close the store."""
        if self._tls_reload is not None:
            self._tls_reload.cancel()
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
        if self._lock is not None:
            self._lock.release()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name: it may resolve to anything
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def worker_settings(
    cfg: BridgeConfig, *, ingestion_events: bool = False, nice: int = 0
) -> WorkerSettings:
    """What each map worker gets of the configuration (no credentials)."""
    return WorkerSettings(cfg.enrich, cfg.pricing, cfg.privacy, cfg.log, ingestion_events, nice)
