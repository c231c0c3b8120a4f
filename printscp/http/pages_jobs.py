"""The pages of print jobs and printers: the print queue (``/``), a job
(``/jobs/{id}``) and the printers (``/printers``).

Each renders the dict its JSON twin under ``/api/`` returns (the same function builds
both), so the page and a script reading the API never disagree.  Actions are buttons
whose small script sends the API request (with the CSRF header) and reloads the page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from printscp import __version__
from printscp.http import printer_status
from printscp.http.api import jobs as jobs_api
from printscp.http.auth import User, viewer
from printscp.http.errors import ApiError
from printscp.http.pages import TEMPLATES
from printscp.http.paging import MAX_OFFSET
from printscp.jobs.state import HELD_INFO

router = APIRouter(include_in_schema=False, dependencies=[Depends(viewer)])

Viewer = Annotated[User, Depends(viewer)]

#: Jobs per page of the print queue.
PAGE_SIZE = 50
#: Seconds between two looks at the queue while jobs are PENDING or PRINTING.
REFRESH_SECONDS = 3


def render(request: Request, name: str, user: User, twin: str, status: int = 200,
           **context: Any) -> Response:
    """``name`` rendered with what every page gets (``base.html``'s context)."""
    return TEMPLATES.TemplateResponse(request, name, {
        "console": request.app.state.console, "user": user, "version": __version__,
        "twin": twin, **context}, status_code=status)


def _query(params: dict[str, Any]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return ("?" + urlencode(clean)) if clean else ""


def reprint_choices(config: Any) -> list[dict[str, str]]:
    """Where a job may be reprinted: each printer with all its targets, then each of
    its targets alone (``value`` is ``printer|target``)."""
    out = []
    for _, p in printer_status.profiles(config):
        out.append({"value": f"{p.name}|", "label": f"{p.name}: all targets"})
        for t in printer_status.profile_targets(config, p):
            out.append({"value": f"{p.name}|{t.label}", "label": f"{p.name}: only {t.label}"})
    return out


@router.get("/", response_class=HTMLResponse)
def queue_page(request: Request, user: Viewer, calling_ae: str | None = None,
               printer: str | None = None, state: str | None = None,
               since: str | None = None, until: str | None = None, label: str | None = None,
               offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> Response:
    """The print queue: the newest jobs, filtered, with their thumbnails."""
    console = request.app.state.console
    filters = {"calling_ae": calling_ae, "printer": printer, "state": state,
               "since": since, "until": until, "label": label}
    error, status = "", 200
    try:
        data = jobs_api.job_list(console, request, **filters, limit=PAGE_SIZE, offset=offset)
    except ApiError as exc:
        error, status = exc.message, exc.status
        data = {"jobs": [], "total": 0, "limit": PAGE_SIZE, "offset": 0, "active": 0}
    query = _query({**filters})
    pages = {
        "previous": _query({**filters, "offset": max(0, offset - PAGE_SIZE)})
        if offset > 0 else None,
        "next": _query({**filters, "offset": offset + PAGE_SIZE})
        if offset + PAGE_SIZE < data["total"] else None,
    }
    return render(request, "queue.html", user, "/api/jobs" + _query(
        {**filters, "limit": PAGE_SIZE, "offset": offset or None}), status,
        data=data, filters=filters, error=error, pages=pages, query=query,
        states=jobs_api.STATES, printers=[p.name for _, p in
                                          printer_status.profiles(console.config)],
        refresh=REFRESH_SECONDS if data["active"] else 0,
        choices=reprint_choices(console.config))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, user: Viewer) -> Response:
    """One job: film previews, the true-size PDF, attributes, deliveries, events."""
    console = request.app.state.console
    try:
        job = jobs_api.job_detail(console, job_id, request)
    except ApiError as exc:
        return render(request, "job.html", user, f"/api/jobs/{job_id}", exc.status,
                      job=None, error=exc.message, job_id=job_id, choices=[], refresh=0)
    active = job["state"] in jobs_api.ACTIVE_STATES and job["status_info"] != HELD_INFO
    return render(request, "job.html", user, job["url"], job=job, error="", job_id=job_id,
                  choices=reprint_choices(console.config),
                  refresh=REFRESH_SECONDS if active else 0)


@router.get("/printers", response_class=HTMLResponse)
def printers_page(request: Request, user: Viewer) -> Response:
    """Every printer profile: status, what it supports, targets, calibration."""
    console = request.app.state.console
    return render(request, "printers.html", user, "/api/printers",
                  printers=printer_status.all_printers(console.config))
