"""Fuzzing the receivers over real sockets: OTLP/JSON documents with any value where a
field is expected, and valid protobuf bodies with bytes flipped, cut or inserted. Every
answer is one the OTLP specification allows for a bad or partly bad request (never a
500, never a 503 that a retry cannot cure), and the bridge still serves a valid request
afterwards. Derandomized and bounded: the same examples on every run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from session_bridge.otlp.codec import BodyFormat, parse
from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import json_request, json_span, new_span_id, new_trace_id

_HTTP_ANSWERS = {200, 400, 413, 415}
_GRPC_ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
_FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "0" * 32, "zz", "18446744073709551616", "-1", "NaN", "1e400"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    bridge = RunningBridge(make_config(Path(tmp_path_factory.mktemp("fuzz")) / "d"))
    yield bridge
    bridge.stop()


def _valid() -> dict[str, Any]:
    trace = new_trace_id()
    return json_request(
        [
            json_span(
                trace,
                new_span_id(),
                "chat",
                {
                    "session.id": "sess-fuzz",
                    "gen_ai.operation.name": "chat",
                    "gen_ai.usage.input_tokens": 7,
                },
            )
        ]
    )


@st.composite
def otlp_json(draw: st.DrawFn) -> Any:
    """A valid request with one field, anywhere in it, replaced by any JSON value."""
    document = _valid()
    node: Any = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or not child or draw(st.booleans()):
            node[key] = draw(json_values)
            break
        node = child
    return document


def _still_serves(bridge: RunningBridge) -> None:
    response = bridge.client.post("/v1/traces", json=_valid())
    assert response.status_code == 200, response.text
    assert bridge.get_session("sess-fuzz")["span_count"] >= 1


@_FUZZ
@given(document=otlp_json())
def test_fuzzed_otlp_json_gets_an_answer_of_the_spec(fuzzed: RunningBridge, document: Any) -> None:
    response = fuzzed.client.post(
        "/v1/traces", content=json.dumps(document), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in _HTTP_ANSWERS, (response.status_code, response.text)


def _valid_proto() -> bytes:
    request = ExportTraceServiceRequest()
    parse(request, json.dumps(_valid()).encode(), BodyFormat.JSON)
    return request.SerializeToString()


@st.composite
def mutated_protobuf(draw: st.DrawFn) -> bytes:
    data = bytearray(_valid_proto())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@_FUZZ
@given(body=mutated_protobuf())
def test_mutated_protobuf_gets_an_answer_of_the_spec(fuzzed: RunningBridge, body: bytes) -> None:
    response = fuzzed.client.post(
        "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code in _HTTP_ANSWERS, (response.status_code, response.text)


@settings(_FUZZ, max_examples=40)
@given(body=mutated_protobuf())
def test_mutated_protobuf_over_grpc_gets_an_answer_of_the_spec(
    fuzzed: RunningBridge, body: bytes
) -> None:
    with grpc.insecure_channel(fuzzed.grpc_endpoint) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        try:
            export(body, timeout=10)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
    assert code in _GRPC_ANSWERS, code


def test_the_bridge_still_serves_after_the_fuzzing(fuzzed: RunningBridge) -> None:
    _still_serves(fuzzed)
    with grpc.insecure_channel(fuzzed.grpc_endpoint) as channel:
        request = ExportTraceServiceRequest.FromString(_valid_proto())
        TraceServiceStub(channel).Export(request, timeout=10)  # type: ignore[no-untyped-call]
