"""The sessions page: static HTML, JavaScript and a vendored charting library shipped in
the package (no build step, nothing fetched from elsewhere), reading the query APIs like
any other client.

Every page response carries a Content-Security-Policy that allows scripts and styles
from the bridge only: no inline script, no `eval`, no other origin. The page inserts
span data as text; the policy is the second wall should anything slip through.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _PageFiles(StaticFiles):
    """StaticFiles whose every answer carries `PAGE_HEADERS`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def install_ui(app: FastAPI) -> None:
    """`/ui/` serves `session_bridge/static/`; `/` redirects there (keeping the query, so
    a shared link to `/?session=...` opens that session)."""
    app.mount("/ui", _PageFiles(packages=[("session_bridge", "static")], html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse("/ui/" + (f"?{query}" if query else ""), headers=PAGE_HEADERS)
