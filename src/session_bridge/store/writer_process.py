"""Writes of several receiver processes, committed by one writer process (SQLite).

SQLite takes one writer at a time. With `receivers.otlp.workers` > 1, each receiver
process does the CPU work of a request (parse, map, enrich, fold, build the span
rows) and sends the result to the supervisor, which alone writes: it commits what
all receivers sent together (group commit) and answers each batch. No process holds
a lock while another waits for the GIL, and the writer's work is mostly SQLite's
own C code.

One duplex `multiprocessing` pipe per receiver carries pickled tuples:
receiver -> writer `(seq, project_id, span_rows, resources, trace_deltas, records)`,
where `records` is None unless the writer asked for them (`NeedsRecords`: some
spans were already stored, a client retry); writer -> receiver
`(seq, result, error, needs_records)`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import pickle
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from session_bridge.store.base import NeedsRecords, WriteBatch, WriteResult
from session_bridge.store.writer import BatchWriter

log = logging.getLogger(__name__)

_PICKLE = pickle.HIGHEST_PROTOCOL
_GOODBYE = b""  # receiver -> writer: no more batches
_CLOSE_TIMEOUT_S = 10.0


class WriterGone(ConnectionError):
    """The writer process is not there any more: nothing can be stored."""


class RemoteWriter:
    """A receiver's `BatchWriter`: sends each batch to the writer process.

    `on_lost` is called once (from a background thread) if the writer process goes
    away; every batch in flight and every later one then fails with `WriterGone`.
    """

    def __init__(self, conn: Connection, on_lost: Callable[[], object]) -> None:
        self._conn = conn
        self._on_lost = on_lost
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[WriteBatch, Future[WriteResult]]] = {}
        self._gone: str | None = None
        self._closing = False
        # sends happen on their own thread: a pipe write blocks while the writer is busy
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send_loop, name="writes-out", daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, name="writes-in", daemon=True)
        self._sender.start()
        self._receiver.start()

    def submit(self, batch: WriteBatch) -> Future[WriteResult]:
        future: Future[WriteResult] = Future()
        seq = next(self._seq)
        payload = _payload(seq, batch, with_records=False)
        with self._lock:
            if self._gone is not None:
                future.set_exception(WriterGone(self._gone))
                return future
            self._pending[seq] = (batch, future)
        self._outbox.put(payload)
        return future

    def close(self) -> None:
        """Say goodbye to the writer process (the caller has waited for its writes)."""
        with self._lock:
            self._closing = True
        self._outbox.put(None)
        self._sender.join()
        self._receiver.join(_CLOSE_TIMEOUT_S)  # ends when the writer closes its end
        self._conn.close()

    def _send_loop(self) -> None:
        while True:
            payload = self._outbox.get()
            try:
                self._conn.send_bytes(payload or _GOODBYE)
            except OSError as exc:
                self._lost(f"the writer process is gone ({exc})")
                return
            if payload is None:
                return

    def _receive_loop(self) -> None:
        while True:
            try:
                seq, result, error, needs_records = pickle.loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                self._lost("the writer process is gone")
                return
            with self._lock:
                # needs_records: it stays pending, sent again with what it takes to fold
                # only the new spans
                batch, future = self._pending[seq] if needs_records else self._pending.pop(seq)
            if needs_records:
                self._outbox.put(_payload(seq, batch, with_records=True))
            elif error is not None:
                future.set_exception(RuntimeError(error))
            else:
                future.set_result(result)

    def _lost(self, reason: str) -> None:
        with self._lock:
            if self._gone is not None:
                return
            self._gone = reason
            pending = list(self._pending.values())
            self._pending.clear()
            orderly = self._closing
        for _, future in pending:
            future.set_exception(WriterGone(reason))
        if not orderly:
            log.error("%s: no request can be stored any more", reason)
            self._on_lost()


def _payload(seq: int, batch: WriteBatch, *, with_records: bool) -> bytes:
    """A batch as the writer process receives it: the rows and the per-trace deltas, or
    (`with_records`) the rows and the records."""
    deltas, records = (None, batch.records) if with_records else (batch.trace_deltas, None)
    message = (seq, batch.project_id, batch.rows(), batch.resources, deltas, records)
    return pickle.dumps(message, _PICKLE)


class WriterEndpoint:
    """The writer process's end of one receiver's pipe: its batches go to the shared
    `BatchWriter`, each answer goes back when that batch is committed (or failed)."""

    def __init__(self, conn: Connection, writer: BatchWriter, name: str) -> None:
        self._conn = conn
        self._writer = writer
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"writes-{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data = self._conn.recv_bytes()
            except (EOFError, OSError):  # the receiver died
                break
            if data == _GOODBYE:  # the receiver stops: closing our end ends its reader
                break
            seq, project_id, rows, resources, deltas, records = pickle.loads(data)
            batch = WriteBatch(project_id, records, resources, deltas, rows)
            self._writer.submit(batch).add_done_callback(functools.partial(self._answer, seq))
        self._conn.close()

    def _answer(self, seq: int, done: Future[WriteResult]) -> None:
        exc = done.exception()
        answer: tuple[Any, ...]
        if exc is None:
            answer = (seq, done.result(), None, False)
        else:
            answer = (seq, None, str(exc), isinstance(exc, NeedsRecords))
        # OSError: the receiver is gone; its client retries what it did not hear back
        with self._send_lock, contextlib.suppress(OSError):
            self._conn.send_bytes(pickle.dumps(answer, _PICKLE))

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)
