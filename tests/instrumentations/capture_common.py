"""Shared helpers for the ``capture_*.py`` research scripts.

* :class:`OtlpSink` -- a tiny OTLP/HTTP receiver on 127.0.0.1 (protobuf or JSON bodies,
  optional gzip) that decodes what arrives on ``/v1/traces`` and ``/v1/logs`` (any path
  prefix, e.g. Langfuse's ``/api/public/otel/v1/traces``).  The scripts export through
  the library's *real* OTLP exporter into this sink, so the captured JSON is exactly
  what a collector/bridge would receive on the wire (attribute types included).
* :func:`readable_span_to_dict` -- the same compact shape from an SDK ``ReadableSpan``
  (for ``InMemorySpanExporter`` users).
* :func:`run_openai_session` -- the standard "session" every Python capture runs.
* :func:`write_capture` -- writes ``captured/<name>.json`` (a list of spans).

Compact span shape::

    {"name", "kind" ("INTERNAL"|"SERVER"|"CLIENT"|"PRODUCER"|"CONSUMER"),
     "trace_id", "span_id", "parent_span_id" (hex or null), "start_ns", "end_ns",
     "status": {"code": "UNSET"|"OK"|"ERROR", "description"},
     "attributes": {...}, "events": [{"name", "time_ns", "attributes"}],
     "links": [...], "resource": {...}, "scope": {"name", "version", "attributes"}}
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CAPTURED = HERE / "captured"

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}

# ---------------------------------------------------------------------------------------
# OTLP protobuf -> compact dicts


def _any_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def spans_from_otlp(req: Any) -> list[dict[str, Any]]:
    """``ExportTraceServiceRequest`` -> list of compact span dicts."""
    out = []
    for rs in req.resource_spans:
        resource = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = {
                "name": ss.scope.name,
                "version": ss.scope.version or None,
                "attributes": _attrs(ss.scope.attributes),
            }
            for s in ss.spans:
                out.append(
                    {
                        "name": s.name,
                        "kind": _KINDS.get(s.kind, str(s.kind)),
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex() or None,
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                        "status": {
                            "code": _STATUS.get(s.status.code, str(s.status.code)),
                            "description": s.status.message or None,
                        },
                        "attributes": _attrs(s.attributes),
                        "events": [
                            {
                                "name": e.name,
                                "time_ns": e.time_unix_nano,
                                "attributes": _attrs(e.attributes),
                            }
                            for e in s.events
                        ],
                        "links": [
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": _attrs(link.attributes),
                            }
                            for link in s.links
                        ],
                        "resource": resource,
                        "scope": scope,
                    }
                )
    return out


def logs_from_otlp(req: Any) -> list[dict[str, Any]]:
    """``ExportLogsServiceRequest`` -> list of compact log-record dicts."""
    out = []
    for rl in req.resource_logs:
        resource = _attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(
                    {
                        "event_name": getattr(r, "event_name", "") or None,
                        "time_ns": r.time_unix_nano,
                        "severity_text": r.severity_text or None,
                        "trace_id": r.trace_id.hex() or None,
                        "span_id": r.span_id.hex() or None,
                        "body": _any_value(r.body),
                        "attributes": _attrs(r.attributes),
                        "resource": resource,
                        "scope": {"name": sl.scope.name, "version": sl.scope.version or None},
                    }
                )
    return out


# ---------------------------------------------------------------------------------------
# SDK ReadableSpan -> compact dict


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def readable_span_to_dict(span: Any) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": {
            "code": span.status.status_code.name,
            "description": span.status.description,
        },
        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
        "events": [
            {
                "name": e.name,
                "time_ns": e.timestamp,
                "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()},
            }
            for e in span.events
        ],
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        "resource": {k: _plain(v) for k, v in span.resource.attributes.items()},
        "scope": {
            "name": scope.name if scope else None,
            "version": (scope.version or None) if scope else None,
            "attributes": dict(getattr(scope, "attributes", None) or {}) if scope else {},
        },
    }


# ---------------------------------------------------------------------------------------
# OTLP/HTTP sink


_ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def _hex_ids_to_base64(obj: Any) -> Any:
    """OTLP/JSON (the spec, and e.g. the JS exporters) encodes trace/span ids as hex
    strings, while protobuf's canonical JSON mapping (``json_format``) expects base64 for
    ``bytes`` fields: convert before parsing.  A bridge that parses OTLP/JSON with
    ``json_format`` needs the same step."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in _ID_KEYS and isinstance(v, str) and len(v) in (16, 32):
                with contextlib.suppress(ValueError):
                    v = base64.b64encode(bytes.fromhex(v)).decode()
            out[k] = _hex_ids_to_base64(v)
        return out
    if isinstance(obj, list):
        return [_hex_ids_to_base64(x) for x in obj]
    return obj


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SinkServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(parts)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        path = self.path.split("?")[0]
        sink = self.server.sink
        if path.endswith("/v1/traces"):
            req, resp = (
                trace_service_pb2.ExportTraceServiceRequest(),
                trace_service_pb2.ExportTraceServiceResponse(),
            )
        elif path.endswith("/v1/logs"):
            req, resp = (
                logs_service_pb2.ExportLogsServiceRequest(),
                logs_service_pb2.ExportLogsServiceResponse(),
            )
        elif path.endswith("/v1/metrics"):
            req, resp = (
                metrics_service_pb2.ExportMetricsServiceRequest(),
                metrics_service_pb2.ExportMetricsServiceResponse(),
            )
        else:
            sink.other_requests.append((path, dict(self.headers.items())))
            self._reply(404, b"", "text/plain")
            return
        if ctype == "application/json":
            json_format.ParseDict(
                _hex_ids_to_base64(json.loads(raw)), req, ignore_unknown_fields=True
            )
        else:
            req.ParseFromString(raw)
        with sink.lock:
            sink.raw_bodies.append((path, ctype, raw))
            sink.content_types.add(f"{path} {ctype}")
            sink.headers.append(dict(self.headers.items()))
            if path.endswith("/v1/traces"):
                sink.spans.extend(spans_from_otlp(req))
            elif path.endswith("/v1/logs"):
                sink.logs.extend(logs_from_otlp(req))
            else:
                sink.metric_requests += 1
        if ctype == "application/json":
            self._reply(200, json_format.MessageToJson(resp).encode(), "application/json")
        else:
            self._reply(200, resp.SerializeToString(), "application/x-protobuf")

    def _reply(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sink: OtlpSink) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.sink = sink


