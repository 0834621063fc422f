"""Spans -> ingestion events: every shape of span gives events valid against the
ingestion API's schema; sizes, ids and Langfuse's field rules."""

from __future__ import annotations

import json
import os
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from session_bridge.export.langfuse_events import ingestion_units
from session_bridge.mapping.langfuse_events import (
    add_ingestion_events,
    dumps,
    environment,
    fit,
)
from session_bridge.mapping.mapper import map_request
from session_bridge.store.export_log import LogEntry
from tests.export_helpers import log_entries
from tests.ingestion_server import schema_errors
from tests.otlp_builders import T0, proto_request, proto_span


def entries(
    spans: list[Span], resource: dict[str, Any] | None = None, *, built_at_ingest: bool = False
) -> list[LogEntry]:
    """Log entries of `spans`; `built_at_ingest`: with their events built as ingest builds
    them (else the exporter builds them, as for spans stored without)."""
    mapped = map_request(proto_request(spans, resource), decode_attributes=built_at_ingest)
    if built_at_ingest:
        add_ingestion_events(mapped)
    return log_entries(mapped)


def events(spans: list[Span], limit: int = 1_000_000, **resource: Any) -> list[dict[str, Any]]:
    """The events of `spans`, the same bytes whether built at ingest or at export."""
    units = ingestion_units(entries(spans, resource or None), limit)
    at_ingest = ingestion_units(entries(spans, resource or None, built_at_ingest=True), limit)
    assert [(u.payload, u.key) for u in at_ingest] == [(u.payload, u.key) for u in units]
    assert all(len(u.payload) <= limit for u in units)
    return [json.loads(u.payload) for u in units]


def test_every_shape_of_span_gives_valid_events() -> None:
    trace, root = os.urandom(16), os.urandom(8)
    spans = [
        proto_span(
            trace,
            root,
            "turn",
            {
                "langfuse.session.id": "s",
                "langfuse.user.id": "u",
                "langfuse.trace.tags": '["a","b"]',
                "langfuse.trace.metadata.team": "search",
                "langfuse.trace.public": True,
                "langfuse.release": "r1",
                "langfuse.environment": "Langfuse-Staging",
                "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
            },
        ),
        proto_span(
            trace,
            os.urandom(8),
            "chat",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 500,
                "gen_ai.usage.output_tokens": 90,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "gen_ai.usage.cache_creation.input_tokens": 50,
                "gen_ai.usage.reasoning.output_tokens": 30,
                "gen_ai.usage.cost": 0.0123,
                "gen_ai.request.temperature": 1.0,
                "gen_ai.request.stop_sequences": "END",
                "llm.invocation_parameters": '{"top_k": 5, "stream": true, "nested": {"a": 1}}',
                "langfuse.observation.prompt.name": "support",
                "langfuse.observation.prompt.version": 3,
                "ai.response.msToFirstChunk": 120.5,
                "weird": float("nan"),
            },
            parent=root,
        ),
        proto_span(
            trace,
            os.urandom(8),
            "checkpoint",
            {
                "langfuse.observation.type": "event",
                "langfuse.observation.level": "warn",
            },
            parent=root,
        ),
        proto_span(trace, os.urandom(8), "ünïcode ✓", {"x": "y" * 10}, parent=root, status_code=2),
    ]
    resource: dict[str, Any] = {"service.version": "9.9"}
    out = events(spans, **resource)
    for event in out:
        assert not schema_errors(event), (event["type"], schema_errors(event))
    trace_create, root_span, chat, checkpoint, odd = out
    assert trace_create["type"] == "trace-create"
    body = trace_create["body"]
    assert body["sessionId"] == "s" and body["userId"] == "u" and body["tags"] == ["a", "b"]
    assert body["metadata"] == {"team": "search"} and body["public"] is True
    assert body["release"] == "r1" and body["environment"] == "staging"
    assert body["input"][0]["role"] == "user"
    assert chat["type"] == "generation-create"
    g = chat["body"]
    assert g["usageDetails"] == {
        "input": 350, "output": 60, "total": 590, "input_cached_tokens": 100,
        "input_cache_creation": 50, "output_reasoning_tokens": 30,
    }  # fmt: skip
    assert g["costDetails"] == {"total": 0.0123}
    assert g["promptName"] == "support" and g["promptVersion"] == 3
    assert g["completionStartTime"] > g["startTime"]
    assert g["modelParameters"] == {
        "temperature": "1.0", "stop_sequences": "END", "top_k": "5", "stream": True,
        "nested": '{"a":1}',
    }  # fmt: skip
    assert g["metadata"]["attributes"]["weird"] == "nan"
    assert checkpoint["type"] == "event-create" and "endTime" not in checkpoint["body"]
    assert checkpoint["body"]["level"] == "WARNING"
    assert odd["body"]["level"] == "ERROR" and odd["body"]["name"] == "ünïcode ✓"
    assert root_span["body"]["version"] == "9.9"


