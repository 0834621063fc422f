"""A real HTTP ingestion endpoint for the tests, answering like Langfuse's
`POST /api/public/ingestion`.

Every event is validated against Langfuse's `IngestionEvent` schema (`tests/data/langfuse/`)
(OpenAPI 3.0 semantics: `nullable`, formats); an invalid event gets a per-event 400, as
zod would give it, and is recorded in `invalid` so tests can insist there are none.
Answers 207 with `successes` and `errors`; 401 for bad Basic credentials; 413 over
4.5 MB. Faults are scripted: the next requests' answers (any status, `Retry-After`, a
dropped connection, a slow answer), the whole endpoint down, or a per-event rule.
"""

from __future__ import annotations

import base64
import functools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conftest import TEST_DATA

PATH = "/api/public/ingestion"
BODY_LIMIT = 4_500_000  # the real route's body parser limit
SPEC = TEST_DATA / "langfuse" / "ingestion-schemas.yml"


@functools.cache
def validator(schema: str = "IngestionEvent") -> OAS30Validator:
    spec = yaml.load(SPEC.read_text(), Loader=yaml.CSafeLoader)
    registry: Registry[Any] = Registry().with_resource(
        "urn:langfuse", Resource.from_contents(spec, default_specification=DRAFT4)
    )
    return OAS30Validator(
        {"$ref": f"urn:langfuse#/components/schemas/{schema}"},
        registry=registry,
        format_checker=OAS30Validator.FORMAT_CHECKER,
    )


def schema_errors(event: Any, schema: str = "IngestionEvent") -> list[str]:
    """What is wrong with `event` per the schema (the deepest causes of a oneOf failure)."""
    messages = []
    for error in validator(schema).iter_errors(event):
        causes = error.context or [error]
        messages += [f"{'/'.join(map(str, c.absolute_path))}: {c.message[:300]}" for c in causes]
    return messages


@dataclass
class Fault:
    """The answer to one whole request: `status` 0 drops the connection unanswered."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay_s: float = 0.0


@dataclass
class Received:
    at: float  # time.monotonic()
    status: int
    events: int
    size: int


EventRule = Callable[[dict[str, Any]], tuple[int, str] | None]


class IngestionServer:
    def __init__(
        self,
        public_key: str = "pk-lf-test",
        secret_key: str = "sk-lf-test",
        body_limit: int = BODY_LIMIT,
    ) -> None:
        self.public_key = public_key
        self.secret_key = secret_key
        self.body_limit = body_limit
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []  # accepted (201), in arrival order
        self.received: list[Received] = []
        self.invalid: list[str] = []
        self.faults: deque[Fault] = deque()
        self.down = False  # drop every connection
        self.delay_s = 0.0  # answer every request this late
        self.rule: EventRule | None = None  # per-event answer other than 201
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), post_handler(self.answer))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    # -- what arrived ---------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def observation_ids(self) -> set[str]:
        return {e["body"]["id"] for e in self.snapshot() if e["type"] != "trace-create"}

    def wait_for(self, done: Callable[[IngestionServer], bool], timeout_s: float = 30.0) -> None:
        """Poll `done` (bounded) until it holds; fail with what arrived otherwise."""
        end = time.monotonic() + timeout_s
        while not done(self):
            if time.monotonic() > end:
                raise AssertionError(
                    f"timed out; {len(self.events)} events, {len(self.received)} requests,"
                    f" invalid: {self.invalid[:3]}"
                )
            time.sleep(0.02)

    # -- answering ------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        with self.lock:
            fault = self.faults.popleft() if self.faults else None
            down, delay, rule = self.down, self.delay_s, self.rule
        time.sleep(fault.delay_s if fault is not None else delay)
        if down or (fault is not None and fault.status == 0):
            self._log(0, 0, length)
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None:
            self._log(fault.status, 0, length)
            _reply(handler, fault.status, fault.body or {"message": "scripted"}, fault.headers)
            return
        if handler.path != PATH:
            self._reply_logged(handler, 404, {"message": "Resource not found"}, length)
            return
        if length > self.body_limit:
            self._reply_logged(handler, 413, {"message": "Body exceeded 4.5mb limit"}, length)
            return
        if not self._authorized(handler.headers.get("authorization")):
            self._reply_logged(handler, 401, {"message": "Invalid credentials"}, length)
            return
        try:
            batch = json.loads(body)["batch"]
            assert isinstance(batch, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            self._reply_logged(handler, 400, {"message": "Invalid request data"}, length)
            return
        successes, errors = [], []
        accepted = []
        for event in batch:
            problems = schema_errors(event)
            event_id = event.get("id") if isinstance(event, dict) else None
            if problems:
                with self.lock:
                    self.invalid += problems
                errors.append(
                    {"id": event_id, "status": 400, "message": "Invalid request data",
                     "error": problems}
                )  # fmt: skip
                continue
            verdict = rule(event) if rule is not None else None
            if verdict is not None:
                errors.append({"id": event_id, "status": verdict[0], "message": verdict[1]})
                continue
            successes.append({"id": event_id, "status": 201})
            accepted.append(event)
        answer = {"successes": successes, "errors": errors}
        assert not schema_errors(answer, "IngestionResponse")
        with self.lock:  # together: a test that saw the events finds their request too
            self.received.append(Received(time.monotonic(), 207, len(batch), length))
            self.events += accepted
        _reply(handler, 207, answer, {})

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        return header == f"Basic {expected}"

    def _log(self, status: int, events: int, size: int) -> None:
        with self.lock:
            self.received.append(Received(time.monotonic(), status, events, size))

    def _reply_logged(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        size: int,
        events: int = 0,
    ) -> None:
        self._log(status, events, size)
        _reply(handler, status, body, {})


def _reply(
    handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


def post_handler(answer: Callable[[BaseHTTPRequestHandler], None]) -> type[BaseHTTPRequestHandler]:
    """A quiet HTTP/1.1 (keep-alive) request handler that answers POSTs with `answer`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
