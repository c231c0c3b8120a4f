"""The console's FastAPI application: the API under ``/api/``, the pages, the
operations endpoints (``/metrics``, ``/healthz``, ``/readyz``) and the static assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from printscp import __version__
from printscp.http import errors
from printscp.http.context import Console

STATIC = Path(__file__).parent / "static"


def create_app(console: Console) -> FastAPI:
    """The application serving ``console``; ``app.state.console`` is it."""
    from printscp.http import dicomweb, login, ops, pages, pages_jobs
    from printscp.http.api import archive, jobs, node, printers, workflow

    app = FastAPI(title="printscp", version=__version__, openapi_url="/api/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="The printscp node's REST API: print jobs and their films, "
                  "printers, the archive, worklist and MPPS, the node itself.")
    app.state.console = console
    errors.install(app)
    for module in (jobs, printers, archive, workflow, node):
        app.include_router(module.router, prefix="/api")
    app.include_router(ops.router)
    app.include_router(dicomweb.router)  # /dicom-web: QIDO-RS, WADO-RS, STOW-RS (PS3.18)
    app.include_router(pages_jobs.router)
    app.include_router(pages.router)
    login.install(app)  # sessions, API tokens, CSRF, /login and /logout
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _describe_errors(app)
    return app


def _describe_errors(app: FastAPI) -> None:
    """The OpenAPI document says what the API answers to a bad value: 400 with the
    error shape of :mod:`printscp.http.errors` (FastAPI would document its own 422)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = {
            "type": "object", "required": ["error"], "title": "Error",
            "properties": {"error": {"type": "string", "description": "What went wrong"},
                           "field": {"type": "string", "description":
                                     "The bad value's place: query.limit, body.printer..."}}}
        ref = {"$ref": "#/components/schemas/Error"}
        error = {"description": "A bad value; `field` names it",
                 "content": {"application/json": {"schema": ref}}}
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses["400"] = error
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
