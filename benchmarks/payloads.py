"""The benchmark's OTLP requests: realistic GenAI agent traffic (sessions of several turns;
each turn is a trace made of an ``invoke_agent`` span wrapping ``chat`` and ``execute_tool``
spans), serialized once into a cycle of request templates.

Request ``i`` is template ``i % T`` with a 4-byte placeholder replaced by an encoding of
cycle ``i // T``: the placeholder sits inside every trace id and span id, and inside
``session.id``, ``gen_ai.response.id`` and ``gen_ai.tool.call.id``. The serialized template
is kept split at the placeholder, so building a request is one ``bytes.join`` (about 20 us
for 512 spans). Every span of a run therefore has a unique (trace id, span id), and a random
per-process nonce keeps ids unique across runs too.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

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


def checked_templates(n_templates: int, spans_per_request: int, seed: int) -> list[Template]:
    """`build_templates` with a fresh nonce, retried on a placeholder collision, then
    self-checked."""
    nonce = os.urandom(12)
    for attempt in range(5):
        try:
            templates = build_templates(n_templates, spans_per_request, seed + attempt, nonce)
            break
        except RuntimeError:
            nonce = os.urandom(12)
    else:
        raise RuntimeError("could not build templates without placeholder collisions")
    self_check(templates)
    return templates
