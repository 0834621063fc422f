"""One table between gRPC status codes and HTTP statuses, for both directions.

The receivers answer OTLP/HTTP errors with a `google.rpc.Status` whose code matches
the HTTP status; the logs and metrics passthrough turns an upstream's HTTP answer into
a gRPC code for a gRPC client; the exporters read an upstream's gRPC code as the HTTP
status their retry rules are written for (as the Collector maps them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from google.rpc import code_pb2

if TYPE_CHECKING:
    import grpc

# (gRPC code, HTTP status). Reading HTTP -> gRPC, the first row naming a status wins;
# reading gRPC -> HTTP, the first row naming a code wins.
_ROWS: tuple[tuple[int, int], ...] = (
    (code_pb2.OK, 200),
    (code_pb2.INVALID_ARGUMENT, 400),
    (code_pb2.UNAUTHENTICATED, 401),
    (code_pb2.PERMISSION_DENIED, 403),
    (code_pb2.UNIMPLEMENTED, 404),
    (code_pb2.UNIMPLEMENTED, 405),
    (code_pb2.UNIMPLEMENTED, 415),  # an unsupported encoding is UNIMPLEMENTED over gRPC
    (code_pb2.RESOURCE_EXHAUSTED, 429),  # throttled: the Collector's reading of the code
    (code_pb2.RESOURCE_EXHAUSTED, 413),
    (code_pb2.INTERNAL, 500),
    (code_pb2.UNAVAILABLE, 503),
    (code_pb2.UNAVAILABLE, 502),
    (code_pb2.UNAVAILABLE, 504),
    # transient codes the OTLP specification says to retry: read as 503
    (code_pb2.CANCELLED, 503),
    (code_pb2.DEADLINE_EXCEEDED, 503),
    (code_pb2.ABORTED, 503),
    (code_pb2.OUT_OF_RANGE, 503),
    (code_pb2.DATA_LOSS, 503),
)
_CODE_BY_HTTP: dict[int, int] = {}
_HTTP_BY_CODE: dict[int, int] = {}
for _code, _http in _ROWS:
    _CODE_BY_HTTP.setdefault(_http, _code)
    _HTTP_BY_CODE.setdefault(_code, _http)


def code_for_http(status: int) -> int:
    """The `google.rpc.Code` for an HTTP status (INTERNAL for other 5xx, UNKNOWN else)."""
    default: int = code_pb2.INTERNAL if status >= 500 else code_pb2.UNKNOWN
    return _CODE_BY_HTTP.get(status, default)


def http_for_code(code: int | grpc.StatusCode) -> int:
    """The HTTP status for a gRPC code (500 for the codes the table does not name)."""
    # a grpc.StatusCode's value is (code, name); this module does not load gRPC itself
    value: int = code if isinstance(code, int) else code.value[0]
    return _HTTP_BY_CODE.get(value, 500)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """An HTTP `Retry-After`: delay-seconds or an HTTP-date; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)
