"""The web pages: server-rendered from the same data as their JSON twins under /api/.

Each page is one template extending ``base.html``, given ``request``, ``console``,
``user``, ``version`` and ``twin`` (the URL of its JSON twin) by :func:`render`, plus
what the page shows, computed by the same functions the API routes call.  The pages
work without script; ``console.js`` adds local times, auto-refresh and the actions.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from printscp import __version__
from printscp.http import auth
from printscp.http.auth import User, viewer
from printscp.http.errors import ApiError
from printscp.http.paging import MAX_OFFSET

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False, dependencies=[Depends(viewer)])
Viewer = Annotated[User, Depends(viewer)]


# -- what templates use ---------------------------------------------------------------

def filesize(value: Any) -> str:
    """Bytes for people: 1.4 MB, 930 kB, 12 B."""
    try:
        size = float(value or 0)
    except (TypeError, ValueError):
        return ""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def dicom_date(value: Any) -> str:
    """A DA value (``20240105``) as ``2024-01-05``; anything else unchanged."""
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def dicom_time(value: Any) -> str:
    """A TM value (``101500.000``) as ``10:15:00`` (or ``10:15``)."""
    text = str(value or "").split(".")[0]
    if len(text) >= 4 and text[:4].isdigit():
        return ":".join(text[i:i + 2] for i in range(0, min(len(text), 6), 2))
    return text


def duration(seconds: Any) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``4 min 10 s``, ``12 s``."""
    try:
        s = int(float(seconds))
    except (TypeError, ValueError):
        return ""
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def person(value: Any) -> str:
    """A PN value for people: ``DOE^JANE^^DR`` -> ``DOE, JANE DR`` (the alphabetic
    group; an empty name stays empty)."""
    parts = [p.strip() for p in str(value or "").split("=")[0].split("^")]
    family, rest = (parts[0], [p for p in parts[1:] if p]) if parts else ("", [])
    return ", ".join(x for x in (family, " ".join(rest)) if x)


def state_class(value: Any) -> str:
    """A state as a CSS class of ``.badge`` (``IN PROGRESS`` -> ``IN_PROGRESS``)."""
    return str(value or "").upper().replace(" ", "_")


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return request.url.path + ("?" + urlencode(params) if params else "")


TEMPLATES.env.filters.update(filesize=filesize, dicom_date=dicom_date, dicom_time=dicom_time,
                             duration=duration, state_class=state_class, person=person,
                             tojson_pretty=lambda v: json.dumps(v, indent=2, default=str))
TEMPLATES.env.globals.update(with_query=with_query)
if hasattr(auth, "csrf_token"):  # the sign-out form of base.html posts it
    TEMPLATES.env.globals.setdefault("csrf_token", auth.csrf_token)


def render(request: Request, template: str, user: User | None, *, twin: str | None = None,
           status_code: int = 200, **values: Any) -> HTMLResponse:
    """``template`` with the context every page has, and ``values``."""
    context = {"console": request.app.state.console, "user": user, "version": __version__,
               "twin": twin, **values}
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def _twin(path: str, request: Request) -> str:
    query = str(request.query_params)
    return path + ("?" + query if query else "")


# -- archive --------------------------------------------------------------------------

PAGE_SIZE = 50


@router.get("/archive", response_class=HTMLResponse)
def archive_page(request: Request, user: Viewer,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                 q: str | None = None, patient_id: str | None = None,
                 patient_name: str | None = None, modality: str | None = None,
                 since: str | None = None, until: str | None = None) -> HTMLResponse:
    from printscp.archive import browse
    from printscp.http.api.archive import study_links

    archive = request.app.state.console.archive
    filters = {"q": q or "", "patient_id": patient_id or "", "patient_name": patient_name or "",
               "modality": modality or "", "since": since or "", "until": until or ""}
    problem = ""
    items: list[dict[str, Any]] = []
    total = 0
    if archive is not None:
        try:
            chosen = browse.StudyFilter(
                patient_id or None, patient_name or None, _day(since, "since"),
                _day(until, "until"), modality or None, q or None)
        except ApiError as exc:
            problem, chosen = exc.message, browse.StudyFilter()
        items, total = browse.studies(archive, chosen, limit=PAGE_SIZE, offset=offset)
        for item in items:
            item["links"] = study_links(item["study_uid"])
    return render(request, "archive.html", user, twin=_twin("/api/archive/studies", request),
                  studies=items, total=total, offset=offset, page_size=PAGE_SIZE,
                  filters=filters, problem=problem, enabled=archive is not None)


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name}: {text!r} is not a date (YYYY-MM-DD)",
                       f"query.{name}") from None


@router.get("/archive/studies/{uid}", response_class=HTMLResponse)
def study_page(request: Request, uid: str, user: Viewer) -> HTMLResponse:
    from printscp.http.api.archive import get_study

    study = get_study(request, uid)
    return render(request, "archive_study.html", user, twin=f"/api/archive/studies/{uid}",
                  study=study)


# -- workflow -------------------------------------------------------------------------

@router.get("/workflow", response_class=HTMLResponse)
def workflow_page(request: Request, user: Viewer) -> HTMLResponse:
    from printscp.archive import browse
    from printscp.http.api.workflow import mpps_steps, worklist_items
    from printscp.mpps.steps import STATUSES
    from printscp.worklist.importing import COLUMNS

    console = request.app.state.console
    steps, steps_total = mpps_steps(console, limit=200)
    commitments = browse.commitments(console.data_dir, 200)
    return render(request, "workflow.html", user, twin="/api/workflow/worklist",
                  worklist=worklist_items(console), worklist_enabled=console.worklist
                  is not None, steps=steps, steps_total=steps_total, statuses=STATUSES,
                  commitments=commitments,
                  commitments_owed=sum(not c["delivered"] for c in commitments),
                  item_fields=COLUMNS)


# -- node -----------------------------------------------------------------------------

@router.get("/node", response_class=HTMLResponse)
def node_page(request: Request, user: Viewer, level: str | None = None,
              text: str | None = None) -> HTMLResponse:
    from printscp.core import audit
    from printscp.http.api.node import LOG_LEVELS, live_associations, log_lines, node_info

    console = request.app.state.console
    problem = ""
    try:
        lines = log_lines(console, level or None, text or None, 200)
    except ApiError as exc:
        problem, lines = exc.message, log_lines(console, None, text or None, 200)
    return render(request, "node.html", user, twin="/api/node", node=node_info(console, request),
                  associations=live_associations(console), lines=lines,
                  levels=LOG_LEVELS, level=(level or "").upper(), text=text or "",
                  problem=problem, audit_lines=audit.read(console.data_dir, 50))
