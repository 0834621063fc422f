"""Capture what OpenLIT (``openlit``) emits for the OpenAI client.

``openlit.init(otlp_endpoint=<sink>, disable_batch=True, disable_metrics=True,
pricing_json=<local file>)``.  ``pricing_json`` must be given: without it OpenLIT downloads
its price list from the internet at init (no network here -> every cost would be 0).
The local price list uses round numbers (per 1K tokens: gpt-4o-mini prompt 1.0,
completion 2.0, cache read 0.5; text-embedding-3-small 0.1) so costs are checkable:
OpenLIT treats OpenAI ``prompt_tokens`` as cache-inclusive, i.e.
``cost = (prompt - cached)/1000*1.0 + completion/1000*2.0 + cached/1000*0.5``.

OpenLIT has no dedicated session/user API.  The generic mechanism is
``openlit.using_attributes({...})`` (context-scoped custom attributes copied onto every
auto-instrumented span); we use ``{"session.id": ..., "user.id": ...}``.  Each turn is
wrapped in ``openlit.agent_context("weather-agent")`` and ``openlit.start_trace("turn-N")``
(OpenLIT's manual wrapper span).  OpenLIT also auto-instruments every supported library
it finds (httpx, requests, ...) unless ``disabled_instrumentors`` says otherwise; that is
left at the default here to show what users really get.

Run:  python capture_openlit.py
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

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

PRICING = {
    "chat": {"gpt-4o-mini": {"promptPrice": 1.0, "completionPrice": 2.0, "cacheReadPrice": 0.5}},
    "embeddings": {"text-embedding-3-small": 0.1},
}


def main() -> None:
    import openai
    import openlit

    with (
        FakeOpenAI() as fake,
        OtlpSink() as sink,
        tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as pf,
    ):
        json.dump(PRICING, pf)
        pf.flush()
        openlit.init(
            application_name="capture-openlit",
            environment="test",
            otlp_endpoint=sink.endpoint,
            disable_batch=True,
            disable_metrics=True,
            pricing_json=pf.name,
        )

        @contextlib.contextmanager
        def wrap_turn(name: str) -> Iterator[None]:
            with openlit.agent_context("weather-agent"), openlit.start_trace(name):
                yield

        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0)
        with openlit.using_attributes({"session.id": SESSION_ID, "user.id": USER_ID}):
            run_openai_session(client, wrap_turn=wrap_turn)

        from opentelemetry import _logs, trace

        trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
        lp = _logs.get_logger_provider()
        if hasattr(lp, "force_flush"):
            lp.force_flush()
        path = write_capture("openlit", sink.spans, sink.logs)
        print(f"openlit: {len(sink.spans)} spans, {len(sink.logs)} logs -> {path}")
        print(summarize(sink.spans))


if __name__ == "__main__":
    main()
