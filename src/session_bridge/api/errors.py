"""Error answers of the query APIs: 400 naming the bad parameter, 404, ..."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def bad_parameter(name: str, problem: str) -> HTTPException:
    return HTTPException(400, f"invalid parameter {name!r}: {problem}")


def _describe(error: dict[str, Any]) -> str:
    location: tuple[Any, ...] = tuple(error.get("loc") or ())
    parts = [str(p) for p in location if isinstance(p, str | int)]
    where, name = (parts[0], ".".join(parts[1:])) if len(parts) > 1 else ("request", "".join(parts))
    return f"invalid {where} parameter {name!r}: {error.get('msg', 'invalid value')}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = [_describe(e) for e in exc.errors()]
        return JSONResponse(
            {"error": "bad_request", "message": "; ".join(messages)}, status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {
            400: "bad_request",
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "error")
        return JSONResponse(
            {"error": kind, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
