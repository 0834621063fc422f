"""Error answers of the query APIs: 400 naming the bad parameter, 404, ..."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorBody(BaseModel):
    error: str = Field(description="bad_request, unauthorized, not_found, ...")
    message: str = Field(description="What was wrong; a bad parameter is named")


_MEANINGS = {
    400: "A parameter is invalid (the message names it)",
    401: "No API key, or an unknown one",
    404: "Unknown session, span or project (or one of another project than the key's)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error status codes."""
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]} for code in codes}


def bad_parameter(name: str, problem: str) -> HTTPException:
    return HTTPException(400, f"invalid parameter {name!r}: {problem}")


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")


def _describe(error: dict[str, Any]) -> str:
    location: tuple[Any, ...] = tuple(error.get("loc") or ())
    parts = [str(p) for p in location if isinstance(p, str | int)]
    where, name = (parts[0], ".".join(parts[1:])) if len(parts) > 1 else ("request", "".join(parts))
    return f"invalid {where} parameter {name!r}: {error.get('msg', 'invalid value')}"


def install_openapi(app: FastAPI) -> None:
    """`GET /openapi.json` without FastAPI's 422 answers: validation errors are 400s here."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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
