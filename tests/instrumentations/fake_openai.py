"""A small, deterministic fake of the OpenAI HTTP API, served on 127.0.0.1.

Good enough for the official ``openai`` Python client (chat completions, streaming,
embeddings with the client's default ``encoding_format="base64"``, Responses API) and
for the Vercel AI SDK (``@ai-sdk/openai``: ``openai(model)`` uses the Responses API,
``openai.chat(model)`` uses chat completions, ``openai.embedding(model)`` embeddings).

Endpoints (all under ``/v1``):

* ``POST /v1/chat/completions`` -- non-streaming and streaming (SSE).  With
  ``stream_options.include_usage`` a final chunk with ``choices: []`` and ``usage`` is sent.
* ``POST /v1/responses`` -- Responses API, non-streaming and streaming (SSE events
  ``response.created`` ... ``response.completed``).
* ``POST /v1/embeddings`` -- float or base64 encoding.
* ``POST /v1/messages`` -- the Anthropic Messages API, non-streaming and streaming (SSE
  ``message_start`` ... ``message_stop``), ``tool_use`` blocks like the tool calls below.
* ``GET /v1/models`` -- a tiny model list.

Determinism (every number below is a module constant, so tests can import them):

* chat: ``prompt_tokens = PROMPT_TOKENS_PER_MESSAGE * len(messages)
  + PROMPT_TOKENS_PER_TOOL * len(tools)``;
  ``completion_tokens = COMPLETION_TOKENS_TEXT`` (text answer) or
  ``COMPLETION_TOKENS_TOOL_CALL`` (tool call); ``total = prompt + completion``;
  ``prompt_tokens_details.cached_tokens = CACHED_TOKENS``;
  ``completion_tokens_details.reasoning_tokens = REASONING_TOKENS`` (part of
  completion_tokens, as with the real API).
* responses: same rule, counting ``input`` items (a string input counts as one item,
  ``instructions`` count as one more item); keys ``input_tokens``/``output_tokens``/
  ``input_tokens_details.cached_tokens``/``output_tokens_details.reasoning_tokens``.
* messages (Anthropic): ``input_tokens`` = 10 x messages (+1 for ``system``) + 25 x tools,
  *not* counting the cache (as Anthropic reports it): ``cache_read_input_tokens =
  CACHED_TOKENS``, ``cache_creation_input_tokens = CACHE_WRITE_TOKENS`` on top;
  ``output_tokens`` 20 (text) or 12 (tool use); no reasoning.  The response model is the
  request model unchanged (Anthropic echoes it).
* embeddings: ``prompt_tokens = total_tokens = EMBEDDING_TOKENS_PER_INPUT * n_inputs``;
  vectors have ``EMBEDDING_DIM`` floats.
* The response ``model`` is the request model plus ``RESPONSE_MODEL_SUFFIX``
  (``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``) so request-model and response-model
  attributes can be told apart.
* Tool calls: when the request carries tools, ``tool_choice`` is not ``"none"`` and some
  tool has not been called yet in the conversation (no earlier assistant tool call of
  that name), the answer is a call of the first such tool (or the one forced by
  ``tool_choice``) with arguments synthesised from its JSON schema (strings ->
  ``"Paris"``, numbers -> 1, booleans -> true).  Otherwise a text answer.  So an agent
  with one tool calls it once and then answers, and after a handoff the next agent
  calls its own tool.
* ``FakeOpenAI.served`` lists what each successful call metered (:class:`Served`), so a
  capture can store the truth next to what an instrumentation reported.
* Errors: a request whose model is ``error-<status>`` (e.g. ``error-400``,
  ``error-500``) gets that HTTP status and an OpenAI-style error body.  Use ``error-400``
  with the Python client (it retries 429/5xx unless ``max_retries=0``).

Usage::

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake")
        ...
        assert fake.requests[0].path == "/v1/chat/completions"

or as a pytest fixture::

    @pytest.fixture
    def fake_openai():
        with FakeOpenAI() as fake:
            yield fake
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS_PER_MESSAGE = 10
PROMPT_TOKENS_PER_TOOL = 25
COMPLETION_TOKENS_TEXT = 20
COMPLETION_TOKENS_TOOL_CALL = 12
CACHED_TOKENS = 4
REASONING_TOKENS = 6
CACHE_WRITE_TOKENS = 3  # Anthropic only: cache_creation_input_tokens
EMBEDDING_TOKENS_PER_INPUT = 5
EMBEDDING_DIM = 8
RESPONSE_MODEL_SUFFIX = "-2024-07-18"
CREATED = 1_700_000_000
SYSTEM_FINGERPRINT = "fp_fake"
SERVICE_TIER = "default"

__all__ = [
    "CACHED_TOKENS",
    "CACHE_WRITE_TOKENS",
    "COMPLETION_TOKENS_TEXT",
    "COMPLETION_TOKENS_TOOL_CALL",
    "EMBEDDING_DIM",
    "EMBEDDING_TOKENS_PER_INPUT",
    "PROMPT_TOKENS_PER_MESSAGE",
    "PROMPT_TOKENS_PER_TOOL",
    "REASONING_TOKENS",
    "RESPONSE_MODEL_SUFFIX",
    "FakeOpenAI",
    "RecordedRequest",
    "Served",
    "chat_usage",
]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Served:
    """What one successful model call metered.  ``input_tokens`` includes the cache
    (OpenAI's and OTel's convention; Anthropic's own ``input_tokens`` excludes it)."""

    path: str
    model: str
    stream: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    tool_call: str | None = None  # the tool the answer calls, if any


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)

    def serve(self, served: Served) -> None:
        with self.lock:
            self.served.append(served)

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter


