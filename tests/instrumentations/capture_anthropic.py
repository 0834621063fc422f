"""Capture what the Anthropic Python SDK emits with its own OpenTelemetry tracing, alone and
together with OpenLLMetry's ``opentelemetry-instrumentation-anthropic``.

The SDK (2.x) traces each API call itself: a ``CLIENT`` span per call, scope
``com.anthropic.sdk.python``, turned on by the client option
``open_telemetry={"tracer_provider": ..., "conversation_id": ..., "traces": {...}}``.
The conversation id is that option's (set per conversation with ``with_options``); the
user is the Messages API's own ``metadata.user_id``.

The run, against the fake's ``/v1/messages`` (which reports cache reads and writes):
turn 1 (``messages.create``, a tool): ``tool_use``, the tool runs, the answer (2 calls);
turn 2 (``messages.stream``): one streamed answer.

Variants (own process each):

* ``anthropic_sdk``             -- the SDK's own spans.
* ``anthropic_sdk_openllmetry`` -- the same, plus OpenLLMetry's instrumentation (each call
  is then two spans, the SDK's inside OpenLLMetry's).

Run:  python capture_anthropic.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_common import (
    SESSION_ID,
    SYSTEM_PROMPT,
    USER_ID,
    OtlpSink,
    get_weather,
    otlp_provider,
    report_capture,
    run_variants,
)
from fake_openai import FakeOpenAI

MODEL = "claude-haiku-4-5"
TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}


def run_session(client: Any) -> None:
    meta = {"user_id": USER_ID}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(
        model=MODEL,
        max_tokens=256,
        system=SYSTEM_PROMPT,
        messages=messages,
        tools=[TOOL],
        metadata=meta,
    )
    call = next(b for b in first.content if b.type == "tool_use")
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": get_weather(**call.input),
                }
            ],
        }
    )
    second = client.messages.create(
        model=MODEL,
        max_tokens=256,
        system=SYSTEM_PROMPT,
        messages=messages,
        tools=[TOOL],
        metadata=meta,
    )
    messages.append({"role": "assistant", "content": second.content[0].text})
    messages.append({"role": "user", "content": "Thanks! And tomorrow?"})
    with client.messages.stream(
        model=MODEL, max_tokens=256, system=SYSTEM_PROMPT, messages=messages, metadata=meta
    ) as stream:
        for _ in stream.text_stream:
            pass


def capture(variant: str) -> None:
    import anthropic

    name = "anthropic_sdk" if variant == "sdk" else "anthropic_sdk_openllmetry"
    with FakeOpenAI() as fake, OtlpSink() as sink:
        tp = otlp_provider(sink, f"capture-{name}")
        if variant == "openllmetry":
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

            AnthropicInstrumentor().instrument(tracer_provider=tp)
        client = anthropic.Anthropic(
            base_url=fake.root_url,
            api_key="sk-ant-fake",
            max_retries=0,
            open_telemetry={
                "tracer_provider": tp,
                "conversation_id": SESSION_ID,
                "traces": {"content_mode": "content"},
            },
        )
        run_session(client)
        tp.force_flush()
        report_capture(name, sink, fake, max_chars=600, library="anthropic", variant=variant)


def main() -> None:
    run_variants(__file__, capture, ("sdk", "openllmetry"))


if __name__ == "__main__":
    main()
