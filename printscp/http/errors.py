"""The API's errors: one JSON shape, ``{"error": "...", "field": "..."}``, and the HTTP
status that says what went wrong (400 bad value, 401/403 who you are, 404 unknown,
409 not in this state).  Validation errors of FastAPI name the field the same way."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """Raised by a route: answered as ``status`` with ``message`` and, for a bad value,
    the ``field`` it names (``query.limit``, ``body.printer``...)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def body(message: str, field: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"error": message}
    if field:
        out["field"] = field
    return out


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the API's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.message, exc.field), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        where = _field(first.get("loc", ()))
        return JSONResponse(
            {**body(f"{where}: {first.get('msg', 'invalid')}", where),
             "errors": [{"field": _field(p.get("loc", ())), "message": p.get("msg", "")}
                        for p in problems]},
            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(body(str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
