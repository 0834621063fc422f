"""Span -> record mapping: alias priorities, event types, usage spellings."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from session_bridge.mapping.aliases import ALIASES, KEY_LOOKUP
from session_bridge.mapping.mapper import map_request
from session_bridge.mapping.payloads import (
    RawSpan,
    agent_name,
    decode_span,
    tool_details,
    workflow_name,
)
from session_bridge.model import EventType, SpanRecord
from tests.otlp_builders import proto_request, proto_span


def _map(
    attributes: dict[str, Any], resource: dict[str, Any] | None = None, **kw: Any
) -> SpanRecord:
    span = proto_span(os.urandom(16), os.urandom(8), kw.pop("name", "op"), attributes, **kw)
    mapped = map_request(proto_request([span], resource))
    assert mapped.rejected == 0
    (record,) = mapped.records
    return record


def test_every_alias_key_is_listed_once() -> None:
    total = sum(len(keys) for keys in ALIASES.values())
    assert len(KEY_LOOKUP) == total


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"session.id": "b", "langfuse.session.id": "a"}, "a"),
        ({"gen_ai.conversation.id": "c", "session.id": "b"}, "b"),
        ({"gen_ai.conversation.id": "c"}, "c"),
        ({"ai.telemetry.metadata.sessionId": "v"}, "v"),
        ({"traceloop.association.properties.session_id": "t"}, "t"),
    ],
)
def test_session_id_priority(attributes: dict[str, str], expected: str) -> None:
    assert _map(attributes).session_id == expected


def test_span_attributes_beat_resource_attributes() -> None:
    record = _map(
        {"deployment.environment": "from-span"},
        {"service.name": "svc", "deployment.environment.name": "from-resource", "session.id": "r"},
    )
    # a worse-ranked key on the span still beats a better-ranked key on the resource
    assert record.environment == "from-span"
    assert record.session_id == "r"
    assert record.service == "svc"


def test_user_client_and_geo_spellings() -> None:
    record = _map(
        {
            "enduser.id": "u-old",
            "http.client_ip": "198.51.100.1",
            "http.user_agent": "curl/8.5.0",
            "geo.country.iso_code": "SE",
            "geo.locality.name": "Linköping",
            "geo.region.iso_code": "SE-E",
        }
    )
    assert record.user_id == "u-old"
    assert record.client is not None
    assert (record.client.ip, record.client.user_agent) == ("198.51.100.1", "curl/8.5.0")
    assert record.geo is not None
    assert (record.geo.country_code, record.geo.city, record.geo.region) == (
        "SE",
        "Linköping",
        "SE-E",
    )


def test_response_model_beats_request_model_and_old_token_keys() -> None:
    record = _map(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.completion_tokens": 5,
        }
    )
    assert record.event_type is EventType.LLM_CALL
    assert record.llm is not None
    assert (record.llm.provider, record.llm.model) == ("openai", "gpt-4o-2024-08-06")
    assert (record.llm.input_tokens, record.llm.output_tokens) == (11, 5)


def test_openinference_llm_span() -> None:
    record = _map(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-sonnet-4-5",
            "llm.token_count.prompt": 100,
            "llm.token_count.completion": 20,
            "llm.token_count.prompt_details.cache_read": 60,
            "llm.cost.total": 0.0012,
        }
    )
    assert record.event_type is EventType.LLM_CALL
    assert record.llm is not None
    assert record.llm.cache_read_tokens == 60
    assert record.cost_usd == pytest.approx(0.0012)


def test_langfuse_usage_details_are_exclusive_buckets() -> None:
    record = _map(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "gpt-4o",
            "langfuse.observation.usage_details": json.dumps(
                {
                    "input": 200,
                    "input_cached_tokens": 800,
                    "output": 50,
                    "output_reasoning_tokens": 10,
                    "total": 1060,
                }
            ),
            "langfuse.observation.cost_details": json.dumps({"input": 0.001, "total": 0.0042}),
        }
    )
    assert record.llm is not None
    assert (record.llm.input_tokens, record.llm.cache_read_tokens) == (1000, 800)
    assert (record.llm.output_tokens, record.llm.reasoning_tokens) == (60, 10)
    assert record.cost_usd == pytest.approx(0.0042)


@pytest.mark.parametrize(
    ("attributes", "name", "parent", "status", "expected"),
    [
        ({"gen_ai.operation.name": "chat"}, "chat", b"\1" * 8, 0, EventType.LLM_CALL),
        ({"gen_ai.operation.name": "embeddings"}, "e", b"\1" * 8, 0, EventType.LLM_CALL),
        ({"gen_ai.operation.name": "execute_tool"}, "t", b"\1" * 8, 0, EventType.TOOL_CALL),
        ({"gen_ai.operation.name": "execute_tool"}, "t", b"\1" * 8, 2, EventType.TOOL_CALL),
        (
            {"openinference.span.kind": "TOOL"},
            "handoff to billing",
            b"\1" * 8,
            0,
            EventType.HANDOFF,
        ),
        ({"gen_ai.handoff.to_agent": "billing"}, "h", b"\1" * 8, 0, EventType.HANDOFF),
        ({"traceloop.span.kind": "handoff"}, "h", b"\1" * 8, 0, EventType.HANDOFF),
        ({"gen_ai.operation.name": "guardrail_check"}, "g", b"\1" * 8, 0, EventType.GUARDRAIL_EVAL),
        ({"openinference.span.kind": "GUARDRAIL"}, "g", b"\1" * 8, 0, EventType.GUARDRAIL_EVAL),
        ({"gen_ai.operation.name": "update_memory"}, "m", b"\1" * 8, 0, EventType.STATE_CHANGE),
        ({"gen_ai.operation.name": "plan"}, "p", b"\1" * 8, 0, EventType.DECISION),
        ({"traceloop.span.kind": "tool"}, "t", b"\1" * 8, 0, EventType.TOOL_CALL),
        ({"llm.request.type": "chat"}, "openai.chat", b"\1" * 8, 0, EventType.LLM_CALL),
        ({"ai.operationId": "ai.streamText.doStream"}, "s", b"\1" * 8, 0, EventType.LLM_CALL),
        ({"ai.operationId": "ai.streamText"}, "s", b"\1" * 8, 0, EventType.SPAN),
        (
            {
                "ai.operationId": "ai.generateText",
                "ai.model.id": "m",
                "gen_ai.usage.input_tokens": 5,
            },
            "ai.generateText",
            b"",
            0,
            EventType.RESPONSE,
        ),
        (
            {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "w"},
            "t",
            b"\1" * 8,
            0,
            EventType.TOOL_CALL,
        ),
        ({"gen_ai.operation.name": "invoke_agent"}, "a", b"", 0, EventType.RESPONSE),
        ({"gen_ai.operation.name": "invoke_agent"}, "a", b"\1" * 8, 0, EventType.SPAN),
        ({"traceloop.span.kind": "workflow"}, "w", b"", 0, EventType.RESPONSE),
        ({}, "GET /chat", b"", 2, EventType.ERROR),
        ({}, "GET /chat", b"", 0, EventType.SPAN),
        (
            {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1},
            "x",
            b"",
            0,
            EventType.LLM_CALL,
        ),
    ],
)
def test_event_types(
    attributes: dict[str, Any], name: str, parent: bytes, status: int, expected: EventType
) -> None:
    record = _map(attributes, name=name, parent=parent, status_code=status)
    assert record.event_type is expected
    assert record.is_error == (status == 2)


def test_agent_span_usage_is_reported_but_not_an_llm_call() -> None:
    """The span tree decides whether it counts (rollup/usage.py), not its kind."""
    record = _map(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 999,
            "gen_ai.response.id": "resp-1",
        },
        parent=b"\1" * 8,
    )
    assert record.event_type is not EventType.LLM_CALL
    assert record.llm is not None and record.llm.input_tokens == 999
    assert record.response_id == "resp-1"


def test_a_span_without_usage_reports_none() -> None:
    record = _map({"gen_ai.operation.name": "invoke_agent", "gen_ai.response.id": "r"})
    assert record.llm is None and record.response_id is None


def test_exception_event_marks_error() -> None:
    span = proto_span(
        os.urandom(16), os.urandom(8), "tool", {"gen_ai.operation.name": "execute_tool"}
    )
    span.events.add(name="exception")
    (record,) = map_request(proto_request([span])).records
    assert record.is_error


def test_missing_times_fall_back() -> None:
    record = _map({}, start=0, end=0)
    assert record.start_ns > 0 and record.end_ns == record.start_ns


def test_non_string_session_id_is_stringified() -> None:
    assert _map({"session.id": 42}).session_id == "42"


def test_cache_write_and_vendor_reasoning_spellings() -> None:
    # the Anthropic SDK's own tracing; pydantic-ai's reasoning count
    record = _map(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5",
            "gen_ai.usage.input_tokens": 52,
            "gen_ai.usage.output_tokens": 12,
            "gen_ai.usage.cache_read.input_tokens": 4,
            "gen_ai.usage.cache_write.input_tokens": 3,
            "gen_ai.usage.details.reasoning_tokens": 6,
        }
    )
    assert record.llm is not None
    assert (record.llm.cache_read_tokens, record.llm.cache_creation_tokens) == (4, 3)
    assert record.llm.reasoning_tokens == 6


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"mcp.session.id": "m"}, "m"),
        ({"mcp.session.id": "m", "gen_ai.conversation.id": "c"}, "c"),
        ({"mcp.session.id": "m", "ai.telemetry.metadata.sessionId": "v"}, "v"),
    ],
)
def test_mcp_session_id_is_the_last_resort(attributes: dict[str, str], expected: str) -> None:
    assert _map(attributes).session_id == expected


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", "openai"),
        # a framework's name is never the provider: the model's price data names it
        ("strands-agents", "gpt-4o-mini", "openai"),
        ("langchain", "claude-haiku-4-5", "anthropic"),
        ("pydantic_ai", "no-such-model", None),
        # API flavours are their provider, whatever the scope that sent them
        ("openai.chat", "gpt-4o-mini", "openai"),
        ("openai.responses", "m", "openai"),
        ("azure.ai.openai", "gpt-4o", "azure"),
        ("gcp.vertex_ai", "gemini-2.0-flash", "google"),
        # no provider at all: inferred from the model where the price data knows it
        (None, "claude-haiku-4-5", "anthropic"),
        (None, "gpt-4o-mini-2024-07-18", "openai"),
        (None, "no-such-model", None),
    ],
)
def test_provider_is_the_models_provider(
    provider: str | None, model: str, expected: str | None
) -> None:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1,
    }
    if provider is not None:
        attributes["gen_ai.system"] = provider
    record = _map(attributes)
    assert record.llm is not None
    assert record.llm.provider == expected


def _raw(attributes: dict[str, Any], name: str = "op") -> RawSpan:
    span = proto_span(os.urandom(16), os.urandom(8), name, attributes)
    return decode_span(span.SerializeToString())


def test_tool_arguments_come_from_the_call_never_from_the_schema() -> None:
    schema = json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})
    assert (
        tool_details(_raw({"tool.name": "get_weather", "tool.parameters": schema})).arguments
        is None
    )
    details = tool_details(
        _raw(
            {
                "openinference.span.kind": "TOOL",
                "tool.name": "get_weather",
                "tool.parameters": schema,
                "input.value": '{"city": "Paris"}',
                "output.value": "Sunny",
            }
        )
    )
    assert (details.arguments, details.output) == ({"city": "Paris"}, "Sunny")
    vercel = tool_details(
        _raw({"ai.toolCall.name": "get_weather", "ai.toolCall.result": '"Sunny"'})
    )
    assert vercel.output == "Sunny"  # the SDK JSON-encodes every result


def test_agent_name_is_an_agent_span_not_a_chain() -> None:
    assert agent_name(_raw({"openinference.span.kind": "CHAIN"}, "RunnableSequence")) is None
    assert (
        agent_name(_raw({"gen_ai.operation.name": "invoke_workflow"}, "invoke_workflow w")) is None
    )
    assert agent_name(_raw({"gen_ai.operation.name": "agent_step"}, "step 1")) is None
    assert agent_name(_raw({"openinference.span.kind": "AGENT", "graph.node.id": "a"}, "x")) == "a"
    assert agent_name(_raw({"gen_ai.operation.name": "invoke_agent"}, "invoke_agent b")) == "b"
    assert agent_name(_raw({"gen_ai.agent.name": "c"})) == "c"
    # a chain or workflow still names the run for the spans with no agent above them
    assert (
        workflow_name(_raw({"gen_ai.operation.name": "invoke_workflow"}, "invoke_workflow w"))
        == "w"
    )
    assert (
        workflow_name(_raw({"ai.operationId": "ai.streamText", "ai.telemetry.functionId": "f"}))
        == "f"
    )