class OtlpSink:
    """OTLP/HTTP receiver on an ephemeral loopback port.  ``.endpoint`` is the base URL
    (exporters append ``/v1/traces``); ``.traces_url`` is the full traces URL."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.metric_requests = 0
        self.headers: list[dict[str, str]] = []
        self.content_types: set[str] = set()
        self.other_requests: list[Any] = []
        self.raw_bodies: list[tuple[str, str, bytes]] = []
        self._server: _SinkServer | None = None

    def __enter__(self) -> OtlpSink:
        self._server = _SinkServer(self)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def traces_url(self) -> str:
        return f"{self.endpoint}/v1/traces"

    @property
    def logs_url(self) -> str:
        return f"{self.endpoint}/v1/logs"


# ---------------------------------------------------------------------------------------
# the standard session

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}

SYSTEM_PROMPT = "You are a helpful weather assistant."
SESSION_ID = "sess-1234"
USER_ID = "user-42"
CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"

# What the fake returns for run_openai_session (see fake_openai for the rule):
#   call 1 (tools, non-streaming -> tool call): 2 msgs + 1 tool: prompt 45, completion 12
#   call 2 (tools, tool result -> text):        4 msgs + 1 tool: prompt 65, completion 20
#   call 3 (streaming, no tools):               6 msgs:          prompt 60, completion 20
#   call 4 (Responses API, instructions + 1 input string):      input 20, output 20
#   embeddings (2 inputs):                      prompt 10
#   call 5 (model "error-400"):                 HTTP 400, no usage
# every chat/responses call: cached_tokens 4, reasoning_tokens 6.
EXPECTED_CHAT_USAGE = [(45, 12), (65, 20), (60, 20), (20, 20)]


def get_weather(city: str) -> str:
    return f"Sunny, 21C in {city}"


Runner = Callable[[str, Callable[[], Any]], Any]


def _direct(_name: str, fn: Callable[[], Any]) -> Any:
    return fn()


def cm_runner(factory: Callable[[str], contextlib.AbstractContextManager[Any]]) -> Runner:
    """Turn a context-manager factory (``name -> CM``) into a runner."""

    def run(name: str, fn: Callable[[], Any]) -> Any:
        with factory(name):
            return fn()

    return run


def run_openai_session(
    client: Any,
    *,
    wrap_turn: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None,
    wrap_tool: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None,
    run_turn: Runner | None = None,
    run_tool: Runner | None = None,
    include_error: bool = True,
    include_responses: bool = True,
) -> None:
    """Two chat turns (turn 1: tool call + tool result, non-streaming; turn 2: streaming
    with include_usage), optionally a third turn through the Responses API
    (``client.responses.create``, non-streaming), one embeddings call and (optionally)
    one failing chat call.
    ``client`` is an ``openai.OpenAI`` pointed at the fake (use ``max_retries=0``).

    Each step runs through ``run_turn(name, fn)`` (names: ``turn-1``, ``turn-2``,
    ``turn-3``, ``embed``, ``error``) and the tool through ``run_tool(tool_name, fn)``, so a library's
    decorators can wrap them; ``wrap_turn``/``wrap_tool`` are the context-manager form."""
    import openai

    turn = run_turn or (cm_runner(wrap_turn) if wrap_turn else _direct)
    tool = run_tool or (cm_runner(wrap_tool) if wrap_tool else _direct)

    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]

    def turn1() -> None:
        r1 = client.chat.completions.create(
            model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL], temperature=0.2
        )
        call = r1.choices[0].message.tool_calls[0]
        args = json.loads(call.function.arguments)
        result = tool(call.function.name, lambda: get_weather(**args))
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        r2 = client.chat.completions.create(
            model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL], temperature=0.2
        )
        messages.append({"role": "assistant", "content": r2.choices[0].message.content})

    def turn2() -> None:
        stream = client.chat.completions.create(
            model=CHAT_MODEL,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
        messages.append({"role": "assistant", "content": text})

    def turn3() -> None:
        client.responses.create(
            model=CHAT_MODEL,
            instructions=SYSTEM_PROMPT,
            input="Summarise the forecast in one line.",
        )

    def embed() -> None:
        client.embeddings.create(model=EMBED_MODEL, input=["hello", "world"])

    def error() -> None:
        with contextlib.suppress(openai.BadRequestError):
            client.chat.completions.create(
                model="error-400", messages=[{"role": "user", "content": "fail please"}]
            )

    turn("turn-1", turn1)
    messages.append({"role": "user", "content": "Thanks! And tomorrow?"})
    turn("turn-2", turn2)
    if include_responses:
        turn("turn-3", turn3)
    turn("embed", embed)
    if include_error:
        turn("error", error)


# ---------------------------------------------------------------------------------------
# output


def _shorten(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}...[{len(value) - limit} more chars cut by the capture]"
    return value


def write_capture(
    name: str,
    spans: list[dict[str, Any]],
    logs: list[dict[str, Any]] | None = None,
    *,
    max_chars: int | None = None,
) -> Path:
    """Write ``captured/<name>.json`` (spans sorted by start time) and, when there are
    log records, ``captured/<name>.logs.json``.  ``max_chars`` cuts longer string
    attribute values (frameworks that put their whole state on every span), keeping a
    capture small; the cut is marked in the value."""
    CAPTURED.mkdir(exist_ok=True)
    spans = sorted(spans, key=lambda s: (s["start_ns"], s["end_ns"]))
    if max_chars is not None:
        for span in spans:
            span["attributes"] = {k: _shorten(v, max_chars) for k, v in span["attributes"].items()}
    path = CAPTURED / f"{name}.json"
    path.write_text(json.dumps(spans, indent=1, sort_keys=False, default=str) + "\n")
    if logs:
        (CAPTURED / f"{name}.logs.json").write_text(json.dumps(logs, indent=1, default=str) + "\n")
    return path


def write_served(name: str, served: list[Any], **meta: Any) -> Path:
    """Write ``captured/<name>.served.json``: what the fake model server metered for each
    call of the run (``FakeOpenAI.served``) and the totals -- the truth a bridge's
    session should add up to, whatever the instrumentation repeated or left out."""
    import dataclasses

    calls = [dataclasses.asdict(s) for s in served]
    totals = {
        "requests": len(calls),
        **{
            key: sum(c[key] for c in calls)
            for key in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
            )
        },
    }
    path = CAPTURED / f"{name}.served.json"
    path.write_text(json.dumps({**meta, "totals": totals, "calls": calls}, indent=1) + "\n")
    return path


def otlp_provider(sink: OtlpSink, service: str) -> Any:
    """An SDK ``TracerProvider`` exporting through the real OTLP/HTTP exporter into
    ``sink`` (simple processor: every span is sent when it ends)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sink.traces_url)))
    return tp


