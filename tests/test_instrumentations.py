"""What real instrumentations emit maps to correct sessions.

`tests/instrumentations/captured/` holds what each library really sent when run
against the fake OpenAI server (see tests/instrumentations/README.md). Each
capture is replayed to a bridge over OTLP/HTTP and the session read back must
match what the fake server metered: per Python session 45+65+60 (chat) + 20
(responses) + 10 (embeddings) input tokens, 12+20+20+20 output tokens, 4 cached
and 6 reasoning tokens per chat/responses call, one failing call. One library
is also run live here: the real `openai` client with OpenInference's
instrumentation, through the official OTLP exporter.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import openai
import pytest
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import RunningBridge
from tests.otlp_builders import any_value_of

CAPTURES = Path(__file__).parent / "instrumentations" / "captured"
sys.path.insert(0, str(CAPTURES.parent))
from fake_openai import FakeOpenAI  # noqa: E402


@dataclass(frozen=True)
class Expected:
    session: str | None  # None: the library has no session concept, the traces are in none
    user: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read: int
    reasoning: int
    providers: tuple[str, ...] = ("openai",)
    errors: int = 1


class Flow(TypedDict):
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read: int
    reasoning: int


PYTHON_FLOW = Flow(requests=6, input_tokens=200, output_tokens=72, cache_read=16, reasoning=24)

EXPECTED = {
    "openinference": Expected("sess-1234", "user-42", **PYTHON_FLOW),
    "openinference_genai": Expected("sess-1234", "user-42", **PYTHON_FLOW),
    # Langfuse's OpenAI integration names no provider (it is inferred from the model);
    # usage is OpenAI's own JSON object
    "langfuse_openai": Expected("sess-1234", "user-42", **PYTHON_FLOW),
    "langfuse_openinference": Expected("sess-1234", "user-42", **PYTHON_FLOW),
    # traceloop does not report reasoning tokens on streamed calls
    "traceloop_sdk": Expected("sess-1234", "user-42", 6, 200, 72, 16, 18),
    "traceloop_instrumentation": Expected(None, None, 6, 200, 72, 16, 18),
    # OpenLIT: reasoning only on the responses call; its extra HTTP span also fails
    "openlit": Expected("sess-1234", "user-42", 6, 200, 72, 16, 6, errors=2),
    # the official instrumentation: no responses API, no cached/reasoning, no session
    "otel_openai_v2": Expected(None, None, 5, 180, 52, 0, 0),
    "otel_openai_v2_legacy": Expected(None, None, 5, 180, 52, 0, 0),
    "otel_openai_v2_agent": Expected("sess-1234", None, 5, 180, 52, 0, 0),
    # Vercel AI SDK 6 ("openai.responses" etc. are normalised to "openai")
    "vercel_ai_v6": Expected("sess-1234", "user-42", **PYTHON_FLOW, errors=2),
    "vercel_ai_v6_vercel_otel": Expected("sess-1234", "user-42", **PYTHON_FLOW, errors=2),
    # ai 7 replays history differently (turn 2: 40 input tokens); its embeddings call
    # comes as two nested spans of which only the inner has usage: one request
    "vercel_ai_v7": Expected("sess-1234", "user-42", 6, 180, 72, 16, 0, errors=3),
    "vercel_ai_v7_legacy": Expected("sess-1234", "user-42", 6, 180, 72, 16, 24, errors=2),
}


def _request(spans: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    """The captured spans back on the wire, grouped by resource and scope as sent."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for captured in spans:
        key = (
            json.dumps(captured["resource"], sort_keys=True),
            captured["scope"]["name"],
            captured["scope"].get("version") or "",
        )
        groups[key].append(captured)
    request = ExportTraceServiceRequest()
    for (resource, scope, version), items in groups.items():
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(
            KeyValue(key=k, value=any_value_of(v)) for k, v in json.loads(resource).items()
        )
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = scope, version
        for item in items:
            span = ss.spans.add(
                trace_id=bytes.fromhex(item["trace_id"]),
                span_id=bytes.fromhex(item["span_id"]),
                parent_span_id=bytes.fromhex(item["parent_span_id"] or ""),
                name=item["name"],
                kind=Span.SpanKind.Value("SPAN_KIND_" + item["kind"]),
                start_time_unix_nano=item["start_ns"],
                end_time_unix_nano=item["end_ns"],
            )
            span.attributes.extend(
                KeyValue(key=k, value=any_value_of(v)) for k, v in item["attributes"].items()
            )
            span.status.code = {"UNSET": 0, "OK": 1, "ERROR": 2}[item["status"]["code"]]  # type: ignore[assignment]
            for event in item["events"]:
                added = span.events.add(name=event["name"], time_unix_nano=event["time_ns"])
                added.attributes.extend(
                    KeyValue(key=k, value=any_value_of(v)) for k, v in event["attributes"].items()
                )
    return request


