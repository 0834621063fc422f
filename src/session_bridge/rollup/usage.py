"""Which spans of a trace count toward usage: the span tree decides, not the span's kind.

A span carries usage when it is a model call or reports tokens or a cost
(`SpanRecord.llm` is set). Within a trace, a span's usage counts if and only if no
descendant of it carries usage: frameworks wrap model calls in agent, workflow and
step spans that repeat their children's totals, and the innermost report is the one
closest to the model. Spans that report the same model response (same response id)
count once, the latest-starting one (the one nearest the wire when a client and an
instrumentation both trace one call).

The result depends only on the set of spans, never on their order: stores recompute
a trace's usage from its stored spans when a write can change it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from session_bridge.model import SpanRecord
from session_bridge.rollup.rollup import NANO_USD, Rollup

P = TypeVar("P", bound="Placed")


class Placed(Protocol):
    """Where a span sits, and the response it reports (`SpanRecord` and `UsageSpan`)."""

    span_id: bytes
    parent_span_id: bytes | None
    start_ns: int
    response_id: str | None


@dataclass(slots=True)
class UsageSpan:
    """What the rule needs of one span (of any span: the others link the tree)."""

    span_id: bytes
    parent_span_id: bytes | None
    start_ns: int = 0
    response_id: str | None = None
    # the usage, for spans that carry it (None: the span carries none)
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None

    @property
    def carries_usage(self) -> bool:
        return self.input_tokens is not None


def usage_span(record: SpanRecord) -> UsageSpan:
    llm = record.llm
    if llm is None:
        return UsageSpan(record.span_id, record.parent_span_id)
    return UsageSpan(
        record.span_id,
        record.parent_span_id,
        record.start_ns,
        record.response_id,
        llm.provider,
        llm.model,
        llm.input_tokens,
        llm.output_tokens,
        llm.cache_read_tokens,
        llm.cache_creation_tokens,
        llm.reasoning_tokens,
        record.cost_usd,
    )


def counted_spans(spans: Iterable[UsageSpan]) -> list[UsageSpan]:
    """The spans of one trace whose usage counts (each span id once)."""
    parent_of: dict[bytes, bytes | None] = {}
    carriers: dict[bytes, UsageSpan] = {}
    for span in spans:
        parent_of.setdefault(span.span_id, span.parent_span_id)
        if span.carries_usage:
            carriers.setdefault(span.span_id, span)
    return counted(parent_of, carriers)


def counted(parent_of: Mapping[bytes, bytes | None], carriers: Mapping[bytes, P]) -> list[P]:
    """Of `carriers` (span id -> a span that carries usage), those whose usage counts;
    `parent_of` links every span of the trace (carriers too) to its parent."""
    if len(carriers) <= 1:
        return list(carriers.values())
    # every ancestor of a carrier has usage below it; a walk stops where an earlier
    # walk passed (its ancestors are marked already) or at a span not (yet) stored
    covered: set[bytes] = set()
    for span_id in carriers:
        parent = parent_of.get(span_id)
        while parent is not None and parent not in covered and parent != span_id:
            covered.add(parent)
            parent = parent_of.get(parent)
    by_response: dict[str, P] = {}
    out: list[P] = []
    for span_id, span in carriers.items():
        if span_id in covered:
            continue
        response = span.response_id
        if not response:
            out.append(span)
            continue
        kept = by_response.get(response)
        if kept is None or (span.start_ns, kept.span_id) > (kept.start_ns, span_id):
            by_response[response] = span
    out += by_response.values()
    return out


def add_records_usage(
    rollup: Rollup, records: Sequence[SpanRecord], carriers: Sequence[SpanRecord]
) -> None:
    """Add to `rollup` (in place) the usage of a trace of which `records` are all the
    spans (each once) and `carriers` those that carry usage."""
    if len(carriers) > 1:
        parent_of = {r.span_id: r.parent_span_id for r in records}
        carriers = counted(parent_of, {r.span_id: r for r in carriers})
    models: set[str] = set()
    providers: set[str] = set()
    for record in carriers:
        llm = record.llm
        assert llm is not None  # a carrier
        _add_call(
            rollup, models, providers, llm.model, llm.provider, llm.input_tokens,
            llm.output_tokens, llm.cache_read_tokens, llm.cache_creation_tokens,
            llm.reasoning_tokens, record.cost_usd,
        )  # fmt: skip
    rollup.models = rollup.models | models
    rollup.providers = rollup.providers | providers


def usage_rollup(spans: Iterable[UsageSpan]) -> Rollup:
    """The usage columns of a trace (the others stay empty): its counted spans, summed."""
    return sum_usage(counted_spans(spans))


def sum_usage(counted: Sequence[UsageSpan]) -> Rollup:
    rollup = Rollup()
    models: set[str] = set()
    providers: set[str] = set()
    for span in counted:
        _add_call(
            rollup, models, providers, span.model, span.provider, span.input_tokens or 0,
            span.output_tokens, span.cache_read_tokens, span.cache_creation_tokens,
            span.reasoning_tokens, span.cost_usd,
        )  # fmt: skip
    rollup.models = frozenset(models)
    rollup.providers = frozenset(providers)
    return rollup


def _add_call(
    rollup: Rollup,
    models: set[str],
    providers: set[str],
    model: str | None,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_creation_tokens: int,
    reasoning_tokens: int,
    cost_usd: float | None,
) -> None:
    """Count one model call whose usage counts: its tokens, its cost (or that it has
    none), its model and provider."""
    rollup.request_count += 1
    rollup.input_tokens += input_tokens
    rollup.output_tokens += output_tokens
    rollup.cache_read_tokens += cache_read_tokens
    rollup.cache_creation_tokens += cache_creation_tokens
    rollup.reasoning_tokens += reasoning_tokens
    if cost_usd is None:
        rollup.unpriced_count += 1
    else:
        rollup.cost_nano_usd += round(cost_usd * NANO_USD)
    if model:
        models.add(model)
    if provider:
        providers.add(provider)


def counted_records(records: Iterable[SpanRecord]) -> set[tuple[bytes, bytes]]:
    """(trace_id, span_id) of the records whose usage counts, trace by trace: the rule
    applied to spans read back (a session's spans, for its per-call breakdowns)."""
    parents: dict[bytes, dict[bytes, bytes | None]] = {}
    carriers: dict[bytes, dict[bytes, SpanRecord]] = {}
    for r in records:
        parents.setdefault(r.trace_id, {}).setdefault(r.span_id, r.parent_span_id)
        if r.llm is not None:
            carriers.setdefault(r.trace_id, {}).setdefault(r.span_id, r)
    return {
        (trace_id, span.span_id)
        for trace_id, of_trace in carriers.items()
        for span in counted(parents[trace_id], of_trace)
    }
