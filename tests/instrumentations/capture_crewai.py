"""Capture what CrewAI emits through OpenInference (``openinference-instrumentation-crewai``
for the crew, agents, tasks and tools; ``openinference-instrumentation-openai`` for the
model calls, which CrewAI's native OpenAI provider makes with the ``openai`` client).

The run: a sequential crew of two agents -- ``Weather researcher`` with one tool,
``get_weather``, and ``Forecast writer`` -- on ``LLM(model="openai/gpt-4o-mini",
stream=True)`` against the fake.  One ``kickoff``: the researcher calls the tool and
answers (2 calls), the writer answers (1 call).  Session and user are set the
OpenInference way, ``using_attributes(session_id=..., user_id=...)`` around the kickoff.
CrewAI's own anonymous telemetry and tracing are switched off by their environment
variables.

Run:  python capture_crewai.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ["CREWAI_DISABLE_TRACKING"] = "true"
os.environ["OTEL_SDK_DISABLED"] = "false"

from capture_common import (
    CHAT_MODEL,
    SESSION_ID,
    USER_ID,
    OtlpSink,
    otlp_provider,
    report_capture,
)
from fake_openai import FakeOpenAI


def main() -> None:
    name = "crewai_openinference"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        os.environ["OPENAI_API_KEY"] = "sk-fake"
        os.environ["OPENAI_BASE_URL"] = fake.base_url
        tp = otlp_provider(sink, f"capture-{name}")
        from openinference.instrumentation import using_attributes
        from openinference.instrumentation.crewai import CrewAIInstrumentor
        from openinference.instrumentation.openai import OpenAIInstrumentor

        CrewAIInstrumentor().instrument(tracer_provider=tp)
        OpenAIInstrumentor().instrument(tracer_provider=tp)

        from crewai import LLM, Agent, Crew, Process, Task
        from crewai.tools import tool

        @tool("get_weather")
        def get_weather(city: str) -> str:
            """Get the current weather for a city."""
            return f"Sunny, 21C in {city}"

        llm = LLM(
            model=f"openai/{CHAT_MODEL}",
            base_url=fake.base_url,
            api_key="sk-fake",
            stream=True,
            max_retries=0,
        )
        researcher = Agent(
            role="Weather researcher",
            goal="Find the current weather",
            backstory="You look up weather data.",
            tools=[get_weather],
            llm=llm,
            allow_delegation=False,
            verbose=False,
        )
        writer = Agent(
            role="Forecast writer",
            goal="Write a one-line forecast",
            backstory="You write short forecasts.",
            llm=llm,
            allow_delegation=False,
            verbose=False,
        )
        research = Task(
            description="What is the weather in Paris?",
            expected_output="The weather in Paris",
            agent=researcher,
        )
        write = Task(
            description="Write a one-line forecast from the research.",
            expected_output="One line",
            agent=writer,
        )
        crew = Crew(
            agents=[researcher, writer],
            tasks=[research, write],
            process=Process.sequential,
            verbose=False,
        )
        with using_attributes(session_id=SESSION_ID, user_id=USER_ID):
            crew.kickoff()
        tp.force_flush()
        report_capture(name, sink, fake, max_chars=600, library="crewai", variant="openinference")


if __name__ == "__main__":
    main()