def chat_usage(n_messages: int, n_tools: int, tool_call: bool) -> dict[str, Any]:
    """The ``usage`` object the fake returns for a chat completion."""
    prompt = PROMPT_TOKENS_PER_MESSAGE * n_messages + PROMPT_TOKENS_PER_TOOL * n_tools
    completion = COMPLETION_TOKENS_TOOL_CALL if tool_call else COMPLETION_TOKENS_TEXT
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": REASONING_TOKENS,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage(n_items: int, n_tools: int, tool_call: bool) -> dict[str, Any]:
    """The ``usage`` object the fake returns for a Responses API call."""
    inp = PROMPT_TOKENS_PER_MESSAGE * n_items + PROMPT_TOKENS_PER_TOOL * n_tools
    out = COMPLETION_TOKENS_TOOL_CALL if tool_call else COMPLETION_TOKENS_TEXT
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
        "total_tokens": inp + out,
    }


def _args_from_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    props = (schema or {}).get("properties") or {}
    out: dict[str, Any] = {}
    for name, prop in props.items():
        typ = prop.get("type") if isinstance(prop, dict) else None
        if isinstance(typ, list):
            typ = next((t for t in typ if t != "null"), "string")
        if isinstance(prop, dict) and prop.get("enum"):
            out[name] = prop["enum"][0]
        elif typ in ("number", "integer"):
            out[name] = 1
        elif typ == "boolean":
            out[name] = True
        elif typ == "array":
            out[name] = []
        elif typ == "object":
            out[name] = {}
        else:
            out[name] = "Paris"
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                parts.append(str(p.get("text") or p.get("output") or ""))
            else:
                parts.append(str(p))
        return " ".join(x for x in parts if x)
    return "" if content is None else str(content)


