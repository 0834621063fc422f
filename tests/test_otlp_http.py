"""OTLP/HTTP receiver against the OTLP specification, over a real socket."""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from session_bridge.config import ByteSize
from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import (
    T0,
    json_request,
    json_span,
    new_span_id,
    new_trace_id,
    proto_request,
    proto_span,
)

JSON = {"Content-Type": "application/json"}
PROTO = {"Content-Type": "application/x-protobuf"}


def _post_json(
    bridge: RunningBridge, body: object, path: str = "/v1/traces", **headers: str
) -> httpx.Response:
    return bridge.client.post(path, content=json.dumps(body).encode(), headers={**JSON, **headers})


def _one_llm_span(
    session: str, *, snake: bool = False, trace_id: str | None = None
) -> dict[str, Any]:
    return json_span(
        trace_id or new_trace_id(),
        new_span_id(),
        "chat gpt-4o",
        {
            "session.id": session,
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 3,
        },
        snake=snake,
    )


@pytest.mark.parametrize("snake", [False, True], ids=["camelCase", "snake_case"])
def test_json_request_is_accepted_and_mapped(bridge: RunningBridge, snake: bool) -> None:
    response = _post_json(bridge, json_request([_one_llm_span("s-json", snake=snake)], snake=snake))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    session = bridge.get_session("s-json")
    assert session["span_count"] == 1
    assert session["services"] == ["json-svc"]
    assert session["genai_usage"]["total_input_tokens"] == 10
    assert session["genai_usage"]["models_used"] == ["gpt-4o"]


def test_json_enum_names_and_int64_numbers(bridge: RunningBridge) -> None:
    span = _one_llm_span("s-enum")
    span["status"] = {"code": "STATUS_CODE_ERROR", "message": "boom"}
    span["kind"] = "SPAN_KIND_CLIENT"
    span["startTimeUnixNano"] = T0  # a number rather than a string
    assert _post_json(bridge, json_request([span])).status_code == 200
    assert bridge.get_session("s-enum")["error_count"] == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "zstd"])
