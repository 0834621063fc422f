"""Path parameters that hold `/` or `%`: routing on the raw path.

An ASGI server decodes the path before routing, so a session id `a/b` sent as
`…/sessions/a%2Fb` would be routed as two segments and never found. `RawPathRouting`
re-derives the path from `raw_path` with each segment decoded except for `%` and `/`
(kept as `%25` and `%2F`), so that routing splits on the client's own slashes only;
`PathSegment` undoes that escape in a path parameter's value.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from pydantic import BeforeValidator
from starlette.types import ASGIApp, Receive, Scope, Send

_ESCAPED = re.compile("%25|%2F")


def escaped_path(raw_path: bytes) -> str:
    """The path with every segment decoded, but `%` and `/` within one escaped."""
    return "/".join(
        unquote(segment).replace("%", "%25").replace("/", "%2F")
        for segment in raw_path.decode("ascii").split("/")
    )


def unescape_segment(value: object) -> object:
    """The value of a path parameter, as the client meant it."""
    if isinstance(value, str) and "%" in value:
        return _ESCAPED.sub(lambda m: "%" if m[0] == "%25" else "/", value)
    return value


PathSegment = BeforeValidator(unescape_segment)
"""Annotate every path parameter that can hold `/` or `%` (a session id) with this."""


class RawPathRouting:
    """ASGI middleware: route on the raw path when it holds an encoded `/` or `%`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and b"%2" in raw and (b"%25" in raw or b"%2f" in raw.lower()):
            try:
                path = escaped_path(raw)
            except UnicodeDecodeError:  # not a valid request target: leave it to routing
                path = None
            # only when the server's decoded path is this one's decoding (same root path)
            if path is not None and unquote(path) == scope["path"]:
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)
