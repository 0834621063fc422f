"""Capture what the OpenAI Agents SDK (``openai-agents``) emits through two instrumentations.

The run (both variants): a ``triage-agent`` that can only hand off to a ``weather-agent``
with one function tool, ``get_weather``.  Turn 1 (``Runner.run``): triage -> handoff ->
weather agent calls the tool -> answers (3 Responses API calls).  Turn 2
(``Runner.run_streamed``, streamed): the weather agent answers from the history (1 call).
The conversation is kept in ``SQLiteSession(SESSION_ID)`` and every run carries
``RunConfig(group_id=SESSION_ID, trace_metadata={"user_id": USER_ID})``, the Agents SDK's
own way of naming a conversation and a user; OpenInference users add
``using_attributes(session_id=..., user_id=...)``.

Variants (own process each):

* ``openai_agents_openinference`` -- ``openinference-instrumentation-openai-agents``.
* ``openai_agents_otel``          -- ``opentelemetry-instrumentation-genai-openai-agents``
  (the official GenAI one: workflow, agent and tool spans) together with
  ``opentelemetry-instrumentation-genai-openai`` (the model calls, which the agents one
  leaves to it), ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``.

Run:  python capture_openai_agents.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    CHAT_MODEL,
    SESSION_ID,
    USER_ID,
    OtlpSink,
    otlp_provider,
    report_capture,
    run_variants,
)
from fake_openai import FakeOpenAI


async def run_agents(base_url: str) -> None:
    from agents import (
        Agent,
        RunConfig,
        Runner,
        SQLiteSession,
        function_tool,
        set_default_openai_client,
    )
    from openai import AsyncOpenAI

    set_default_openai_client(
        AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0), use_for_tracing=False
    )

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"Sunny, 21C in {city}"

    weather = Agent(
        name="weather-agent",
        instructions="You are a helpful weather assistant.",
        tools=[get_weather],
        model=CHAT_MODEL,
    )
    triage = Agent(
        name="triage-agent",
        instructions="Hand weather questions to the weather agent.",
        handoffs=[weather],
        model=CHAT_MODEL,
    )
    session = SQLiteSession(SESSION_ID)
    config = RunConfig(
        workflow_name="weather-chat",
        group_id=SESSION_ID,
        trace_metadata={"user_id": USER_ID},
    )
    first = await Runner.run(
        triage, "What is the weather in Paris?", session=session, run_config=config
    )
    streamed = Runner.run_streamed(
        first.last_agent, "Thanks! And tomorrow?", session=session, run_config=config
    )
    async for _ in streamed.stream_events():
        pass


def capture(variant: str) -> None:
    name = f"openai_agents_{variant}"
    if variant == "otel":
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = otlp_provider(sink, f"capture-{name}")
        if variant == "otel":
            from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
            from opentelemetry.instrumentation.genai.openai_agents import (
                OpenAIAgentsInstrumentor as OtelAgents,
            )

            # the agents instrumentation leaves the model calls to the OpenAI one
            OpenAIInstrumentor().instrument(tracer_provider=tp)
            OtelAgents().instrument(tracer_provider=tp, disable_openai_trace_export=True)
            asyncio.run(run_agents(fake.base_url))
        else:
            from openinference.instrumentation import using_attributes
            from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

            OpenAIAgentsInstrumentor().instrument(tracer_provider=tp)
            with using_attributes(session_id=SESSION_ID, user_id=USER_ID):
                asyncio.run(run_agents(fake.base_url))
        tp.force_flush()
        report_capture(name, sink, fake, library="openai-agents", variant=variant)


def main() -> None:
    run_variants(__file__, capture, ("openinference", "otel"))


if __name__ == "__main__":
    main()
