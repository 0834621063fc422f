"""Capture what Strands Agents emits with its own OpenTelemetry telemetry.

The run: an ``Agent`` named ``weather-agent`` on Strands' ``OpenAIModel`` (chat completions
on the fake, always streamed) with one ``@tool``, ``get_weather``, and
``trace_attributes={"session.id": ..., "user.id": ...}`` -- Strands' documented way to
name session and user.  Turn 1 (``agent(...)``): tool call, tool, answer (2 calls);
turn 2 (``stream_async``): one answer from the agent's history.  Strands traces through
the global tracer provider.

Variants (own process each):

* ``strands``         -- defaults (``gen_ai.system = "strands-agents"``).
* ``strands_latest``  -- ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``.

Run:  python capture_strands.py
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
    SYSTEM_PROMPT,
    USER_ID,
    OtlpSink,
    otlp_provider,
    report_capture,
    run_variants,
)
from fake_openai import FakeOpenAI


def capture(variant: str) -> None:
    if variant == "latest":
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    from opentelemetry import trace

    name = "strands" if variant == "default" else "strands_latest"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = otlp_provider(sink, f"capture-{name}")
        trace.set_tracer_provider(tp)

        from strands import Agent, tool
        from strands.models.openai import OpenAIModel

        @tool
        def get_weather(city: str) -> str:
            """Get the current weather for a city.

            Args:
                city: City name
            """
            return f"Sunny, 21C in {city}"

        model = OpenAIModel(
            client_args={"base_url": fake.base_url, "api_key": "sk-fake", "max_retries": 0},
            model_id=CHAT_MODEL,
        )
        agent = Agent(
            model=model,
            name="weather-agent",
            system_prompt=SYSTEM_PROMPT,
            tools=[get_weather],
            trace_attributes={"session.id": SESSION_ID, "user.id": USER_ID},
            callback_handler=None,
        )
        agent("What is the weather in Paris?")

        async def turn2() -> None:
            async for _ in agent.stream_async("Thanks! And tomorrow?"):
                pass

        asyncio.run(turn2())
        tp.force_flush()
        report_capture(name, sink, fake, max_chars=600, library="strands-agents", variant=variant)


def main() -> None:
    run_variants(__file__, capture, ("default", "latest"))


if __name__ == "__main__":
    main()
