"""A session's evaluation results (`mapping/evaluations.py`), in time order.

A result names the span it evaluated: the span of its trace that reported the
response it names, else the span that carries it.
"""

from __future__ import annotations

from session_bridge.api.agent_models import EvaluationRecord
from session_bridge.api.timeline import SessionTimeline
from session_bridge.mapping.evaluations import evaluations
from session_bridge.timefmt import iso_from_ns


def session_evaluations(timeline: SessionTimeline) -> list[EvaluationRecord]:
    nodes = timeline.nodes
    responses = {
        (n.record.trace_id, n.record.response_id): n for n in nodes if n.record.response_id
    }
    found = []
    for node in nodes:
        for result in evaluations(node.raw):
            r = node.record
            target = node
            if result.response_id is not None:
                target = responses.get((r.trace_id, result.response_id), node)
            key = (result.time_ns, r.trace_id, r.span_id, result.index)
            record = EvaluationRecord(
                name=result.name,
                score_value=result.score,
                score_label=result.label,
                explanation=result.explanation,
                response_id=result.response_id,
                trace_id=r.trace_id.hex(),
                span_id=target.record.span_id.hex(),
                agent_name=target.agent,
                time=iso_from_ns(result.time_ns),
            )
            found.append((key, record))
    found.sort(key=lambda item: item[0])
    return [record for _, record in found]
