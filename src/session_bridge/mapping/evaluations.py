"""Evaluation results: `gen_ai.evaluation.result` span events, as records of the session.

An evaluator reports a score of a model response as a span event, on the span it
evaluated or naming the response by `gen_ai.response.id`. A result needs a name and a
value (a numeric score, a label, or both); one without either says nothing and is
left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from session_bridge.mapping.payloads import RawSpan

EVALUATION_EVENT = "gen_ai.evaluation.result"
_NAME = "gen_ai.evaluation.name"
_SCORE = "gen_ai.evaluation.score.value"
_LABEL = "gen_ai.evaluation.score.label"
_EXPLANATION = "gen_ai.evaluation.explanation"
_RESPONSE = "gen_ai.response.id"


@dataclass(frozen=True, slots=True)
class Evaluation:
    name: str
    score: float | None
    label: str | None
    explanation: str | None
    response_id: str | None  # the response it evaluated, when the event names one
    time_ns: int
    index: int  # the event's position among the span's events: with the span, its identity


def evaluations(raw: RawSpan) -> list[Evaluation]:
    """The evaluation results a span carries, in event order."""
    out = []
    for index, event in enumerate(raw.events):
        if event.name != EVALUATION_EVENT:
            continue
        attributes = event.attributes
        name = _text(attributes.get(_NAME))
        score = _number(attributes.get(_SCORE))
        label = _text(attributes.get(_LABEL))
        if name is None or (score is None and label is None):
            continue
        out.append(
            Evaluation(
                name=name,
                score=score,
                label=label,
                explanation=_text(attributes.get(_EXPLANATION)),
                response_id=_text(attributes.get(_RESPONSE)),
                time_ns=event.time_ns or raw.start_ns,
                index=index,
            )
        )
    return out


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