def _pick_chat_tool(tools: list[dict[str, Any]], tool_choice: Any) -> dict[str, Any]:
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        for t in tools:
            fn = t.get("function") or t
            if fn.get("name") == wanted:
                return fn
    first = tools[0]
    return first.get("function") or first


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # ---- plumbing -----------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, obj: Any, req_id: int) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{req_id}")
        self.send_header("openai-processing-ms", "1")
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self, req_id: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_fake_{req_id}")
        self.end_headers()

    def _sse_raw(self, payload: str) -> None:
        data = payload.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _sse(self, obj: Any, event: str | None = None) -> None:
        prefix = f"event: {event}\n" if event else ""
        self._sse_raw(f"{prefix}data: {json.dumps(obj)}\n\n")

    def _end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _error(self, status: int, message: str, req_id: int) -> None:
        self._send_json(
            status,
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error" if status < 500 else "server_error",
                    "param": None,
                    "code": "fake_error",
                }
            },
            req_id,
        )

    # ---- routing --------------------------------------------------------------------
    def do_GET(self) -> None:
        req_id = self.server.state.next_id()
        path = self.path.split("?")[0]
        self.server.state.requests.append(
            RecordedRequest("GET", path, dict(self.headers.items()), None)
        )
        if path.endswith("/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
                        for m in ("gpt-4o-mini", "text-embedding-3-small")
                    ],
                },
                req_id,
            )
        else:
            self._error(404, f"unknown path {path}", req_id)

    def do_POST(self) -> None:
        req_id = self.server.state.next_id()
        path = self.path.split("?")[0]
        raw = self._read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.server.state.requests.append(
                RecordedRequest("POST", path, dict(self.headers.items()), raw)
            )
            self._error(400, "body is not JSON", req_id)
            return
        self.server.state.requests.append(
            RecordedRequest("POST", path, dict(self.headers.items()), body)
        )
        model = str(body.get("model") or "")
        if model.startswith("error-"):
            try:
                status = int(model.split("-", 1)[1])
            except ValueError:
                status = 400
            self._error(status, f"fake error for model {model}", req_id)
            return
        if path.endswith("/chat/completions"):
            self._chat(body, req_id)
        elif path.endswith("/responses"):
            self._responses(body, req_id)
        elif path.endswith("/embeddings"):
            self._embeddings(body, req_id)
        elif path.endswith("/messages"):
            self._messages(body, req_id)
        else:
            self._error(404, f"unknown path {path}", req_id)

    # ---- chat completions -----------------------------------------------------------
    def _chat(self, body: dict[str, Any], req_id: int) -> None:
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        tool_choice = body.get("tool_choice")
        model = str(body.get("model") or "gpt-4o-mini")
        resp_model = model + RESPONSE_MODEL_SUFFIX
        last = messages[-1] if messages else {}
        called = {
            (c.get("function") or {}).get("name")
            for m in messages
            if m.get("role") == "assistant"
            for c in (m.get("tool_calls") or [])
        }
        fresh = [t for t in tools if (t.get("function") or t).get("name") not in called]
        want_tool = bool(fresh) and tool_choice != "none"
        usage = chat_usage(len(messages), len(tools), want_tool)
        cid = f"chatcmpl-fake-{req_id}"
        fn = _pick_chat_tool(fresh, tool_choice) if want_tool else {}
        self.server.state.serve(
            Served(
                "/v1/chat/completions",
                resp_model,
                bool(body.get("stream")),
                usage["prompt_tokens"],
                usage["completion_tokens"],
                CACHED_TOKENS,
                0,
                REASONING_TOKENS,
                fn.get("name"),
            )
        )
        if want_tool:
            call = {
                "id": f"call_fake_{req_id}",
                "type": "function",
                "function": {
                    "name": fn.get("name"),
                    "arguments": json.dumps(_args_from_schema(fn.get("parameters"))),
                },
            }
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [call],
                "refusal": None,
            }
            finish = "tool_calls"
        else:
            if last.get("role") == "tool":
                text = f"Based on the tool result: {_text_of(last.get('content'))}"
            else:
                user_msgs = [m for m in messages if m.get("role") == "user"]
                said = _text_of(user_msgs[-1].get("content")) if user_msgs else ""
                text = f"This is a fake answer to: {said}"
            message = {"role": "assistant", "content": text, "refusal": None}
            finish = "stop"

        if not body.get("stream"):
            self._send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": resp_model,
                    "system_fingerprint": SYSTEM_FINGERPRINT,
                    "service_tier": SERVICE_TIER,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                },
                req_id,
            )
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": resp_model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "service_tier": SERVICE_TIER,
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            self._sse(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": delta,
                            "logprobs": None,
                            "finish_reason": finish_reason,
                        }
                    ],
                }
            )

        self._start_sse(req_id)
        if want_tool:
            call = message["tool_calls"][0]
            args = call["function"]["arguments"]
            chunk({"role": "assistant", "content": None, "refusal": None})
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            chunk({"role": "assistant", "content": "", "refusal": None})
            words = message["content"].split(" ")
            for i, w in enumerate(words):
                chunk({"content": w if i == 0 else " " + w})
        chunk({}, finish)
        if include_usage:
            self._sse({**base, "choices": [], "usage": usage})
        self._sse_raw("data: [DONE]\n\n")
        self._end_sse()

    # ---- responses API --------------------------------------------------------------
    def _responses(self, body: dict[str, Any], req_id: int) -> None:
        inp = body.get("input")
        items: list[Any] = [inp] if isinstance(inp, str) else list(inp or [])
        n_items = len(items) + (1 if body.get("instructions") else 0)
        tools = [t for t in (body.get("tools") or []) if t.get("type") == "function"]
        tool_choice = body.get("tool_choice")
        model = str(body.get("model") or "gpt-4o-mini")
        resp_model = model + RESPONSE_MODEL_SUFFIX
        last = items[-1] if items else {}
        last_is_tool_result = isinstance(last, dict) and last.get("type") == (
            "function_call_output"
        )
        called = {
            it.get("name")
            for it in items
            if isinstance(it, dict) and it.get("type") == "function_call"
        }
        fresh = [t for t in tools if t.get("name") not in called]
        want_tool = bool(fresh) and tool_choice != "none"
        usage = responses_usage(n_items, len(tools), want_tool)
        rid = f"resp_fake_{req_id}"
        fn = fresh[0] if want_tool else {}
        if want_tool and isinstance(tool_choice, dict) and tool_choice.get("name"):
            fn = next((t for t in fresh if t.get("name") == tool_choice["name"]), fn)
        self.server.state.serve(
            Served(
                "/v1/responses",
                resp_model,
                bool(body.get("stream")),
                usage["input_tokens"],
                usage["output_tokens"],
                CACHED_TOKENS,
                0,
                REASONING_TOKENS,
                fn.get("name"),
            )
        )
        if want_tool:
            out_item: dict[str, Any] = {
                "type": "function_call",
                "id": f"fc_fake_{req_id}",
                "call_id": f"call_fake_{req_id}",
                "name": fn.get("name"),
                "arguments": json.dumps(_args_from_schema(fn.get("parameters"))),
                "status": "completed",
            }
            text = None
        else:
            if last_is_tool_result:
                text = f"Based on the tool result: {_text_of(last.get('output'))}"
            else:
                said = ""
                for it in reversed(items):
                    if isinstance(it, str):
                        said = it
                        break
                    if isinstance(it, dict) and it.get("role") == "user":
                        said = _text_of(it.get("content"))
                        break
                text = f"This is a fake answer to: {said}"
            out_item = {
                "type": "message",
                "id": f"msg_fake_{req_id}",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                ],
            }
        resp: dict[str, Any] = {
            "id": rid,
            "object": "response",
            "created_at": CREATED,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": resp_model,
            "output": [out_item],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": SERVICE_TIER,
            "store": bool(body.get("store", True)),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": tool_choice or "auto",
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        if not body.get("stream"):
            self._send_json(200, resp, req_id)
            return

        seq = 0

        def ev(obj: dict[str, Any]) -> None:
            nonlocal seq
            obj["sequence_number"] = seq
            seq += 1
            self._sse(obj, event=obj["type"])

        in_progress = {**resp, "status": "in_progress", "output": [], "usage": None}
        self._start_sse(req_id)
        ev({"type": "response.created", "response": in_progress})
        ev({"type": "response.in_progress", "response": in_progress})
        if want_tool:
            added = {**out_item, "arguments": "", "status": "in_progress"}
            ev({"type": "response.output_item.added", "output_index": 0, "item": added})
            args = out_item["arguments"]
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                ev(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": out_item["id"],
                        "output_index": 0,
                        "delta": piece,
                    }
                )
            ev(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": out_item["id"],
                    "output_index": 0,
                    "arguments": args,
                }
            )
        else:
            assert text is not None
            added = {**out_item, "status": "in_progress", "content": []}
            ev({"type": "response.output_item.added", "output_index": 0, "item": added})
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            ev(
                {
                    "type": "response.content_part.added",
                    "item_id": out_item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "part": empty_part,
                }
            )
            for i, w in enumerate(text.split(" ")):
                ev(
                    {
                        "type": "response.output_text.delta",
                        "item_id": out_item["id"],
                        "output_index": 0,
                        "content_index": 0,
                        "delta": w if i == 0 else " " + w,
                        "logprobs": [],
                    }
                )
            ev(
                {
                    "type": "response.output_text.done",
                    "item_id": out_item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            )
            ev(
                {
                    "type": "response.content_part.done",
                    "item_id": out_item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "part": out_item["content"][0],
                }
            )
        ev({"type": "response.output_item.done", "output_index": 0, "item": out_item})
        ev({"type": "response.completed", "response": resp})
        self._end_sse()

    # ---- Anthropic messages ---------------------------------------------------------
    def _messages(self, body: dict[str, Any], req_id: int) -> None:
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        tool_choice = body.get("tool_choice") or {}
        model = str(body.get("model") or "claude-3-5-haiku-latest")
        last = messages[-1] if messages else {}
        content = last.get("content")
        last_is_tool_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
        called = {
            b.get("name")
            for m in messages
            if m.get("role") == "assistant" and isinstance(m.get("content"), list)
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use"
        }
        fresh = [t for t in tools if t.get("name") not in called]
        want_tool = bool(fresh) and tool_choice.get("type") != "none"
        n_items = len(messages) + (1 if body.get("system") else 0)
        uncached = PROMPT_TOKENS_PER_MESSAGE * n_items + PROMPT_TOKENS_PER_TOOL * len(tools)
        out = COMPLETION_TOKENS_TOOL_CALL if want_tool else COMPLETION_TOKENS_TEXT
        usage = {
            "input_tokens": uncached,
            "cache_creation_input_tokens": CACHE_WRITE_TOKENS,
            "cache_read_input_tokens": CACHED_TOKENS,
            "output_tokens": out,
            "service_tier": "standard",
        }
        stream = bool(body.get("stream"))
        fn = fresh[0] if want_tool else {}
        if want_tool and tool_choice.get("name"):
            fn = next((t for t in fresh if t.get("name") == tool_choice["name"]), fn)
        self.server.state.serve(
            Served(
                "/v1/messages",
                model,
                stream,
                uncached + CACHED_TOKENS + CACHE_WRITE_TOKENS,
                out,
                CACHED_TOKENS,
                CACHE_WRITE_TOKENS,
                0,
                fn.get("name"),
            )
        )
        if want_tool:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_fake_{req_id}",
                "name": fn.get("name"),
                "input": _args_from_schema(fn.get("input_schema")),
            }
            stop = "tool_use"
        else:
            if last_is_tool_result:
                said = " ".join(
                    _text_of(b.get("content"))
                    for b in (content if isinstance(content, list) else ())
                    if b.get("type") == "tool_result"
                )
                text = f"Based on the tool result: {said}"
            else:
                users = [m for m in messages if m.get("role") == "user"]
                text = f"This is a fake answer to: {_text_of(users[-1].get('content')) if users else ''}"
            block = {"type": "text", "text": text}
            stop = "end_turn"
        msg: dict[str, Any] = {
            "id": f"msg_fake_{req_id}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [block],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not stream:
            self._send_json(200, msg, req_id)
            return
        self._start_sse(req_id)
        start_usage = {**usage, "output_tokens": 1}
        self._sse(
            {
                "type": "message_start",
                "message": {**msg, "content": [], "stop_reason": None, "usage": start_usage},
            },
            event="message_start",
        )
        if want_tool:
            empty = {**block, "input": {}}
            self._sse(
                {"type": "content_block_start", "index": 0, "content_block": empty},
                event="content_block_start",
            )
            args = json.dumps(block["input"])
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                self._sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                    event="content_block_delta",
                )
        else:
            self._sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                event="content_block_start",
            )
            for i, w in enumerate(block["text"].split(" ")):
                self._sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": w if i == 0 else " " + w},
                    },
                    event="content_block_delta",
                )
        self._sse({"type": "content_block_stop", "index": 0}, event="content_block_stop")
        self._sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": out},
            },
            event="message_delta",
        )
        self._sse({"type": "message_stop"}, event="message_stop")
        self._end_sse()

    # ---- embeddings -----------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any], req_id: int) -> None:
        inp = body.get("input")
        if isinstance(inp, str):
            inputs: list[Any] = [inp]
        elif isinstance(inp, list) and inp and isinstance(inp[0], int):
            inputs = [inp]  # a single pre-tokenised input
        else:
            inputs = list(inp or [])
        model = str(body.get("model") or "text-embedding-3-small")
        dim = int(body.get("dimensions") or EMBEDDING_DIM)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, _ in enumerate(inputs):
            vec = [round((i + 1) * 0.01 + j * 0.001, 6) for j in range(dim)]
            emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n = EMBEDDING_TOKENS_PER_INPUT * len(inputs)
        self.server.state.serve(Served("/v1/embeddings", model, False, n, 0))
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,  # the real API echoes the request model here
                "usage": {"prompt_tokens": n, "total_tokens": n},
            },
            req_id,
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeOpenAI:
    """Runs the fake on an ephemeral loopback port in a background thread."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeOpenAI:
        if self._server is None:
            self._server = _Server(self._state)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="fake-openai", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The value for ``OpenAI(base_url=...)`` / ``createOpenAI({baseURL})``."""
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._state.requests)

    @property
    def served(self) -> list[Served]:
        return list(self._state.served)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # manual use: python fake_openai.py
    import time

    with FakeOpenAI() as fake:
        print(fake.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
