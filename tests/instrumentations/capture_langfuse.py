"""Capture what the Langfuse Python SDK (v3+ is OpenTelemetry based; here v5) emits.

The Langfuse client is pointed at the loopback sink (``base_url=<sink>``), so spans arrive
exactly as Langfuse's own exporter sends them: OTLP/HTTP protobuf POSTed to
``<base_url>/api/public/otel/v1/traces`` with Basic auth (public:secret key).

Session/user ids the Langfuse way: ``langfuse.propagate_attributes(session_id=...,
user_id=..., metadata=..., tags=...)`` entered right inside the root observation.

Variants (own process each):

* ``langfuse_openai``  -- Langfuse's drop-in OpenAI integration (``langfuse.openai``),
  root span observation, one ``agent`` observation per turn, a ``tool`` observation for the
  tool call.
* ``langfuse_openinference`` -- Langfuse as the OTel pipeline for a third-party
  instrumentation (OpenInference's OpenAI instrumentor on Langfuse's tracer provider):
  shows what ``propagate_attributes`` puts on spans Langfuse did not create.

Run:  python capture_langfuse.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    SESSION_ID,
    USER_ID,
    OtlpSink,
    run_openai_session,
    run_variants,
    summarize,
    write_capture,
)
from fake_openai import FakeOpenAI


def capture(variant: str) -> None:
    with FakeOpenAI() as fake, OtlpSink() as sink:
        from langfuse import Langfuse, propagate_attributes

        langfuse = Langfuse(
            public_key="pk-lf-fake",
            secret_key="sk-lf-fake",
            base_url=sink.endpoint,
            environment="test",
            release="capture-1",
        )
        if variant == "openai":
            from langfuse.openai import openai  # patches the openai client classes
        else:
            import openai
            from openinference.instrumentation.openai import OpenAIInstrumentor
            from opentelemetry import trace

            # Langfuse registers its TracerProvider globally unless given one.
            OpenAIInstrumentor().instrument(tracer_provider=trace.get_tracer_provider())

        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)

        def wrap_turn(name: str):  # type: ignore[no-untyped-def]
            return langfuse.start_as_current_observation(as_type="agent", name="weather-agent")

        def wrap_tool(name: str):  # type: ignore[no-untyped-def]
            return langfuse.start_as_current_observation(as_type="tool", name=name)

        with (
            langfuse.start_as_current_observation(as_type="span", name="weather-session"),
            propagate_attributes(
                session_id=SESSION_ID,
                user_id=USER_ID,
                metadata={"tenant": "acme"},
                tags=["capture", "demo"],
            ),
        ):
            run_openai_session(client, wrap_turn=wrap_turn, wrap_tool=wrap_tool)
        langfuse.flush()
        name = f"langfuse_{variant}"
        path = write_capture(name, sink.spans, sink.logs)
        print(f"{name}: {len(sink.spans)} spans -> {path}")
        print("content types:", sorted(sink.content_types))
        print(
            "auth header present:",
            all(any(k.lower() == "authorization" for k in h) for h in sink.headers),
        )
        print("other requests:", [p for p, _ in sink.other_requests])
        print(summarize(sink.spans))
        langfuse.shutdown()


def main() -> None:
    run_variants(__file__, capture, ("openai", "openinference"))


if __name__ == "__main__":
    main()
