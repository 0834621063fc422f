"""The export runner alone: settle delay (and spans whose session is known going without
it), batching by bytes, retries and giving up, a blocked endpoint, the cursor, against an
in-memory log and exporter and a fake clock.

No thread runs and no real time passes: the tests call the runner's `_step()` (one read)
themselves, and its stop event is replaced by one whose `wait(timeout)` moves the fake
clock on by `timeout` (that is how the runner sleeps between retries)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry

from session_bridge.config import ByteSize, Duration
from session_bridge.export.base import Exporter, Failure, SendResult, Unit
from session_bridge.export.config import ExporterCommon, ExportRetryConfig
from session_bridge.export.runner import CURSOR_STORE_S, ExporterRunner
from session_bridge.model import EventType, SpanRecord
from session_bridge.proto.session_bridge.v1.records_pb2 import DeadLetter
from session_bridge.store.export_log import ExportLog, LogEntry, StoredDeadLetter
from session_bridge.telemetry import ExporterMetrics

SETTLE_S = 2.0
FLUSH_S = 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeStop(threading.Event):
    """The runner's stop event, whose waiting moves the fake clock instead of blocking."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        if not self.is_set() and timeout is not None:
            self.clock.now += timeout
        return self.is_set()


class MemoryLog(ExportLog):
    """The export log in a list; records every commit."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.cursors: dict[str, int] = {}
        self.commits: list[tuple[str, int, list[DeadLetter]]] = []
        self.reads: list[tuple[int, int]] = []  # (cursor, last position read)
        self.named_queries: list[tuple[int, int]] = []

    def append(self, *sizes: int, session: str | None = None) -> None:
        """Spans of a trace of `session` (None: a trace whose session is not known yet)."""
        for size in sizes:
            position = len(self.entries) + 1
            span = SpanRecord(
                trace_id=b"t" * 16,
                span_id=position.to_bytes(8, "big"),
                parent_span_id=None,
                name=f"span {position}",
                kind=1,
                start_ns=position,
                end_ns=position + 1,
                status_code=0,
                status_message="",
                event_type=EventType.DECISION,
                is_error=False,
                otlp_span=b"s" * size,
                session_id=session,
            )
            self.entries.append(LogEntry(position, "default", span, b"", None, size))

    def head(self) -> int:
        return len(self.entries)

    def cursor(self, exporter: str) -> int:
        return self.cursors.setdefault(exporter, self.head())

    def keep_cursors(self, exporters: Sequence[str]) -> None:
        self.cursors = {k: v for k, v in self.cursors.items() if k in exporters}

    def read_after(self, cursor: int, until: int, max_bytes: int) -> list[LogEntry]:
        out: list[LogEntry] = []
        size = 0
        for entry in self.entries[cursor:until]:
            if out and size >= max_bytes:
                break
            out.append(entry)
            size += entry.size
        if out:
            self.reads.append((cursor, out[-1].position))
        return out

    def named_through(self, after: int, until: int) -> int:
        self.named_queries.append((after, until))
        for entry in self.entries[after:until]:
            if entry.span.session_id is None:
                return entry.position - 1
        return until

    def name(self, position: int, session: str) -> None:
        """A later span names the session of the span at `position`."""
        self.entries[position - 1].span.session_id = session

    def bytes_between(self, after: int, until: int) -> int:
        return sum(e.size for e in self.entries[after:until])

    def commit(self, exporter: str, cursor: int, dead_letters: Sequence[DeadLetter]) -> None:
        self.cursors[exporter] = cursor
        self.commits.append((exporter, cursor, list(dead_letters)))

    def dead_letters(
        self, exporter: str | None, ids: Sequence[int] | None, limit: int, after_id: int = 0
    ) -> list[StoredDeadLetter]:
        letters = [letter for _, _, batch in self.commits for letter in batch]
        return [StoredDeadLetter(n + 1, letter) for n, letter in enumerate(letters)][:limit]

    def count_dead_letters(self, exporter: str | None) -> int:
        return sum(len(batch) for _, _, batch in self.commits)

    def settle_dead_letters(
        self, delivered: Sequence[int], failed_again: Sequence[StoredDeadLetter]
    ) -> None:
        raise NotImplementedError

    def purge_dead_letters(self, exporter: str | None, ids: Sequence[int] | None) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


Answer = Callable[[Sequence[Unit]], SendResult]


class ScriptedExporter(Exporter):
    """One unit per entry (payload = the entry's bytes); answers from `answer`, and records
    each request's positions and when it was sent."""

    def __init__(self, clock: FakeClock, max_request_bytes: int, answer: Answer | None) -> None:
        self.name = "scripted"
        self.max_request_bytes = max_request_bytes
        self.clock = clock
        self.answer = answer or (lambda units: SendResult())
        self.requests: list[list[int]] = []
        self.sent_at: list[float] = []

    def units(self, entries: Sequence[LogEntry]) -> list[Unit]:
        return [Unit(b"x" * e.size, [e], key=str(e.position)) for e in entries]

    def send(self, units: Sequence[Unit]) -> SendResult:
        self.requests.append([u.entries[0].position for u in units])
        self.sent_at.append(self.clock.now)
        return self.answer(units)

    @property
    def delivered(self) -> list[int]:
        return [p for request in self.requests for p in request]


class Harness:
    def __init__(
        self,
        *,
        max_request_bytes: int = 10_000,
        answer: Answer | None = None,
        retry: ExportRetryConfig | None = None,
        rng: random.Random | None = None,
        log: MemoryLog | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.log = log or MemoryLog()
        self.exporter = ScriptedExporter(self.clock, max_request_bytes, answer)
        config = ExporterCommon(
            type="scripted",
            settle_delay=Duration(SETTLE_S),
            flush_interval=Duration(FLUSH_S),
            queue_capacity=ByteSize(10**9),
            retry=retry or ExportRetryConfig(randomization_factor=0.0),
        )
        metrics = ExporterMetrics(CollectorRegistry())
        self.runner = ExporterRunner(
            self.exporter, self.log, config, metrics, clock=self.clock, rng=rng
        )
        self.runner._stop = FakeStop(self.clock)
        self.runner._load_cursor()  # what start() does, without starting the thread

    def step_at(self, offset: float) -> bool:
        """Move the clock to `offset` seconds after the start, and run one step."""
        self.clock.now = 100.0 + offset
        return self.runner._step()

    def advance(self, seconds: float) -> bool:
        self.clock.now += seconds
        return self.runner._step()


def test_spans_wait_for_the_settle_delay_and_a_batch_for_spans_that_can_still_join() -> None:
    h = Harness()
    h.log.append(100, 100, 100)
    assert not h.step_at(0.0)  # the runner sees the new head now
    h.log.append(100)
    assert not h.step_at(FLUSH_S / 2)  # seen within the flush interval: it can join
    assert not h.step_at(SETTLE_S - 0.01)  # not settled
    assert not h.step_at(SETTLE_S)  # settled, but the fourth settles in time to join
    assert h.exporter.requests == []
    # the fourth has settled and nothing else can join before the deadline (SETTLE_S + FLUSH_S)
    assert h.step_at(FLUSH_S / 2 + SETTLE_S)
    assert h.exporter.requests == [[1, 2, 3, 4]]
    assert h.log.commits == [("scripted", 4, [])]
    assert h.runner.cursor == 4 and h.runner.backlog_bytes == 0
    assert not h.advance(60.0)  # nothing new: nothing sent


def test_a_read_no_span_can_join_goes_without_waiting_out_the_flush_interval() -> None:
    h = Harness()
    h.log.append(100, 100)
    assert not h.step_at(0.0)
    assert not h.step_at(SETTLE_S - 0.01)
    # nothing was seen within the flush interval: a span seen from now on settles after
    # the deadline (SETTLE_S + FLUSH_S), so the read is already what it would be then
    assert h.step_at(SETTLE_S)
    assert h.exporter.requests == [[1, 2]]


def test_a_read_holds_what_it_would_hold_at_its_deadline() -> None:
    # the same reads, in the same order, as when every read waited out its flush interval
    h = Harness()
    h.log.append(100)
    h.step_at(0.0)
    h.log.append(100)
    h.step_at(FLUSH_S + 0.5)  # seen too late to join the first read
    assert h.step_at(SETTLE_S)
    assert h.exporter.requests == [[1]]
    assert not h.step_at(FLUSH_S + 0.5 + SETTLE_S - 0.01)
    assert h.step_at(FLUSH_S + 0.5 + SETTLE_S)
    assert h.exporter.requests == [[1], [2]]


def test_a_full_batch_goes_as_soon_as_it_has_settled() -> None:
    h = Harness(max_request_bytes=1000)
    h.log.append(600, 600)
    assert not h.step_at(0.0)
    assert not h.step_at(SETTLE_S - 0.01)
    assert h.step_at(SETTLE_S)  # 1,200 bytes fill a request: no flush wait
    assert h.exporter.requests == [[1], [2]]


def test_spans_arriving_later_settle_on_their_own_clock() -> None:
    h = Harness()
    h.log.append(100)
    h.step_at(0.0)
    h.log.append(100)
    h.step_at(1.5)  # the second span is first seen here
    assert h.step_at(SETTLE_S + FLUSH_S)
    assert h.exporter.requests == [[1]]  # only the first has settled
    assert not h.step_at(1.5 + SETTLE_S - 0.01)
    assert h.step_at(1.5 + SETTLE_S + FLUSH_S)
    assert h.exporter.requests == [[1], [2]]


def test_spans_whose_session_is_known_go_without_settling() -> None:
    h = Harness()
    h.log.append(100, 100, session="s1")
    assert not h.step_at(0.0)
    h.log.append(100, session="s1")
    assert not h.step_at(FLUSH_S / 2)  # more may still join the batch
    # no span seen from now on can join; every span seen until now may go: no settle
    assert h.step_at(FLUSH_S)
    assert h.exporter.requests == [[1, 2, 3]]
    assert h.runner.cursor == 3 and h.runner.backlog_bytes == 0


def test_a_full_batch_of_named_spans_goes_at_once() -> None:
    h = Harness(max_request_bytes=1000)
    h.log.append(600, 600, session="s1")
    assert h.step_at(0.0)  # 1,200 bytes fill a request
    assert h.exporter.requests == [[1], [2]]


def test_a_span_still_unnamed_holds_back_the_spans_after_it_until_it_settles() -> None:
    h = Harness(max_request_bytes=1000)
    h.log.append(600, 600, session="s1")
    h.log.append(100)  # its trace names no session yet
    h.log.append(600, session="s2")
    assert h.step_at(0.0)  # the first two fill a request: they go
    assert h.exporter.requests == [[1], [2]]
    assert not h.step_at(FLUSH_S)  # the fourth waits behind the unnamed third
    assert not h.step_at(SETTLE_S - 0.01)
    assert h.step_at(SETTLE_S)  # settled; the fourth goes with it, in log order
    assert h.exporter.requests == [[1], [2], [3, 4]]
    assert h.runner.cursor == 4


def test_a_span_named_by_a_later_one_goes_once_named() -> None:
    h = Harness()
    h.log.append(100, 100)  # children: their trace's root, naming the session, comes later
    assert not h.step_at(0.0)
    h.log.append(100, session="s1")  # the root
    h.log.name(1, "s1")
    h.log.name(2, "s1")
    assert not h.step_at(FLUSH_S / 2)
    assert h.step_at(FLUSH_S)  # long before the children settle
    assert h.exporter.requests == [[1, 2, 3]]


def test_only_spans_not_looked_at_before_are_asked_about() -> None:
    h = Harness()
    h.log.append(100, session="s1")
    h.step_at(0.0)
    h.log.append(100, session="s1")
    h.step_at(0.1)
    h.step_at(0.2)  # nothing new: not asked
    assert h.log.named_queries == [(0, 1), (1, 2)]


def test_requests_are_packed_by_bytes_in_log_order() -> None:
    h = Harness(max_request_bytes=1000)
    h.log.append(*[300] * 10)
    h.step_at(0.0)
    while h.step_at(SETTLE_S + FLUSH_S):
        pass
    # units of 300 bytes (+1 each in a request): three fit in 1,000 bytes
    assert h.exporter.delivered == list(range(1, 11))
    assert all(len(request) <= 3 for request in h.exporter.requests)
    assert all(sum(300 + 1 for _ in r) <= 1000 for r in h.exporter.requests)
    # reads stop once they hold 1,000 bytes; the cursor moves after each
    assert h.log.reads == [(0, 4), (4, 8), (8, 10)]
    assert h.runner.cursor == 10 and h.log.cursors["scripted"] == 10


def test_retries_back_off_and_give_up_into_dead_letters_at_max_elapsed_time() -> None:
    def unavailable(units: Sequence[Unit]) -> SendResult:
        return SendResult(retry=list(range(len(units))), problem=Failure(503, "down for a bit"))

    retry = ExportRetryConfig(
        initial_interval=Duration(1.0),
        multiplier=2.0,
        max_interval=Duration(30.0),
        randomization_factor=0.0,
        max_elapsed_time=Duration(10.0),
    )
    h = Harness(answer=unavailable, retry=retry)
    h.log.append(100, 100)
    h.step_at(0.0)
    assert h.step_at(SETTLE_S + FLUSH_S)
    start = 100.0 + SETTLE_S + FLUSH_S
    # delays 1, 2, 4; the next (8) would end past 10 s after the first attempt
    assert [t - start for t in h.exporter.sent_at] == [0.0, 1.0, 3.0, 7.0]
    ((exporter, cursor, letters),) = h.log.commits
    assert (exporter, cursor) == ("scripted", 2)
    assert [letter.record.sequence for letter in letters] == [1, 2]
    for letter in letters:
        assert letter.exporter == "scripted" and letter.status == 503 and letter.attempts == 4
        assert "gave up after 4 attempts" in letter.message
        assert "down for a bit" in letter.message
    assert h.runner.cursor == 2


def test_the_jitter_comes_from_the_rng_and_stays_within_its_factor() -> None:
    answers = iter([SendResult(retry=[0], problem=Failure(502, "bad gateway"))] * 5)

    def flaky(units: Sequence[Unit]) -> SendResult:
        return next(answers, SendResult())

    def run_once(seed: int) -> list[float]:
        h = Harness(answer=flaky, rng=random.Random(seed))
        h.log.append(100)
        h.step_at(0.0)
        assert h.step_at(SETTLE_S + FLUSH_S)
        assert h.log.commits == [("scripted", 1, [])]  # delivered in the end
        return [b - a for a, b in zip(h.exporter.sent_at, h.exporter.sent_at[1:], strict=False)]

    gaps = run_once(7)
    assert len(gaps) == 5
    for n, gap in enumerate(gaps):  # initial 1 s, x2 each time, +/- 50 %
        assert 0.5 * 2**n <= gap <= 1.5 * 2**n
    answers = iter([SendResult(retry=[0], problem=Failure(502, "bad gateway"))] * 5)
    assert run_once(7) == gaps  # the same seed, the same delays


def test_a_server_retry_after_longer_than_the_backoff_is_honoured() -> None:
    answers = iter([SendResult(retry=[0], problem=Failure(429, "slow down"), retry_after_s=9.0)])

    def limited(units: Sequence[Unit]) -> SendResult:
        return next(answers, SendResult())

    h = Harness(answer=limited)
    h.log.append(100)
    h.step_at(0.0)
    assert h.step_at(SETTLE_S + FLUSH_S)
    assert h.exporter.sent_at[1] - h.exporter.sent_at[0] == 9.0


def test_per_unit_failures_become_dead_letters_and_the_rest_is_delivered() -> None:
    def refuse_second(units: Sequence[Unit]) -> SendResult:
        return SendResult(failed={1: Failure(400, "invalid event")})

    h = Harness(answer=refuse_second)
    h.log.append(100, 100, 100)
    h.step_at(0.0)
    assert h.step_at(SETTLE_S + FLUSH_S)
    ((_, cursor, letters),) = h.log.commits
    assert cursor == 3
    assert [(x.record.sequence, x.status, x.attempts) for x in letters] == [(2, 400, 1)]


def test_a_blocked_endpoint_keeps_everything_queued_and_makes_the_bridge_unhealthy() -> None:
    observed: list[tuple[int, int, str | None]] = []
    refusals = 4
    h: Harness

    def unauthorized(units: Sequence[Unit]) -> SendResult:
        observed.append((h.runner.cursor, len(h.log.commits), h.runner.health()))
        if len(observed) <= refusals:
            return SendResult(blocked=Failure(401, "the endpoint refused the credentials"))
        return SendResult()

    h = Harness(answer=unauthorized)
    h.log.append(100, 100)
    h.step_at(0.0)
    assert h.step_at(SETTLE_S + FLUSH_S)
    # while refused: the same request again and again, nothing committed or dead-lettered
    assert h.exporter.requests == [[1, 2]] * (refusals + 1)
    assert [cursor for cursor, _, _ in observed] == [0] * (refusals + 1)
    assert [commits for _, commits, _ in observed] == [0] * (refusals + 1)
    health = [problem for _, _, problem in observed]
    assert health[0] is None
    assert all(p is not None and "refused the credentials" in p for p in health[1:])
    # once accepted: everything delivered, healthy again
    assert h.log.commits == [("scripted", 2, [])]
    assert h.runner.health() is None and h.runner.blocked is None


def test_stopping_while_blocked_leaves_the_read_for_the_next_start() -> None:
    h: Harness

    def unauthorized(units: Sequence[Unit]) -> SendResult:
        if len(h.exporter.requests) == 3:
            h.runner.request_stop()  # the bridge shuts down meanwhile
        return SendResult(blocked=Failure(403, "forbidden"))

    h = Harness(answer=unauthorized)
    h.log.append(100, 100)
    h.step_at(0.0)
    assert not h.step_at(SETTLE_S + FLUSH_S)
    assert h.log.commits == [] and h.runner.cursor == 0
    assert h.runner.backlog_bytes == 200


def test_the_cursor_moves_only_after_a_whole_read() -> None:
    """A read split over two requests; the process stops while the second is retried: the
    cursor stays, and the next start delivers the whole read again (at-least-once)."""
    h: Harness

    def second_fails(units: Sequence[Unit]) -> SendResult:
        if len(h.exporter.requests) == 1:
            return SendResult()
        h.runner.request_stop()
        return SendResult(retry=list(range(len(units))), problem=Failure(503, "down"))

    h = Harness(max_request_bytes=700, answer=second_fails)
    h.log.append(300, 300, 300)  # one read of 900 bytes; requests [1, 2] and [3]
    h.step_at(0.0)
    assert not h.step_at(SETTLE_S)
    assert h.exporter.requests == [[1, 2], [3]]
    assert h.log.commits == [] and h.log.cursors["scripted"] == 0

    again = Harness(max_request_bytes=700, log=h.log)  # the restart, on the same log
    assert again.runner.cursor == 0
    assert not again.step_at(0.0)  # taking the exporter up: the backlog settles again
    assert again.step_at(SETTLE_S)  # a full read: no flush wait
    assert again.exporter.requests == [[1, 2], [3]]
    assert h.log.commits == [("scripted", 3, [])]


def test_the_cursor_is_stored_at_most_once_a_second_while_a_backlog_drains() -> None:
    """Storing the cursor waits for the store's write lock: while reads follow each other
    it is stored once a second, and as soon as nothing more is due."""
    h = Harness(max_request_bytes=1000)
    h.log.append(*[300] * 10)
    h.step_at(0.0)
    assert h.step_at(SETTLE_S + FLUSH_S)  # over a second since the cursor was loaded
    assert h.log.commits == [("scripted", 4, [])]
    assert h.step_at(SETTLE_S + FLUSH_S)  # the next read at once: its cursor waits
    assert h.runner.cursor == 8 and h.log.cursors["scripted"] == 4
    assert h.step_at(SETTLE_S + FLUSH_S + CURSOR_STORE_S)  # a second later: stored
    assert h.log.commits[-1] == ("scripted", 10, [])
    h.log.append(*[300] * 8)
    h.step_at(10.0)
    assert h.step_at(10.0 + SETTLE_S)  # a full read, stored (a second has passed) ...
    assert h.step_at(10.0 + SETTLE_S)  # ... and another, which waits
    assert h.runner.cursor == 18 and h.log.cursors["scripted"] == 14
    assert not h.step_at(10.0 + SETTLE_S)  # nothing more is due: stored now
    assert h.log.cursors["scripted"] == 18
    assert [cursor for _, cursor, _ in h.log.commits] == [4, 10, 14, 18]


def test_a_cursor_not_yet_stored_is_stored_on_stop_and_before_a_retry_waits() -> None:
    answers = iter([SendResult(), SendResult(), SendResult(retry=[0], problem=Failure(503, "x"))])

    def third_retried(units: Sequence[Unit]) -> SendResult:
        return next(answers, SendResult())

    h = Harness(max_request_bytes=400, answer=third_retried)
    h.log.append(400, 400, 400)  # a read each
    h.step_at(0.0)
    assert h.step_at(SETTLE_S)  # stored: the first since the cursor was loaded
    commits = len(h.log.commits)
    assert h.step_at(SETTLE_S)  # delivered, not yet stored
    assert len(h.log.commits) == commits and h.runner.cursor == 2
    assert h.step_at(SETTLE_S)  # the third is retried: the cursor is stored before the wait
    assert h.log.commits[commits] == ("scripted", 2, [])
    assert h.log.commits[-1] == ("scripted", 3, [])  # delivered on the retry, a second later

    stopping = Harness(max_request_bytes=400, log=MemoryLog())
    stopping.log.append(400, 400)
    stopping.step_at(0.0)
    assert stopping.step_at(SETTLE_S) and stopping.step_at(SETTLE_S)
    assert stopping.runner.cursor == 2 and stopping.log.cursors["scripted"] == 1
    stopping.runner.request_stop()
    stopping.runner._run()  # the thread's loop, ending at once: the cursor is stored
    assert stopping.log.cursors["scripted"] == 2