def _post(bridge: RunningBridge, request: ExportTraceServiceRequest) -> None:
    response = bridge.client.post(
        "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()


@pytest.mark.parametrize("capture", sorted(EXPECTED))
def test_captured_instrumentation_maps_to_sessions(bridge: RunningBridge, capture: str) -> None:
    spans = json.loads((CAPTURES / f"{capture}.json").read_text())
    _post(bridge, _request(spans))
    expected = EXPECTED[capture]
    sessions = bridge.all_sessions()
    if expected.session is None:
        assert sessions == {}  # stored, but no session was ever named
        return
    assert list(sessions) == [expected.session]
    session = sessions[expected.session]
    usage = session["genai_usage"]
    assert session["user.id"] == expected.user
    assert session["span_count"] == len(spans)
    assert session["error_count"] == expected.errors
    assert (
        usage["request_count"],
        usage["total_input_tokens"],
        usage["total_output_tokens"],
        usage["cache_read_input_tokens"],
        usage["reasoning_output_tokens"],
    ) == (
        expected.requests,
        expected.input_tokens,
        expected.output_tokens,
        expected.cache_read,
        expected.reasoning,
    )
    assert tuple(usage["providers_used"]) == expected.providers
    assert usage["estimated_cost_usd"] is not None  # the models are known to genai-prices


@pytest.mark.parametrize("capture", ["vercel_ai_v6", "vercel_ai_v7", "vercel_ai_v7_legacy"])
def test_javascript_otlp_json_wire_request(bridge: RunningBridge, capture: str) -> None:
    """A request body exactly as the OpenTelemetry JS exporter sent it (OTLP/JSON: hex ids,
    numbers for intValue), then the rest of the run: the span in it is one of the run's
    (ai 7's `chat` span names no session; its trace's `invoke_agent` does, later)."""
    body = (CAPTURES / f"{capture}.otlp-request.json").read_bytes()
    response = bridge.client.post(
        "/v1/traces", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}  # nothing rejected
    spans = json.loads((CAPTURES / f"{capture}.json").read_text())
    _post(bridge, _request(spans))
    session = bridge.get_session("sess-1234")
    assert session["span_count"] == len(spans)  # the wire span once, not twice
    assert session["genai_usage"]["total_input_tokens"] == EXPECTED[capture].input_tokens


def test_live_openai_client_with_openinference(bridge: RunningBridge) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "live-openinference"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{bridge.http_url}/v1/traces"))
    )
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with FakeOpenAI() as fake:
            client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
            with using_attributes(session_id="live-session", user_id="live-user"):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
                stream = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[
                        {"role": "system", "content": "be brief"},
                        {"role": "user", "content": "hi"},
                    ],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                for _ in stream:
                    pass
                client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    session = bridge.get_session("live-session")
    usage = session["genai_usage"]
    assert session["user.id"] == "live-user"
    assert session["services"] == ["live-openinference"]
    # the fake server meters 10 tokens per message, 20 per text answer, 5 per embedded input
    assert usage["request_count"] == 3
    assert (usage["total_input_tokens"], usage["total_output_tokens"]) == (10 + 20 + 10, 20 + 20)
    assert usage["cache_read_input_tokens"] == 8 and usage["reasoning_output_tokens"] == 12
    assert usage["models_used"] == ["gpt-4o-mini-2024-07-18", "text-embedding-3-small"]
    assert usage["providers_used"] == ["openai"]
    assert usage["estimated_cost_usd"] > 0


