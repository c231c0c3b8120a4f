"""Operations endpoints: ``/metrics`` (Prometheus text format), ``/healthz`` (the process
answers) and ``/readyz`` (the node can take work: DICOM port listening, databases and
spool writable, disk above the failure threshold).

``/healthz`` and ``/readyz`` answer without sign-in, as load balancers and
orchestrators probe them; they tell no patient data.  ``/metrics`` carries calling AE
titles and printer names, so it asks for a viewer like the API (Prometheus sends an API
token: ``authorization: {credentials: ...}`` in its scrape configuration).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from printscp.http import health, metrics
from printscp.http.auth import viewer

router = APIRouter(tags=["operations"])


@router.get("/metrics", dependencies=[Depends(viewer)],
            summary="Prometheus metrics of every process of the node",
            response_class=Response)
async def get_metrics(request: Request) -> Response:
    console = request.app.state.console
    body, content_type = await asyncio.to_thread(metrics.render, console.data_dir,
                                                 console.config)
    return Response(body, media_type=content_type)


@router.get("/healthz", summary="The process answers")
async def get_healthz() -> dict[str, Any]:
    return health.healthz()


@router.get("/readyz", summary="Ready for work: 200, or 503 naming the failed checks")
async def get_readyz(request: Request) -> JSONResponse:
    console = request.app.state.console
    port = console.dicom_port()
    ok, checks = await asyncio.to_thread(health.readyz, console.data_dir, console.config,
                                         port if port is not None else console.config.port)
    failed = [name for name, check in checks.items() if not check["ok"]]
    return JSONResponse({"ready": ok, "failed": failed, "checks": checks},
                        status_code=200 if ok else 503)
