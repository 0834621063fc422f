"""The sessions page: static HTML and JavaScript shipped in the package (no build step,
nothing fetched from elsewhere), reading the query APIs like any other client."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles


def install_ui(app: FastAPI) -> None:
    """`/ui/` serves `session_bridge/static/`; `/` redirects there."""
    app.mount("/ui", StaticFiles(packages=[("session_bridge", "static")], html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")
