"""The `otlp` exporter and the logs/metrics passthrough, against a recording OTLP endpoint
(tests/otlp_sink.py) and a second bridge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from session_bridge.config import BridgeConfig
from session_bridge.export.otlp import OtlpExporterConfig
from session_bridge.otlp.client import LOGS, METRICS
from tests.conftest import RunningBridge, make_config
from tests.export_helpers import eventually, exporting_config, metric, quick, send, turn
from tests.otlp_sink import OtlpSink


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    endpoint = OtlpSink()
    yield endpoint
    endpoint.stop()


def otlp(sink: OtlpSink, protocol: str) -> OtlpExporterConfig:
    endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_url
    return quick(
        OtlpExporterConfig(endpoint=endpoint, protocol=protocol, headers={"X-Tenant": "acme"})
    )


def attributes(span: Any) -> dict[str, Any]:
    return {kv.key: json_format.MessageToDict(kv.value) for kv in span.attributes}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_are_forwarded_with_the_resolved_session(
    protocol: str,
    sink: OtlpSink,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
) -> None:
    bridge = start_bridge(exporting_config(tmp_path / "d", otlp(sink, protocol)))
    t = turn("sess-fwd", user="u-fwd")
    send(bridge, [t])
    sink.wait_for(lambda s: len(s.spans()) == 3)
    request = sink.of("traces")[0]
    assert request.transport == ("grpc" if protocol == "grpc" else "http")
    assert request.headers["x-tenant"] == "acme"
    if protocol != "grpc":
        assert request.headers["content-encoding"] == "gzip"
    resource = {kv.key for kv in request.message.resource_spans[0].resource.attributes}
    assert {"service.name", "service.version"} <= resource
    for span in sink.spans():  # the children never named the session themselves
        attrs = attributes(span)
        for key in ("session.id", "langfuse.session.id"):
            assert attrs[key] == {"stringValue": "sess-fwd"}
        for key in ("user.id", "langfuse.user.id"):
            assert attrs[key] == {"stringValue": "u-fwd"}
    chat = next(s for s in sink.spans() if s.name == "chat gpt-4o")
    assert attributes(chat)["gen_ai.usage.cost"]["doubleValue"] > 0
    assert chat.span_id == t.children[0].span_id and chat.parent_span_id == t.root.span_id
    eventually(lambda: metric(bridge, "session_bridge_exporter_sent_spans_total", "otlp") == 3)


def test_a_second_bridge_receives_the_same_sessions(
    start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    downstream = start_bridge(make_config(tmp_path / "down"))
    upstream = start_bridge(
        exporting_config(tmp_path / "up", quick(OtlpExporterConfig(endpoint=downstream.http_url)))
    )
    send(upstream, [turn("sess-chain", index=i) for i in range(3)])
    eventually(lambda: "sess-chain" in downstream.all_sessions(), what="the session downstream")
    eventually(lambda: downstream.get_session("sess-chain")["span_count"] == 9)
    mine, theirs = upstream.get_session("sess-chain"), downstream.get_session("sess-chain")
    for key in ("trace_count", "span_count", "error_count", "user.id"):
        assert mine[key] == theirs[key]
    assert theirs["genai_usage"]["estimated_cost_usd"] == pytest.approx(
        mine["genai_usage"]["estimated_cost_usd"]
    )


def test_upstream_errors_are_retried_or_dead_lettered(
    sink: OtlpSink, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    sink.fail.extend([503, 502])
    bridge = start_bridge(exporting_config(tmp_path / "d", otlp(sink, "http/protobuf")))
    send(bridge, [turn("sess-retry")])
    sink.wait_for(lambda s: len(s.spans()) == 3)
    sink.fail.append(400)  # final: the upstream says the data is bad
    send(bridge, [turn("sess-retry", index=1)])
    eventually(lambda: metric(bridge, "session_bridge_exporter_dead_letters", "otlp") == 3)
    assert len(sink.spans()) == 3


def _logs() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(KeyValue(key="service.name"))
    resource_logs.resource.attributes[0].value.string_value = "agent"
    scope = resource_logs.scope_logs.add()
    for text in ("started", "finished"):
        record = scope.log_records.add()
        record.body.string_value = text
        record.time_unix_nano = 1_790_000_000_000_000_000
    return request


def _metrics() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    metric_ = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric_.name = "gen_ai.client.token.usage"
    for value in (10, 20, 30):
        point = metric_.sum.data_points.add()
        point.as_int = value
    return request


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_logs_and_metrics_pass_through_unchanged(
    protocol: str,
    sink: OtlpSink,
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
) -> None:
    bridge = start_bridge(exporting_config(tmp_path / "d", otlp(sink, protocol)))
    logs, metrics = _logs(), _metrics()
    response = bridge.client.post(
        "/v1/logs",
        content=json_format.MessageToJson(logs),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json() == {}
    response = bridge.client.post(
        "/v1/metrics",
        content=metrics.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    with grpc.insecure_channel(bridge.grpc_endpoint) as channel:
        for signal, message, reply in (
            (LOGS, logs, ExportLogsServiceResponse),
            (METRICS, metrics, ExportMetricsServiceResponse),
        ):
            call = channel.unary_unary(
                signal.method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=reply.FromString,
            )
            assert call(message) == reply()
    sink.wait_for(lambda s: len(s.of("logs")) == 2 and len(s.of("metrics")) == 2)
    assert all(r.message == logs for r in sink.of("logs"))
    assert all(r.message == metrics for r in sink.of("metrics"))
    assert all(r.headers["x-tenant"] == "acme" for r in sink.requests)


def test_passthrough_tells_the_client_to_retry_when_the_upstream_cannot_take_it(
    sink: OtlpSink, start_bridge: Callable[[BridgeConfig], RunningBridge], tmp_path: Path
) -> None:
    bridge = start_bridge(exporting_config(tmp_path / "d", otlp(sink, "http/protobuf")))
    sink.fail.extend([503, 503])
    response = bridge.client.post(
        "/v1/logs",
        content=_logs().SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    with grpc.insecure_channel(bridge.grpc_endpoint) as channel:
        call = channel.unary_unary(LOGS.method, request_serializer=None)
        with pytest.raises(grpc.RpcError) as caught:
            call(_logs().SerializeToString())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_without_an_upstream_logs_and_metrics_are_answered_per_spec_and_said_once(
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = start_bridge(make_config(tmp_path / "d"))  # the default: a file exporter only
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            response = bridge.client.post(
                "/v1/logs",
                content=_logs().SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
            answer = ExportLogsServiceResponse.FromString(response.content)
            assert answer.partial_success.rejected_log_records == 2
            assert "no upstream" in answer.partial_success.error_message
        with grpc.insecure_channel(bridge.grpc_endpoint) as channel:
            call = channel.unary_unary(
                METRICS.method, request_serializer=None,
                response_deserializer=ExportMetricsServiceResponse.FromString,
            )  # fmt: skip
            assert call(_metrics().SerializeToString()).partial_success.rejected_data_points == 3
    said = [
        r.getMessage()
        for r in caplog.records
        if "nothing" in r.getMessage() or "no `otlp`" in r.getMessage()
    ]
    assert len([m for m in said if "OTLP logs" in m]) == 1
    assert len([m for m in said if "OTLP metrics" in m]) == 1
