"""The HTTP listener: its socket, and uvicorn's httptools protocol with the timeouts and
the connection cap that uvicorn lacks.

uvicorn only closes a kept-alive connection idle after a response (`timeout_keep_alive`);
a connection that never sends a request, a request whose headers trickle in a byte at a
time and a chunked body that never ends would be held forever, each holding a file
descriptor. Here every request must have its headers within `read_header_timeout` of its
first byte (of the connection's accept, for the first one) and its body within
`read_timeout` of that same moment; beyond `max_connections` a new connection is closed
at once, so idle sockets can never use up the process's descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from session_bridge.receivers.first_contact import OtlpHttpProtocol

log = logging.getLogger(__name__)

_REFUSAL_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class HttpLimits:
    read_header_timeout: float
    read_timeout: float
    max_connections: int


class LimitedHttpProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection; `limits` is set on the subclass `protocol_class` makes."""

    limits: ClassVar[HttpLimits]
    refusals: ClassVar[list[float]]  # [time of the last refusal logged]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._deadline: asyncio.TimerHandle | None = None
        self._request_start = 0.0  # loop time of the current request's first byte
        self._in_request = False  # its first byte came and its body has not all come

    # -- the connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport  # connection_lost closes it again
            transport.close()
            self._log_refusal()
            return
        super().connection_made(transport)
        self._start_request()  # the first request's headers count from the accept

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.timeout_keep_alive_task is not None:  # the first bytes after an idle spell
            self._start_request()
        super().data_received(data)

    # -- parser callbacks: a request's phases -----------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        self._start_request()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        remaining = self._request_start + self.limits.read_timeout - self.loop.time()
        self._arm(max(0.0, remaining), "read_timeout")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_request = False
        self._disarm()

    # -- the deadline ------------------------------------------------------------------

    def _start_request(self) -> None:
        if self._deadline is not None:  # already counting: a trickle does not restart it
            return
        self._request_start = self.loop.time()
        timeout = min(self.limits.read_header_timeout, self.limits.read_timeout)
        self._arm(timeout, "read_header_timeout")

    def _arm(self, delay: float, name: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, self._expired, name)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, name: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if name == "read_header_timeout":
            unanswered = self._in_request  # some bytes of a request came, not all headers
        else:
            unanswered = not self.cycle.response_started
        if unanswered:
            limit = getattr(self.limits, name)
            part = "headers" if name == "read_header_timeout" else "body"
            self._send_408(f"the request's {part} did not arrive within {limit:g}s ({name})\n")
        log.debug("closing an HTTP connection from %s: %s expired", self.client, name)
        self.transport.close()

    def _send_408(self, message: str) -> None:
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )

    def _log_refusal(self) -> None:
        now = time.monotonic()
        if now - self.refusals[0] >= _REFUSAL_LOG_INTERVAL_S:
            self.refusals[0] = now
            log.warning(
                "HTTP connections at receivers.otlp.protocols.http.max_connections (%d):"
                " new connections are closed at once",
                self.limits.max_connections,
            )


def protocol_class(limits: HttpLimits) -> type[LimitedHttpProtocol]:
    """The protocol class for uvicorn's `http` setting, with these limits."""
    attributes = {"limits": limits, "refusals": [-_REFUSAL_LOG_INTERVAL_S]}
    # first contact first: a gRPC client's preface is answered before any HTTP/1.1 parsing
    return type("BridgeHttpProtocol", (OtlpHttpProtocol, LimitedHttpProtocol), attributes)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with IPPROTO_TCP rather than 0 so that asyncio sets
    TCP_NODELAY on the sockets it accepts: without it a response written in two parts on
    a kept-alive connection waits for the client's delayed ACK (~40 ms)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen for HTTP on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def raise_open_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (as Go programs
    do): every connection holds a descriptor. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.debug("cannot raise the open file limit to %d: %s", hard, exc)
    return soft


def warn_if_connections_exceed_file_limit(connections: int) -> None:
    """Log when the configured connection caps (plus a reserve for the store, logs and
    exporters) could use up the open file limit: beyond it, accepting stops."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    wanted = connections + 128
    if soft != resource.RLIM_INFINITY and wanted > soft:
        log.warning(
            "the open file limit (%d) is below the connection caps (max_connections: %d in"
            " all) plus a reserve of 128: lower max_connections or raise the limit (ulimit -n)",
            soft,
            connections,
        )
