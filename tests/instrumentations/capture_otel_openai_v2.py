"""Capture what the official OpenTelemetry OpenAI instrumentation
(``opentelemetry-instrumentation-openai-v2``, built on ``opentelemetry-util-genai``) emits.

Versions that work together: opentelemetry-instrumentation-openai-v2==2.4b0 with
opentelemetry-util-genai==1.1b0.  (2.4b0 only requires util-genai>=0.4b0.dev, so pip picks
1.3b0, whose module rename breaks ``import opentelemetry.instrumentation.openai_v2``.)
With util-genai>=1.1b0 ``is_experimental_mode()`` is always True, so the old semconv-v1.30
path (``gen_ai.system``, log events) is unreachable: there is a single shape.

Variants, each in its own process:

* ``otel_openai_v2``        -- defaults (no content capture), no wrapper spans.
* ``otel_openai_v2_agent``  -- content capture ``SPAN_ONLY`` and every turn wrapped in
  util-genai's ``TelemetryHandler.invoke_local_agent(...)`` with ``conversation_id`` set:
  the only session-id mechanism this stack has (``gen_ai.conversation.id``, agent span only
  in util-genai 1.1b0; util-genai 1.3b0 would propagate it to child spans via context).
* ``otel_openai_v2_legacy`` -- run ONLY in a venv with
  ``opentelemetry-instrumentation-openai-v2==2.3b0`` (the last release without
  util-genai; it installs with the project's pins): the older semconv-v1.30 shape
  (``gen_ai.system``, prompt/completion as log events), content capture ``true``.
  ``python capture_otel_openai_v2.py legacy``

Spans and log records go through the real OTLP/HTTP exporters into a loopback sink.
Run:  python capture_otel_openai_v2.py
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    SESSION_ID,
    OtlpSink,
    run_openai_session,
    run_variants,
    summarize,
    write_capture,
)
from fake_openai import FakeOpenAI


def capture(variant: str) -> None:
    latest = variant == "agent"
    if variant == "legacy":
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    if latest:
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"

    import openai
    from opentelemetry import _logs, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    with FakeOpenAI() as fake, OtlpSink() as sink:
        resource = Resource.create({"service.name": "capture-otel-openai-v2"})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sink.traces_url)))
        trace.set_tracer_provider(tp)
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=sink.logs_url))
        )
        _logs.set_logger_provider(lp)
        OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)

        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)
        if latest:
            from opentelemetry.util.genai.handler import TelemetryHandler

            handler = TelemetryHandler(tracer_provider=tp, logger_provider=lp)

            @contextlib.contextmanager
            def wrap_turn(name: str) -> Iterator[object]:
                # util-genai 1.1b0 (the newest that works with openai-v2 2.4b0) has no
                # conversation_id kwarg and no ambient conversation context: the id is set
                # on the agent invocation and lands on the agent span only.
                with handler.invoke_local_agent(
                    agent_name="weather-agent", request_model="gpt-4o-mini"
                ) as inv:
                    inv.conversation_id = SESSION_ID
                    yield inv

            def wrap_tool(name: str) -> contextlib.AbstractContextManager[object]:
                return handler.tool(name)

            run_openai_session(client, wrap_turn=wrap_turn, wrap_tool=wrap_tool)
        else:
            run_openai_session(client)
        tp.force_flush()
        lp.force_flush()
        name = {"agent": "otel_openai_v2_agent", "legacy": "otel_openai_v2_legacy"}.get(
            variant, "otel_openai_v2"
        )
        path = write_capture(name, sink.spans, sink.logs)
        print(f"{name}: {len(sink.spans)} spans, {len(sink.logs)} logs -> {path}")
        print(summarize(sink.spans))


def main() -> None:
    run_variants(__file__, capture, ("plain", "agent"))


if __name__ == "__main__":
    main()
