"""One exporter at work: read the log after its cursor, wait for spans to settle, batch
by bytes, send, retry with backoff, file what cannot be delivered as dead letters, and
advance the cursor. One thread per exporter.

Ordering: entries are delivered in log order, one request at a time, and a request is
finished (delivered, or its failures final) before the next one is sent, so the spans of
a trace arrive in the order the store committed them. The cursor moves only after a whole
read is finished: a crash or a shutdown in the middle leaves it where it was, and the
read is delivered again after the restart (at-least-once; resends carry the same event
ids). It is stored as soon as nothing more is due (or a retry waits), and at most once a
second while a backlog drains: storing it takes the database's write lock, which the
ingest writer holds most of the time under load, and waiting for that lock at every read
left the exporter idle a fifth of the time. A crash then resends up to a second of
deliveries. Dead letters are stored at once, with the cursor that passes them.

A span may name its session after some spans of its trace were stored: the exporter ships
a span of a trace without a session only once it has been in the log for `settle_delay`.
A span whose trace has its session already goes without settling: nothing it is sent with
can change by waiting. A read goes in log order, so it ends before the first span that
must still settle. A read that does not fill a request waits for more spans until its
oldest has waited `settle_delay + flush_interval`, but no longer than spans that could
still join it may arrive: a span seen later than `flush_interval` after the oldest
settles only after that deadline, so once every span seen by then can go, the read is
what it would be at the deadline, and goes now.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from session_bridge.export.base import Exporter, Failure, Unit, pack
from session_bridge.export.common import ExporterCommon
from session_bridge.export.records import to_proto
from session_bridge.export.retry import Backoff
from session_bridge.proto.session_bridge.v1.records_pb2 import DeadLetter
from session_bridge.store.export_log import ExportLog, LogEntry
from session_bridge.telemetry import ExporterMetrics

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the log's head is looked at
CURSOR_STORE_S = 1.0  # while a backlog drains, the cursor is stored at most this often
_LOG_EVERY_S = 60.0  # repeated transient failures are logged at most this often


@dataclass(slots=True)
class _Seen:
    at: float  # monotonic time the head was first seen at
    head: int
    appended: int  # `ExporterRunner._appended` then: the bytes seen arriving up to `head`


class ExporterRunner:
    def __init__(
        self,
        exporter: Exporter,
        export_log: ExportLog,
        config: ExporterCommon,
        metrics: ExporterMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.exporter = exporter
        self.name = exporter.name
        self.capacity = int(config.queue_capacity)
        self._log = export_log
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"export-{self.name}", daemon=True)
        self._window = float(config.settle_delay) + float(config.flush_interval)
        self._seen: deque[_Seen] = deque()
        self.cursor = 0
        self.head = 0
        self.backlog_bytes = 0  # read by the receivers' admission check, from any thread
        self._appended = 0  # bytes seen arriving in the log since the cursor was loaded
        # every span after the cursor up to `_named` may go, settled or of a trace whose
        # session is known; `_named_bytes` of them
        self._named = 0
        self._named_bytes = 0
        self._dead_letters = 0
        self.blocked: Failure | None = None
        self._failing_since: float | None = None
        self._problem: Failure | None = None
        self._logged_at = -_LOG_EVERY_S
        self._leading = False
        self._followed_at = 0.0
        self._stored_at = 0.0  # when the cursor was last stored
        self._unstored = False  # the cursor moved since

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Take (or create) the cursor, measure the backlog, start delivering."""
        self._load_cursor()
        self._dead_letters = self._log.count_dead_letters(self.name)
        self._metrics.queue_capacity.labels(self.name).set(self.capacity)
        self._publish()
        self._thread.start()

    def _load_cursor(self) -> None:
        """Start from the stored cursor: at start, and when this process takes the exporter
        over from another bridge sharing the store (which moved the cursor meanwhile)."""
        self.cursor = self._log.cursor(self.name)
        self._stored_at, self._unstored = self._clock(), False
        self.head = self._log.head()
        self.backlog_bytes = self._log.bytes_between(self.cursor, self.head)
        self._appended = self.backlog_bytes
        self._named, self._named_bytes = self.cursor, 0
        self._seen.clear()
        self._seen.append(_Seen(self._clock(), self.head, self._appended))
        self._followed_at = self._clock()

    def request_stop(self) -> None:
        self._stop.set()

    def close(self, deadline_s: float) -> bool:
        """Finish the request in flight (for up to `deadline_s`), then stop. What is not
        delivered stays in the log for the next start. True if the thread has stopped."""
        self._stop.set()
        self._thread.join(deadline_s)
        if self._thread.is_alive():
            log.warning(
                "exporter %s: still sending at the shutdown deadline; left queued", self.name
            )
            return False
        self.exporter.close()
        return True

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def health(self) -> str | None:
        """Why this exporter makes the bridge unhealthy, or None."""
        if self.blocked is not None:
            return f"exporter {self.name}: {self.blocked.message}"
        since = self._failing_since
        if since is not None and self._clock() - since >= self._config.unhealthy_after:
            problem = self._problem.message if self._problem else "failing"
            return f"exporter {self.name}: failing for {self._clock() - since:.0f}s: {problem}"
        return None

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self._step()
            except Exception:
                log.exception("exporter %s: unexpected error; trying again", self.name)
                self._note_problem(Failure(0, "internal error (see the bridge's log)"))
                worked = False
                self._stop.wait(1.0)
            if not worked:
                self._stop.wait(POLL_S)
        try:
            self._store_cursor()
        except Exception:
            log.exception("exporter %s: its cursor could not be stored", self.name)

    def _step(self) -> bool:
        """Deliver one read if one is due; False if there was nothing to do yet (and the
        cursor is stored by then)."""
        if not self._log.lead(self.name):
            # the next leader starts from the stored cursor: what this replica delivered
            # since is delivered again (at-least-once)
            self._leading = self._unstored = False
            self._follow()
            return False
        if not self._leading:
            self._leading = True
            self._load_cursor()
        self._poll()
        now = self._clock()
        settled = self._ready(now - float(self._config.settle_delay))
        ready, ready_bytes = self._named_prefix(*settled)
        # read only to send: a full request, or a read no span can join any more
        if ready <= self.cursor or (
            ready_bytes < self.exporter.read_bytes and not self._complete(ready, now)
        ):
            self._store_cursor()
            return False
        entries = self._log.read_after(self.cursor, ready, self.exporter.read_bytes)
        if not entries:  # nothing left in that range (deleted): nothing to deliver
            self.cursor = ready
            self._moved()
            self.backlog_bytes = max(self.backlog_bytes - ready_bytes, 0)
            return True
        return self._deliver(entries)

    def _moved(self) -> None:
        """The cursor moved past a finished read: store it now, or later (`CURSOR_STORE_S`)."""
        self._unstored = True
        if self._clock() - self._stored_at >= CURSOR_STORE_S:
            self._store_cursor()

    def _store_cursor(self) -> None:
        if self._unstored:
            self._store(self.cursor, [])

    def _store(self, position: int, dead_letters: list[DeadLetter]) -> None:
        self._log.commit(self.name, position, dead_letters)
        self._stored_at, self._unstored = self._clock(), False

    def _deliver(self, entries: list[LogEntry]) -> bool:
        units = self.exporter.units(entries)
        failed: dict[int, tuple[Failure, int]] = {}
        limit = self.exporter.max_request_bytes - self.exporter.request_overhead
        for request in pack(units, limit):
            outcome = self._send(units, request)
            if outcome is None:
                return False  # stopping: this read is delivered again after the restart
            failed.update(outcome)
        letters: dict[tuple[int, str, bytes, bytes], DeadLetter] = {}
        now_ns = time.time_ns()
        for index, (failure, attempts) in failed.items():
            for entry in units[index].entries:
                # a position may hold several spans (PostgreSQL: a whole write)
                key = (entry.position, entry.project_id, entry.span.trace_id, entry.span.span_id)
                if key not in letters:
                    letters[key] = DeadLetter(
                        exporter=self.name,
                        failed_time_unix_nano=now_ns,
                        status=failure.status,
                        message=failure.message,
                        attempts=attempts,
                        record=to_proto(entry),
                    )
        if letters:  # stored at once, with the cursor that passes them
            self._store(entries[-1].position, list(letters.values()))
        self._committed(entries, len(letters))
        if not letters:
            self._moved()
        return True

    def _send(
        self, units: Sequence[Unit], request: list[int]
    ) -> dict[int, tuple[Failure, int]] | None:
        """Send one request until every unit is delivered or failed for good; the final
        failures (with the number of attempts). None: stopping, nothing is final."""
        cfg = self._config.retry
        backoff = Backoff(cfg, self._rng)
        started = self._clock()
        pending = request
        failed: dict[int, tuple[Failure, int]] = {}
        attempts = 0
        while pending:
            attempts += 1
            sent_at = time.perf_counter()
            result = self.exporter.send([units[i] for i in pending])
            self._metrics.send_seconds.labels(self.name).observe(time.perf_counter() - sent_at)
            if result.blocked is not None:
                self._note_blocked(result.blocked, _spans(units, pending))
                if not self._sleep(backoff.next_delay()):
                    return None
                continue
            for j, failure in result.failed.items():
                failed[pending[j]] = (failure, attempts)
            retry = [pending[j] for j in result.retry]
            if not retry:
                self._note_success()
                break
            problem = result.problem or Failure(0, "the endpoint asked for a retry")
            self._note_problem(problem, _spans(units, retry))
            delay = backoff.next_delay(result.retry_after_s)
            elapsed = self._clock() - started
            if cfg.max_elapsed_time and elapsed + delay > cfg.max_elapsed_time:
                gave_up = Failure(
                    problem.status,
                    f"gave up after {attempts} attempts in {elapsed:.0f}s"
                    f" (retry.max_elapsed_time): {problem.message}",
                )
                failed.update({i: (gave_up, attempts) for i in retry})
                break
            if not self._sleep(delay):
                return None
            pending = retry
        return failed

    def _sleep(self, delay: float) -> bool:
        """Wait `delay` while keeping the backlog measured; False if stopping."""
        self._store_cursor()
        end = self._clock() + delay
        while True:
            self._poll()
            remaining = end - self._clock()
            if remaining <= 0:
                return True
            if self._stop.wait(min(remaining, 0.25)):
                return False

    def _follow(self) -> None:
        """While another bridge delivers: keep the backlog measured from the stored cursor
        (the receivers' admission reads it), once a second."""
        if self._clock() - self._followed_at >= 1.0:
            self._load_cursor()
            self._publish()

    # -- the log's head and the backlog -----------------------------------------------------

    def _poll(self) -> None:
        head = self._log.head()
        if head <= self.head:
            return
        arrived = self._log.bytes_between(self.head, head)
        self.backlog_bytes += arrived
        self._appended += arrived
        self.head = head
        now = self._clock()
        if len(self._seen) >= 2 and self._seen[-1].at <= now - self._window:
            del self._seen[-2]  # both long settled: one is enough (bounds the deque)
        self._seen.append(_Seen(now, head, self._appended))
        self._publish()

    def _ready(self, settled_before: float) -> tuple[int, int]:
        """The newest position seen before `settled_before`, and the bytes waiting up to
        it (after the cursor)."""
        ready = self.cursor
        appended = None
        for seen in self._seen:
            if seen.at > settled_before:
                break
            if seen.head > ready:
                ready, appended = seen.head, seen.appended
        if appended is None:
            return ready, 0
        return ready, max(self.backlog_bytes - (self._appended - appended), 0)

    def _named_prefix(self, settled: int, settled_bytes: int) -> tuple[int, int]:
        """How far a read may go: past the settled spans (`_ready`), over those whose
        trace has its session, up to the first that must still settle; and its bytes.
        Only spans not looked at before are looked at (a trace, once named, stays so)."""
        if self._named <= settled:
            self._named, self._named_bytes = settled, settled_bytes
        if self._named < self.head:
            named = self._log.named_through(self._named, self.head)
            if named == self.head:  # the common case: the whole backlog
                self._named, self._named_bytes = named, self.backlog_bytes
            elif named > self._named:
                self._named_bytes += self._log.bytes_between(self._named, named)
                self._named = named
        return self._named, self._named_bytes

    def _complete(self, ready: int, now: float) -> bool:
        """Whether the read up to `ready` is what it would be at its deadline (its oldest
        span's `settle_delay + flush_interval`): the deadline has come, or no span seen
        from now on could join it and every span seen until then can go."""
        oldest = self._seen_at(self.cursor + 1)
        if now >= oldest + self._window:
            return True
        joins_until = oldest + float(self._config.flush_interval)  # the last arrival that can join
        if now < joins_until:
            return False
        joining = max((s.head for s in self._seen if s.at <= joins_until), default=ready)
        return ready >= joining

    def _seen_at(self, position: int) -> float:
        return next((s.at for s in self._seen if s.head >= position), self._clock())

    def _committed(self, entries: list[LogEntry], dead: int) -> None:
        self.cursor = entries[-1].position
        sent = sum(e.size for e in entries)
        self.backlog_bytes = max(self.backlog_bytes - sent, 0)
        self._named_bytes = max(self._named_bytes - sent, 0)
        self._metrics.delivery_lag_seconds.labels(self.name).observe(
            self._clock() - self._seen_at(entries[0].position)
        )
        while self._seen and self._seen[0].head <= self.cursor and len(self._seen) > 1:
            self._seen.popleft()
        self._metrics.sent_spans.labels(self.name).inc(len(entries) - dead)
        if dead:
            self._dead_letters += dead
            self._metrics.dead_lettered_spans.labels(self.name).inc(dead)
            log.warning(
                "exporter %s: %d spans could not be delivered and were filed as dead letters"
                " (see `session-bridge dlq list`)",
                self.name,
                dead,
            )
        self._publish()

    def _publish(self) -> None:
        m = self._metrics
        m.queue_size.labels(self.name).set(self.backlog_bytes)
        m.queue_spans.labels(self.name).set(max(self.head - self.cursor, 0))
        m.dead_letters.labels(self.name).set(self._dead_letters)
        m.healthy.labels(self.name).set(0 if self.health() else 1)

    # -- health -----------------------------------------------------------------------------

    def _note_success(self) -> None:
        if self._failing_since is not None or self.blocked is not None:
            log.info("exporter %s: delivering again", self.name)
        self._failing_since = None
        self.blocked = None
        self._problem = None

    def _note_problem(self, problem: Failure, spans: int = 0) -> None:
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        self._problem = problem
        self._metrics.send_failed_spans.labels(self.name).inc(spans)
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "exporter %s: send failed, will retry (%d spans waiting): %s",
                self.name,
                max(self.head - self.cursor, 0),
                problem.message,
            )
        self._publish()

    def _note_blocked(self, problem: Failure, spans: int) -> None:
        self.blocked = problem
        if self._failing_since is None:
            self._failing_since = self._clock()
        self._metrics.send_failed_spans.labels(self.name).inc(spans)
        log.error(
            "exporter %s: %s; nothing is dropped: %d spans stay queued until this is fixed",
            self.name,
            problem.message,
            max(self.head - self.cursor, 0),
        )
        self._publish()


def _spans(units: Sequence[Unit], indexes: Sequence[int]) -> int:
    return len({e.position for i in indexes for e in units[i].entries})
