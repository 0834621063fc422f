"""Capture what LangGraph emits through OpenInference (``openinference-instrumentation-langchain``).

The run: a prebuilt ReAct agent (``create_react_agent``, named ``weather-agent``) on
``ChatOpenAI`` with one tool, ``get_weather``, kept in a ``MemorySaver`` checkpointer.
Turn 1 (``invoke``): the model calls the tool, the tool runs, the model answers (2 chat
calls).  Turn 2 (``stream(stream_mode="messages")``, the model streaming with usage): one
answer from the history.  The conversation is LangGraph's ``thread_id``; session and user
are also put in the run's ``metadata`` (``session_id``, ``user_id``): OpenInference's
LangChain instrumentation reads the session from there, the user only from its own
``using_user``, which wraps the run.  String values over 600 chars are cut (every
LangGraph span carries the whole graph state).

Run:  python capture_langgraph.py
"""

from __future__ import annotations

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


def main() -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.checkpoint.memory import MemorySaver
    from langgraph.prebuilt import create_react_agent
    from openinference.instrumentation import using_user
    from openinference.instrumentation.langchain import LangChainInstrumentor

    name = "langgraph_openinference"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = otlp_provider(sink, f"capture-{name}")
        LangChainInstrumentor().instrument(tracer_provider=tp)

        @tool
        def get_weather(city: str) -> str:
            """Get the current weather for a city."""
            return f"Sunny, 21C in {city}"

        model = ChatOpenAI(
            model=CHAT_MODEL,
            base_url=fake.base_url,
            api_key="sk-fake",
            max_retries=0,
            stream_usage=True,
        )
        agent = create_react_agent(
            model,
            [get_weather],
            prompt=SYSTEM_PROMPT,
            checkpointer=MemorySaver(),
            name="weather-agent",
        )
        config = {
            "configurable": {"thread_id": SESSION_ID},
            "metadata": {"session_id": SESSION_ID, "user_id": USER_ID},
        }
        with using_user(USER_ID):
            agent.invoke({"messages": [("user", "What is the weather in Paris?")]}, config)
            for _ in agent.stream(
                {"messages": [("user", "Thanks! And tomorrow?")]}, config, stream_mode="messages"
            ):
                pass
        tp.force_flush()
        report_capture(
            name, sink, fake, max_chars=600, library="langgraph", variant="openinference"
        )


if __name__ == "__main__":
    main()
