"""Numbers past what the stores hold (times past 2^63 ns, tokens of 2^63 - 1, a cost of
1e300 USD) never poison a request or a session: the span or the value is left out and
the answer says so; the request's other spans are stored; later spans still count.
On both stores, with and without map workers, over OTLP/JSON, protobuf and gRPC. A store
failure that a retry cannot cure is a 500 / INTERNAL, never a 503 resent forever."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import psycopg.sql
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from session_bridge.model import INT64_MAX
from session_bridge.otlp.codec import BodyFormat, parse
from session_bridge.rollup.rollup import Rollup, merge
from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import T0, json_request, json_span, new_span_id, new_trace_id

_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 10,
    "gen_ai.usage.cost": 0.5,
}


def _hostile_request(session: str) -> dict[str, Any]:
    trace = new_trace_id()
    root = new_span_id()
    spans = [
        json_span(trace, root, "root", {"session.id": session}),
        json_span(trace, new_span_id(), "far future", {}, parent=root, start=2**64 - 1, end=T0),
        json_span(trace, new_span_id(), "late end", {}, parent=root, end=2**63),
        {
            **json_span(trace, new_span_id(), "late event", {}, parent=root),
            "events": [{"timeUnixNano": str(2**64 - 1), "name": "exception"}],
        },
        json_span(
            trace,
            new_span_id(),
            "huge tokens",
            {**_CHAT, "gen_ai.usage.input_tokens": INT64_MAX},
            parent=root,
        ),
        json_span(
            trace, new_span_id(), "huge cost", {**_CHAT, "gen_ai.usage.cost": 1e300}, parent=root
        ),
        json_span(
            trace,
            new_span_id(),
            "tokens as text",
            {**_CHAT, "gen_ai.usage.output_tokens": "1e30"},
            parent=root,
        ),
        json_span(trace, new_span_id(), "fine", dict(_CHAT), parent=root),
    ]
    return json_request(spans)


def _later_chat(session: str) -> dict[str, Any]:
    trace = new_trace_id()
    root = new_span_id()
    return json_request(
        [
            json_span(trace, root, "root 2", {"session.id": session}, start=T0 + 10**9),
            json_span(trace, new_span_id(), "chat 2", dict(_CHAT), parent=root, start=T0 + 10**9),
        ]
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_hostile_numbers_are_left_out_and_the_rest_is_stored(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Any, workers: int
) -> None:
    config = make_config(tmp_path / "d")
    config.receivers.otlp.workers = workers
    bridge = bridge_factory(config=config)
    response = bridge.client.post("/v1/traces", json=_hostile_request("sess-hostile"))
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 3  # the spans with times past 2^63 - 1 ns
    message = partial["errorMessage"]
    assert "start_time_unix_nano 18446744073709551615" in message
    assert "end_time_unix_nano 9223372036854775808" in message
    assert "event 'exception' time_unix_nano 18446744073709551615" in message
    assert "input_tokens 9223372036854775807 is above" in message
    # six problems: the answer lists the first five
    assert "cost 1e+300 USD" in message or "(and " in message

    session = bridge.get_session("sess-hostile")
    assert session["span_count"] == 5
    usage = session["genai_usage"]
    assert usage["request_count"] == 4
    # counted: 100 + 100 + 100 (the huge input_tokens span counts none) and 10 x 3
    assert usage["total_input_tokens"] == 300
    assert usage["total_output_tokens"] == 30

    # a later span of the same session still counts
    response = bridge.client.post("/v1/traces", json=_later_chat("sess-hostile"))
    assert response.status_code == 200, response.text
    assert "partialSuccess" not in response.json() or not response.json()["partialSuccess"]
    usage = bridge.get_session("sess-hostile")["genai_usage"]
    assert (usage["request_count"], usage["total_input_tokens"]) == (5, 400)


def _as_proto(document: dict[str, Any]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    parse(request, json.dumps(document).encode(), BodyFormat.JSON)  # OTLP/JSON: hex ids
    return request


def test_a_span_past_2_63_ns_over_protobuf_and_grpc_is_rejected_alone(
    bridge: RunningBridge,
) -> None:
    request = _as_proto(_hostile_request("sess-grpc"))
    with grpc.insecure_channel(bridge.grpc_endpoint) as channel:
        answer = TraceServiceStub(channel).Export(request, timeout=10)  # type: ignore[no-untyped-call]
    assert answer.partial_success.rejected_spans == 3
    response = bridge.client.post(
        "/v1/traces",
        content=_as_proto(_hostile_request("sess-proto")).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    proto = ExportTraceServiceResponse.FromString(response.content)
    assert proto.partial_success.rejected_spans == 3
    for session in ("sess-grpc", "sess-proto"):
        assert bridge.get_session(session)["span_count"] == 5


def test_sums_saturate_at_int64_max() -> None:
    near = Rollup(input_tokens=INT64_MAX - 1, cost_nano_usd=INT64_MAX, span_count=3)
    merged = merge(near, Rollup(input_tokens=5, cost_nano_usd=1, span_count=1))
    assert (merged.input_tokens, merged.cost_nano_usd, merged.span_count) == (INT64_MAX,) * 2 + (4,)


def _refuse_spans_named_poison(bridge: RunningBridge) -> None:
    """A store that refuses one span for good, as a constraint does: a retry fails again."""
    storage = bridge.config.storage
    if storage.backend == "postgres":
        schema = psycopg.sql.Identifier(storage.postgres.schema)
        with psycopg.connect(storage.postgres.dsn, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(schema))
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'refused for good' USING ERRCODE = '22003'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON spans FOR EACH ROW"
                " WHEN (NEW.name = 'poison') EXECUTE FUNCTION refuse()"
            )
        return
    with sqlite3.connect(Path(storage.data_dir) / "bridge.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON spans WHEN NEW.name = 'poison'"
            " BEGIN SELECT RAISE(ABORT, 'refused for good'); END"
        )


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_a_store_failure_retrying_cannot_cure_is_not_503(
    bridge_factory: Callable[..., RunningBridge], transport: str
) -> None:
    bridge = bridge_factory()
    _refuse_spans_named_poison(bridge)
    trace = new_trace_id()
    poison = _as_proto(
        json_request([json_span(trace, new_span_id(), "poison", {"session.id": "p"})])
    )
    if transport == "http":
        response = bridge.client.post(
            "/v1/traces",
            content=poison.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 500, response.text
    else:
        with (
            grpc.insecure_channel(bridge.grpc_endpoint) as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            TraceServiceStub(channel).Export(poison, timeout=30)  # type: ignore[no-untyped-call]
        assert caught.value.code() == grpc.StatusCode.INTERNAL
    # the store still takes other spans
    response = bridge.client.post("/v1/traces", json=_later_chat("p2"))
    assert response.status_code == 200, response.text
    assert bridge.get_session("p2")["span_count"] == 2