# -- agent frameworks ---------------------------------------------------------------------
#
# Each capture below ran a real agent framework against the fake model server (see
# tests/instrumentations/README.md); `<capture>.served.json` beside it holds what the fake
# metered for every model call of the run, the truth the session's usage must add up to.

WEATHER = "Sunny, 21C in Paris"
PARIS = {"city": "Paris"}


@dataclass(frozen=True)
class AgentRun:
    user: str | None
    providers: tuple[str, ...]
    models: tuple[str, ...]
    llm_agents: tuple[str | None, ...]  # the agent of each LLM call, in time order
    tools: tuple[tuple[str | None, Any, Any], ...] = ()  # (agent, arguments, result)
    handoffs: tuple[tuple[str, str], ...] = ()
    # usage the library never reports (the served truth has it, no span does)
    unreported: frozenset[str] = frozenset()


GPT = ("gpt-4o-mini-2024-07-18",)
CLAUDE = ("claude-haiku-4-5",)
OPENAI = ("openai",)
ANTHROPIC = ("anthropic",)
AGENT_RUNS = {
    "openai_agents_openinference": AgentRun(
        "user-42",
        OPENAI,
        GPT,
        ("triage-agent", "weather-agent", "weather-agent", "weather-agent"),
        (("weather-agent", PARIS, WEATHER),),
        (("triage-agent", "weather-agent"),),
    ),
    # the official instrumentation names no user and emits no handoff span
    "openai_agents_otel": AgentRun(
        None,
        OPENAI,
        GPT,
        ("triage-agent", "weather-agent", "weather-agent", "weather-agent"),
        (("weather-agent", PARIS, WEATHER),),
    ),
    # OpenInference marks the graph and its "agent" node as AGENT spans; the model call
    # sits in the node, the tool in the "tools" node (a chain) of the graph; the streamed
    # call reports no response model; the tool's input is the bare string it was given
    "langgraph_openinference": AgentRun(
        "user-42",
        OPENAI,
        ("gpt-4o-mini", *GPT),
        ("agent", "agent", "agent"),
        (("weather-agent", "Paris", WEATHER),),
    ),
    # pydantic-ai has no user: the one given in the run's metadata is a JSON attribute
    "pydantic_ai": AgentRun(
        None, OPENAI, GPT, ("weather-agent",) * 3, (("weather-agent", PARIS, WEATHER),)
    ),
    # the Messages API's metadata.user_id is not traced
    "anthropic_sdk": AgentRun(None, ANTHROPIC, CLAUDE, (None,) * 3),
    "anthropic_sdk_openllmetry": AgentRun(None, ANTHROPIC, CLAUDE, (None,) * 3),
    # Strands names no response model and reports no reasoning tokens; the default
    # conventions put the tool's call and result in span events
    "strands": AgentRun(
        "user-42",
        OPENAI,
        ("gpt-4o-mini",),
        ("weather-agent",) * 3,
        (("weather-agent", PARIS, [{"text": WEATHER}]),),
        unreported=frozenset({"reasoning_tokens"}),
    ),
    "strands_latest": AgentRun(
        "user-42",
        OPENAI,
        ("gpt-4o-mini",),
        ("weather-agent",) * 3,
        (("weather-agent", PARIS, [{"text": WEATHER}]),),
        unreported=frozenset({"reasoning_tokens"}),
    ),
    "crewai_openinference": AgentRun(
        "user-42",
        OPENAI,
        GPT,
        ("Weather researcher", "Weather researcher", "Forecast writer"),
        (("Weather researcher", PARIS, WEATHER),),
    ),
    # ADK emits no user and no tool arguments; each model call is ADK's generate_content
    # span with the Anthropic SDK's own span inside, both with usage: the inner one counts
    "google_adk": AgentRun(
        None,
        ANTHROPIC,
        CLAUDE,
        ("weather_agent",) * 6,
        (("weather_agent", None, None),),
    ),
    "vercel_ai_v6_agent": AgentRun(
        "user-42", OPENAI, GPT, ("weather-agent",) * 3, (("weather-agent", PARIS, WEATHER),)
    ),
    # ai 7's gen_ai spans carry no reasoning tokens; its history replay made the second
    # turn call the tool again
    "vercel_ai_v7_agent": AgentRun(
        "user-42",
        OPENAI,
        GPT,
        ("weather-agent",) * 4,
        (("weather-agent", PARIS, WEATHER),) * 2,
        unreported=frozenset({"reasoning_tokens"}),
    ),
}

