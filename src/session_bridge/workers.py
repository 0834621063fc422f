"""Several receiver processes behind the same ports (`receivers.otlp.workers` > 1).

Parsing and mapping OTLP is CPU work in Python, so one process uses one core.
With N workers, each worker is a whole bridge (receivers, pipeline, query API)
listening on the same ports with SO_REUSEPORT: the kernel spreads client
connections across them. On SQLite the supervisor (this module) is also the one
writer: the workers send it their mapped batches (`store/writer_process.py`) and it
group-commits them, so rollups stay exact and no worker waits for another. On
PostgreSQL each worker writes itself. The supervisor reserves the ports, opens and
migrates the store, starts the workers, restarts a worker that dies, and stops
them all on SIGTERM/SIGINT.

One client connection is served by one worker: the gain comes with several
connections (several SDKs, or an exporter with several channels). Even with one
connection, the writer process takes the store's work off the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from session_bridge import logs
from session_bridge.config import BridgeConfig, join_endpoint, split_endpoint
from session_bridge.store.factory import sqlite_path
from session_bridge.store.sqlite import SqliteStore
from session_bridge.store.writer import GroupCommitWriter
from session_bridge.store.writer_process import RemoteWriter, WriterEndpoint

if TYPE_CHECKING:
    from session_bridge.server import Endpoints

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _reserve(endpoint: str) -> tuple[str, socket.socket]:
    """Bind (without listening) to fix the port when it is 0; workers then share it."""
    host, port = split_endpoint(endpoint)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {endpoint}: {exc.strerror}") from exc
    bound = sock.getsockname()[1]
    return join_endpoint(host, bound), sock


def _worker_main(
    config: BridgeConfig, index: int, conn: Connection, writes: Connection | None
) -> None:
    logs.configure(config.log.format, config.log.level)
    try:
        asyncio.run(_serve_worker(config, index, conn, writes))
    except Exception as exc:  # report a start-up failure to the supervisor
        with contextlib.suppress(OSError):
            conn.send(("error", f"worker {index}: {exc}"))
        raise SystemExit(1) from exc


async def _serve_worker(
    config: BridgeConfig, index: int, conn: Connection, writes: Connection | None
) -> None:
    from session_bridge.server import Bridge  # the supervisor itself never loads the server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    writer = None
    if writes is not None:  # without the writer process nothing can be stored: stop too
        writer = RemoteWriter(writes, on_lost=lambda: loop.call_soon_threadsafe(stop.set))
    bridge = Bridge(config, worker=index, writer=writer)

    async def listen_when_told() -> None:
        conn.send(("prepared",))
        await asyncio.to_thread(conn.recv)  # "listen": every worker is prepared

    endpoints = await bridge.start(gate=listen_when_told)
    details = bridge.enricher.describe() if bridge.enricher else []
    conn.send(("ready", endpoints, details, bridge.storage_description))
    await stop.wait()
    await bridge.stop()


class Supervisor:
    def __init__(self, config: BridgeConfig, workers: int) -> None:
        self._count = workers
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, Any] = {}
        self._stopping = threading.Event()
        self._store: SqliteStore | None = None
        self._writer: GroupCommitWriter | None = None
        self._endpoints: dict[int, WriterEndpoint] = {}
        otlp = config.receivers.otlp
        grpc_endpoint, self._grpc_sock = _reserve(otlp.protocols.grpc.endpoint)
        http_endpoint, self._http_sock = _reserve(otlp.protocols.http.endpoint)
        protocols = replace(
            otlp.protocols,
            grpc=replace(otlp.protocols.grpc, endpoint=grpc_endpoint),
            http=replace(otlp.protocols.http, endpoint=http_endpoint),
        )
        self.config = replace(
            config, receivers=replace(config.receivers, otlp=replace(otlp, protocols=protocols))
        )

    def start(self) -> tuple[Endpoints, list[str], str]:
        """Start every worker; returns what worker 0 reported (endpoints, enrich lines, storage).

        On SQLite the store is opened (and migrated) here first; on PostgreSQL worker 0
        prepares alone first and migrates it before anyone else writes. The workers start
        listening together, once all are prepared.
        """
        # fewer malloc arenas: these processes are multi-threaded and would otherwise
        # keep freed memory in one arena per thread
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        metrics_dir = os.environ.get(METRICS_DIR_ENV)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.makedirs(metrics_dir, exist_ok=True)
        storage = self.config.storage
        if storage.backend == "sqlite":
            try:
                self._store = SqliteStore(
                    sqlite_path(storage), synchronous=storage.sqlite.synchronous
                )
            except (RuntimeError, sqlite3.Error) as exc:  # e.g. written by a newer bridge
                raise OSError(f"cannot open the store: {exc}") from exc
            self._writer = GroupCommitWriter(self._store)
        controls = [self._prepared(0)]  # alone first: on PostgreSQL it migrates the store
        controls += [self._prepare(index) for index in range(1, self._count)]
        for index, control in enumerate(controls[1:], start=1):
            self._expect(index, control, "prepared")
        reports = [self._listen(index, control) for index, control in enumerate(controls)]
        self._grpc_sock.close()  # the workers hold the ports now
        self._http_sock.close()
        return reports[0]

    def _prepare(self, index: int) -> Connection:
        """Start worker `index`; it says "prepared" when it is ready to listen."""
        control, child = self._context.Pipe(duplex=True)
        writes = None
        if self._writer is not None:
            ours, writes = self._context.Pipe(duplex=True)
            self._endpoints[index] = WriterEndpoint(ours, self._writer, f"worker-{index}")
        process = self._context.Process(
            target=_worker_main,
            args=(self.config, index, child, writes),
            name=f"bridge-worker-{index}",
        )
        process.start()
        child.close()
        if writes is not None:
            writes.close()
        self._processes[index] = process
        return control

    def _prepared(self, index: int) -> Connection:
        """Start worker `index` and wait until it is ready to listen."""
        control = self._prepare(index)
        self._expect(index, control, "prepared")
        return control

    def _listen(self, index: int, control: Connection) -> tuple[Endpoints, list[str], str]:
        """Let a prepared worker listen; what it reports once it serves."""
        control.send(("listen",))
        _, endpoints, details, storage = self._expect(index, control, "ready")
        return endpoints, details, storage

    @staticmethod
    def _expect(index: int, control: Connection, what: str) -> tuple[Any, ...]:
        if not control.poll(_START_TIMEOUT_S):
            raise OSError(f"worker {index} did not start within {_START_TIMEOUT_S:.0f}s")
        try:
            message: tuple[Any, ...] = control.recv()
        except EOFError as exc:
            raise OSError(f"worker {index} exited while starting") from exc
        if message[0] == "error":
            raise OSError(message[1])
        if message[0] != what:
            raise OSError(f"worker {index} said {message[0]!r}, expected {what!r}")
        return message

    def request_stop(self, *_: object) -> None:
        self._stopping.set()

    def supervise(self) -> None:
        """Until asked to stop: restart any worker that dies."""
        while not self._stopping.is_set():
            sentinels = {p.sentinel: index for index, p in self._processes.items()}
            for ready in wait(list(sentinels), timeout=0.5):
                index = sentinels[ready]
                process = self._processes[index]
                process.join()
                self._mark_dead(process.pid)
                if self._stopping.is_set():
                    break
                log.error("worker %d exited with code %s; restarting it", index, process.exitcode)
                time.sleep(1)  # do not spin if it dies again at once
                with contextlib.suppress(OSError):
                    self._listen(index, self._prepared(index))

    def stop(self) -> int:
        """SIGTERM every worker and wait; 0 when all stopped cleanly."""
        for process in self._processes.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        status = 0
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for process in self._processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %s did not stop in time; killing it", process.name)
                process.kill()
                process.join()
            if process.exitcode not in (0, -signal.SIGTERM):
                status = 1
            self._mark_dead(process.pid)
        for endpoint in self._endpoints.values():  # each ends when its worker has gone
            endpoint.join(_STOP_TIMEOUT_S)
        if self._writer is not None:
            self._writer.close()
        if self._store is not None:
            self._store.close()
        return status

    @staticmethod
    def _mark_dead(pid: int | None) -> None:
        if pid is not None and os.environ.get(METRICS_DIR_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
