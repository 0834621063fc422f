"""Automated diagnostics of one session (seed 001 `…/analysis`): deterministic rules.

* **Slow spans** — a span slower than the p95 of the spans of the same name in the
  project's other recent sessions (`BASELINE_SESSIONS`), when there are at least
  `MIN_SAMPLES` of them (nearest-rank percentiles).
* **Error patterns** — error events grouped by signature: the error type and the
  message with numbers, hex ids, UUIDs and quoted text replaced by placeholders.
* **Decision anomalies** — within one turn: a handoff straight back to the agent
  that handed over (`ping_pong`); a handoff to an agent already active in the turn
  (`loop`); and a decision target no decision of the project's earlier sessions, nor
  an earlier one of this session, named (`unexpected_target`; only once the
  project has such history).
* **Suggestions**, derived from the findings: identical LLM calls (same model and
  input) → cache; a slow tool span that no sibling overlaps (on the critical path)
  → latency; an error signature seen twice or more → reliability; a loop or
  ping-pong → orchestration.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from session_bridge.api.agent_models import (
    Analysis,
    DecisionAnomaly,
    ErrorPattern,
    SlowSpan,
    Suggestion,
)
from session_bridge.api.session_metrics import turn_latency_ns
from session_bridge.api.timeline import Entry, SessionTimeline, SpanNode, decision_block, ms
from session_bridge.mapping.payloads import span_io
from session_bridge.model import EventType

BASELINE_SESSIONS = 200
MIN_SAMPLES = 5
SLOW_PERCENTILE = 95
CRITICAL_SHARE_HIGH = 0.5  # a slow tool taking this share of its turn is a high-severity finding


@dataclass(slots=True)
class Baseline:
    """What the project's other sessions say, for comparison."""

    sessions: int
    durations: dict[str, list[int]]  # span name -> durations (ns) in the other sessions
    known_targets: set[str]  # decision targets named in the project's earlier sessions


def analyse(timeline: SessionTimeline, baseline: Baseline, generated_at: str) -> Analysis:
    slow = slow_spans(timeline.nodes, baseline.durations)
    patterns = error_patterns(timeline.entries)
    anomalies = decision_anomalies(timeline.entries, baseline.known_targets)
    return Analysis(
        session_id=timeline.session_id,
        generated_at=generated_at,
        baseline_sessions=baseline.sessions,
        slow_spans=slow,
        error_patterns=patterns,
        decision_anomalies=anomalies,
        suggestions=suggestions(timeline, slow, patterns, anomalies),
    )


# -- slow spans ----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def slow_spans(nodes: Iterable[SpanNode], durations: dict[str, list[int]]) -> list[SlowSpan]:
    found = []
    for node in nodes:
        samples = sorted(durations.get(node.record.name, ()))
        if len(samples) < MIN_SAMPLES:
            continue
        p95 = percentile(samples, SLOW_PERCENTILE)
        p50 = percentile(samples, 50)
        duration = node.duration_ns
        if duration <= p95:
            continue
        faster = sum(1 for s in samples if s < duration)
        found.append(
            SlowSpan(
                span_id=node.record.span_id.hex(),
                type=node.record.event_type.value,
                name=node.record.name,
                duration_ms=ms(duration),
                baseline_ms=ms(p95),
                p50_ms=ms(p50),
                percentile=round(100 * faster / len(samples), 1),
                sample_count=len(samples),
                reason=(
                    f"{ms(duration)} ms is above the p95 ({ms(p95)} ms; p50 {ms(p50)} ms) of"
                    f" {len(samples)} '{node.record.name}' spans in the project's other sessions"
                ),
            )
        )
    found.sort(key=lambda s: (-s.duration_ms, s.span_id))
    return found


# -- error patterns ------------------------------------------------------------------------

