"""The exporters in a process of their own (when the bridge runs worker processes: one of
them is this one, `server.process_plan`).

Reading the log, building ingestion events and sending are CPU work in Python. In the
bridge process they share one interpreter with the receivers and the store writer, and that
process is what limits ingest; in a process of their own they use another core. A bridge
on its own store also has each span's event built there, from the stored span, when it is
sent (ingest then builds, ships and stores nothing for export); see `ExportSettings`.

The export process opens the store's export log itself (the SQLite file or PostgreSQL) and
runs the same `ExportService` a bridge with `workers: 1` runs in-process. The bridge
reads what the receivers and `/readyz` need (`refusal`, `problems`) from the status the
export process sends ten times a second over a socket pair, and starts it again if it dies.
It dies with the bridge (Linux: PR_SET_PDEATHSIG): a kill -9 of the bridge stops its
exports as it stops its ingest, and the log keeps what was not delivered.

Messages are pickled tuples. Bridge -> export process: `ExportSettings`, then
`("stop", deadline_s)`. Export process -> bridge: `("ready", (describe, sends events))` or
`("error", message)`, then `("status", refusal, problems)`, and `("stopped",)` last.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from session_bridge import malloc
from session_bridge.children import PICKLE as _PICKLE
from session_bridge.children import (
    child_settings,
    end_child,
    report_failure,
    report_ready,
    start_child,
)
from session_bridge.export.common import ExporterCommon
from session_bridge.export.service import ExportService
from session_bridge.logs import LogConfig
from session_bridge.store.config import StorageConfig
from session_bridge.telemetry import BridgeMetrics, mark_process_dead

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 0.1
_START_TIMEOUT_S = 60.0
_RESTART_DELAY_S = 1.0  # do not spin if it dies again at once
_PR_SET_PDEATHSIG = 1
# the map workers' nice value beside an export process. Spans reaching the ingestion
# endpoint per second during a load on 2 cores (SQLite, OTLP/HTTP, single runs): nice 0
# 5.4k; 5: 8.6k, 6.7k, 7.5k; 10: 9.2k; 19: 8.9k, 10.0k; ingest alone meanwhile went from
# 23k (0) to 14-15k (19). Past 10 the workers would also yield to everything else on the
# machine for little more.
EXPORT_PROCESS_NICE = 10


@dataclass(frozen=True)
class ExportSettings:
    """All the export process gets: the exporters, where the log is, how to log."""

    exporters: list[ExporterCommon]
    storage: StorageConfig
    data_dir: Path
    log: LogConfig
    # Who builds the spans' ingestion events. One bridge on its own store: the export
    # process, from each stored span as it sends it (nothing extra is shipped or stored).
    # Replicas sharing a store: each replica's ingest, as it stores its spans, so the work
    # spreads over the replicas and the one exporting only reads and sends.
    events_at_ingest: bool = False


class ExportProcess:
    """What the bridge holds of its exporters when they run in the export process: the
    same surface as `ExportService`."""

    def __init__(self, settings: ExportSettings) -> None:
        self._settings = settings
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._refusal: str | None = None
        self._problems: list[str] = []
        self._described: list[str] = []
        self._sends_events = False  # an exporter sends ingestion events
        self._running = False
        self._closing = threading.Event()
        self._started = threading.Event()
        self._failed: str | None = None
        self._supervisor = threading.Thread(
            target=self._supervise, name="export-process", daemon=True
        )

    def start(self) -> None:
        """Start the export process and wait until its exporters have their cursors: from
        then on, every span the store commits is in every exporter's queue."""
        self._supervisor.start()
        if not self._started.wait(_START_TIMEOUT_S + 5) or self._failed is not None:
            self.close(0.0)
            raise OSError(self._failed or "the export process did not start in time")
        for line in self._described:
            log.info("exporter %s started (in the export process)", line)

    @property
    def wants_ingestion_events(self) -> bool:
        """Whether ingest builds each span's ingestion event (see `ExportSettings`)."""
        return self._settings.events_at_ingest and self._sends_events

    def refusal(self) -> str | None:
        with self._lock:
            return self._refusal

    def problems(self) -> list[str]:
        with self._lock:
            problems = list(self._problems)
            if not self._running and not self._closing.is_set():
                problems.append("the export process is not running (it is started again)")
        return problems

    def describe(self) -> list[str]:
        return list(self._described)

    def close(self, deadline_s: float) -> None:
        """Let each exporter finish its request in flight, up to `deadline_s` in all."""
        self._closing.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(pickle.dumps(("stop", deadline_s), _PICKLE))
        if self._supervisor.is_alive():
            self._supervisor.join(deadline_s + 5.0)
        if self._process is not None:
            end_child(self._process, "the export process")

    # -- the supervisor thread (it starts the process: PR_SET_PDEATHSIG follows the thread)

    def _supervise(self) -> None:
        while not self._closing.is_set():
            try:
                conn, process, (described, self._sends_events) = self._spawn()
            except OSError as exc:
                if not self._started.is_set():
                    self._failed = str(exc)
                    self._started.set()
                    return
                log.error("cannot start the export process again: %s", exc)
                self._closing.wait(_RESTART_DELAY_S)
                continue
            with self._lock:
                self._conn, self._process, self._described = conn, process, described
                self._running = True
            self._started.set()
            self._follow(conn)
            with self._lock:
                self._running = False
                self._conn = None
            conn.close()
            process.wait()
            mark_process_dead(process.pid)
            if self._closing.is_set():
                return
            log.error("the export process exited (code %s); starting it again", process.returncode)
            self._closing.wait(_RESTART_DELAY_S)

    def _spawn(self) -> tuple[Connection, subprocess.Popen[bytes], tuple[list[str], bool]]:
        conn, process, (described, sends_events) = start_child(
            "session_bridge.export.process", self._settings, "the export process",
            str(os.getpid()), timeout_s=_START_TIMEOUT_S,
        )  # fmt: skip
        return conn, process, (list(described), bool(sends_events))

    def _follow(self, conn: Connection) -> None:
        """Keep the latest status until the process stops (or dies)."""
        while True:
            try:
                message: tuple[Any, ...] = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return
            if message[0] == "status":
                with self._lock:
                    self._refusal, self._problems = message[1], list(message[2])
            elif message[0] == "stopped":
                return


