"""Capture what OpenInference (``openinference-instrumentation-openai``) emits.

Session/user ids are set the OpenInference way: the whole session runs inside
``using_attributes(session_id=..., user_id=..., metadata=..., tags=...)`` (equivalent to
nesting ``using_session`` / ``using_user`` / ``using_metadata`` / ``using_tags``).
Each turn is wrapped in an OpenInference AGENT span and the tool execution in a TOOL span
(``OITracer.start_as_current_span(..., openinference_span_kind=...)``), as an agent
framework instrumented with OpenInference would produce.

Variants (own process each):

* ``openinference``        -- defaults.
* ``openinference_genai``  -- ``OPENINFERENCE_ENABLE_GENAI_SEMCONV=true`` (adds OTel GenAI
  semconv attributes next to the OpenInference ones).

Run:  python capture_openinference.py
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    SESSION_ID,
    USER_ID,
    OtlpSink,
    report_capture,
    run_openai_session,
    run_variants,
)
from fake_openai import FakeOpenAI


def capture(variant: str) -> None:
    if variant == "genai":
        os.environ["OPENINFERENCE_ENABLE_GENAI_SEMCONV"] = "true"

    import openai
    from openinference.instrumentation import OITracer, TraceConfig, using_attributes
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = TracerProvider(resource=Resource.create({"service.name": "capture-openinference"}))
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sink.traces_url)))
        OpenAIInstrumentor().instrument(tracer_provider=tp)
        tracer = OITracer(tp.get_tracer("capture.agent"), config=TraceConfig())

        def wrap_turn(name: str) -> contextlib.AbstractContextManager[object]:
            return tracer.start_as_current_span("weather-agent", openinference_span_kind="agent")

        def wrap_tool(name: str) -> contextlib.AbstractContextManager[object]:
            return tracer.start_as_current_span(name, openinference_span_kind="tool")

        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)
        with using_attributes(
            session_id=SESSION_ID,
            user_id=USER_ID,
            metadata={"tenant": "acme"},
            tags=["capture", "demo"],
        ):
            run_openai_session(client, wrap_turn=wrap_turn, wrap_tool=wrap_tool)
        tp.force_flush()
        name = "openinference_genai" if variant == "genai" else "openinference"
        report_capture(name, sink)


def main() -> None:
    run_variants(__file__, capture, ("default", "genai"))


if __name__ == "__main__":
    main()
