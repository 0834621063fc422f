"""Capture what Google ADK emits with its own telemetry.

ADK traces through the global tracer provider.  Its model here is ADK's own
``AnthropicLlm`` (Claude through the Anthropic SDK, against the fake's ``/v1/messages``):
the fake speaks no Gemini API.  The Anthropic SDK (2.x) traces its calls too, with its
defaults, as it would for any ADK user on Claude.

The run: an ``LlmAgent`` ``weather_agent`` with one function tool, ``get_weather``, in a
``Runner`` with an ``InMemorySessionService`` -- ADK's own session and user ids
(``session_id=SESSION_ID``, ``user_id=USER_ID``).  Turn 1: tool use, tool, answer (2
calls); turn 2 with ``RunConfig(streaming_mode=SSE)``: one streamed answer.

Run:  python capture_google_adk.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    SESSION_ID,
    SYSTEM_PROMPT,
    USER_ID,
    OtlpSink,
    otlp_provider,
    report_capture,
)
from fake_openai import FakeOpenAI

MODEL = "claude-haiku-4-5"


async def run(base_url: str) -> None:
    from anthropic import AsyncAnthropic
    from google.adk.agents import LlmAgent
    from google.adk.agents.run_config import RunConfig, StreamingMode
    from google.adk.models.anthropic_llm import AnthropicLlm
    from google.adk.runners import Runner
    from google.adk.sessions import InMemorySessionService
    from google.genai import types

    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: City name
        """
        return f"Sunny, 21C in {city}"

    llm = AnthropicLlm(
        model=MODEL,
        max_tokens=256,
        client=AsyncAnthropic(base_url=base_url, api_key="sk-ant-fake", max_retries=0),
    )
    agent = LlmAgent(
        name="weather_agent", model=llm, instruction=SYSTEM_PROMPT, tools=[get_weather]
    )
    sessions = InMemorySessionService()
    await sessions.create_session(app_name="weather-app", user_id=USER_ID, session_id=SESSION_ID)
    runner = Runner(agent=agent, app_name="weather-app", session_service=sessions)

    def said(text: str) -> types.Content:
        return types.Content(role="user", parts=[types.Part(text=text)])

    async for _ in runner.run_async(
        user_id=USER_ID, session_id=SESSION_ID, new_message=said("What is the weather in Paris?")
    ):
        pass
    async for _ in runner.run_async(
        user_id=USER_ID,
        session_id=SESSION_ID,
        new_message=said("Thanks! And tomorrow?"),
        run_config=RunConfig(streaming_mode=StreamingMode.SSE),
    ):
        pass


def main() -> None:
    from opentelemetry import trace

    name = "google_adk"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = otlp_provider(sink, f"capture-{name}")
        trace.set_tracer_provider(tp)
        asyncio.run(run(fake.root_url))
        tp.force_flush()
        report_capture(
            name, sink, fake, max_chars=600, library="google-adk", variant="own telemetry, Claude"
        )


if __name__ == "__main__":
    main()
