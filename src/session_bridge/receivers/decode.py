"""Turning an OTLP/HTTP request body into an `ExportTraceServiceRequest`.

Per the OTLP specification: `application/x-protobuf` or `application/json`
bodies, optionally compressed (gzip, deflate, zstd). The size limit applies to
the decompressed body, checked while decompressing so a small compressed body
cannot expand without bound. OTLP/JSON carries trace and span ids as hex (not
proto3's base64), lowerCamelCase keys (snake_case accepted), enums as numbers
or names and 64-bit integers as strings or numbers; unknown fields are ignored.
"""

from __future__ import annotations

import base64
import json
import zlib
from enum import Enum
from typing import Any

import zstandard
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

SUPPORTED_ENCODINGS = ("gzip", "deflate", "zstd")


class BodyFormat(Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


class DecodeFailure(Exception):
    """The body cannot be used; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_format(content_type: str | None) -> BodyFormat | None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    for fmt in BodyFormat:
        if fmt.value == media_type:
            return fmt
    return None


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Decompress `body`, refusing to produce more than `limit` bytes."""
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity"):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    try:
        if coding == "gzip":
            return _inflate(zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), body, limit, coding)
        if coding == "deflate":
            # "deflate" means zlib-wrapped data, but some clients send raw deflate.
            wbits = zlib.MAX_WBITS if _looks_like_zlib(body) else -zlib.MAX_WBITS
            return _inflate(zlib.decompressobj(wbits=wbits), body, limit, coding)
        if coding == "zstd":
            return _unzstd(body, limit)
    except (zlib.error, zstandard.ZstdError, EOFError) as exc:
        raise DecodeFailure(400, f"cannot decompress {coding} body: {exc}") from exc
    raise DecodeFailure(
        415,
        f"unsupported Content-Encoding {coding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
    )


def _looks_like_zlib(body: bytes) -> bool:
    return len(body) >= 2 and (body[0] & 0x0F) == 8 and ((body[0] << 8) | body[1]) % 31 == 0


def _inflate(decoder: Any, body: bytes, limit: int, coding: str) -> bytes:
    parts: list[bytes] = []  # joined at the end: one member (the usual case) is not copied
    size = 0
    while True:
        part = decoder.decompress(body, limit + 1 - size)
        parts.append(part)
        size += len(part)
        if size > limit or decoder.unconsumed_tail:
            raise _too_large(limit)
        if not decoder.eof:
            raise DecodeFailure(400, f"cannot decompress {coding} body: it is truncated")
        body = decoder.unused_data
        if not body:
            return b"".join(parts)
        if coding != "gzip":
            raise _trailing(coding)
        # a gzip body may hold several members, one after the other (RFC 1952 2.2)
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


def _unzstd(body: bytes, limit: int) -> bytes:
    decompressor = zstandard.ZstdDecompressor()
    # the bounded read refuses a bomb before anything is held whole; it reads every
    # frame (a body may hold several, RFC 8878 3.1), but takes a truncated one silently
    size = len(decompressor.stream_reader(body, read_across_frames=True).read(limit + 1))
    if size > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    while body:  # so, at most `limit` bytes again: frame by frame, each checked whole
        frame = decompressor.decompressobj()
        parts.append(frame.decompress(body))
        if not frame.eof:
            raise DecodeFailure(400, "cannot decompress zstd body: it is truncated")
        body = frame.unused_data
    return b"".join(parts)


def _trailing(coding: str) -> DecodeFailure:
    return DecodeFailure(400, f"cannot decompress {coding} body: data after its end")


def _too_large(limit: int) -> DecodeFailure:
    return DecodeFailure(
        413, f"request body exceeds the limit of {limit} bytes after decompression"
    )


def parse(message: Message, data: bytes, fmt: BodyFormat) -> None:
    """Fill `message` from `data`; raise `DecodeFailure(400)` when it is not valid OTLP."""
    if fmt is BodyFormat.PROTOBUF:
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise DecodeFailure(400, f"invalid protobuf body: {exc}") from exc
        return
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeFailure(400, f"invalid JSON body: {exc}") from exc
    except RecursionError as exc:
        raise DecodeFailure(400, "invalid JSON body: nested too deeply") from exc
    if not isinstance(document, dict):
        raise DecodeFailure(400, "invalid OTLP/JSON body: expected a JSON object")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise DecodeFailure(400, f"invalid OTLP/JSON body: {exc}") from exc
    except RecursionError as exc:  # values nested deeper than Python recurses
        raise DecodeFailure(400, "invalid OTLP/JSON body: nested too deeply") from exc


_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_CONTAINERS = (
    ("resourceSpans", "resource_spans"),
    ("scopeSpans", "scope_spans"),
    ("spans",),
)
_LIST_KEYS = ("links", "events")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite hex ids in place as base64, which `json_format` expects for bytes.

    An id that is not hex becomes one byte, a length no id has, so that its span is
    rejected rather than the whole request (an empty parent id would make it a root).
    """
    level: list[Any] = [document]
    for keys in _CONTAINERS:
        children: list[Any] = []
        for node in level:
            if not isinstance(node, dict):
                continue
            for key in keys:
                value = node.get(key)
                if isinstance(value, list):
                    children.extend(value)
        level = children
    for span in level:
        if not isinstance(span, dict):
            continue
        _convert_ids(span)
        for key in _LIST_KEYS:
            items = span.get(key)
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict):
                        _convert_ids(item)


_NOT_HEX = b"\0"


def _convert_ids(node: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        value = node.get(key)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = _NOT_HEX
            node[key] = base64.b64encode(raw).decode("ascii")


def encode(message: Message, fmt: BodyFormat) -> bytes:
    if fmt is BodyFormat.PROTOBUF:
        return bytes(message.SerializeToString())
    return json_format.MessageToJson(message, indent=None).encode()