def summarize(spans: list[dict[str, Any]]) -> str:
    """A one-line-per-span tree, handy when eyeballing a capture."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    for s in sorted(spans, key=lambda s: s["start_ns"]):
        p = s["parent_span_id"] if s["parent_span_id"] in ids else None
        by_parent.setdefault(p, []).append(s)
    lines: list[str] = []

    def walk(pid: str | None, depth: int) -> None:
        for s in by_parent.get(pid, []):
            lines.append(f"{'  ' * depth}{s['name']} [{s['kind']}] ({s['scope']['name']})")
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return "\n".join(lines)


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def report_capture(
    name: str, sink: Any, fake: Any = None, *, max_chars: int | None = None, **served: Any
) -> None:
    """Write `name`'s capture (and, given the fake model server, what it served, with
    `served` as its metadata), then say what was written."""
    path = write_capture(name, sink.spans, max_chars=max_chars)
    if fake is not None:
        write_served(name, fake.served, **served)
    print(f"{name}: {len(sink.spans)} spans -> {path}")
    print(summarize(sink.spans))


def run_variants(script: str, capture: Callable[[str], None], variants: tuple[str, ...]) -> None:
    """A capture script's main: the variant named on the command line, or every variant,
    each in a process of its own (instrumentations patch libraries for good)."""
    if len(sys.argv) > 1:
        capture(sys.argv[1])
        return
    for variant in variants:
        subprocess.run([sys.executable, script, variant], check=True)
