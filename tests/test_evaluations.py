"""Evaluation results (`gen_ai.evaluation.result` span events) are records of the session:
served by the session APIs and exported as Langfuse `score-create` events."""

from __future__ import annotations

import json
import os
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from session_bridge.export.langfuse_events import ingestion_units
from tests.conftest import RunningBridge
from tests.ingestion_server import schema_errors
from tests.otlp_builders import T0, any_value_of, proto_request, proto_span
from tests.test_export_events import entries

TRACE, AGENT, CHAT = os.urandom(16), os.urandom(8), os.urandom(8)


def _evaluate(span: Span, at: int, **attributes: Any) -> None:
    event = span.events.add(name="gen_ai.evaluation.result", time_unix_nano=T0 + at)
    event.attributes.extend(
        KeyValue(key=f"gen_ai.{k}" if not k.startswith("gen_ai.") else k, value=any_value_of(v))
        for k, v in attributes.items()
    )


def _spans() -> list[Span]:
    agent = proto_span(
        TRACE,
        AGENT,
        "invoke_agent helper",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "helper",
            "gen_ai.conversation.id": "sess-eval",
        },
        end=T0 + 10_000_000,
    )
    chat = proto_span(
        TRACE,
        CHAT,
        "chat gpt-4o-mini",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.id": "resp-1",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
        },
        parent=AGENT,
        start=T0 + 1_000_000,
    )
    # on the evaluated span itself: a numeric score with a label
    _evaluate(
        chat,
        2_000_000,
        **{
            "evaluation.name": "relevance",
            "evaluation.score.value": 0.8,
            "evaluation.score.label": "relevant",
            "evaluation.explanation": "answers the question",
        },
    )
    # on the agent span, naming the response it judged: a label alone
    _evaluate(
        agent,
        9_000_000,
        **{
            "evaluation.name": "tone",
            "evaluation.score.label": "polite",
            "gen_ai.response.id": "resp-1",
        },
    )
    # no value: says nothing, left out
    _evaluate(agent, 9_500_000, **{"evaluation.name": "empty"})
    return [agent, chat]


def _scores(units_payloads: list[bytes]) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, units_payloads) if e["type"] == "score-create"]


def test_evaluation_results_are_score_create_events() -> None:
    units = ingestion_units(entries(_spans()), 1_000_000)
    scores = _scores([u.payload for u in units])
    for event in scores:
        assert not schema_errors(event), schema_errors(event)
    relevance, tone = sorted(scores, key=lambda e: e["body"]["name"])
    assert relevance["body"] == {
        "id": relevance["id"],
        "traceId": TRACE.hex(),
        "observationId": CHAT.hex(),
        "name": "relevance",
        "value": 0.8,
        "dataType": "NUMERIC",
        "comment": "answers the question",
        "metadata": {"label": "relevant"},
    }
    assert tone["body"]["observationId"] == CHAT.hex()  # the span of the response it names
    assert (tone["body"]["value"], tone["body"]["dataType"]) == ("polite", "CATEGORICAL")
    assert tone["body"]["metadata"] == {"responseId": "resp-1"}
    # deterministic: the same spans, the same events (a resend overwrites downstream)
    again = _scores([u.payload for u in ingestion_units(entries(_spans()), 1_000_000)])
    assert [e["id"] for e in again] == [e["id"] for e in scores]
    assert len({e["id"] for e in scores}) == 2


def test_the_session_apis_serve_its_evaluations(bridge: RunningBridge) -> None:
    response = bridge.client.post(
        "/v1/traces",
        content=proto_request(_spans()).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    base = "/api/projects/default/sessions/sess-eval"
    answer = bridge.client.get(f"{base}/evaluations")
    assert answer.status_code == 200, answer.text
    evaluations = answer.json()["evaluations"]
    assert evaluations == [
        {
            "name": "relevance",
            "scoreValue": 0.8,
            "scoreLabel": "relevant",
            "explanation": "answers the question",
            "responseId": None,
            "traceId": TRACE.hex(),
            "spanId": CHAT.hex(),
            "agentName": "helper",
            "time": evaluations[0]["time"],
        },
        {
            "name": "tone",
            "scoreValue": None,
            "scoreLabel": "polite",
            "explanation": None,
            "responseId": "resp-1",
            "traceId": TRACE.hex(),
            "spanId": CHAT.hex(),
            "agentName": "helper",
            "time": evaluations[1]["time"],
        },
    ]
    page = bridge.client.get(f"{base}/traces", params={"include": "evaluations"}).json()
    assert page["evaluations"] == evaluations
    assert "evaluations" not in bridge.client.get(f"{base}/traces").json()
    assert bridge.client.get(f"{base}-nope/evaluations").status_code == 404
