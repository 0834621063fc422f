"""The bridge's own metrics, named after the OpenTelemetry Collector's (`otelcol_*`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as prometheus_values
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from session_bridge import METRICS_DIR_ENV

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
            "Export requests being prepared or waiting for the store to commit them.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.store_write_seconds = Histogram(
            f"{PREFIX}_store_write_duration_seconds",
            "Time to commit one export request to the store.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.exporter = ExporterMetrics(self.registry)

    def exposition(self) -> bytes:
        if os.environ.get(METRICS_DIR_ENV):
            # map workers: every process's values, summed (prometheus-client's files)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class ExporterMetrics:
    """The exporters' metrics (label `exporter`: its name), as the Collector's exporterhelper
    names them. The queue is measured in bytes (its capacity is in bytes)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("exporter",)
        self.sent_spans = Counter(
            f"{PREFIX}_exporter_sent_spans",
            "Spans delivered by the exporter (the endpoint accepted them).",
            labels,
            registry=registry,
        )
        self.send_failed_spans = Counter(
            f"{PREFIX}_exporter_send_failed_spans",
            "Spans in send attempts that failed (each failed attempt counts its spans).",
            labels,
            registry=registry,
        )
        self.dead_lettered_spans = Counter(
            f"{PREFIX}_exporter_dead_lettered_spans",
            "Spans the exporter gave up on and filed in the dead-letter store.",
            labels,
            registry=registry,
        )
        self.dead_letters = Gauge(
            f"{PREFIX}_exporter_dead_letters",
            "Records in the dead-letter store (see `session-bridge dlq`).",
            labels,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.queue_size = Gauge(
            f"{PREFIX}_exporter_queue_size",
            "Bytes of spans accepted but not yet exported (the exporter's backlog).",
            labels,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.queue_capacity = Gauge(
            f"{PREFIX}_exporter_queue_capacity",
            "The backlog, in bytes, past which receivers refuse spans with a retryable answer.",
            labels,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.queue_spans = Gauge(
            f"{PREFIX}_exporter_queue_spans",
            "Spans accepted but not yet exported.",
            labels,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.healthy = Gauge(
            f"{PREFIX}_exporter_healthy",
            "1 while the exporter delivers (or has failed for less than unhealthy_after), else 0.",
            labels,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.send_seconds = Histogram(
            f"{PREFIX}_exporter_send_duration_seconds",
            "Time of one export request, answer included.",
            labels,
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.delivery_lag_seconds = Histogram(
            f"{PREFIX}_exporter_delivery_lag_seconds",
            "From a span's commit to the store to its delivery (first seen to delivered).",
            labels,
            registry=registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
        )


def share_metrics_between_processes(parent: Path) -> None:
    """Sum the metrics of this process and of the child processes it starts through files
    in a directory of its own, `parent/<pid>` (emptied first): prometheus-client's
    multiprocess mode. Its own, because bridges sharing PostgreSQL may share a data dir
    (nothing locks it), and must neither sum nor wipe each other's files; the directories
    of bridges no longer running are removed."""
    for stale in parent.glob("[0-9]*"):
        if stale.name.isdigit() and not _running(int(stale.name)):
            shutil.rmtree(stale, ignore_errors=True)
    default = os.environ.setdefault(METRICS_DIR_ENV, str(parent / str(os.getpid())))
    shutil.rmtree(default, ignore_errors=True)
    Path(default).mkdir(parents=True, exist_ok=True)
    # the library picks its value class when first imported, which may have been before
    # the variable was set (by the command-line parser's imports): pick it again, before
    # this process creates its first metric
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges of a process of the bridge that ended (a map worker, the
    export process), when their values are shared through files."""
    if os.environ.get(METRICS_DIR_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