_USAGE_KEYS = {
    "requests": "request_count",
    "input_tokens": "total_input_tokens",
    "output_tokens": "total_output_tokens",
    "cache_read_tokens": "cache_read_input_tokens",
    "cache_write_tokens": "cache_creation_input_tokens",
    "reasoning_tokens": "reasoning_output_tokens",
}


def _replay(bridge: RunningBridge, capture: str) -> dict[str, Any]:
    spans = json.loads((CAPTURES / f"{capture}.json").read_text())
    _post(bridge, _request(spans))
    assert list(bridge.all_sessions()) == ["sess-1234"]
    return bridge.get_session("sess-1234")


def _events(bridge: RunningBridge) -> list[dict[str, Any]]:
    response = bridge.client.get(
        "/api/projects/default/sessions/sess-1234/traces", params={"limit": 1000}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


@pytest.mark.parametrize("capture", sorted(AGENT_RUNS))
def test_agent_framework_capture_maps_to_its_session(bridge: RunningBridge, capture: str) -> None:
    expected = AGENT_RUNS[capture]
    session = _replay(bridge, capture)
    usage = session["genai_usage"]
    assert session["user.id"] == expected.user
    assert session["error_count"] == 0
    assert tuple(usage["providers_used"]) == expected.providers
    assert tuple(usage["models_used"]) == expected.models
    assert usage["estimated_cost_usd"] > 0
    events = _events(bridge)
    assert tuple(e["agentName"] for e in events if e["type"] == "llm_call") == (expected.llm_agents)
    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert [
        (call["agentName"], call["tool"]["arguments"], result["tool"]["output"])
        for call, result in zip(calls, results, strict=True)
    ] == [tuple(t) for t in expected.tools]
    assert [
        (e["handoff"]["fromAgent"], e["handoff"]["toAgent"])
        for e in events
        if e["type"] == "handoff"
    ] == list(expected.handoffs)


@pytest.mark.parametrize("capture", sorted(AGENT_RUNS))
def test_agent_framework_usage_is_what_the_model_served(
    bridge: RunningBridge, capture: str
) -> None:
    """The expected truth: the session's requests and tokens are exactly what the fake
    model server metered (`<capture>.served.json`), whatever the framework repeated on
    its wrapper spans or sent twice."""
    served = json.loads((CAPTURES / f"{capture}.served.json").read_text())["totals"]
    usage = _replay(bridge, capture)["genai_usage"]
    wanted = {k: v for k, v in served.items() if k not in AGENT_RUNS[capture].unreported}
    assert {k: usage[_USAGE_KEYS[k]] for k in wanted} == wanted
    # the per-call breakdown follows the same rule: one entry per call the model served
    metrics = bridge.client.get("/api/projects/default/sessions/sess-1234/metrics").json()
    calls = metrics["llmCalls"]
    assert len(calls) == served["requests"]
    assert sum(c["inputTokens"] for c in calls) == served["input_tokens"]
    assert sum(c["outputTokens"] for c in calls) == served["output_tokens"]
    assert metrics["tokens"]["input"] == served["input_tokens"]
