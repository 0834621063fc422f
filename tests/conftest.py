"""Shared fixtures: a real bridge on 127.0.0.1 ephemeral ports, and OTel SDK senders."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from session_bridge.config import BridgeConfig
from session_bridge.server import Bridge, Endpoints

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


class RunningBridge:
    """A bridge serving on its own event loop thread, like `session-bridge run` does."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.bridge = Bridge(config)
        self.endpoints: Endpoints = self._call(self.bridge.start())
        assert self.endpoints.grpc is not None
        self.grpc_endpoint: str = self.endpoints.grpc
        self.http_url = self.endpoints.http
        self.client = httpx.Client(base_url=self.http_url, timeout=10)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def stop(self) -> None:
        self.client.close()
        self._call(self.bridge.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- the query API, as a client sees it ---------------------------------------------

    def get_session(self, session_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def list_sessions(self, **params: Any) -> dict[str, Any]:
        response = self.client.get("/api/v1/sessions", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def all_sessions(self) -> dict[str, dict[str, Any]]:
        return {s["session.id"]: s for s in self.list_sessions(page_size=1000)["items"]}


def make_config(data_dir: Path, **sections: dict[str, Any]) -> BridgeConfig:
    config = BridgeConfig()
    config.storage.data_dir = str(data_dir)
    config.receivers.otlp.protocols.grpc.endpoint = "127.0.0.1:0"
    config.receivers.otlp.protocols.http.endpoint = "127.0.0.1:0"
    for section, values in sections.items():
        target = getattr(config, section)
        for key, value in values.items():
            setattr(target, key, value)
    return config


@pytest.fixture
def bridge_factory(tmp_path: Path) -> Iterator[Callable[..., RunningBridge]]:
    running: list[RunningBridge] = []

    def start(data_dir: Path | None = None, config: BridgeConfig | None = None) -> RunningBridge:
        cfg = config or make_config(data_dir or tmp_path / "data")
        bridge = RunningBridge(cfg)
        running.append(bridge)
        return bridge

    yield start
    for bridge in running:
        if bridge._thread.is_alive():
            bridge.stop()


@pytest.fixture
def bridge(bridge_factory: Callable[..., RunningBridge]) -> RunningBridge:
    return bridge_factory()


def sdk_provider(bridge: RunningBridge, transport: str, resource: dict[str, Any]) -> TracerProvider:
    """A TracerProvider exporting to the bridge with the official OTLP exporter."""
    exporter: GrpcSpanExporter | HttpSpanExporter
    if transport == "grpc":
        exporter = GrpcSpanExporter(endpoint=bridge.grpc_endpoint, insecure=True)
    else:
        exporter = HttpSpanExporter(endpoint=f"{bridge.http_url}/v1/traces")
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
