"""Bridges with exporters, made quick for tests (no settle delay, short flushes and
backoffs), and agent traffic to send them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from session_bridge.config import BridgeConfig, Duration
from session_bridge.export.common import ExporterCommon, ExportRetryConfig
from session_bridge.export.ingestion import IngestionExporterConfig
from session_bridge.mapping.mapper import MappedRequest
from session_bridge.store.export_log import LogEntry
from tests.conftest import RunningBridge, make_config
from tests.ingestion_server import IngestionServer
from tests.otlp_builders import T0, proto_request, proto_span

E = TypeVar("E", bound=ExporterCommon)


def quick(exporter: E, **overrides: Any) -> E:
    exporter.settle_delay = Duration(0.0)
    exporter.flush_interval = Duration(0.02)
    exporter.timeout = Duration(5.0)
    exporter.retry = ExportRetryConfig(
        initial_interval=Duration(0.02), max_interval=Duration(0.2), randomization_factor=0.2
    )
    for key, value in overrides.items():
        setattr(exporter, key, value)
    return exporter


def ingestion(server: IngestionServer, **overrides: Any) -> IngestionExporterConfig:
    return quick(
        IngestionExporterConfig(
            base_url=server.base_url,
            public_key=server.public_key,
            secret_key=server.secret_key,
        ),
        **overrides,
    )


def exporting_config(data_dir: Path, *exporters: ExporterCommon) -> BridgeConfig:
    config = make_config(data_dir)
    config.exporters = list(exporters)
    return config


@dataclass
class Turn:
    """One agent turn: a trace of a root span (naming the session), an LLM call and a tool."""

    trace_id: bytes
    root: Span
    children: list[Span]

    @property
    def span_ids(self) -> list[str]:
        return [s.span_id.hex() for s in (*self.children, self.root)]


def turn(session: str, user: str = "u-1", index: int = 0, payload: str = "") -> Turn:
    trace_id, root_id = os.urandom(16), os.urandom(8)
    start = T0 + index * 10_000_000
    root = proto_span(
        trace_id,
        root_id,
        "invoke_agent support",
        {
            "gen_ai.operation.name": "invoke_agent",
            "session.id": session,
            "user.id": user,
            "input.value": payload or f"question {index}",
            "output.value": f"answer {index}",
        },
        start=start,
        end=start + 9_000_000,
    )
    chat = proto_span(
        trace_id,
        os.urandom(8),
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 150,
            "gen_ai.usage.cache_read.input_tokens": 200,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 1024,
        },
        parent=root_id,
        start=start + 1_000_000,
        end=start + 5_000_000,
    )
    tool = proto_span(
        trace_id,
        os.urandom(8),
        "execute_tool search",
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        parent=root_id,
        start=start + 6_000_000,
        end=start + 8_000_000,
        status_code=2,
    )
    return Turn(trace_id, root, [chat, tool])


def request_of(turns: list[Turn]) -> ExportTraceServiceRequest:
    return proto_request(
        [s for t in turns for s in (*t.children, t.root)],
        {
            "service.name": "agent",
            "service.version": "1.4.2",
            "deployment.environment.name": "prod",
        },
    )


def post(bridge: RunningBridge, request: ExportTraceServiceRequest) -> httpx.Response:
    return bridge.client.post(
        "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )


def send(bridge: RunningBridge, turns: list[Turn]) -> None:
    response = post(bridge, request_of(turns))
    assert response.status_code == 200, response.text


def eventually(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll `check` (bounded) until it holds."""
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


def metric(bridge: RunningBridge, name: str, exporter: str) -> float:
    text = bridge.client.get("/metrics").text
    prefix = f'{name}{{exporter="{exporter}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def refuse_tool_spans(event: dict[str, Any]) -> tuple[int, str] | None:
    """An ingestion endpoint rule: tool spans are refused for good (400), the rest taken."""
    if event["body"].get("name") == "execute_tool search":
        return 400, "Invalid request data: tool spans are not accepted here"
    return None


def log_entries(mapped: MappedRequest) -> list[LogEntry]:
    """The export log's entries for the spans of one mapped request, positions from 1
    (with their ingestion events when `add_ingestion_events` built them)."""
    return [
        LogEntry(
            i + 1,
            "default",
            r,
            mapped.resources[r.resource_key],
            None,
            len(r.otlp_span),
            ingestion_event=r.ingestion_event,
            trace_fields=r.trace_fields,
        )
        for i, r in enumerate(mapped.records)
    ]