def test_the_same_spans_always_give_the_same_bytes() -> None:
    spans = [proto_span(os.urandom(16), os.urandom(8), "a", {"session.id": "s"}, start=T0)]
    first = [u.payload for u in ingestion_units(entries(spans), 1_000_000)]
    again = [u.payload for u in ingestion_units(entries(spans), 1_000_000)]
    assert first == again


def test_every_event_is_the_json_of_its_fields() -> None:
    """Trace-creates are written around their body's JSON (encoded once, for the id):
    the bytes are those of the whole event encoded, also where encoding takes the slow
    way (JSON metadata with a lone surrogate and an integer past 64 bits)."""
    trace, root = os.urandom(16), os.urandom(8)
    odd = '{"s": "\\ud800", "big": 18446744073709551616}'
    spans = [
        proto_span(trace, root, "root", {"session.id": "s", "langfuse.trace.metadata.n": odd}),
        proto_span(trace, os.urandom(8), "child", {"input.value": "ünï ✓"}, parent=root),
    ]
    units = ingestion_units(entries(spans), 1_000_000)
    assert json.loads(units[0].payload)["body"]["metadata"]["n"]["big"] == 2**64
    for unit in units:
        event = json.loads(unit.payload)
        assert unit.payload == dumps(event) and unit.key == event["id"]


def test_a_fuller_trace_create_is_a_new_event_an_identical_one_is_not() -> None:
    trace, root = os.urandom(16), os.urandom(8)
    child = proto_span(trace, os.urandom(8), "child", {}, parent=root)
    named = proto_span(trace, root, "root", {"session.id": "s"})
    early = events([child])[0]
    late = events([child, named])[0]
    assert early["type"] == late["type"] == "trace-create"
    assert early["id"] != late["id"] and late["body"]["sessionId"] == "s"
    assert events([child])[0]["id"] == early["id"]


def test_fit_cuts_the_largest_fields_and_says_so() -> None:
    span = proto_span(os.urandom(16), os.urandom(8), "big", {
        "input.value": "é" * 400_000, "output.value": "o" * 300_000,
    })  # fmt: skip
    trace_create, observation = events([span], limit=100_000)
    for event in (trace_create, observation):
        assert not schema_errors(event)
    body = observation["body"]
    assert body["input"].startswith("éé") and "truncated by otel-session-bridge" in body["input"]
    assert "800000 bytes" in body["input"]
    small = {"id": "x", "type": "span-create", "timestamp": "t", "body": {"name": "n"}}
    assert fit(small, 10) == json.dumps(small, separators=(",", ":")).encode()  # can't cut: as is


def test_environment_follows_langfuse_rules() -> None:
    assert environment("Production") == "production"
    assert environment("langfuse-dev") == "dev"
    assert environment("has space") is None
    assert environment("x" * 50) == "x" * 40
    assert environment(None) is None
