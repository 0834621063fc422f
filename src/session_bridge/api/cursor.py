"""Opaque keyset cursors: a JSON array, URL-safe base64, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from session_bridge.api.errors import bad_parameter


def encode_cursor(position: list[Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parameter: str, shape: tuple[type, ...]) -> list[Any]:
    """The position in `cursor`, whose items must have the types of `shape`."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise bad_parameter(parameter, "not a cursor returned by this API") from exc
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(type(v) is t for v, t in zip(position, shape, strict=True))
    ):
        raise bad_parameter(parameter, "not a cursor returned by this API")
    return position
