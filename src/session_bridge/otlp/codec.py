"""Turning an OTLP/HTTP request body into an `ExportTraceServiceRequest`.

Per the OTLP specification: `application/x-protobuf` or `application/json`
bodies, optionally compressed (gzip, deflate, zstd, and what a Collector's
`otlphttp` exporter may send besides: snappy, block or framed, and lz4 frames). The
size limit applies to the decompressed body, checked while decompressing so a small compressed body
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

import cramjam
import lz4.frame
import zstandard
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

SUPPORTED_ENCODINGS = ("gzip", "deflate", "zstd", "snappy", "x-snappy-framed", "lz4")


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
        if coding in ("snappy", "x-snappy-framed"):
            return _unsnappy(body, limit)
        if coding == "lz4":
            return _unlz4(body, limit)
    except (zlib.error, zstandard.ZstdError, EOFError, cramjam.DecompressionError) as exc:
        raise DecodeFailure(400, f"cannot decompress {coding} body: {exc}") from exc
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


# A framed snappy stream starts with this chunk; the Collector sends framed streams as
# `snappy` too (older versions always did), so either format is taken under either name.
_SNAPPY_STREAM = b"\xff\x06\x00\x00sNaPpY"


def _unsnappy(body: bytes, limit: int) -> bytes:
    if not body.startswith(_SNAPPY_STREAM):
        # a block states its decompressed length first: checked before decompressing
        if cramjam.snappy.decompress_raw_len(body) > limit:
            raise _too_large(limit)
        return bytes(cramjam.snappy.decompress_raw(body))
    # every chunk states its length, a compressed one its decompressed length too:
    # their sum is checked before anything is decompressed
    view = memoryview(body)
    size = at = 0
    while at + 4 <= len(body):
        kind, length = body[at], int.from_bytes(body[at + 1 : at + 4], "little")
        if kind == 0x00:  # compressed data, after a 4-byte checksum
            size += cramjam.snappy.decompress_raw_len(view[at + 8 : at + 4 + length])
        elif kind == 0x01:  # uncompressed data, after a 4-byte checksum
            size += max(0, length - 4)
        if size > limit:
            raise _too_large(limit)
        at += 4 + length
    return bytes(cramjam.snappy.decompress(body))


def _unlz4(body: bytes, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:  # every frame (a body may hold several), at most `limit` bytes in all
        decoder = lz4.frame.LZ4FrameDecompressor()
        try:
            part = decoder.decompress(body, max_length=limit + 1 - size)
        except RuntimeError as exc:  # how lz4 reports a damaged frame
            raise DecodeFailure(400, f"cannot decompress lz4 body: {exc}") from exc
        parts.append(part)
        size += len(part)
        if size > limit or not (decoder.eof or decoder.needs_input):
            raise _too_large(limit)
        if not decoder.eof:
            raise DecodeFailure(400, "cannot decompress lz4 body: it is truncated")
        body = decoder.unused_data
        if not body:
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
