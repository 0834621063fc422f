"""The bridge's child processes (the map workers, the export process): each runs
`python -m <module> <fd> [args]` with one end of a socket pair, gets its settings pickled
first, and answers `("ready", detail)` (or `("error", message)`) before it works. A child
ignores SIGINT and SIGTERM: the bridge decides when it stops (a Ctrl-C sent to the whole
process group must not end it first)."""

from __future__ import annotations

import logging
import pickle
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

from session_bridge import logs, malloc

PICKLE = pickle.HIGHEST_PROTOCOL

log = logging.getLogger(__name__)


def start_child(
    module: str, settings: object, what: str, *args: str, timeout_s: float = 60.0
) -> tuple[Connection, subprocess.Popen[bytes], Any]:
    """Start the child, give it `settings`, wait for it to be ready: its connection, its
    process and what it said. OSError (naming `what`) if it cannot start."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), *args],
            pass_fds=(theirs.fileno(),),
        )
        conn = Connection(ours.detach())
    try:
        conn.send_bytes(pickle.dumps(settings, PICKLE))
        if not conn.poll(timeout_s):
            raise OSError(f"{what} did not start within {timeout_s:.0f}s")
        kind, detail = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError) as exc:
        conn.close()
        end_child(process)
        raise OSError(f"{what} exited while starting") from exc
    if kind != "ready":
        conn.close()
        end_child(process)
        raise OSError(f"{what}: {detail}")
    return conn, process, detail


def end_child(process: subprocess.Popen[bytes], what: str = "", grace_s: float = 0.0) -> None:
    """Wait up to `grace_s` for the child to exit, then kill it (saying so, if `what`
    names it)."""
    try:
        process.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        pass
    if what:
        log.warning("%s did not stop in time; killed", what)
    process.kill()
    process.wait()


def report_ready(conn: Connection, detail: object) -> None:
    """In the child: started, with `detail` for the bridge (`start_child` returns it)."""
    conn.send_bytes(pickle.dumps(("ready", detail), PICKLE))


def report_failure(conn: Connection, message: str) -> None:
    """In the child: it cannot start, and why (`start_child` raises it as OSError)."""
    conn.send_bytes(pickle.dumps(("error", message), PICKLE))


def child_settings(fd: int) -> tuple[Connection, Any]:
    """In the child: its connection and settings, signals and malloc set, logging set up
    from `settings.log`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    malloc.configure()
    conn = Connection(fd)
    settings = pickle.loads(conn.recv_bytes())
    logs.configure(settings.log.format, settings.log.level)
    return conn, settings
