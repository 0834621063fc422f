"""Evaluation results (`mapping/evaluations.py`) as Langfuse `score-create` events.

A numeric score is a NUMERIC score (its label, if any, in the metadata); a label
alone is a CATEGORICAL one. The score is attached to the evaluated observation: the
span that carries the result, or the span of the same trace that reported the
response it names, when that span is at hand. Ids are deterministic (trace, span,
event position), so a resend overwrites the score downstream instead of adding one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from session_bridge.mapping.evaluations import Evaluation, evaluations
from session_bridge.mapping.payloads import RawSpan
from session_bridge.model import SpanRecord
from session_bridge.timefmt import iso_from_ns

_NAMESPACE = uuid.UUID("0b7e8a2e-51c4-4f5e-9d0a-3c1f2e6b9a77")


def response_spans(spans: Iterable[SpanRecord]) -> dict[tuple[bytes, str], bytes]:
    """(trace id, response id) -> the span that reported that response."""
    return {(s.trace_id, s.response_id): s.span_id for s in spans if s.response_id}


def score_events(
    span: SpanRecord,
    raw: RawSpan,
    environment: str | None,
    responses: Mapping[tuple[bytes, str], bytes] | None = None,
) -> list[dict[str, Any]]:
    """The score-create events of the evaluation results `span` carries; `responses`
    maps (trace id, response id) to the span that reported that response."""
    return [score_event(span, found, environment, responses or {}) for found in evaluations(raw)]


def score_event(
    span: SpanRecord,
    found: Evaluation,
    environment: str | None,
    responses: Mapping[tuple[bytes, str], bytes],
) -> dict[str, Any]:
    trace = span.trace_id.hex()
    key = f"score-create:{trace}:{span.span_id.hex()}:{found.index}"
    score_id = str(uuid.uuid5(_NAMESPACE, key))
    observation = span.span_id
    if found.response_id is not None:
        observation = responses.get((span.trace_id, found.response_id), observation)
    metadata = {
        k: v
        for k, v in (("label", found.label if found.score is not None else None),
                     ("responseId", found.response_id))
        if v is not None
    }  # fmt: skip
    body: dict[str, Any] = {
        "id": score_id,
        # the trace's (hence the session's) observation: a score given a session id too
        # would be a score of the whole session
        "traceId": trace,
        "observationId": observation.hex(),
        "name": found.name,
        "value": found.score if found.score is not None else found.label,
        "dataType": "NUMERIC" if found.score is not None else "CATEGORICAL",
        "comment": found.explanation,
        "environment": environment,
        "metadata": metadata or None,
    }
    return {
        "id": score_id,
        "timestamp": iso_from_ns(found.time_ns),
        "type": "score-create",
        "body": {k: v for k, v in body.items() if v is not None},
    }
