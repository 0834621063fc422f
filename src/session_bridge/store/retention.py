"""Retention (`storage.retention`): expired traces, spans and sessions deleted in the
background, in bounded batches, each its own short transaction (see `Retention.expire`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from session_bridge.store.base import Expired, Retention
from session_bridge.store.config import RetentionConfig

log = logging.getLogger(__name__)

NS = 1_000_000_000


class RetentionWorker:
    """Runs `run_once` every `retention.interval` on its own thread until `close`."""

    def __init__(
        self, store: Retention, retention: RetentionConfig, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._store = store
        self._retention = retention
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def run_once(self) -> Expired:
        """Delete everything expired now, batch after batch; return the totals."""
        now = self._clock()
        spans_age, sessions_age = self._retention.spans, self._retention.sessions
        traces_before = now - round(spans_age * NS) if spans_age else None
        sessions_before = now - round(sessions_age * NS) if sessions_age else None
        limit = self._retention.batch_size
        total = Expired()
        while not self._stop.is_set():
            batch = self._store.expire(traces_before, sessions_before, limit)
            total.traces += batch.traces
            total.spans += batch.spans
            total.sessions += batch.sessions
            if batch.traces < limit and batch.sessions < limit:
                break
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._retention.interval):
            try:
                total = self.run_once()
            except Exception:
                log.exception("retention pass failed; trying again at the next interval")
                continue
            if total.traces or total.sessions:
                log.info(
                    "retention: deleted %d traces (%d spans) and %d sessions",
                    total.traces,
                    total.spans,
                    total.sessions,
                )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