_NORMALISE = (
    (re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b(?:0x[0-9a-f]+|(?=[0-9a-f]*\d)[0-9a-f]{8,})\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def error_signature(error_type: str | None, message: str) -> str:
    text = message
    for pattern, placeholder in _NORMALISE:
        text = pattern.sub(placeholder, text)
    return f"{error_type or 'Error'}: {text.strip()[:200]}"


def error_patterns(entries: Iterable[Entry]) -> list[ErrorPattern]:
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        block = entry.event.error
        if block is not None:
            groups[error_signature(block.error_type, block.message)].append(entry)
    patterns = []
    for signature, members in groups.items():
        first = members[0].event
        assert first.error is not None
        patterns.append(
            ErrorPattern(
                signature=signature,
                error_type=first.error.error_type,
                count=len(members),
                span_ids=[m.event.span_id for m in members],
                first_seen=first.timestamp,
                example_message=first.error.message,
            )
        )
    patterns.sort(key=lambda p: (-p.count, p.first_seen, p.signature))
    return patterns


# -- decision anomalies --------------------------------------------------------------------


def decision_targets(node: SpanNode) -> list[str]:
    return decision_block(node).targets


def decision_anomalies(entries: Sequence[Entry], known_targets: set[str]) -> list[DecisionAnomaly]:
    anomalies: list[DecisionAnomaly] = []
    seen_targets: set[str] = set()
    visited: dict[int, list[str]] = defaultdict(list)  # turn -> agents active, in order
    previous: dict[int, tuple[str | None, str | None]] = {}  # turn -> last handoff (from, to)
    for entry in entries:
        event = entry.event
        if event.decision is not None:
            kind = event.decision.decision_kind.value
            for target in event.decision.targets:
                if known_targets and target not in known_targets and target not in seen_targets:
                    anomalies.append(
                        DecisionAnomaly(
                            span_id=event.span_id,
                            decision_kind=kind,
                            anomaly="unexpected_target",
                            detail=f"target {target!r} was never chosen in this project before",
                        )
                    )
                seen_targets.add(target)
        handoff = event.handoff
        if handoff is None or handoff.to_agent is None:
            continue
        turn = event.turn_index
        agents = visited[turn]
        source, target = handoff.from_agent, handoff.to_agent
        if source is not None and not agents:
            agents.append(source)
        last = previous.get(turn)
        if last is not None and last == (target, source):
            anomalies.append(
                DecisionAnomaly(
                    span_id=event.span_id,
                    decision_kind="handoff",
                    anomaly="ping_pong",
                    detail=f"{target} handed off to {source}, which handed straight back",
                )
            )
        elif target in agents:
            cycle = [*agents[agents.index(target) :], target]
            anomalies.append(
                DecisionAnomaly(
                    span_id=event.span_id,
                    decision_kind="handoff",
                    anomaly="loop",
                    detail="handoff loop: " + " -> ".join(cycle),
                )
            )
        agents.append(target)
        previous[turn] = (source, target)
    return anomalies


# -- suggestions ---------------------------------------------------------------------------


def suggestions(
    timeline: SessionTimeline,
    slow: Sequence[SlowSpan],
    patterns: Sequence[ErrorPattern],
    anomalies: Sequence[DecisionAnomaly],
) -> list[Suggestion]:
    out = _cache_suggestions(timeline.nodes)
    out += _critical_path_suggestions(timeline, slow)
    out += [
        Suggestion(
            category="reliability",
            severity="high" if p.count >= 3 else "medium",
            message=f"'{p.signature}' happened {p.count} times: fix its cause, or retry with"
            " backoff if it is transient",
            related_span_ids=p.span_ids,
        )
        for p in patterns
        if p.count >= 2
    ]
    out += [
        Suggestion(
            category="orchestration",
            severity="medium",
            message=f"{a.detail}: make the agents' handoff instructions exclusive or add a"
            " stop condition",
            related_span_ids=[a.span_id],
        )
        for a in anomalies
        if a.anomaly in ("loop", "ping_pong")
    ]
    return out


def _cache_suggestions(nodes: Iterable[SpanNode]) -> list[Suggestion]:
    groups: dict[tuple[str | None, str], list[SpanNode]] = defaultdict(list)
    for node in nodes:
        usage = node.record.llm
        prompt = span_io(node.raw)[0] if usage is not None else None
        if usage is not None and prompt is not None:
            groups[(usage.model, json.dumps(prompt, sort_keys=True))].append(node)
    return [
        Suggestion(
            category="caching",
            severity="medium",
            message=f"{len(calls)} identical calls to {model or 'the same model'} with the same"
            " input: cache the response",
            related_span_ids=[n.record.span_id.hex() for n in calls],
        )
        for (model, _), calls in groups.items()
        if len(calls) >= 2
    ]


def _critical_path_suggestions(
    timeline: SessionTimeline, slow: Sequence[SlowSpan]
) -> list[Suggestion]:
    by_span = {n.record.span_id.hex(): n for n in timeline.nodes}
    out = []
    for finding in slow:
        node = by_span[finding.span_id]
        if node.record.event_type is not EventType.TOOL_CALL or not _on_critical_path(
            node, timeline.nodes
        ):
            continue
        turn_ns = turn_latency_ns(timeline, node.turn_index)
        share = node.duration_ns / turn_ns if turn_ns > 0 else 0.0
        out.append(
            Suggestion(
                category="latency",
                severity="high" if share >= CRITICAL_SHARE_HIGH else "medium",
                message=f"tool '{node.record.name}' took {finding.duration_ms} ms"
                f" ({round(100 * share)}% of turn {node.turn_index}) on the critical path: run it"
                " in parallel, cache its result or give it a tighter timeout",
                related_span_ids=[finding.span_id],
            )
        )
    return out


def _on_critical_path(node: SpanNode, nodes: Iterable[SpanNode]) -> bool:
    """No sibling span ran at the same time: the turn waited for this one."""
    r = node.record
    return not any(
        other is not node
        and other.record.trace_id == r.trace_id
        and other.record.parent_span_id == r.parent_span_id
        and other.record.start_ns < r.end_ns
        and r.start_ns < other.record.end_ns
        for other in nodes
    )
