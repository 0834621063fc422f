"""The compiled observation event writer writes what the Python path builds and orjson
encodes, byte for byte, or hands the event back: for every captured instrumentation,
for generated spans and values, at the edges of every number and time it writes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from session_bridge.mapping import langfuse_events
from session_bridge.mapping.langfuse_events import (
    NAMESPACE,
    dumps,
    observation_event,
    observation_json,
)
from session_bridge.mapping.mapper import map_request
from session_bridge.mapping.payloads import RawSpan, SpanEvent, decode_span, span_io
from session_bridge.model import EventType, LlmUsage, SpanRecord
from session_bridge.timefmt import iso_from_ns
from tests.leaks import bytes_kept
from tests.test_ingestion_events import CAPTURE_FILES
from tests.test_instrumentations import CAPTURES, _request

writer: Any = vars(langfuse_events)["_event_json"]
# the times it writes: 64 bits of nanoseconds (1677-09-21 to 2262-04-11)
MIN_NS, MAX_NS = -(2**63), 2**63 - 1


def test_the_compiled_writer_is_built() -> None:
    # the suite must exercise it: the package builds it when a C compiler is at hand
    assert langfuse_events.COMPILED, (
        "session_bridge.mapping._event_json is missing: install with a C compiler"
    )


def python_way(span: SpanRecord, raw: RawSpan, io: tuple[Any, Any] | None) -> tuple[str, bytes]:
    event = observation_event(span, raw, io)
    return event["id"], dumps(event)


def compiled_way(span: SpanRecord, raw: RawSpan, io: tuple[Any, Any] | None) -> tuple[str, bytes]:
    kind, inputs, outputs, level, version, named, generation = langfuse_events._observation_fields(
        span, raw, io
    )
    result: tuple[str, bytes] = writer.observation(
        kind, span.trace_id, span.span_id, span.parent_span_id, span.name[:1000],
        span.start_ns, span.end_ns, level, span.status_message, inputs, outputs,
        raw.attributes, raw.resource, span.scope_name, span.event_type, version, named,
        generation or None,
    )  # fmt: skip
    return result


@pytest.mark.parametrize("capture", CAPTURE_FILES)
def test_every_captured_span_is_written_as_python_builds_it(capture: str) -> None:
    mapped = map_request(_request(json.loads((CAPTURES / capture).read_text())))
    assert mapped.records
    for record in mapped.records:
        raw = decode_span(record.otlp_span, mapped.resources[record.resource_key])
        io = span_io(raw)
        assert compiled_way(record, raw, io) == python_way(record, raw, io)
        assert observation_json(record, raw, io) == python_way(record, raw, io)


# -- values ------------------------------------------------------------------------------

_texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", '"', "\\", "\x00\x1f\x7f", "\b\t\n\f\r", "é✓😀\u2028\ufeff", "a" * 9 + '"', "ü" * 9]
)
_integers = st.integers(-(2**63), 2**64 - 1) | st.sampled_from(
    [0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]
)
_floats = st.floats() | st.sampled_from(
    [0.0, -0.0, 1e-5, -1.5e-5, 9.999999999999999e-6, 1e-6, 1e-7, 1e-4, 1e15, 1e16, 1e22,
     5e-324, 1.7976931348623157e308, math.nan, math.inf, -math.inf]
)  # fmt: skip
_scalars = st.none() | st.booleans() | _integers | _floats | _texts
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
@example("\ud800")
@example([2**64])
@example({"k": -(2**63) - 1})
def test_values_are_written_as_orjson_writes_them(value: Any) -> None:
    try:
        expected = orjson.dumps(value)
    except TypeError:  # past 64 bits, a lone surrogate: the Python way encodes those
        with pytest.raises(writer.Unsupported):
            writer.dumps(value)
        return
    assert writer.dumps(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_written_as_orjson_writes_them(number: float) -> None:
    assert writer.dumps(number) == orjson.dumps(number)


def test_floats_at_every_exponent_are_written_as_orjson_writes_them() -> None:
    for exponent in range(-324, 309):
        for mantissa in (1.0, 1.5, 9.999999999999999, 2.2250738585072014, 4.9):
            number = float(f"{mantissa}e{exponent}")
            for signed in (number, -number):
                assert writer.dumps(signed) == orjson.dumps(signed), signed


def test_what_it_does_not_write_as_orjson_would_is_handed_back() -> None:
    nested: Any = "leaf"
    for _ in range(200):
        nested = [nested]
    for value in ({1: "a"}, ("a",), b"x", {"a": {"b": object()}}, nested, 2**64, -(2**63) - 1):
        with pytest.raises(writer.Unsupported):
            writer.dumps(value)


# -- ids and times -----------------------------------------------------------------------


@given(st.text(max_size=200))
@example("span-create:" + "ab" * 16 + ":" + "cd" * 8)
@example("x" * 55)
@example("x" * 56)
@example("x" * 64)
@example("x" * 119)
def test_event_ids_are_uuid5(name: str) -> None:
    # with the CPU's SHA instructions where it has them (`sha1_instructions()`), and without
    with contextlib.suppress(UnicodeEncodeError):  # (surrogates: no UTF-8, no id either way)
        name.encode()
        expected = str(uuid.uuid5(NAMESPACE, name))
        assert writer.event_id(name) == expected
        assert writer.event_id_portable(name) == expected


def test_event_ids_are_the_same_without_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["", "a", "trace-create:" + "ab" * 16 + ":" + "cd" * 16, "é✓😀", "x" * 200]
    written = [langfuse_events.event_id(name) for name in names]
    monkeypatch.setattr(langfuse_events, "_event_json", None)
    assert [langfuse_events.event_id(name) for name in names] == written
    assert written == [str(uuid.uuid5(NAMESPACE, name)) for name in names]


@given(st.integers(MIN_NS, MAX_NS))
@example(0)
@example(-1)
@example(MIN_NS)
@example(MAX_NS)
@example(951_782_400 * 10**9)  # 2000-02-29
@example(4_107_542_400 * 10**9 - 1)  # 2100-02-28T23:59:59.999999999
def test_times_are_written_as_timefmt_writes_them(unix_ns: int) -> None:
    assert writer.iso_from_ns(unix_ns) == iso_from_ns(unix_ns)


@pytest.mark.parametrize("unix_ns", [MIN_NS - 1, MAX_NS + 1, 2**64 - 1, 2**80])
def test_times_past_64_bits_are_handed_back(unix_ns: int) -> None:
    with pytest.raises(writer.Unsupported):
        writer.iso_from_ns(unix_ns)


# -- whole events ------------------------------------------------------------------------

_ids = st.binary(min_size=8, max_size=8)
_attributes = st.dictionaries(
    st.sampled_from(
        ["gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.request.stop_sequences",
         "langfuse.observation.type", "langfuse.observation.level", "service.version",
         "langfuse.observation.input", "output.value", "a.key", "gen_ai.completion.0.content"]
    ) | _texts,
    _values,
    max_size=8,
)  # fmt: skip


@st.composite
def spans(draw: st.DrawFn) -> tuple[SpanRecord, RawSpan]:
    start = draw(st.integers(MIN_NS, MAX_NS))
    event_type = draw(st.sampled_from(list(EventType)))
    llm = None
    if event_type is EventType.LLM_CALL:
        llm = LlmUsage(
            provider=draw(st.none() | _texts),
            model=draw(st.none() | _texts),
            input_tokens=draw(st.integers(0, 10**9)),
            output_tokens=draw(st.integers(0, 10**9)),
            cache_read_tokens=draw(st.integers(0, 10**6)),
        )
    span = SpanRecord(
        trace_id=draw(st.binary(min_size=16, max_size=16)),
        span_id=draw(_ids),
        parent_span_id=draw(st.none() | _ids),
        name=draw(_texts | st.just("n" * 1200)),
        kind=1,
        start_ns=start,
        end_ns=draw(st.integers(start, MAX_NS)),
        status_code=draw(st.integers(0, 2)),
        status_message=draw(_texts),
        event_type=event_type,
        is_error=draw(st.booleans()),
        environment=draw(st.none() | st.sampled_from(["production", "Langfuse-Dev", "Not OK"])),
        llm=llm,
        cost_usd=draw(st.none() | _floats),
        scope_name=draw(_texts),
    )
    raw = RawSpan(
        span.name,
        start,
        draw(_attributes),
        [SpanEvent("gen_ai.choice", start, {"message": "m"})] if draw(st.booleans()) else [],
        draw(st.dictionaries(_texts, _values, max_size=4)),
    )
    return span, raw


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(spans())
def test_generated_spans_are_written_as_python_builds_them(
    drawn: tuple[SpanRecord, RawSpan],
) -> None:
    span, raw = drawn
    expected = python_way(span, raw, None)
    try:
        written = compiled_way(span, raw, None)
    except writer.Unsupported:  # handed back: what the bridge sends is the Python way's
        assert observation_json(span, raw, None) == expected
        return
    assert written == expected
    assert observation_json(span, raw, None) == expected


def test_an_event_it_hands_back_is_built_the_python_way() -> None:
    """A lone surrogate and an integer past 64 bits: orjson refuses them, and the event
    goes the standard library's way, as it did before the writer."""
    span = SpanRecord(
        trace_id=os.urandom(16), span_id=os.urandom(8), parent_span_id=None, name="n",
        kind=1, start_ns=10**18, end_ns=10**18 + 5, status_code=0, status_message="",
        event_type=EventType.RESPONSE, is_error=False, scope_name="s",
    )  # fmt: skip
    for odd in ("\ud800", 2**64):
        raw = RawSpan("n", 10**18, {"k": odd, "é": "ü"})
        with pytest.raises(writer.Unsupported):
            compiled_way(span, raw, None)
        event_id, payload = observation_json(span, raw, None)
        assert (event_id, payload) == python_way(span, raw, None)
        assert b"\\u00e9" in payload  # the standard library's ASCII escapes


def test_the_writer_keeps_no_memory() -> None:
    captured = json.loads((CAPTURES / CAPTURE_FILES[0]).read_text())
    mapped = map_request(_request(captured))
    spans = []
    for record in mapped.records:
        raw = decode_span(record.otlp_span, mapped.resources[record.resource_key])
        spans.append((record, raw, span_io(raw)))
    odd = ({"a": [1.5, 2**63, "é\n"]}, {1: 2}, "\ud800", [[[2**64]]])

    def write_all(times: int) -> None:
        for _ in range(times):
            for record, raw, io in spans:
                compiled_way(record, raw, io)
            for value in odd:
                with contextlib.suppress(writer.Unsupported):
                    writer.dumps(value)

    grown = bytes_kept(write_all, warm=50, times=2_000)
    assert grown < 64_000, f"{grown} bytes kept after {2_000 * len(spans)} events"