def test_compressed_bodies(bridge: RunningBridge, encoding: str) -> None:
    session = f"s-{encoding}"
    raw = proto_request(
        [proto_span(os.urandom(16), os.urandom(8), "chat", {"session.id": session})]
    ).SerializeToString()
    if encoding == "gzip":
        body = gzip.compress(raw)
    elif encoding == "deflate":
        body = zlib.compress(raw)
    elif encoding == "deflate-raw":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = compressor.compress(raw) + compressor.flush()
    else:
        body = zstandard.ZstdCompressor().compress(raw)
    header = encoding.removesuffix("-raw")
    response = bridge.client.post(
        "/v1/traces", content=body, headers={**PROTO, "Content-Encoding": header}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    assert bridge.get_session(session)["span_count"] == 1


def _compress(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(raw)
    if encoding == "deflate":
        return zlib.compress(raw)
    return zstandard.ZstdCompressor().compress(raw)


def _one_span_body(session: str) -> bytes:
    span = proto_span(os.urandom(16), os.urandom(8), "chat", {"session.id": session})
    return proto_request([span]).SerializeToString()


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_a_body_of_several_members_or_frames_is_read_whole(
    bridge: RunningBridge, encoding: str
) -> None:
    # protobuf messages concatenated are one message (their repeated fields joined), and
    # so are gzip members (RFC 1952) and zstd frames (RFC 8878): all spans count
    session = f"s-multi-{encoding}"
    body = b"".join(_compress(_one_span_body(session), encoding) for _ in range(3))
    response = bridge.client.post(
        "/v1/traces", content=body, headers={**PROTO, "Content-Encoding": encoding}
    )
    assert response.status_code == 200, response.text
    assert bridge.get_session(session)["span_count"] == 3


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
@pytest.mark.parametrize("damage", ["truncated", "trailing bytes"])
def test_a_damaged_compressed_body_is_400(
    bridge: RunningBridge, encoding: str, damage: str
) -> None:
    body = _compress(_one_span_body(f"s-damaged-{encoding}"), encoding)
    body = body[: len(body) // 2] if damage == "truncated" else body + b"junk"
    response = bridge.client.post(
        "/v1/traces", content=body, headers={**PROTO, "Content-Encoding": encoding}
    )
    assert response.status_code == 400, response.text
    assert encoding in _status(response).message
    assert bridge.client.get(f"/api/v1/sessions/s-damaged-{encoding}").status_code == 404


def _status(response: httpx.Response) -> status_pb2.Status:
    if response.headers["content-type"].startswith("application/json"):
        body = response.json()
        return status_pb2.Status(code=body.get("code", 0), message=body["message"])
    return status_pb2.Status.FromString(response.content)


def test_malformed_protobuf_is_400_with_status(bridge: RunningBridge) -> None:
    response = bridge.client.post("/v1/traces", content=b"\xff\xff\xff\x0f garbage", headers=PROTO)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    assert "invalid protobuf" in _status(response).message


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"resourceSpans": {"not": "a list"}}', b"\xff\xfe"],
    ids=["syntax", "array", "wrong-shape", "not-utf8"],
)
def test_malformed_json_is_400_with_status(bridge: RunningBridge, body: bytes) -> None:
    response = bridge.client.post("/v1/traces", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == 3  # INVALID_ARGUMENT
    assert response.json()["message"]


def test_wrong_content_type_is_415(bridge: RunningBridge) -> None:
    response = bridge.client.post(
        "/v1/traces", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]


def test_content_type_parameters_are_accepted(bridge: RunningBridge) -> None:
    body = json.dumps(json_request([_one_llm_span("s-charset")])).encode()
    response = bridge.client.post(
        "/v1/traces", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 200


def test_unsupported_encoding_is_415(bridge: RunningBridge) -> None:
    response = bridge.client.post(
        "/v1/traces", content=b"abc", headers={**PROTO, "Content-Encoding": "br"}
    )
    assert response.status_code == 415
    assert "gzip" in response.headers["accept-encoding"]


def test_corrupt_gzip_is_400(bridge: RunningBridge) -> None:
    response = bridge.client.post(
        "/v1/traces",
        content=b"\x1f\x8b\x08\x00garbage",
        headers={**PROTO, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert "gzip" in _status(response).message


@pytest.mark.parametrize("where", ["document", "attribute value"])
def test_json_nested_too_deeply_is_400(bridge: RunningBridge, where: str) -> None:
    if where == "document":
        body = b'{"resourceSpans":' + b"[" * 200_000
    else:
        depth = 2_000  # a string: json.dumps itself would recurse too deeply
        value = '{"kvlistValue":{"values":[{"key":"k","value":' * depth
        value += '{"stringValue":"x"}' + "}]}}" * depth
        span = json.dumps(json_request([_one_llm_span("s-deep")]))
        text = span.replace('"attributes": [', f'"attributes": [{{"key":"deep","value":{value}}}, ')
        body = text.encode()
    response = bridge.client.post("/v1/traces", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["message"]


def test_get_is_405(bridge: RunningBridge) -> None:
    assert bridge.client.get("/v1/traces").status_code == 405


@pytest.fixture
def small_bridge(bridge_factory: Callable[..., RunningBridge], tmp_path: Path) -> RunningBridge:
    config = make_config(tmp_path / "small")
    config.receivers.otlp.max_request_body_size = ByteSize(64 * 1024)
    return bridge_factory(config=config)


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_members_or_frames_over_the_limit_together_are_413(
    small_bridge: RunningBridge, encoding: str
) -> None:
    part = _compress(b"\0" * (40 * 1024), encoding)  # each under the 64 KiB limit
    response = small_bridge.client.post(
        "/v1/traces", content=part + part, headers={**PROTO, "Content-Encoding": encoding}
    )
    assert response.status_code == 413
    assert "limit" in _status(response).message


def test_body_over_limit_is_413(small_bridge: RunningBridge) -> None:
    response = small_bridge.client.post("/v1/traces", content=b"\0" * (65 * 1024), headers=PROTO)
    assert response.status_code == 413
    assert "limit" in _status(response).message


def test_decompression_bomb_is_413(small_bridge: RunningBridge) -> None:
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # 50 MiB of zeros, ~50 KiB compressed
    assert len(bomb) < 64 * 1024
    response = small_bridge.client.post(
        "/v1/traces", content=bomb, headers={**PROTO, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert small_bridge.client.get("/healthz").status_code == 200


def test_invalid_ids_are_rejected_one_by_one(bridge: RunningBridge) -> None:
    trace = new_trace_id()
    good = _one_llm_span("s-partial", trace_id=trace)
    base64_id = _one_llm_span("s-partial")
    base64_id["traceId"] = "q83vEjRWeJCrze8SNFZ4kA=="  # base64, not hex: invalid in OTLP/JSON
    zero_span = _one_llm_span("s-partial", trace_id=trace)
    zero_span["spanId"] = "0000000000000000"
    short = _one_llm_span("s-partial", trace_id=trace)
    short["spanId"] = "abcd"
    bad_parent = _one_llm_span("s-partial", trace_id=trace)
    bad_parent["parentSpanId"] = "xyz!not-hex"  # not a root: a span with a broken parent
    spans = [good, base64_id, zero_span, short, bad_parent]
    response = _post_json(bridge, json_request(spans))
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "4"
    assert "trace_id" in partial["errorMessage"] and "span_id" in partial["errorMessage"]
    assert "parent_span_id" in partial["errorMessage"]
    assert bridge.get_session("s-partial")["span_count"] == 1


def test_partial_success_over_protobuf(bridge: RunningBridge) -> None:
    request = proto_request(
        [
            proto_span(os.urandom(16), os.urandom(8), "ok", {"session.id": "s-pp"}),
            proto_span(b"\1" * 15, os.urandom(8), "short trace id", {"session.id": "s-pp"}),
        ]
    )
    response = bridge.client.post("/v1/traces", content=request.SerializeToString(), headers=PROTO)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "trace_id" in answer.partial_success.error_message


def test_duplicate_delivery_is_counted_once(bridge: RunningBridge) -> None:
    body = json_request([_one_llm_span("s-dup"), _one_llm_span("s-dup")])
    for _ in range(3):  # a client retrying the same request
        assert _post_json(bridge, body).status_code == 200
    session = bridge.get_session("s-dup")
    assert session["span_count"] == 2
    assert session["trace_count"] == 2
    assert session["genai_usage"]["total_input_tokens"] == 20
    metrics = bridge.client.get("/metrics").text
    assert 'session_bridge_receiver_duplicate_spans_total{transport="http"} 4.0' in metrics


def test_session_id_arriving_last_claims_the_whole_trace(bridge: RunningBridge) -> None:
    trace = new_trace_id()
    root = new_span_id()
    llm = json_span(
        trace,
        new_span_id(),
        "chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 7,
            "gen_ai.usage.output_tokens": 2,
        },
        parent=root,
        start=T0 + 5_000_000,
    )
    tool = json_span(
        trace, new_span_id(), "tool", {"gen_ai.operation.name": "execute_tool"},
        parent=root, start=T0 + 9_000_000, status_code=2,
    )  # fmt: skip
    first = json_request([llm], {"service.name": "worker"})
    second = json_request([tool], {"service.name": "tools"})
    last = json_request(
        [json_span(trace, root, "invoke_agent", {"session.id": "s-late", "user.id": "u-late"},
                   start=T0, end=T0 + 20_000_000)],
        {"service.name": "frontend"},
    )  # fmt: skip
    assert _post_json(bridge, first).status_code == 200
    assert _post_json(bridge, second).status_code == 200
    assert "s-late" not in bridge.all_sessions()  # unnamed traces are stored but in no session
    assert _post_json(bridge, last).status_code == 200
    session = bridge.get_session("s-late")
    assert session["span_count"] == 3
    assert session["trace_count"] == 1
    assert session["error_count"] == 1
    assert session["services"] == ["frontend", "tools", "worker"]
    assert session["user.id"] == "u-late"
    assert session["genai_usage"]["total_input_tokens"] == 7
    assert session["duration_ms"] == 20
    # a later span of the same trace still counts toward the session, once
    more = json_request([json_span(trace, new_span_id(), "late child", {}, parent=root)])
    assert _post_json(bridge, more).status_code == 200
    assert bridge.get_session("s-late")["span_count"] == 4
    assert bridge.get_session("s-late")["trace_count"] == 1


def test_first_session_name_of_a_trace_wins(bridge: RunningBridge) -> None:
    trace = new_trace_id()
    one = json_request([json_span(trace, new_span_id(), "a", {"session.id": "s-first"})])
    two = json_request([json_span(trace, new_span_id(), "b", {"session.id": "s-second"})])
    assert _post_json(bridge, one).status_code == 200
    assert _post_json(bridge, two).status_code == 200
    assert bridge.get_session("s-first")["span_count"] == 2
    assert bridge.client.get("/api/v1/sessions/s-second").status_code == 404


def test_langfuse_style_path(bridge: RunningBridge) -> None:
    response = _post_json(
        bridge, json_request([_one_llm_span("s-lf")]), path="/api/public/otel/v1/traces"
    )
    assert response.status_code == 200
    assert bridge.get_session("s-lf")["span_count"] == 1


def test_empty_request_is_success(bridge: RunningBridge) -> None:
    assert _post_json(bridge, {}).status_code == 200
    response = bridge.client.post("/v1/traces", content=b"", headers=PROTO)
    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
