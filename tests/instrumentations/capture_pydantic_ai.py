"""Capture what pydantic-ai emits with its own OpenTelemetry instrumentation.

The run: an ``Agent`` named ``weather-agent`` on ``OpenAIChatModel`` (chat completions on
the fake) with one tool, ``get_weather``, instrumented with
``Agent.instrument_all(InstrumentationSettings(tracer_provider=...))`` (default data version).  Turn 1
(``run``): tool call, tool, answer (2 calls).  Turn 2 (``run_stream``, streamed, the
history passed back): one answer.  Each run gets ``conversation_id=SESSION_ID`` (pydantic-ai's
own conversation id) and ``metadata={"user_id": USER_ID}`` (it has no user of its own).

Run:  python capture_pydantic_ai.py
"""

from __future__ import annotations

import asyncio
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
)
from fake_openai import FakeOpenAI


async def run(base_url: str, tp: object) -> None:
    from openai import AsyncOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    # the documented switch for every agent (the per-agent form is an Instrumentation
    # capability in this version)
    Agent.instrument_all(InstrumentationSettings(tracer_provider=tp))  # type: ignore[arg-type]
    client = AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)
    model = OpenAIChatModel(CHAT_MODEL, provider=OpenAIProvider(openai_client=client))
    agent = Agent(
        model,
        name="weather-agent",
        instructions=SYSTEM_PROMPT,
    )

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"Sunny, 21C in {city}"

    meta = {"user_id": USER_ID}
    first = await agent.run(
        "What is the weather in Paris?", conversation_id=SESSION_ID, metadata=meta
    )
    async with agent.run_stream(
        "Thanks! And tomorrow?",
        message_history=first.all_messages(),
        conversation_id=SESSION_ID,
        metadata=meta,
    ) as streamed:
        async for _ in streamed.stream_text():
            pass


def main() -> None:
    name = "pydantic_ai"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = otlp_provider(sink, f"capture-{name}")
        asyncio.run(run(fake.base_url, tp))
        tp.force_flush()
        report_capture(
            name, sink, fake, max_chars=600, library="pydantic-ai", variant="own instrumentation"
        )


if __name__ == "__main__":
    main()
