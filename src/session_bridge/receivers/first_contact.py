"""A gRPC (HTTP/2) client on the OTLP/HTTP port, told apart from a malformed request.

An SDK given only `OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4318` may default to gRPC
(the Python SDK's zero-code setup does): it opens with the HTTP/2 connection preface,
which the HTTP/1.1 parser refuses as "Invalid HTTP request received", and the data is
lost with nothing in the log to say why. This protocol recognises the preface, logs
what to set, and closes the connection with an HTTP/2 GOAWAY that says the same, so
the client's own error carries it too.
"""

from __future__ import annotations

import logging
import struct

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HTTP_1_1_REQUIRED = 0xD  # HTTP/2 error code (RFC 9113 section 7)
ADVICE = (
    "set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf to send OTLP/HTTP to this port,"
    " or send OTLP/gRPC to the gRPC port (4317 by default)"
)


def _frame(kind: int, payload: bytes) -> bytes:
    """An HTTP/2 frame on stream 0, without flags (RFC 9113 section 4.1)."""
    return len(payload).to_bytes(3, "big") + bytes((kind, 0)) + bytes(4) + payload


def _goaway(debug: bytes) -> bytes:
    """The server's HTTP/2 preface (an empty SETTINGS frame), then GOAWAY with `debug`."""
    return _frame(0x4, b"") + _frame(0x7, struct.pack(">II", 0, _HTTP_1_1_REQUIRED) + debug)


class OtlpHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, which first looks at a connection's opening bytes."""

    _opening = b""
    _looked = False

    def data_received(self, data: bytes) -> None:
        if self._looked:
            super().data_received(data)
            return
        opening = self._opening + data
        if len(opening) < len(_PREFACE) and _PREFACE.startswith(opening):
            self._opening = opening  # too short to tell yet
            return
        self._looked = True
        self._opening = b""
        if not opening.startswith(_PREFACE):
            super().data_received(opening)
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        log.warning(
            "a client (%s) speaks gRPC/HTTP2 to the OTLP/HTTP port, which takes HTTP/1.1"
            " only; its data is refused: %s",
            peer,
            ADVICE,
        )
        self.transport.write(_goaway(f"this port speaks OTLP/HTTP (HTTP/1.1): {ADVICE}".encode()))
        self.transport.close()
