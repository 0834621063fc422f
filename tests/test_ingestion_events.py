"""Ingestion events built at ingest are the events the exporter would build from the
stored span (one rule, two moments), for every captured instrumentation; their fast
parts agree with what they replace: event ids with uuid5, the one-pass `span_io` with
Langfuse's list of sources read in order."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from session_bridge.export.langfuse_events import ingestion_units
from session_bridge.mapping import payloads
from session_bridge.mapping.langfuse_events import (
    NAMESPACE,
    _model_parameters,
    add_ingestion_events,
    event_id,
)
from session_bridge.mapping.mapper import map_request
from session_bridge.mapping.payloads import RawSpan, SpanEvent, parse_json_text, span_io
from session_bridge.otlp.values import attribute_dict
from tests.export_helpers import log_entries
from tests.test_instrumentations import CAPTURES, _request

CAPTURE_FILES = sorted(
    p.name
    for p in CAPTURES.glob("*.json")
    if not p.name.endswith((".served.json", ".logs.json", ".otlp-request.json"))
)


def _units(spans: list[dict[str, Any]], built_at_ingest: bool) -> list[tuple[bytes, str]]:
    mapped = map_request(_request(spans), decode_attributes=built_at_ingest)
    if built_at_ingest:
        add_ingestion_events(mapped)
        assert all(r.ingestion_event is not None for r in mapped.records)
    entries = log_entries(mapped)
    return [(u.payload, u.key) for u in ingestion_units(entries, 1_000_000)]


@pytest.mark.parametrize("capture", CAPTURE_FILES)
def test_events_built_at_ingest_are_the_events_built_at_export(capture: str) -> None:
    spans = json.loads((CAPTURES / capture).read_text())
    at_export = _units(spans, built_at_ingest=False)
    assert at_export and _units(spans, built_at_ingest=True) == at_export
    for payload, key in at_export:
        assert json.loads(payload)["id"] == key


@given(st.text(max_size=80))
def test_event_ids_are_uuid5(name: str) -> None:
    assert event_id(name) == str(uuid.uuid5(NAMESPACE, name))


def test_attributes_decode_as_the_mapper_reads_them() -> None:
    attributes = [
        KeyValue(key="k", value=AnyValue(string_value="first")),
        KeyValue(key="k", value=AnyValue(string_value="second")),
        KeyValue(key="n", value=AnyValue(double_value=math.nan)),
        KeyValue(key="i", value=AnyValue(double_value=-math.inf)),
        KeyValue(key="e", value=AnyValue(string_value="")),
        KeyValue(key="b", value=AnyValue(bytes_value=b"\x01")),
    ]
    assert attribute_dict(attributes) == {"k": "first", "n": "nan", "i": "-inf", "e": "", "b": "01"}


# -- span_io: the one-pass reading against the sources read one by one, in order -----------

_SOURCES_IN_ORDER: list[tuple[str, Any]] = [
    ("attr", (("langfuse.observation.input",), ("langfuse.observation.output",))),
    ("attr", (("ai.prompt.messages", "ai.prompt", "ai.toolCall.args"),
              ("ai.response.text", "ai.result.text", "ai.toolCall.result", "ai.response.object",
               "ai.result.object", "ai.response.toolCalls", "ai.result.toolCalls"))),
    ("details", None),
    ("messages", None),
    ("content", None),
    ("attr", (("mlflow.spanInputs",), ("mlflow.spanOutputs",))),
    ("attr", (("traceloop.entity.input",), ("traceloop.entity.output",))),
    ("attr", (("input.value",), ("output.value",))),
    ("attr", (("input",), ("output",))),
    ("attr", (("pydantic_ai.all_messages",), ("final_result",))),
    ("attr", (("tool_arguments",), ("tool_response",))),
    ("flat", None),
    ("semconv", None),
    ("attr", (("gen_ai.tool.call.arguments",), ("gen_ai.tool.call.result",))),
]  # fmt: skip


def _reference_io(raw: RawSpan) -> tuple[Any, Any]:
    """Each source in Langfuse's order; for each side, the first that has a value."""
    found: list[Any] = [None, None]
    for kind, keys in _SOURCES_IN_ORDER:
        if kind == "attr":
            pair = (raw.first(keys[0]), raw.first(keys[1]))
        elif kind == "details":
            event = next((e for e in raw.events if e.name.endswith("operation.details")), None)
            attrs = event.attributes if event else {}
            pair = (attrs.get("gen_ai.input.messages"), attrs.get("gen_ai.output.messages"))
        elif kind == "messages":
            ins = [{"role": e.name.split(".")[1], **e.attributes} if e.attributes else None
                   for e in raw.events if e.name in ("gen_ai.user.message", "gen_ai.system.message")]  # fmt: skip
            outs = [{"role": "choice", **e.attributes} if e.attributes else None
                    for e in raw.events if e.name == "gen_ai.choice"]  # fmt: skip
            pair = (ins or None, outs or None)
        elif kind == "content":
            prompt = next((e for e in raw.events if e.name == "gen_ai.content.prompt"), None)
            done = next((e for e in raw.events if e.name == "gen_ai.content.completion"), None)
            pair = (
                prompt.attributes.get("gen_ai.prompt") if prompt else None,
                done.attributes.get("gen_ai.completion") if done else None,
            )
        elif kind == "flat":
            prompts = {k: v for k, v in raw.attributes.items() if k.startswith("gen_ai.prompt.")}
            completions = {
                k: v for k, v in raw.attributes.items() if k.startswith("gen_ai.completion.")
            }
            pair = (_flat(prompts), _flat(completions))
        else:  # semconv
            messages = parse_json_text(raw.first(("gen_ai.input.messages",)))
            system = parse_json_text(raw.first(("gen_ai.system_instructions",)))
            if messages is not None and system is not None:
                listed = messages if isinstance(messages, list) else [messages]
                messages = [{"role": "system", "parts": system}, *listed]
            pair = (messages, raw.first(("gen_ai.output.messages",)))
        for side in (0, 1):
            if found[side] is None:
                found[side] = pair[side]
    return parse_json_text(found[0]), parse_json_text(found[1])


