"""The bridge's own metrics, named after the OpenTelemetry Collector's (`otelcol_*`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "session_bridge"


class BridgeMetrics:
    """One registry per bridge instance (no process-global state)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("transport",)
        self.accepted_spans = Counter(
            f"{PREFIX}_receiver_accepted_spans",
            "Spans committed to the store and acknowledged to the client.",
            labels,
            registry=self.registry,
        )
        self.refused_spans = Counter(
            f"{PREFIX}_receiver_refused_spans",
            "Spans refused with a retryable error (overload, store failure).",
            labels,
            registry=self.registry,
        )
        self.rejected_spans = Counter(
            f"{PREFIX}_receiver_rejected_spans",
            "Spans rejected as invalid and reported through partial_success.",
            labels,
            registry=self.registry,
        )
        self.duplicate_spans = Counter(
            f"{PREFIX}_receiver_duplicate_spans",
            "Spans received again (client retries) and counted once.",
            labels,
            registry=self.registry,
        )
        self.failed_requests = Counter(
            f"{PREFIX}_receiver_failed_requests",
            "Requests refused before mapping (malformed, too large, wrong type).",
            (*labels, "reason"),
            registry=self.registry,
        )
        self.unpriced_llm_calls = Counter(
            f"{PREFIX}_enrich_unpriced_llm_calls",
            "LLM calls whose cost is unknown (no reported cost, model not in the price data).",
            registry=self.registry,
        )
        self.pending_requests = Gauge(
            f"{PREFIX}_receiver_pending_requests",
            "Export requests mapped and waiting for the store to commit them.",
            registry=self.registry,
        )
        self.store_write_seconds = Histogram(
            f"{PREFIX}_store_write_duration_seconds",
            "Time to commit one export request to the store.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
