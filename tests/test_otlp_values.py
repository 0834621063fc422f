"""The compiled attribute decoder gives the protobuf library's values, byte for byte, or
hands the bytes back; the mapping is the same with it and without it."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from session_bridge.mapping import mapper
from session_bridge.mapping.aliases import ALIASES, KEY_LOOKUP, Field
from session_bridge.mapping.mapper import map_request
from session_bridge.otlp import values
from tests.leaks import bytes_kept
from tests.test_ingestion_events import CAPTURE_FILES
from tests.test_instrumentations import CAPTURES, _request

wire: Any = vars(values)["_wire"]


def test_the_compiled_decoder_is_built() -> None:
    # the suite must exercise it: the package builds it when a C compiler is at hand
    assert values.COMPILED, "session_bridge.otlp._wire is missing: install with a C compiler"


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (True is not 1) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def compiled(data: bytes) -> values.SpanParts | None:
    try:
        return values.SpanParts(*wire.decode_span(data))
    except wire.Unsupported:
        return None


def library(data: bytes) -> values.SpanParts:
    return values.parsed_span_parts(Span.FromString(data))


def parts_tuple(parts: values.SpanParts) -> tuple[Any, ...]:
    return (parts.name, parts.start_ns, parts.attributes, parts.events)


# -- generated spans -----------------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "gen_ai.request.model", "é", "", "k\x00"]) | st.text(max_size=8)
_scalars = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), st.text(max_size=12)),
    st.builds(lambda b: AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda i: AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda d: AnyValue(double_value=d), st.floats(allow_nan=True)),
    st.builds(lambda b: AnyValue(bytes_value=b), st.binary(max_size=6)),
    st.just(AnyValue()),
)


def _nest(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        st.builds(
            lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(children, max_size=3)
        ),
        st.builds(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            ),
            st.lists(st.tuples(_keys, children), max_size=3),
        ),
    )


_values = st.recursive(_scalars, _nest, max_leaves=8)
_attributes = st.lists(
    st.builds(lambda k, v: KeyValue(key=k, value=v), _keys, _values)
    | st.builds(lambda k: KeyValue(key=k), _keys),  # no value at all
    max_size=8,
)
_events = st.lists(
    st.builds(
        lambda n, t, a: Span.Event(name=n, time_unix_nano=t, attributes=a),
        st.text(max_size=6),
        st.integers(0, 2**64 - 1),
        _attributes,
    ),
    max_size=3,
)
_spans = st.builds(
    lambda name, start, end, attrs, events, state: Span(
        trace_id=b"t" * 16,
        span_id=b"s" * 8,
        trace_state=state,
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=attrs,
        events=events,
        status=Status(code=Status.STATUS_CODE_ERROR, message="m"),
        flags=0x101,
    ),
    st.text(max_size=10),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    _attributes,
    _events,
    st.text(max_size=4),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_spans)
def test_compiled_decoding_is_the_librarys(span: Span) -> None:
    data = span.SerializeToString()
    got = compiled(data)
    assert got is not None  # every well-formed span is decoded in C
    assert same(parts_tuple(got), parts_tuple(library(data)))
    assert same(values.resource_attributes(Resource(attributes=span.attributes).SerializeToString()),
                values.attribute_dict(span.attributes))  # fmt: skip


def test_keys_met_again_are_the_same_text_and_any_number_of_keys_decodes() -> None:
    """The decoder keeps the keys it met (a bounded table): a key met again is the same
    str; keys past its length, more keys than it has slots, keys sharing a slot, and
    text that differs in one byte all decode as the library does."""
    keys = [f"k{n}" for n in range(5000)] + ["x" * 64, "x" * 65, "y" * 63 + "z", "é" * 32]
    keys += ["gen_ai.request.model", "gen_ai.request.modem", ""]
    for rounds in range(2):
        for start in range(0, len(keys), 50):
            kvs = [
                KeyValue(key=k, value=AnyValue(int_value=i))
                for i, k in enumerate(keys[start : start + 50])
            ]
            data = Span(name="s", attributes=kvs).SerializeToString()
            assert same(wire.span_attributes(data), values.attribute_dict(kvs)), rounds
    data = _span_with(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="m")))
    (first,) = wire.span_attributes(data)
    (again,) = wire.span_attributes(data)
    assert first is again


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_spans, st.data())
def test_damaged_bytes_are_decoded_as_the_library_does_or_handed_back(
    span: Span, data: st.DataObject
) -> None:
    original = bytearray(span.SerializeToString())
    for _ in range(data.draw(st.integers(1, 3))):
        if not original:
            break
        at = data.draw(st.integers(0, len(original) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            original[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del original[at:]
        else:
            original[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    damaged = bytes(original)
    got = compiled(damaged)  # never a crash: a value or Unsupported
    try:
        expected = library(damaged)
    except DecodeError:
        assert got is None  # what the library refuses is handed back to it
    else:
        if got is not None:
            assert same(parts_tuple(got), parts_tuple(expected))
        assert same(parts_tuple(values.span_parts(damaged)), parts_tuple(expected))
    # the attributes alone, of the span and of a resource with the same bytes
    for attributes, message in ((wire.span_attributes, Span), (wire.resource_attributes, Resource)):
        try:
            decoded = message.FromString(damaged)
        except DecodeError:
            with pytest.raises(wire.Unsupported):
                attributes(damaged)
            continue
        with contextlib.suppress(wire.Unsupported):
            assert same(attributes(damaged), values.attribute_dict(decoded.attributes))


def _deep(levels: int) -> AnyValue:
    value = AnyValue(string_value="bottom")
    for _ in range(levels):
        value = AnyValue(array_value=ArrayValue(values=[value]))
    return value


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, written by hand (the library will not write every shape)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _span_with(*attributes: KeyValue) -> bytes:
    return Span(name="s", attributes=attributes).SerializeToString()


@pytest.mark.parametrize(
    "data",
    [
        # a oneof set twice on the wire: the library keeps the last, merging messages
        _field(9, _field(1, b"k") + _field(2, _field(1, b"x") + b"\x18\x05")),
        AnyValue(int_value=3).SerializeToString(),  # no span: its field 1 is no trace id here
        # nested past the compiled decoder's depth, within the library's
        _span_with(KeyValue(key="deep", value=_deep(40))),
        # a string that is not UTF-8 (`Span.FromString` refuses it)
        b"\x2a\x02\xff\xfe",
        # truncated
        _span_with(KeyValue(key="k", value=AnyValue(string_value="value")))[:-2],
    ],
    ids=["oneof-twice", "other-message", "deep", "not-utf8", "truncated"],
)
def test_what_the_compiled_decoder_does_not_handle_goes_to_the_library(data: bytes) -> None:
    try:
        expected: Any = parts_tuple(library(data))
    except Exception as exc:
        expected = type(exc)
    try:
        got: Any = parts_tuple(values.span_parts(data))
    except Exception as exc:
        got = type(exc)
    assert same(got, expected) if isinstance(expected, tuple) else got is expected


_KV = _field(1, b"k") + _field(2, _field(1, b"v"))


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("aa80808080000178"),  # a tag in 6 bytes
        bytes.fromhex("2a81808080800078"),  # a length in 6 bytes
        bytes.fromhex("1a01ff2a026f6b"),  # trace_state not UTF-8
        bytes.fromhex("7a031201ff"),  # status message not UTF-8
        bytes.fromhex("7a0412056162"),  # status cut short inside
        bytes.fromhex("6a020a05"),  # a link cut short inside
        _field(13, _field(3, b"\xff")),  # a link's trace_state not UTF-8
        _field(13, _field(4, _field(1, b"\xff"))),  # a link's attribute key not UTF-8
        bytes.fromhex("2a01ff2a026f6b"),  # a first name not UTF-8, a second one that is
        bytes.fromhex("5a061201ff120165"),  # the same in an event
        _field(9, _KV) + bytes.fromhex("1a01ff"),  # good attributes, bad trace_state
    ],
)
def test_what_the_library_refuses_is_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Span.FromString(data)
    assert compiled(data) is None
    with pytest.raises(wire.Unsupported):
        wire.span_attributes(data)
    with pytest.raises(DecodeError):
        values.span_parts(data)


def test_what_the_library_refuses_in_a_resource_is_refused() -> None:
    data = _field(1, _KV) + _field(3, _field(1, b"\xff"))  # an entity ref's schema_url
    with pytest.raises(DecodeError):
        Resource.FromString(data)
    with pytest.raises(wire.Unsupported):
        wire.resource_attributes(data)
    with pytest.raises(DecodeError):
        values.resource_attributes(data)


def _nested_kvlist(levels: int) -> bytes:
    """An AnyValue `levels` kvlists deep (past what the library itself will build)."""
    value = _field(1, b"b")
    for _ in range(levels):
        value = _field(6, _field(1, _field(1, b"a") + _field(2, value)))
    return value


@pytest.mark.parametrize("levels", [30, 31, 32, 33])
@pytest.mark.parametrize("where", ["span", "event", "link"])
def test_deep_values_are_decoded_where_the_library_decodes_them(levels: int, where: str) -> None:
    attribute = _field(1, b"deep") + _field(2, _nested_kvlist(levels))
    data = {
        "span": _field(9, attribute),
        "event": _field(11, _field(2, b"e") + _field(3, attribute)),
        "link": _field(13, _field(4, attribute)),
    }[where]
    got = compiled(data)
    try:
        expected = parts_tuple(library(data))
    except DecodeError:
        assert got is None
        return
    if got is not None:
        assert same(parts_tuple(got), expected)
    assert same(parts_tuple(values.span_parts(data)), expected)


@pytest.mark.parametrize("capture", CAPTURE_FILES)
def test_spans_map_the_same_without_the_compiled_decoder(
    capture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = _request(json.loads((CAPTURES / capture).read_text()))
    with_c = map_request(request, now_ns=1)
    # the spans' bytes as sent, when the body is at hand: the same records
    as_sent = values.span_slices(request.SerializeToString(), request)
    assert as_sent is not None
    assert map_request(request, now_ns=1, span_bytes=as_sent).records == with_c.records
    monkeypatch.setattr(values, "_wire", None)
    without = map_request(request, now_ns=1)
    assert with_c.records == without.records
    assert with_c.error_message == without.error_message
    for record in with_c.records:
        assert same(parts_tuple(values.span_parts(record.otlp_span)),
                    parts_tuple(library(record.otlp_span)))  # fmt: skip


def test_the_compiled_decoder_keeps_no_memory() -> None:
    # every object it makes is handed back or released, on success and on every way out

    valid = Span(
        name="s",
        attributes=[KeyValue(key=f"k{i}", value=AnyValue(string_value="v" * i)) for i in range(8)]
        + [
            KeyValue(key="a", value=_deep(3)),
            KeyValue(key="n", value=AnyValue(double_value=math.nan)),
        ],
        events=[Span.Event(name="e", attributes=[KeyValue(key="x", value=AnyValue(int_value=1))])],
    ).SerializeToString()
    inputs = [
        valid,
        valid[:-3],
        b"\x2a\x02\xff\xfe",
        _span_with(KeyValue(key="d", value=_deep(40))),
    ]

    lookup = {"k1": (0, 0), "k2": (0, 1), "a": (1, 0), "n": (2, 0), "d": (3, 0)}

    def decode_all(times: int) -> None:
        for _ in range(times):
            for data in inputs:
                with contextlib.suppress(wire.Unsupported):
                    wire.decode_span(data)
                with contextlib.suppress(wire.Unsupported):
                    wire.collect(data, lookup)
                with contextlib.suppress(wire.Unsupported):
                    wire.span_attributes(data)
                with contextlib.suppress(wire.Unsupported):  # the span as a request's
                    wire.span_slices(_field(1, _field(2, _field(2, data))))
                with contextlib.suppress(wire.Unsupported):
                    wire.span_slices(_field(1, _field(2, _field(2, data)))[:-2])

    grown = bytes_kept(decode_all, warm=100, times=5_000)
    assert grown < 64_000, f"{grown} bytes kept after 100,000 calls"


# a few fields' keys, so that keys repeat and compete for their field
_alias_keys = st.sampled_from(
    [*(k for f in (Field.SESSION_ID, Field.MODEL, Field.INPUT_TOKENS, Field.COST) for k in ALIASES[f]),
     "other"]
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), _alias_keys, _values), max_size=10)
)
@example([KeyValue(key="session.id", value=AnyValue(double_value=math.nan))])
@example([KeyValue(key="session.id", value=AnyValue(string_value="")),
          KeyValue(key="session.id", value=AnyValue(string_value="s"))])  # fmt: skip
def test_every_mapping_path_reads_the_same_fields(attributes: list[KeyValue]) -> None:
    # the library's path and the compiled one read only the keys the mapping needs: the
    # same fields as from all the attributes decoded, repeated keys and values that are
    # not finite numbers included
    read = dict(sorted(mapper._collect(attributes).items()))  # (any field order)
    decoded = mapper._collect_decoded(values.attribute_dict(attributes))
    assert same(read, dict(sorted(decoded.items())))
    data = Span(name="s", attributes=attributes).SerializeToString()
    try:
        compiled = wire.collect(data, KEY_LOOKUP)
    except wire.Unsupported:  # deep nesting, a oneof set twice: the library reads those
        assert values.collect(data, KEY_LOOKUP) is None
        return
    assert same(dict(sorted(compiled.items())), read)


# -- spans as received ---------------------------------------------------------------------


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def _received_request() -> tuple[bytes, list[bytes]]:
    """A request as a client may write it: two resources, an empty scope, unknown fields
    at every level, a span whose fields are not in the library's order; and its spans'
    bytes as written."""
    first = Span(trace_id=b"t" * 16, span_id=b"a" * 8, name="first").SerializeToString()
    reordered = (
        _field(5, b"second")  # name before the ids
        + _field(1, b"t" * 16)
        + _field(2, b"b" * 8)
        + _varint_field(99, 7)  # a field this version does not know
    )
    third = Span(trace_id=b"u" * 16, span_id=b"c" * 8, name="third").SerializeToString()
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="x"))])
    scope_one = _field(2, first) + _varint_field(98, 1) + _field(2, reordered)
    resource_one = _field(1, resource.SerializeToString()) + _field(2, scope_one) + _field(2, b"")
    resource_two = _varint_field(97, 3) + _field(2, _field(2, third))
    body = _field(1, resource_one) + _varint_field(96, 5) + _field(1, resource_two)
    return body, [first, reordered, third]


def test_spans_are_kept_as_received() -> None:
    body, written = _received_request()
    request = ExportTraceServiceRequest.FromString(body)
    assert wire.span_slices(body) == written
    assert values.span_slices(body, request) == written
    # each the span the library parsed, in its order
    assert [Span.FromString(data) for data in written] == _spans_of(request)
    records = map_request(request, span_bytes=written).records
    assert [r.otlp_span for r in records] == written


@pytest.mark.parametrize(
    "body",
    [
        _varint_field(1, 5),  # resource_spans with the wrong wire type
        _field(1, _varint_field(2, 1)),  # scope_spans with the wrong wire type
        _field(1, _field(2, _varint_field(2, 1))),  # spans with the wrong wire type
    ],
)
def test_spans_the_walk_cannot_follow_are_serialized_again(body: bytes) -> None:
    with pytest.raises(wire.Unsupported):
        wire.span_slices(body)
    assert values.span_slices(body, ExportTraceServiceRequest()) is None


def test_span_bytes_that_disagree_with_the_library_are_not_used() -> None:
    body, _ = _received_request()
    other = ExportTraceServiceRequest.FromString(body)
    other.resource_spans[0].scope_spans[0].spans.add(name="not in the body")
    assert values.span_slices(body, other) is None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_any_bytes_slice_as_the_library_parses_or_are_handed_back(data: bytes) -> None:
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError:
        return
    found = values.span_slices(data, request)
    if found is not None:
        assert [Span.FromString(x) for x in found] == _spans_of(request)