def _flat(items: dict[str, Any]) -> Any:
    messages: dict[int, dict[str, Any]] = {}
    for key, value in items.items():
        _, _, index, name = key.split(".", 3)
        messages.setdefault(int(index), {})[name] = value
    return [messages[i] for i in sorted(messages)] or None


_IO_KEYS = sorted(
    {key for kind, keys in _SOURCES_IN_ORDER if kind == "attr" for side in keys for key in side}
    | {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
       "gen_ai.prompt.0.role", "gen_ai.prompt.0.content", "gen_ai.completion.0.content",
       "unrelated.key"}
)  # fmt: skip
_VALUES = st.sampled_from(["", "text", '{"a": 1}', "[1, 2]", "[broken", 0, True])
_EVENT_NAMES = st.sampled_from(
    ["gen_ai.client.inference.operation.details", "gen_ai.user.message", "gen_ai.choice",
     "gen_ai.content.prompt", "gen_ai.content.completion", "exception"]
)  # fmt: skip
_EVENT_ATTRS = st.dictionaries(
    st.sampled_from(["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt",
                     "gen_ai.completion", "content"]),
    _VALUES,
    max_size=2,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    attributes=st.dictionaries(st.sampled_from(_IO_KEYS), _VALUES, max_size=6),
    events=st.lists(st.tuples(_EVENT_NAMES, _EVENT_ATTRS), max_size=3),
)
def test_span_io_reads_the_sources_in_langfuse_order(
    attributes: dict[str, Any], events: list[tuple[str, dict[str, Any]]]
) -> None:
    raw = RawSpan("s", 0, attributes, [SpanEvent(name, 0, attrs) for name, attrs in events])
    assert span_io(raw) == _reference_io(raw)


def test_the_reference_knows_every_key_the_bridge_reads() -> None:
    # a source added to the bridge must be added to the reference above
    assert set(_IO_KEYS) >= payloads._IO_KEYS


def test_facts_of_a_key_set_are_remembered_only_for_short_key_sets() -> None:
    calls: list[str] = []

    @payloads.by_key_set
    def count(key_text: str, suffix: str) -> str:
        calls.append(key_text)
        return key_text + suffix

    short, long = "\na\nb", "\n" + "k" * 5000
    assert [count(short, "!") for _ in range(3)] == [short + "!"] * 3
    assert count(short, "?") == short + "?"  # the argument is part of the key
    assert [count(long, "!") for _ in range(2)] == [long + "!"] * 2
    assert calls == [short, short, long, long]  # long key sets: computed each time


def test_key_prefixes_and_model_parameters_follow_each_span_not_the_last_one() -> None:
    first = RawSpan("a", 0, {"gen_ai.request.temperature": 0.5, "input.value": "x"})
    second = RawSpan("b", 0, {"gen_ai.request.top_p": 0.9, "gen_ai.request.model": "m"})
    third = RawSpan("c", 0, {"gen_ai.request.top_p": 0.1, "gen_ai.request.model": "m"})
    flat = RawSpan("d", 0, {"gen_ai.prompt.0.content": "hi", "input.value": "x"})
    for _ in range(2):  # again, from the caches
        assert first.has_key_prefix(payloads._FLAT_KEY) is False
        assert flat.has_key_prefix(payloads._FLAT_KEY) is True
        assert _model_parameters(first) == {"temperature": 0.5}
        assert _model_parameters(second) == {"top_p": 0.9}
        assert _model_parameters(third) == {"top_p": 0.1}  # same keys, its own values
