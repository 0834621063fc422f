"""Checks of the fake OpenAI server itself (raw HTTP through httpx, no openai client)."""

from __future__ import annotations

import base64
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import (
    CACHED_TOKENS,
    COMPLETION_TOKENS_TEXT,
    COMPLETION_TOKENS_TOOL_CALL,
    EMBEDDING_DIM,
    REASONING_TOKENS,
    FakeOpenAI,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


def _sse(resp: httpx.Response) -> list[dict[str, Any]]:
    out = []
    for line in resp.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


def test_chat_text(fake: FakeOpenAI) -> None:
    r = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    body = r.json()
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["choices"][0]["message"]["content"] == "This is a fake answer to: hi"
    u = body["usage"]
    assert (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) == (
        10,
        COMPLETION_TOKENS_TEXT,
        10 + COMPLETION_TOKENS_TEXT,
    )
    assert u["prompt_tokens_details"]["cached_tokens"] == CACHED_TOKENS
    assert u["completion_tokens_details"]["reasoning_tokens"] == REASONING_TOKENS
    assert fake.requests[0].path == "/v1/chat/completions"


def test_chat_tool_call_then_result(fake: FakeOpenAI) -> None:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "weather?"}]
    r = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={"model": "m", "messages": msgs, "tools": [TOOL]},
    ).json()
    call = r["choices"][0]["message"]["tool_calls"][0]
    assert r["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert r["usage"]["prompt_tokens"] == 10 + 25
    assert r["usage"]["completion_tokens"] == COMPLETION_TOKENS_TOOL_CALL
    msgs += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny"},
    ]
    r2 = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={"model": "m", "messages": msgs, "tools": [TOOL]},
    ).json()
    assert r2["choices"][0]["message"]["content"] == "Based on the tool result: Sunny"


def test_chat_stream_with_usage(fake: FakeOpenAI) -> None:
    r = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": "a b"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = _sse(r)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "This is a fake answer to: a b"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 10 + COMPLETION_TOKENS_TEXT
    assert r.text.rstrip().endswith("data: [DONE]")


def test_responses_stream_and_plain(fake: FakeOpenAI) -> None:
    body = {"model": "m", "input": "hello", "instructions": "be nice"}
    plain = httpx.post(f"{fake.base_url}/responses", json=body).json()
    assert plain["usage"]["input_tokens"] == 20
    assert plain["output"][0]["content"][0]["text"] == "This is a fake answer to: hello"
    events = _sse(httpx.post(f"{fake.base_url}/responses", json={**body, "stream": True}))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] == (
        REASONING_TOKENS
    )


def test_embeddings_float_and_base64(fake: FakeOpenAI) -> None:
    f = httpx.post(f"{fake.base_url}/embeddings", json={"model": "e", "input": ["a", "b"]}).json()
    assert len(f["data"]) == 2 and len(f["data"][0]["embedding"]) == EMBEDDING_DIM
    assert f["usage"] == {"prompt_tokens": 10, "total_tokens": 10}
    b = httpx.post(
        f"{fake.base_url}/embeddings",
        json={"model": "e", "input": "a", "encoding_format": "base64"},
    ).json()
    vec = struct.unpack(f"<{EMBEDDING_DIM}f", base64.b64decode(b["data"][0]["embedding"]))
    assert vec[0] == pytest.approx(f["data"][0]["embedding"][0])


def test_error_model(fake: FakeOpenAI) -> None:
    r = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={"model": "error-429", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "fake_error"
