"""One writer thread that commits whatever is waiting together (group commit).

Requests that arrive while a transaction is being committed wait in a queue;
the next transaction takes all of them (up to `max_group`), so under load one
commit (one fsync) acknowledges many requests, and with no load a request is
committed on its own at once. Each batch is still all-or-nothing.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from session_bridge.store.base import SpanWriter, WriteBatch, WriteResult

_STOP = None


class GroupCommitWriter:
    def __init__(self, store: SpanWriter, max_group: int = 16) -> None:
        self._store = store
        self._max_group = max_group
        self._queue: queue.SimpleQueue[tuple[WriteBatch, Future[WriteResult]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: WriteBatch) -> Future[WriteResult]:
        future: Future[WriteResult] = Future()
        self._queue.put((batch, future))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                return
            group = [item]
            while len(group) < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                group.append(more)
            self._commit(group)

    def _commit(self, group: list[tuple[WriteBatch, Future[WriteResult]]]) -> None:
        try:
            results = self._store.write_many([batch for batch, _ in group])
        except Exception as exc:  # the store failed as a whole: every batch failed
            results = [exc for _ in group]
        for (_, future), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def close(self) -> None:
        """Commit everything already submitted, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()
