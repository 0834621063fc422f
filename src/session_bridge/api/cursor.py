"""Opaque keyset cursors: a JSON array, URL-safe base64, checked on the way back in.

A cursor comes back from the client, so each of its items is checked against what
the API put there (a 64-bit integer, a hex id of the right length, a string, one of
a few words) before it reaches a query: a tampered one is a 400 naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from session_bridge.api.errors import bad_parameter

_INT64 = range(-(2**63), 2**63)
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class HexId:
    """A lowercase hex id of `digits` digits (a trace id: 32, a span id: 16)."""

    digits: int


@dataclass(frozen=True, slots=True)
class OneOf:
    words: tuple[str, ...]


Item = type[int] | type[str] | HexId | OneOf


def encode_cursor(position: list[Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fits(value: Any, item: Item) -> bool:
    if item is int:
        return type(value) is int and value in _INT64  # the stores hold signed 64-bit
    if isinstance(item, HexId):
        return type(value) is str and len(value) == item.digits and _HEX.issuperset(value)
    if isinstance(item, OneOf):
        return value in item.words
    if item is str:
        return type(value) is str and "\x00" not in value  # see params.nul_free
    return type(value) is item


def decode_cursor(cursor: str, parameter: str, shape: tuple[Item, ...]) -> list[Any]:
    """The position in `cursor`, whose items must fit the items of `shape`."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:  # also an integer too long to read
        raise bad_parameter(parameter, "not a cursor returned by this API") from exc
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(_fits(v, t) for v, t in zip(position, shape, strict=True))
    ):
        raise bad_parameter(parameter, "not a cursor returned by this API")
    return position