# -- the export process -------------------------------------------------------------------


def _die_with(parent: int) -> None:
    """Be killed when the bridge dies, however it dies."""
    with contextlib.suppress(AttributeError, OSError):  # Linux only; elsewhere: the socket
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # gone before the line above
        os._exit(1)


def _export_main(fd: int, parent: int) -> None:
    _die_with(parent)
    conn, received = child_settings(fd)
    settings: ExportSettings = received
    try:
        service = ExportService.open(
            settings.exporters, settings.storage, settings.data_dir, BridgeMetrics().exporter
        )
        if service is None:
            raise ValueError("no exporter configured")
        malloc.freeze_startup_objects()
        service.start()
    except Exception as exc:
        log.exception("the export process cannot start")
        report_failure(conn, f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc
    report_ready(conn, (service.describe(), service.wants_ingestion_events))
    deadline_s = 1.0  # the bridge is gone without a word: stop soon, the log keeps the rest
    try:
        while True:
            if conn.poll(STATUS_INTERVAL_S):
                message = pickle.loads(conn.recv_bytes())
                if message[0] == "stop":
                    deadline_s = float(message[1])
                    break
            status = ("status", service.refusal(), service.problems())
            conn.send_bytes(pickle.dumps(status, _PICKLE))
    except (EOFError, OSError):
        pass
    service.close(deadline_s)
    with contextlib.suppress(OSError):
        conn.send_bytes(pickle.dumps(("stopped",), _PICKLE))


if __name__ == "__main__":
    _export_main(int(sys.argv[1]), int(sys.argv[2]))
