"""The `ingestion` exporter: Langfuse's batch API, `POST {base_url}/api/public/ingestion`.

`{"batch": [events...]}` with HTTP Basic `public_key:secret_key`. The answer is 207 with
`successes` and `errors` per event: per-event 4xx (400, 401, 404) are final and become
dead letters with the server's message; per-event 5xx (and 429) are sent again. For the
whole request: 429, 5xx, time-outs and connection errors are retried (the runner backs
off, honouring Retry-After); 401/403 (credentials) and 404/405 (wrong base URL) keep
everything queued and make the bridge unhealthy; 413 splits the request; another 4xx
fails the request's events.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
import orjson

from session_bridge import __version__
from session_bridge.configkit import ByteSize, SizeValue, between
from session_bridge.export.base import Exporter, Failure, SendResult, Unit
from session_bridge.export.common import ExporterCommon
from session_bridge.export.langfuse_events import DEFAULT_MAX_EVENT_BYTES, ingestion_units
from session_bridge.otlp.status import retry_after_seconds
from session_bridge.store.export_log import LogEntry

log = logging.getLogger(__name__)

INGESTION_PATH = "/api/public/ingestion"
SDK_NAME = "otel-session-bridge"
_PREFIX = b'{"batch":['
_SUFFIX = (
    b'],"metadata":'
    + json.dumps({"sdk_name": SDK_NAME, "sdk_version": __version__}, separators=(",", ":")).encode()
    + b"}"
)
_BLOCKING = {
    401: "the ingestion endpoint refused the credentials (public_key/secret_key)",
    403: "the ingestion endpoint forbids these credentials (ingestion suspended or wrong key type)",
    404: "no ingestion endpoint at this URL (check base_url)",
    405: "no ingestion endpoint at this URL (check base_url)",
}
_MESSAGE_LIMIT = 2000


_LANGFUSE_ENV = {
    "base_url": ("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
    "public_key": ("LANGFUSE_PUBLIC_KEY",),
    "secret_key": ("LANGFUSE_SECRET_KEY",),
}


class IngestionExporterConfig(ExporterCommon):
    MAX_BATCH: ClassVar[int] = 3_500_000  # the API's documented limit (bodies > 4.5 MB: 413)

    type: str = "ingestion"
    base_url: str = ""  # default: $LANGFUSE_BASE_URL, else $LANGFUSE_HOST
    public_key: str = ""  # default: $LANGFUSE_PUBLIC_KEY
    secret_key: str = ""  # default: $LANGFUSE_SECRET_KEY
    max_batch_size: SizeValue = ByteSize(MAX_BATCH)
    max_event_size: Annotated[SizeValue, between(16384, 1 << 40)] = ByteSize(
        DEFAULT_MAX_EVENT_BYTES
    )

    def check(self, path: str) -> list[str]:
        problems = super().check(path)
        for key, variables in _LANGFUSE_ENV.items():
            if not ingestion_setting(self, key):
                problems.append(f"{path}.{key}: required (or set {' or '.join(variables)})")
        return problems


def ingestion_setting(exporter: IngestionExporterConfig, key: str) -> str:
    """An ingestion exporter's base_url/public_key/secret_key: the configured value, else
    the environment variable the Langfuse SDKs read."""
    value: str = getattr(exporter, key)
    for variable in _LANGFUSE_ENV[key]:
        value = value or os.environ.get(variable, "")
    return value


class IngestionExporter(Exporter):
    sends_ingestion_events = True

    def __init__(self, config: IngestionExporterConfig) -> None:
        self.name = config.label
        self.max_request_bytes = int(config.max_batch_size)
        self.request_overhead = len(_PREFIX) + len(_SUFFIX)
        # an event never makes a request too large by itself
        self._max_event = min(int(config.max_event_size), self.max_request_bytes - 1024)
        base_url = ingestion_setting(config, "base_url").rstrip("/")
        self.url = base_url + INGESTION_PATH
        self._client = httpx.Client(
            auth=(ingestion_setting(config, "public_key"), ingestion_setting(config, "secret_key")),
            timeout=float(config.timeout),
            headers={
                "User-Agent": f"{SDK_NAME}/{__version__}",
                "x-langfuse-sdk-name": SDK_NAME,
                "x-langfuse-sdk-version": __version__,
                "x-langfuse-public-key": ingestion_setting(config, "public_key"),
            },
        )

    def describe(self) -> str:
        return f"{self.name}: {self.url}"

    def units(self, entries: Sequence[LogEntry]) -> list[Unit]:
        return ingestion_units(entries, self._max_event)

    def send(self, units: Sequence[Unit]) -> SendResult:
        body = _body(units)
        try:
            response = self._client.post(
                self.url, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return _retry_all(units, Failure(0, f"{type(exc).__name__}: {exc}"), None)
        status = response.status_code
        if status in (200, 201, 207):
            return _per_event(units, response)
        message = _message(response)
        if status == 429 or status >= 500:
            delay = retry_after_seconds(response.headers.get("retry-after"))
            return _retry_all(units, Failure(status, message), delay)
        if status in _BLOCKING:
            return SendResult(blocked=Failure(status, f"{_BLOCKING[status]}: {message}"))
        if status == 413 and len(units) > 1:
            half = len(units) // 2
            return _joined(self.send(units[:half]), self.send(units[half:]), half)
        return SendResult(failed={i: Failure(status, message) for i in range(len(units))})

    def close(self) -> None:
        self._client.close()


def _retry_all(units: Sequence[Unit], problem: Failure, delay: float | None) -> SendResult:
    return SendResult(retry=list(range(len(units))), problem=problem, retry_after_s=delay)


def _per_event(units: Sequence[Unit], response: httpx.Response) -> SendResult:
    """The 207 answer: final per-event 4xx, retried per-event 5xx and 429."""
    try:
        answer = orjson.loads(response.content)  # a success per event: thousands of them
    except ValueError:
        answer = None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        if response.status_code == 207:
            log.warning("the ingestion endpoint answered 207 without a list of errors")
        return SendResult()
    index = {unit.key: i for i, unit in enumerate(units)}
    result = SendResult()
    for error in errors:
        if not isinstance(error, dict) or error.get("id") not in index:
            continue
        i = index[error["id"]]
        status = int(error.get("status") or 500)
        failure = Failure(status, _error_text(error))
        if status == 429 or status >= 500:
            result.retry.append(i)
            result.problem = failure
        else:
            result.failed[i] = failure
    return result


def _body(units: Sequence[Unit]) -> bytes:
    """The request body, `{"batch":[events],"metadata":…}`, in one copy: joining the events
    and then adding the ends copied the megabytes of the body twice more."""
    parts = [_PREFIX]
    for unit in units:
        parts += (unit.payload, b",")
    if units:
        parts.pop()  # the last comma
    parts.append(_SUFFIX)
    return b"".join(parts)


def _joined(first: SendResult, second: SendResult, offset: int) -> SendResult:
    """The results of two halves of one request, as the result of the whole."""
    if first.blocked or second.blocked:
        return SendResult(blocked=first.blocked or second.blocked)
    delays = [d for d in (first.retry_after_s, second.retry_after_s) if d is not None]
    return SendResult(
        failed={**first.failed, **{i + offset: f for i, f in second.failed.items()}},
        retry=[*first.retry, *(i + offset for i in second.retry)],
        problem=first.problem or second.problem,
        retry_after_s=max(delays) if delays else None,
    )


def _error_text(error: dict[str, Any]) -> str:
    parts = [str(error["message"])] if error.get("message") else []
    detail = error.get("error")
    if detail not in (None, ""):
        parts.append(detail if isinstance(detail, str) else json.dumps(detail))
    return (": ".join(parts) or f"status {error.get('status')}")[:_MESSAGE_LIMIT]


def _message(response: httpx.Response) -> str:
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        text = str(body["message"])
    return f"HTTP {response.status_code}" + (f": {text[:_MESSAGE_LIMIT]}" if text else "")


def create(config: IngestionExporterConfig, data_dir: Path) -> IngestionExporter:
    return IngestionExporter(config)
