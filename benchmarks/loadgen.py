"""OTLP/trace load generator for ingest-throughput benchmarks.

Runs in its own process and sends realistic GenAI agent traffic (sessions of several turns;
each turn is a trace made of an ``invoke_agent`` span wrapping ``chat`` and ``execute_tool``
spans) to an OTLP receiver on 127.0.0.1, over gRPC (``TraceService/Export``) or HTTP
(``POST /v1/traces``, ``application/x-protobuf``), keeping N requests in flight.

Client CPU is kept low: a cycle of ``--templates`` requests is generated and serialized once,
before the timed phase, with a 4-byte placeholder wherever a value must change from one cycle
to the next (inside every trace id and span id, and inside ``session.id``, ``gen_ai.response.id``
and ``gen_ai.tool.call.id``). Request ``i`` is template ``i % T`` with the placeholder replaced by
an encoding of ``i // T``. The serialized template is kept split at the placeholder, so building
a request is one ``bytes.join`` (about 20 us for 512 spans). Every span of the run therefore has
a unique (trace id, span id), and a random per-process nonce keeps ids unique across runs too.

Output: a human summary, or with ``--json`` a single JSON object on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

HOST = "127.0.0.1"  # the only host this tool ever targets
HTTP_PATH = "/v1/traces"

# Placeholder patched per cycle. Chosen to be valid UTF-8 (it sits inside string attributes in the
# template) yet practically absent from real data; the template builder checks that it occurs
# exactly where it was put and nowhere else.
PLACEHOLDER = "\x01\x1f\x02\x1e"
PLACEHOLDER_B = PLACEHOLDER.encode()
_ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
MAX_CYCLES = len(_ALPHABET) ** 4

STATUS_ERROR = trace_pb2.Status.STATUS_CODE_ERROR
KIND_SERVER = trace_pb2.Span.SPAN_KIND_SERVER
KIND_CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
KIND_INTERNAL = trace_pb2.Span.SPAN_KIND_INTERNAL


def encode_cycle(cycle: int) -> bytes:
    """Four printable ASCII bytes that identify ``cycle`` (valid in ids and in UTF-8 strings)."""
    if not 0 <= cycle < MAX_CYCLES:
        raise ValueError(f"cycle {cycle} out of range")
    a = _ALPHABET
    return bytes(
        (a[(cycle >> 18) & 63], a[(cycle >> 12) & 63], a[(cycle >> 6) & 63], a[cycle & 63])
    )


# --------------------------------------------------------------------------- traffic model

AttrValue = str | bool | int | float | list[str]

SERVICES = [
    ("support-agent", "2.3.1", "production"),
    ("coding-assistant", "0.9.4", "production"),
    ("research-agent", "1.12.0", "staging"),
]
AGENTS = ["triage", "support", "coder", "researcher", "planner"]
MODELS: dict[str, list[tuple[str, str]]] = {
    "openai": [
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4.1", "gpt-4.1-2025-04-14"),
        ("o3-mini", "o3-mini-2025-01-31"),
    ],
    "anthropic": [
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
        ("claude-opus-4-1", "claude-opus-4-1-20250805"),
    ],
}
PROVIDER_HOSTS = {"openai": "api.openai.com", "anthropic": "api.anthropic.com"}
TOOLS = [
    ("search_docs", "Search the product documentation"),
    ("get_order", "Fetch an order by id"),
    ("run_sql", "Run a read-only SQL query"),
    ("read_file", "Read a file from the workspace"),
    ("web_fetch", "Fetch a web page"),
    ("create_ticket", "Open a support ticket"),
]
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "python-requests/2.32.3",
    "OpenAI/Python 1.54.3",
]
LLM_ERRORS = [("rate_limit_exceeded", "429 Too Many Requests"), ("timeout", "request timed out")]
TOOL_ERRORS = [("ToolExecutionError", "tool raised an exception"), ("TimeoutError", "timed out")]


@dataclass
class SpanDraft:
    """A span before ids are assigned (ids are indices local to one template cycle)."""

    index: int
    parent: int | None
    trace: int
    service: int
    name: str
    kind: int
    start: int
    end: int
    attrs: list[tuple[str, AttrValue]]
    error: str | None = None


@dataclass
class _Session:
    sid: str
    user: str
    service: int
    agent: str
    provider: str
    ip: str | None
    ua: str | None
    turns_left: int
    turn: int = 0


class TrafficModel:
    """Produces the span stream of one template cycle: interleaved sessions of several turns."""

    def __init__(self, rng: random.Random, base_time_ns: int) -> None:
        self.rng = rng
        self.clock = base_time_ns
        self.span_index = 0
        self.trace_index = 0
        self.session_index = 0

    def _new_session(self) -> _Session:
        rng = self.rng
        self.session_index += 1
        provider = rng.choice(["openai", "anthropic"])
        octets = (
            rng.randint(11, 223),
            rng.randint(0, 255),
            rng.randint(0, 255),
            rng.randint(1, 254),
        )
        ip = ".".join(map(str, octets))
        return _Session(
            sid=f"sess_{PLACEHOLDER}_{self.session_index:06d}{rng.getrandbits(40):010x}",
            user=f"user_{rng.randint(1, 5000):05d}",
            service=rng.randrange(len(SERVICES)),
            agent=rng.choice(AGENTS),
            provider=provider,
            ip=ip if rng.random() < 0.7 else None,
            ua=rng.choice(USER_AGENTS) if rng.random() < 0.7 else None,
            turns_left=rng.randint(2, 8),
        )

    def _span(
        self,
        parent: int | None,
        session: _Session,
        name: str,
        kind: int,
        start: int,
        end: int,
        attrs: list[tuple[str, AttrValue]],
        error: str | None = None,
    ) -> SpanDraft:
        draft = SpanDraft(
            self.span_index,
            parent,
            self.trace_index,
            session.service,
            name,
            kind,
            start,
            end,
            attrs,
            error,
        )
        self.span_index += 1
        return draft

    def _llm(self, root: int, s: _Session, start: int) -> tuple[SpanDraft, int, int, int]:
        rng = self.rng
        req_model, resp_model = rng.choice(MODELS[s.provider])
        dur = rng.randint(300, 9000) * 1_000_000
        in_tok = rng.randint(200, 30000)
        out_tok = rng.randint(10, 2000)
        error = None
        attrs: list[tuple[str, AttrValue]] = [
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", s.provider),
            ("gen_ai.request.model", req_model),
            ("gen_ai.request.temperature", rng.choice([0.0, 0.2, 0.7, 1.0])),
            ("gen_ai.request.max_tokens", rng.choice([1024, 2048, 4096, 8192])),
            ("server.address", PROVIDER_HOSTS[s.provider]),
            ("server.port", 443),
            ("gen_ai.conversation.id", s.sid),
            ("gen_ai.agent.name", s.agent),
        ]
        if rng.random() < 0.03:
            etype, error = rng.choice(LLM_ERRORS)
            attrs.append(("error.type", etype))
            out_tok = 0
        else:
            reasons = ["tool_calls"] if rng.random() < 0.4 else ["stop"]
            attrs += [
                ("gen_ai.response.model", resp_model),
                ("gen_ai.response.id", f"resp_{PLACEHOLDER}{rng.getrandbits(64):016x}"),
                ("gen_ai.response.finish_reasons", reasons),
                ("gen_ai.usage.input_tokens", in_tok),
                ("gen_ai.usage.output_tokens", out_tok),
            ]
            if rng.random() < 0.4:
                attrs.append(("gen_ai.usage.cache_read.input_tokens", rng.randint(0, in_tok)))
            if rng.random() < 0.3:
                attrs.append(("gen_ai.request.top_p", rng.choice([0.9, 0.95, 1.0])))
        if s.ip is not None and rng.random() < 0.5:
            attrs.append(("client.address", s.ip))
        if s.ua is not None and rng.random() < 0.3:
            attrs.append(("user_agent.original", s.ua))
        span = self._span(
            root, s, f"chat {req_model}", KIND_CLIENT, start, start + dur, attrs, error
        )
        return span, start + dur, (0 if error else in_tok), out_tok

    def _tool(self, root: int, s: _Session, start: int) -> tuple[SpanDraft, int]:
        rng = self.rng
        tool, description = rng.choice(TOOLS)
        dur = rng.randint(5, 3000) * 1_000_000
        args = json.dumps({"query": f"q{rng.getrandbits(48):x}", "limit": rng.randint(1, 50)})
        attrs: list[tuple[str, AttrValue]] = [
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", tool),
            ("gen_ai.tool.call.id", f"call_{PLACEHOLDER}{rng.getrandbits(64):016x}"),
            ("gen_ai.tool.type", "function"),
            ("gen_ai.tool.description", description),
            ("gen_ai.tool.call.arguments", args),
            ("gen_ai.agent.name", s.agent),
            ("gen_ai.conversation.id", s.sid),
            ("code.function.name", f"tools.{tool}"),
            ("tool.attempt", 1),
        ]
        error = None
        if rng.random() < 0.05:
            etype, error = rng.choice(TOOL_ERRORS)
            attrs.append(("error.type", etype))
        else:
            result = "x" * rng.randint(20, 300)
            attrs.append(("gen_ai.tool.call.result", f'{{"ok": true, "data": "{result}"}}'))
        if s.ip is not None and rng.random() < 0.2:
            attrs.append(("client.address", s.ip))
        span = self._span(
            root, s, f"execute_tool {tool}", KIND_INTERNAL, start, start + dur, attrs, error
        )
        return span, start + dur

    def _turn(self, s: _Session) -> list[SpanDraft]:
        """One trace: children in end order, then the root (what a batch exporter emits)."""
        rng = self.rng
        s.turn += 1
        root_index = self.span_index
        self.span_index += 1  # reserve the root's index: children reference it as parent
        start = self.clock
        self.clock += rng.randint(1, 50) * 1_000_000
        t = start + rng.randint(1, 20) * 1_000_000
        children: list[SpanDraft] = []
        n_llm = rng.randint(1, 4)
        in_total = out_total = 0
        for i in range(n_llm):
            span, t, in_tok, out_tok = self._llm(root_index, s, t)
            children.append(span)
            in_total += in_tok
            out_total += out_tok
            if i < n_llm - 1:
                for _ in range(rng.randint(1, 2)):
                    tool, t = self._tool(root_index, s, t + 1_000_000)
                    children.append(tool)
        failed = any(c.error for c in children) and rng.random() < 0.5
        attrs: list[tuple[str, AttrValue]] = [
            ("gen_ai.operation.name", "invoke_agent"),
            ("gen_ai.agent.name", s.agent),
            ("gen_ai.agent.id", f"agent_{s.agent}_v3"),
            ("gen_ai.provider.name", s.provider),
            ("gen_ai.conversation.id", s.sid),
            ("session.id", s.sid),
            ("user.id", s.user),
            ("gen_ai.usage.input_tokens", in_total),
            ("gen_ai.usage.output_tokens", out_total),
            ("app.turn.index", s.turn),
            ("http.route", "/api/chat"),
        ]
        if s.ip is not None:
            attrs.append(("client.address", s.ip))
        if s.ua is not None:
            attrs.append(("user_agent.original", s.ua))
        if failed:
            attrs.append(("error.type", "AgentError"))
        root = SpanDraft(
            root_index,
            None,
            self.trace_index,
            s.service,
            f"invoke_agent {s.agent}",
            KIND_SERVER,
            start,
            t + rng.randint(1, 30) * 1_000_000,
            attrs,
            "a step of the agent failed" if failed else None,
        )
        self.trace_index += 1
        return [*children, root]

    def stream(self, total_spans: int, concurrent_sessions: int = 40) -> list[SpanDraft]:
        """Exactly ``total_spans`` spans; the last trace is cut short so the cycle ends cleanly."""
        sessions = [self._new_session() for _ in range(concurrent_sessions)]
        out: list[SpanDraft] = []
        while len(out) < total_spans:
            k = self.rng.randrange(len(sessions))
            s = sessions[k]
            spans = self._turn(s)
            s.turns_left -= 1
            if s.turns_left == 0:
                sessions[k] = self._new_session()
            room = total_spans - len(out)
            if len(spans) > room:
                spans = spans[-room:]  # keep the root (it is last); drop the earliest children
            out.extend(spans)
        return out


def _set_value(target: common_pb2.AnyValue, value: AttrValue) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    else:
        for item in value:
            target.array_value.values.add().string_value = item


def _add_attrs(repeated: Any, attrs: list[tuple[str, AttrValue]]) -> None:
    for key, value in attrs:
        kv = repeated.add()
        kv.key = key
        _set_value(kv.value, value)


@dataclass
class Template:
    """One request of the cycle, serialized and split at the placeholder."""

    parts: list[bytes]
    spans: int
    body_size: int


def build_templates(
    n_templates: int, spans_per_request: int, seed: int, nonce: bytes
) -> list[Template]:
    """Serialize ``n_templates`` requests of ``spans_per_request`` spans each."""
    rng = random.Random(seed)
    model = TrafficModel(rng, time.time_ns() - 60_000_000_000)
    drafts = model.stream(n_templates * spans_per_request)
    trace_nonce = nonce[:8]
    span_nonce = int.from_bytes(nonce[8:12], "big")

    def trace_id(trace: int) -> bytes:
        return trace_nonce + trace.to_bytes(4, "big") + PLACEHOLDER_B

    def span_id(index: int) -> bytes:
        return (index ^ span_nonce).to_bytes(4, "big") + PLACEHOLDER_B

    templates: list[Template] = []
    for t in range(n_templates):
        chunk = drafts[t * spans_per_request : (t + 1) * spans_per_request]
        req = trace_service_pb2.ExportTraceServiceRequest()
        by_service: dict[int, list[SpanDraft]] = {}
        for d in chunk:
            by_service.setdefault(d.service, []).append(d)
        expected = 0
        for service, spans in by_service.items():
            name, version, env = SERVICES[service]
            rs = req.resource_spans.add()
            _add_attrs(
                rs.resource.attributes,
                [
                    ("service.name", name),
                    ("service.version", version),
                    ("deployment.environment.name", env),
                    ("service.instance.id", f"{name}-{seed % 97:02d}"),
                    ("telemetry.sdk.name", "opentelemetry"),
                    ("telemetry.sdk.language", "python"),
                    ("telemetry.sdk.version", "1.45.2"),
                ],
            )
            ss = rs.scope_spans.add()
            ss.scope.name = "opentelemetry.instrumentation.genai"
            ss.scope.version = "0.66b2"
            for d in spans:
                span = ss.spans.add()
                span.trace_id = trace_id(d.trace)
                span.span_id = span_id(d.index)
                expected += 2
                if d.parent is not None:
                    span.parent_span_id = span_id(d.parent)
                    expected += 1
                span.name = d.name
                span.kind = d.kind  # type: ignore[assignment]
                span.start_time_unix_nano = d.start
                span.end_time_unix_nano = d.end
                span.flags = 0x101  # sampled, parent known not to be remote
                _add_attrs(span.attributes, d.attrs)
                expected += sum(1 for _, v in d.attrs if isinstance(v, str) and PLACEHOLDER in v)
                if d.error is not None:
                    span.status.code = STATUS_ERROR
                    span.status.message = d.error
        data = req.SerializeToString()
        parts = data.split(PLACEHOLDER_B)
        if len(parts) - 1 != expected:
            raise RuntimeError(
                f"placeholder found {len(parts) - 1} times, expected {expected}; retry another seed"
            )
        templates.append(Template(parts, len(chunk), len(data)))
    return templates


class RequestFactory:
    """Builds request ``i`` of the run (template ``i % T``, cycle ``i // T``) in one join."""

    def __init__(self, templates: list[Template], prefixes: list[bytes] | None = None) -> None:
        self.templates = templates
        self.parts = [list(t.parts) for t in templates]
        if prefixes is not None:
            for parts, prefix in zip(self.parts, prefixes, strict=True):
                parts[0] = prefix + parts[0]
        self.n = len(templates)

    def max_requests(self) -> int:
        return self.n * MAX_CYCLES

    def build(self, i: int) -> tuple[bytes, int]:
        t = i % self.n
        return encode_cycle(i // self.n).join(self.parts[t]), self.templates[t].spans


def self_check(templates: list[Template]) -> None:
    """Parse two patched requests and verify ids are unique and strings are valid UTF-8."""
    factory = RequestFactory(templates)
    seen: set[tuple[bytes, bytes]] = set()
    total = 0
    for i in (0, len(templates)):  # first template in cycles 0 and 1
        body, n = factory.build(i)
        req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    seen.add((span.trace_id, span.span_id))
                    total += 1
        if total == 0 or n != sum(
            len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans
        ):
            raise RuntimeError("self-check: span count mismatch")
    if len(seen) != total:
        raise RuntimeError("self-check: duplicate (trace_id, span_id) across cycles")


# --------------------------------------------------------------------------- transports

Sender = Callable[[bytes], tuple[bool, str, int]]
"""Sends one request; returns (accepted, error text, spans rejected via partial_success)."""


def _rejected(response: bytes) -> int:
    if not response:
        return 0
    msg = trace_service_pb2.ExportTraceServiceResponse.FromString(response)
    return int(msg.partial_success.rejected_spans)


class _IdentityChannel:
    """Wraps a channel so a generated stub sends and returns raw bytes (no (de)serializer)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        return self._channel.unary_unary(method, _registered_method=_registered_method)


class GrpcClient:
    def __init__(self, port: int, timeout: float) -> None:
        self.channel = grpc.insecure_channel(
            f"{HOST}:{port}",
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                # its own TCP connection: grpc-core otherwise shares one between channels
                # to the same target, and `--channels` would not mean several clients
                ("grpc.use_local_subchannel_pool", 1),
            ],
        )
        grpc.channel_ready_future(self.channel).result(timeout=timeout)
        # the generated stub, on a channel wrapper that drops its (de)serializers
        self.stub = trace_service_pb2_grpc.TraceServiceStub(  # type: ignore[no-untyped-call]
            _IdentityChannel(self.channel)
        )
        self.timeout = timeout

    def sender(self) -> Sender:
        export = self.stub.Export
        timeout = self.timeout

        def send(body: bytes) -> tuple[bool, str, int]:
            try:
                response = export(body, timeout=timeout)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                return False, f"grpc {code.name if code else exc!r}", 0
            return True, "", _rejected(response)

        return send

    def close(self) -> None:
        self.channel.close()


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client over a raw socket (one per worker thread)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def _read_until(self, sock: socket.socket, marker: bytes) -> int:
        while (pos := self.buf.find(marker)) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by server")
            self.buf += chunk
        return pos

    def _read_exact(self, sock: socket.socket, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed by server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def request(self, payload: bytes) -> tuple[int, bytes]:
        """Send a complete pre-built HTTP request; return (status, body)."""
        sock = self.sock or self._connect()
        sock.sendall(payload)
        end = self._read_until(sock, b"\r\n\r\n")
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4 :]
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exact(sock, int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                end = self._read_until(sock, b"\r\n")
                size = int(self.buf[:end].split(b";")[0], 16)
                self.buf = self.buf[end + 2 :]
                chunks.append(self._read_exact(sock, size + 2)[:size])
                if size == 0:
                    break
            body = b"".join(chunks)
        else:  # body delimited by connection close
            body = self.buf
            while chunk := sock.recv(65536):
                body += chunk
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


def http_prefix(port: int, body_size: int) -> bytes:
    return (
        f"POST {HTTP_PATH} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "User-Agent: session-bridge-loadgen/1\r\n"
        "Content-Type: application/x-protobuf\r\n"
        "Accept: application/x-protobuf\r\n"
        f"Content-Length: {body_size}\r\n"
        "\r\n"
    ).encode("ascii")


def http_sender(port: int, timeout: float) -> tuple[Sender, Callable[[], None]]:
    conn = HttpConnection(port, timeout)

    def send(payload: bytes) -> tuple[bool, str, int]:
        try:
            status, body = conn.request(payload)
        except (OSError, ValueError, IndexError) as exc:
            conn.close()
            return False, f"http {type(exc).__name__}: {exc}", 0
        if status != 200:
            return False, f"http {status}", 0
        try:
            return True, "", _rejected(body)
        except Exception:  # a non-protobuf 200 body still counts as accepted
            return True, "", 0

    return send, conn.close


# --------------------------------------------------------------------------- run loop


@dataclass
class WorkerStats:
    ok: int = 0
    spans: int = 0
    rejected: int = 0
    errors: int = 0
    error_samples: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


@dataclass
class Result:
    transport: str
    port: int
    concurrency: int
    spans_per_request: int
    templates: int
    requests_ok: int
    requests_failed: int
    spans_sent_ok: int
    spans_rejected: int
    spans_acknowledged: int
    elapsed_s: float
    spans_per_s: float
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    mean_request_bytes: int
    build_s: float
    client_cpu_s: float
    client_cpu_pct: float
    machine_cpu_pct: float  # user+system time of all processes, 100 = one core busy
    machine_irq_pct: float  # irq + softirq (loopback TCP work lands largely here)
    machine_steal_pct: float  # time the hypervisor gave our vCPUs to someone else
    stopped_by: str
    errors: dict[str, int]


def cpu_jiffies() -> list[int]:
    """[processes (user+nice+system), irq+softirq, steal, total] over all CPUs (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return [0, 0, 0, 0]
    v += [0] * (8 - len(v))
    return [v[0] + v[1] + v[2], v[5] + v[6], v[7], sum(v)]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def run(args: argparse.Namespace) -> Result:
    t_build = time.perf_counter()
    nonce = os.urandom(12)
    for attempt in range(5):
        try:
            templates = build_templates(
                args.templates, args.spans_per_request, args.seed + attempt, nonce
            )
            break
        except RuntimeError:
            nonce = os.urandom(12)
    else:
        raise RuntimeError("could not build templates without placeholder collisions")
    self_check(templates)
    prefixes = None
    if args.transport == "http":
        prefixes = [http_prefix(args.port, t.body_size) for t in templates]
    # `--ports`: the connections go round-robin to several servers (bridge replicas)
    ports: list[int] = args.ports or [args.port]
    factory = RequestFactory(templates, prefixes)
    max_requests = min(args.max_requests, factory.max_requests())
    build_s = time.perf_counter() - t_build

    # gRPC: `--channels` connections shared round-robin by the workers, as several
    # SDK exporters would open (HTTP opens one keep-alive connection per worker anyway)
    grpc_clients = (
        [
            GrpcClient(ports[n % len(ports)], args.timeout)
            # the same number of connections to every port
            for n in range(-(-min(args.channels, args.concurrency) // len(ports)) * len(ports))
        ]
        if args.transport == "grpc"
        else []
    )
    senders: list[tuple[Sender, Callable[[], None]]] = []
    for n in range(args.concurrency):
        if grpc_clients:
            senders.append((grpc_clients[n % len(grpc_clients)].sender(), lambda: None))
        else:
            senders.append(http_sender(ports[n % len(ports)], args.timeout))

    counter: Iterator[int] = itertools.count()
    start_gate = threading.Event()
    stats = [WorkerStats() for _ in senders]
    deadline = 0.0
    stopped_by = "time"

    def worker(send: Sender, st: WorkerStats) -> None:
        nonlocal stopped_by
        start_gate.wait()
        perf = time.perf_counter
        build = factory.build
        lat = st.latencies
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= max_requests:
                stopped_by = "requests"
                return
            if perf() >= deadline:
                return
            payload, n = build(i)
            t0 = perf()
            ok, err, rejected = send(payload)
            lat.append(perf() - t0)
            if ok:
                st.ok += 1
                st.spans += n
                st.rejected += rejected
            else:
                st.errors += 1
                st.error_samples[err] = st.error_samples.get(err, 0) + 1

    threads = [
        threading.Thread(target=worker, args=(s, st), daemon=True)
        for (s, _), st in zip(senders, stats, strict=True)
    ]
    for th in threads:
        th.start()
    jiffies0 = cpu_jiffies()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + args.seconds
    start_gate.set()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    delta = [b - a for a, b in zip(jiffies0, cpu_jiffies(), strict=True)]
    scale = 100.0 * (os.cpu_count() or 1) / max(1, delta[3])
    for _, close in senders:
        close()
    for client in grpc_clients:
        client.close()

    latencies = sorted(x for st in stats for x in st.latencies)
    errors: dict[str, int] = {}
    for st in stats:
        for k, v in st.error_samples.items():
            errors[k] = errors.get(k, 0) + v
    ok = sum(st.ok for st in stats)
    spans = sum(st.spans for st in stats)
    rejected = sum(st.rejected for st in stats)
    acked = spans - rejected
    return Result(
        transport=args.transport,
        port=args.port,
        concurrency=args.concurrency,
        spans_per_request=args.spans_per_request,
        templates=args.templates,
        requests_ok=ok,
        requests_failed=sum(st.errors for st in stats),
        spans_sent_ok=spans,
        spans_rejected=rejected,
        spans_acknowledged=acked,
        elapsed_s=round(elapsed, 4),
        spans_per_s=round(acked / elapsed, 1) if elapsed > 0 else 0.0,
        requests_per_s=round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        latency_p50_ms=round(percentile(latencies, 50) * 1000, 3),
        latency_p99_ms=round(percentile(latencies, 99) * 1000, 3),
        latency_max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 3),
        mean_request_bytes=sum(t.body_size for t in templates) // len(templates),
        build_s=round(build_s, 3),
        client_cpu_s=round(cpu, 3),
        client_cpu_pct=round(100.0 * cpu / elapsed, 1) if elapsed > 0 else 0.0,
        machine_cpu_pct=round(delta[0] * scale, 1),
        machine_irq_pct=round(delta[1] * scale, 1),
        machine_steal_pct=round(delta[2] * scale, 1),
        stopped_by=stopped_by,
        errors=errors,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--transport", choices=["grpc", "http"], required=True)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1")
    p.add_argument(
        "--ports",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[],
        help="comma list of ports on 127.0.0.1 (instead of --port): connections round-robin",
    )
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--seconds", type=float, default=10.0, help="time limit (default 10)")
    p.add_argument(
        "--max-requests", type=int, default=10_000_000, help="request limit (default 10M)"
    )
    p.add_argument(
        "--channels",
        type=int,
        default=4,
        help="gRPC connections the in-flight requests are spread over (default 4)",
    )
    p.add_argument("--spans-per-request", type=int, default=512)
    p.add_argument(
        "--templates", type=int, default=16, help="distinct request templates in a cycle"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)
    if min(args.concurrency, args.channels, args.templates, args.spans_per_request) < 1:
        p.error("--concurrency, --channels, --templates and --spans-per-request must be >= 1")
    if not args.port and not args.ports:
        p.error("--port or --ports is required")
    if args.ports:
        args.port = args.ports[0]
        if args.concurrency < len(args.ports):
            p.error("--concurrency must be at least the number of --ports")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        r = result
        print(
            f"{r.transport} 127.0.0.1:{r.port} c={r.concurrency}: "
            f"{r.spans_acknowledged} spans acknowledged in {r.elapsed_s:.2f}s = "
            f"{r.spans_per_s:,.0f} spans/s ({r.requests_per_s:,.0f} req/s of "
            f"{r.mean_request_bytes:,} B), p50 {r.latency_p50_ms:.2f} ms, "
            f"p99 {r.latency_p99_ms:.2f} ms, errors {r.requests_failed}, "
            f"client CPU {r.client_cpu_pct:.0f}%"
        )
        for err, count in r.errors.items():
            print(f"  error x{count}: {err}", file=sys.stderr)
    return 0 if result.requests_ok > 0 and result.requests_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
