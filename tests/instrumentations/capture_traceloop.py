"""Capture what OpenLLMetry / Traceloop emits.

Variants (own process each):

* ``traceloop_sdk`` -- the full ``traceloop-sdk``: ``Traceloop.init(api_endpoint=<sink>,
  disable_batch=True, instruments={Instruments.OPENAI})`` (its own OTLP/HTTP exporter).
  Session/user ids set the Traceloop way:
  ``Traceloop.set_association_properties({"session_id": ..., "user_id": ...})`` inside a
  ``@workflow``; every turn is an ``@agent``, the tool call a ``@tool``; the session
  function is additionally decorated with ``@conversation(conversation_id=...)`` to show
  where ``gen_ai.conversation.id`` lands.
* ``traceloop_instrumentation`` -- only ``opentelemetry-instrumentation-openai`` (the
  lightweight package) on a plain SDK ``TracerProvider`` + OTLP/HTTP exporter.  No
  workflow/agent spans and no association properties (those are added by the
  traceloop-sdk span processor); shows what the bare instrumentation gives.

Run:  python capture_traceloop.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    SESSION_ID,
    USER_ID,
    OtlpSink,
    run_openai_session,
    summarize,
    write_capture,
)
from fake_openai import FakeOpenAI


def capture_sdk() -> None:
    os.environ.setdefault("TRACELOOP_TELEMETRY", "false")
    os.environ["TRACELOOP_METRICS_ENABLED"] = "false"
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"

    import openai
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import agent, conversation, tool, workflow
    from traceloop.sdk.instruments import Instruments

    with FakeOpenAI() as fake, OtlpSink() as sink:
        Traceloop.init(
            app_name="capture-traceloop-sdk",
            api_endpoint=sink.endpoint,
            disable_batch=True,
            telemetry_enabled=False,
            instruments={Instruments.OPENAI},
            resource_attributes={"deployment.environment": "test"},
        )
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)

        @agent(name="weather-agent")
        def run_agent_turn(name: str, fn: Any) -> Any:
            return fn()

        @tool(name="get_weather")
        def run_tool(name: str, fn: Any) -> Any:
            return fn()

        @conversation(conversation_id=SESSION_ID)
        @workflow(name="weather_chat")
        def session() -> None:
            Traceloop.set_association_properties(
                {"session_id": SESSION_ID, "user_id": USER_ID, "tenant": "acme"}
            )
            run_openai_session(client, run_turn=run_agent_turn, run_tool=run_tool)

        session()
        Traceloop.flush() if hasattr(Traceloop, "flush") else None
        from opentelemetry import trace

        trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
        path = write_capture("traceloop_sdk", sink.spans, sink.logs)
        print(f"traceloop_sdk: {len(sink.spans)} spans -> {path}")
        print(summarize(sink.spans))


def capture_instrumentation() -> None:
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = TracerProvider(resource=Resource.create({"service.name": "capture-traceloop-inst"}))
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sink.traces_url)))
        OpenAIInstrumentor().instrument(tracer_provider=tp)
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)
        run_openai_session(client)
        tp.force_flush()
        path = write_capture("traceloop_instrumentation", sink.spans, sink.logs)
        print(f"traceloop_instrumentation: {len(sink.spans)} spans -> {path}")
        print(summarize(sink.spans))


def main() -> None:
    if len(sys.argv) > 1:
        {"sdk": capture_sdk, "instrumentation": capture_instrumentation}[sys.argv[1]]()
        return
    for variant in ("sdk", "instrumentation"):
        subprocess.run([sys.executable, __file__, variant], check=True)


if __name__ == "__main__":
    main()
