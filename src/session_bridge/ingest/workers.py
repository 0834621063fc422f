"""Map worker processes (`receivers.otlp.workers` > 1, less the export process if there is
one: `server.process_plan`).

Decoding, mapping, enriching and folding OTLP is CPU work in Python: one process
uses one core. With N workers, the bridge process still serves every connection,
the APIs and the store writes, and hands the body of each export request to the
least busy of N map worker processes, which send back the batch ready for the
store. The work spreads evenly whatever the number of client connections (a single
SDK connection too), one process writes the store (SQLite takes one writer), and
only that process loads the gRPC and HTTP servers: a worker loads the mapping and
enrichment code alone.

One socket pair per worker carries pickled tuples:
bridge -> worker `(seq, raw_request, with_records)`; worker -> bridge `(seq, outcome)`,
the outcome being `("ok", accepted, rejected, error_message, batch)`, where `batch`
is None (no span accepted) or `(project_id, records, resources, trace_deltas,
batch_tables, span_count)` with the records only if asked for and the batch tables
(`store.sqlite.batch_tables`) otherwise, and the trace deltas as plain tuples
(`_shipped` packs a batch, `_batch_of` unpacks it);
`("invalid", http_status, message)` (not OTLP) or `("failed", message)`.

A worker ends when its socket closes: the bridge stops, or died. A worker that dies
is started again; the requests it held are answered "retry later".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from session_bridge import malloc
from session_bridge.children import PICKLE as _PICKLE
from session_bridge.children import (
    child_settings,
    end_child,
    report_failure,
    report_ready,
    start_child,
)
from session_bridge.enrich.config import EnrichConfig, PricingConfig, PrivacyConfig
from session_bridge.ingest.pipeline import RetryableError
from session_bridge.ingest.prepare import PreparedRequest, RawRequest, prepare
from session_bridge.logs import LogConfig
from session_bridge.otlp.codec import DecodeFailure
from session_bridge.rollup.binding import TraceDelta
from session_bridge.rollup.rollup import Rollup, rollup_values
from session_bridge.store.base import WriteBatch
from session_bridge.store.sqlite import batch_tables, trace_rows
from session_bridge.telemetry import BridgeMetrics, mark_process_dead

if TYPE_CHECKING:  # imported by the worker itself: the bridge process never enriches
    from session_bridge.enrich.stage import Enricher

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_RESTART_DELAY_S = 1.0  # do not spin if a worker dies again at once


class WorkerFailed(Exception):
    """A map worker could not prepare a request (a bug, logged by the worker)."""


class MapWorkerPool:
    """A `Preparer` that prepares each request in the least busy map worker process."""

    def __init__(self, settings: WorkerSettings, count: int) -> None:
        self._settings = settings
        self._count = count
        self._links: list[_WorkerLink] = []
        self._closing = False
        self._restarts: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._restarter = threading.Thread(target=self._restart_loop, name="map-workers")

    def start(self) -> list[str]:
        """Start every worker and wait until all are ready; what worker 0 says it enriches."""
        described: list[str] = []
        try:
            for index in range(self._count):
                link, described_now = self._spawn(index)
                self._links.append(link)
                described = described or described_now
        except BaseException:
            self.close()
            raise
        self._restarter.start()
        return described

    def _spawn(self, index: int) -> tuple[_WorkerLink, list[str]]:
        conn, process, described = start_child(
            "session_bridge.ingest.workers", self._settings, f"map worker {index}",
            timeout_s=_START_TIMEOUT_S,
        )  # fmt: skip
        link = _WorkerLink(index, process, conn, on_lost=self._restarts.put)
        return link, list(described)

    def _restart_loop(self) -> None:
        while (index := self._restarts.get()) is not None:
            old = self._links[index]
            old.process.wait()
            mark_process_dead(old.process.pid)
            log.error("map worker %d exited with code %s", index, old.process.returncode)
            while not self._closing:
                try:
                    self._links[index], _ = self._spawn(index)
                    log.info("map worker %d started again", index)
                    break
                except OSError as exc:
                    log.error("cannot start map worker %d again: %s", index, exc)
                    threading.Event().wait(_RESTART_DELAY_S)

    async def prepare(self, raw: RawRequest, *, with_records: bool) -> PreparedRequest:
        running = [link for link in self._links if link.running]
        if not running:  # all died at once, and are being started again
            raise RetryableError("no map worker is running; retry later", 1)
        link = min(running, key=_WorkerLink.load)
        return await asyncio.wrap_future(link.submit(raw, with_records))

    def close(self) -> None:
        """Stop every worker (each ends once its socket closes)."""
        self._closing = True
        self._restarts.put(None)
        if self._restarter.is_alive():
            self._restarter.join()
        for link in self._links:
            link.close()
        for link in self._links:
            end_child(link.process, f"map worker {link.index}", _STOP_TIMEOUT_S)
            mark_process_dead(link.process.pid)


class _WorkerLink:
    """The bridge's end of one worker's socket: requests out, prepared batches back."""

    def __init__(
        self,
        index: int,
        process: subprocess.Popen[bytes],
        conn: Connection,
        on_lost: Callable[[int], object],
    ) -> None:
        self.index = index
        self.process = process
        self._conn = conn
        self._on_lost = on_lost
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._pending: dict[int, Future[PreparedRequest]] = {}
        self._gone: str | None = None
        self._closing = False
        # sends have a thread of their own: a body larger than the socket buffer blocks
        # the sender until the worker reads it
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._sender = threading.Thread(
            target=self._send_loop, name=f"map-worker-{index}-send", daemon=True
        )
        self._receiver = threading.Thread(
            target=self._receive_loop, name=f"map-worker-{index}-receive", daemon=True
        )
        self._sender.start()
        self._receiver.start()

    @property
    def running(self) -> bool:
        return self._gone is None

    def load(self) -> int:
        return len(self._pending)

    def submit(self, raw: RawRequest, with_records: bool) -> Future[PreparedRequest]:
        future: Future[PreparedRequest] = Future()
        with self._lock:
            if self._gone is not None:
                future.set_exception(RetryableError(self._gone, 1))
                return future
            seq = next(self._seq)
            self._pending[seq] = future
        self._outbox.put(pickle.dumps((seq, raw, with_records), _PICKLE))
        return future

    def _send_loop(self) -> None:
        while (payload := self._outbox.get()) is not None:
            try:
                self._conn.send_bytes(payload)
            except OSError:
                return  # the receiver sees the socket close and fails what is pending

    def _receive_loop(self) -> None:
        while True:
            try:
                seq, outcome = pickle.loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._pending.pop(seq)
            _resolve(future, outcome)
        orderly = self._closing
        with self._lock:
            self._gone = f"map worker {self.index} is not running; retry later"
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(RetryableError(self._gone, 1))
        self._conn.close()
        if not orderly:
            self._on_lost(self.index)

    def close(self) -> None:
        """Send what is queued, then half-close the socket: the worker answers all it
        received, reads end-of-file and exits; our receiver then reads end-of-file too."""
        self._closing = True
        self._outbox.put(None)
        self._sender.join(_STOP_TIMEOUT_S)
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._conn.fileno())) as s:
            s.shutdown(socket.SHUT_WR)
        self._receiver.join(_STOP_TIMEOUT_S)


def _resolve(future: Future[PreparedRequest], outcome: tuple[Any, ...]) -> None:
    kind = outcome[0]
    if kind == "ok":
        _, accepted, rejected, error_message, shipped = outcome
        batch = None if shipped is None else _batch_of(shipped)
        future.set_result(PreparedRequest(batch, accepted, rejected, error_message))
    elif kind == "invalid":
        future.set_exception(DecodeFailure(outcome[1], outcome[2]))
    else:
        future.set_exception(WorkerFailed(outcome[1]))


# -- the worker process ------------------------------------------------------------------


def _outcome(
    raw: RawRequest, enricher: Enricher, with_records: bool, ingestion_events: bool
) -> tuple[Any, ...]:
    try:
        prepared = prepare(raw, enricher, ingestion_events=ingestion_events)
        shipped = None if prepared.batch is None else _shipped(prepared.batch, with_records)
    except DecodeFailure as exc:
        return ("invalid", exc.status, exc.message)
    except Exception as exc:
        log.exception("preparing an export request failed")
        return ("failed", f"the spans could not be prepared: {exc}")
    return ("ok", prepared.accepted, prepared.rejected, prepared.error_message, shipped)


def _shipped(batch: WriteBatch, with_records: bool) -> tuple[Any, ...]:
    """The `WriteBatch` fields to send: its records, or (lighter to send, and bound here
    rather than in the writer) its batch tables."""
    deltas = _pack_deltas(batch.trace_deltas)
    if with_records:
        return (batch.project_id, batch.records, batch.resources, deltas)
    table = batch_tables(batch.rows(), trace_rows(batch.trace_deltas or {}))
    return (batch.project_id, None, batch.resources, deltas, table, batch.received())


def _batch_of(shipped: tuple[Any, ...]) -> WriteBatch:
    """The `WriteBatch` a worker shipped (`_shipped`)."""
    project_id, records, resources, packed, *table = shipped
    deltas = None
    if packed is not None:
        deltas = {tid: TraceDelta(Rollup(*values), sid) for tid, (sid, values) in packed.items()}
    return WriteBatch(project_id, records, resources, deltas, *table)


def _pack_deltas(
    deltas: dict[bytes, TraceDelta] | None,
) -> dict[bytes, tuple[str | None, tuple[Any, ...]]] | None:
    # tuples of plain values pickle and unpickle several times faster than the slots
    # dataclasses (~2 us per span less, summed over both ends)
    if deltas is None:
        return None
    return {tid: (d.session_id, rollup_values(d.rollup)) for tid, d in deltas.items()}


@dataclass(frozen=True)
class WorkerSettings:
    """All a map worker gets of the configuration: what enriching needs and how to log;
    nothing of the API keys, exporter credentials or the database address."""

    enrich: EnrichConfig
    pricing: PricingConfig
    privacy: PrivacyConfig
    log: LogConfig
    ingestion_events: bool = False  # build each span's ingestion event (an exporter sends them)
    # how much the worker yields the CPU to the bridge's other processes (os.nice)
    nice: int = 0


def _worker_main(fd: int) -> None:
    from session_bridge.enrich.stage import Enricher

    conn, settings = child_settings(fd)
    config: WorkerSettings = settings
    if config.nice:
        os.nice(config.nice)
    try:
        enricher = Enricher(config, BridgeMetrics())
    except Exception as exc:
        report_failure(conn, str(exc))
        raise SystemExit(1) from exc
    malloc.freeze_startup_objects()
    report_ready(conn, enricher.describe())
    while True:
        try:
            seq, raw, with_records = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the bridge stopped (or died)
            break
        outcome = _outcome(raw, enricher, with_records, config.ingestion_events)
        conn.send_bytes(pickle.dumps((seq, outcome), _PICKLE))
    enricher.close()


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]))
