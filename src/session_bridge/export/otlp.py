"""The `otlp` exporter: the spans as received, with what the bridge resolved added, to any
OTLP endpoint (a Collector, a backend whose batch API gave way to OTLP, another bridge).

Each span gets its trace's session and user as `session.id` / `langfuse.session.id` and
`user.id` / `langfuse.user.id` (replacing what it carried under those keys), and the
computed cost as `gen_ai.usage.cost` unless it reported one. Spans are grouped back under
their resource and instrumentation scope.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pydantic import Field

from session_bridge import __version__
from session_bridge.configkit import StringMap, one_of
from session_bridge.export.base import Exporter, Failure, SendResult, Unit
from session_bridge.export.common import ExporterCommon
from session_bridge.store.export_log import LogEntry

if TYPE_CHECKING:
    from session_bridge.otlp.client import UpstreamSettings

# The OTLP client (and gRPC, ~20 MB) is imported by the first `otlp` exporter: the export
# process of a bridge without one never loads it.

log = logging.getLogger(__name__)

SESSION_KEYS = ("session.id", "langfuse.session.id")
USER_KEYS = ("user.id", "langfuse.user.id")
COST_KEY = "gen_ai.usage.cost"


class OtlpExporterConfig(ExporterCommon):
    type: str = "otlp"
    endpoint: str = ""
    protocol: Annotated[str, one_of("http/protobuf", "grpc")] = "http/protobuf"
    headers: StringMap = Field(default_factory=dict)
    compression: Annotated[str, one_of("gzip", "none")] = "gzip"

    def check(self, path: str) -> list[str]:
        problems = super().check(path)
        if not self.endpoint.strip():
            problems.append(f"{path}.endpoint: required (e.g. http://collector:4318)")
        return problems


class OtlpExporter(Exporter):
    request_overhead = 16 * 1024  # resources and scopes around the spans

    def __init__(self, config: OtlpExporterConfig) -> None:
        from session_bridge.otlp import client

        self.name = config.label
        self.max_request_bytes = int(config.max_batch_size)
        self.settings = upstream_settings(config)
        self._client = client
        self._upstream = client.Upstream(self.settings)

    def describe(self) -> str:
        return f"{self.name}: {self.settings.describe()}"

    def units(self, entries: Sequence[LogEntry]) -> list[Unit]:
        return [Unit(resolved_span(e), [e]) for e in entries]

    def send(self, units: Sequence[Unit]) -> SendResult:
        verdict = self._client.Verdict
        answer = self._upstream.export(self._client.TRACES, _request(units).SerializeToString())
        failure = Failure(answer.status, answer.message)
        everything = list(range(len(units)))
        if answer.verdict is verdict.OK:
            _warn_partial(answer.body, self.name)
            return SendResult()
        if answer.verdict is verdict.RETRY:
            return SendResult(retry=everything, problem=failure, retry_after_s=answer.retry_after_s)
        if answer.verdict is verdict.BLOCKED:
            return SendResult(blocked=failure)
        if answer.verdict is verdict.TOO_LARGE and len(units) > 1:
            half = len(units) // 2
            first, second = self.send(units[:half]), self.send(units[half:])
            if first.blocked or second.blocked or first.retry or second.retry:
                return SendResult(retry=everything, problem=first.problem or second.problem)
            return SendResult(
                failed={**first.failed, **{i + half: f for i, f in second.failed.items()}}
            )
        return SendResult(failed=dict.fromkeys(everything, failure))

    def close(self) -> None:
        self._upstream.close()


def resolved_span(entry: LogEntry) -> bytes:
    """The span as received, with its trace's session, user and cost as attributes."""
    record = entry.span
    added: list[tuple[str, str | float]] = []
    if record.session_id:
        added += [(key, record.session_id) for key in SESSION_KEYS]
    if record.user_id:
        added += [(key, record.user_id) for key in USER_KEYS]
    span = Span.FromString(record.otlp_span)
    if record.cost_usd is not None and not any(kv.key == COST_KEY for kv in span.attributes):
        added.append((COST_KEY, record.cost_usd))
    if not added:
        return record.otlp_span
    replaced = {key for key, _ in added}
    kept = [kv for kv in span.attributes if kv.key not in replaced]
    del span.attributes[:]
    span.attributes.extend(kept)
    for key, value in added:
        kv = KeyValue(key=key)
        if isinstance(value, float):
            kv.value.double_value = value
        else:
            kv.value.string_value = value
        span.attributes.append(kv)
    return span.SerializeToString()


def _request(units: Sequence[Unit]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resources: dict[bytes, ResourceSpans] = {}
    scopes: dict[tuple[bytes, str], ScopeSpans] = {}
    for unit in units:
        entry = unit.entries[0]
        resource_spans = resources.get(entry.resource)
        if resource_spans is None:
            resource_spans = request.resource_spans.add()
            resource_spans.resource.CopyFrom(Resource.FromString(entry.resource))
            resources[entry.resource] = resource_spans
        key = (entry.resource, entry.span.scope_name)
        scope_spans = scopes.get(key)
        if scope_spans is None:
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = entry.span.scope_name
            scopes[key] = scope_spans
        scope_spans.spans.add().MergeFromString(unit.payload)
    return request


def _warn_partial(body: bytes, name: str) -> None:
    try:
        response = ExportTraceServiceResponse.FromString(body)
    except Exception:  # a 2xx is success whatever its body says (as the Collector reads it)
        return
    partial = response.partial_success
    if partial.rejected_spans or partial.error_message:
        log.warning(
            "exporter %s: the upstream rejected %d spans: %s",
            name,
            partial.rejected_spans,
            partial.error_message,
        )


def upstream_settings(config: OtlpExporterConfig) -> UpstreamSettings:
    """Where and how an `otlp` exporter sends."""
    from session_bridge.otlp.client import UpstreamSettings

    return UpstreamSettings(
        endpoint=config.endpoint.rstrip("/"),
        grpc=config.protocol == "grpc",
        headers={"User-Agent": f"otel-session-bridge/{__version__}", **config.headers},
        gzip=config.compression == "gzip",
        timeout_s=float(config.timeout),
    )


def create(config: OtlpExporterConfig, data_dir: Path) -> OtlpExporter:
    return OtlpExporter(config)
