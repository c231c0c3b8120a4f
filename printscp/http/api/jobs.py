"""The jobs API (issue 16 section 3): print jobs, their films, and what an administrator
does to them (reprint, cancel, hold, release, delete).

One function per resource returns a plain dict (:func:`job_list`, :func:`job_detail`);
the routes answer it as JSON through the response models (which is what
``/api/openapi.json`` describes), the pages (:mod:`printscp.http.pages_jobs`) render the
same dict.  Every action goes through :class:`printscp.jobs.control.JobControl`, the call
the command line makes too, and leaves one line in the audit trail.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from printscp.core import audit
from printscp.http.auth import User, admin, viewer
from printscp.http.errors import ApiError
from printscp.http.paging import MAX_OFFSET

router = APIRouter(tags=["jobs"], dependencies=[Depends(viewer)])
#: The user of a route that acts: an admin.
Admin = Annotated[User, Depends(admin)]

#: Execution Status values a job can be listed by (PS3.3 C.13.9.1), and HELD and
#: CANCELED (PENDING held, FAILURE cancelled: the index selects them by their info).
STATES = ("PENDING", "PRINTING", "DONE", "FAILURE", "HELD", "CANCELED")
#: States in which a job may still change by itself (the queue page refreshes then).
ACTIVE_STATES = ("PENDING", "PRINTING")
#: What can be done to a job, in the order the pages offer it.
ACTIONS = ("reprint", "hold", "release", "cancel", "delete")
#: Width of the thumbnails in job lists.
THUMBNAIL_WIDTH = 160
#: Widths a film preview may be asked at (those :mod:`printscp.jobs.preview` renders).
MIN_WIDTH, MAX_WIDTH = 64, 2048
#: Most jobs one list page holds.
MAX_LIMIT = 500

#: Film Session / Film Box / Image Box attributes as recorded in a job -> DICOM keyword.
KEYWORDS = {
    "number_of_copies": "NumberOfCopies", "print_priority": "PrintPriority",
    "medium_type": "MediumType", "film_destination": "FilmDestination",
    "film_session_label": "FilmSessionLabel", "memory_allocation": "MemoryAllocation",
    "owner_id": "OwnerID",
    "image_display_format": "ImageDisplayFormat", "film_orientation": "FilmOrientation",
    "film_size_id": "FilmSizeID", "magnification_type": "MagnificationType",
    "smoothing_type": "SmoothingType", "border_density": "BorderDensity",
    "empty_image_density": "EmptyImageDensity", "min_density": "MinDensity",
    "max_density": "MaxDensity", "trim": "Trim",
    "configuration_information": "ConfigurationInformation", "illumination": "Illumination",
    "reflected_ambient_light": "ReflectedAmbientLight",
    "requested_resolution_id": "RequestedResolutionID",
    "annotation_display_format_id": "AnnotationDisplayFormatID",
    "position": "ImageBoxPosition", "photometric_interpretation": "PhotometricInterpretation",
    "bits_stored": "BitsStored", "polarity": "Polarity",
    "requested_image_size": "RequestedImageSize",
    "requested_decimate_crop_behavior": "RequestedDecimateCropBehavior",
    "pixel_aspect_ratio": "PixelAspectRatio",
}


# -- response models ----------------------------------------------------------------------
class JobSummary(BaseModel):
    """One job in a list."""

    job_id: str
    state: str = Field(description="Execution Status: PENDING, PRINTING, DONE, FAILURE")
    status_info: str = Field("", description="Execution Status Info (QUEUED, JOB HELD...)")
    printer: str = ""
    calling_ae: str = ""
    called_ae: str = ""
    label: str = Field("", description="Film Session Label")
    created: str | None = None
    finished: str | None = None
    films: int = 0
    error: str = ""
    url: str = Field(description="The job's JSON")
    page: str = Field(description="The job's web page")
    thumbnail: str | None = Field(None, description="PNG preview of the first film")


class JobList(BaseModel):
    jobs: list[JobSummary]
    total: int = Field(description="Jobs matching the filters, all pages")
    limit: int
    offset: int
    active: int = Field(0, description="Jobs on this page still PENDING or PRINTING")


class Delivery(BaseModel):
    """Where one target of the job stands."""

    target: str
    kind: str = ""
    state: str = Field(description="pending, done, failed or cancelled")
    attempts: int = 0
    last_error: str = ""
    info: str = ""
    next_attempt: str | None = None
    cups_job_id: int | None = None
    result: dict[str, Any] = Field(default_factory=dict)


class JobEvent(BaseModel):
    """A Print Job state change."""

    time: str | None = None
    state: str = ""
    status_info: str = ""
    detail: str = ""


class ImageBox(BaseModel):
    position: int
    attributes: dict[str, Any]


class Film(BaseModel):
    """One Film Box of the job."""

    number: int = Field(description="1-based")
    attributes: dict[str, Any] = Field(description="Film Box attributes by DICOM keyword")
    image_boxes: list[ImageBox] = Field(default_factory=list)
    annotations: dict[str, str] = Field(default_factory=dict)
    pdf: str | None = Field(None, description="The film's PDF (true size)")
    preview: str | None = Field(None, description="PNG preview; add ?width=W")


class JobDetail(BaseModel):
    job_id: str
    state: str
    status_info: str = ""
    print_job_uid: str = Field("", description="Print Job SOP Instance UID")
    printer: str = ""
    calling_ae: str = ""
    called_ae: str = ""
    peer: str = ""
    label: str = ""
    created: str | None = None
    finished: str | None = None
    error: str = ""
    session: dict[str, Any] = Field(description="Film Session attributes by DICOM keyword")
    films: list[Film]
    deliveries: list[Delivery]
    events: list[JobEvent]
    outputs: list[str] = Field(default_factory=list, description="Files written")
    reprint_of: str | None = None
    reprintable: bool = Field(True, description="Its source (pixels) is still kept")
    actions: list[str] = Field(description="What may be done to it now")
    url: str
    page: str


class ReprintRequest(BaseModel):
    printer: str | None = Field(None, description="Printer profile (its name); default: "
                                "the job's own")
    target: str | None = Field(None, description="Only this target (label) of the printer")


class Created(BaseModel):
    job_id: str
    url: str


class ActionResult(BaseModel):
    job_id: str
    state: str = ""
    status_info: str = ""


class BulkRequest(BaseModel):
    action: Literal["reprint", "cancel", "hold", "release", "delete"]
    job_ids: list[str] = Field(min_length=1, max_length=MAX_LIMIT)
    printer: str | None = None
    target: str | None = None


class BulkItem(BaseModel):
    job_id: str
    ok: bool
    status: int = Field(description="The HTTP status the single action would have had")
    error: str = ""
    new_job_id: str | None = None


class BulkResult(BaseModel):
    action: str
    results: list[BulkItem]
    ok: int
    failed: int


# -- the domain, as the console holds it ---------------------------------------------------
def control(console: Any) -> Any:
    """The node's :class:`~printscp.jobs.control.JobControl` (``Console.job_control``)."""
    return console.job_control


#: Seconds the job index may go without a catch-up sync while the queue is viewed.
SYNC_AGE = 5.0


def _errors() -> tuple[type[Exception], type[Exception]]:
    from printscp.jobs.control import JobNotFound, JobStateError

    return JobNotFound, JobStateError


# -- URLs ---------------------------------------------------------------------------------
def _base(request: Request | None) -> str:
    return str(request.scope.get("root_path", "")) if request is not None else ""


def job_url(request: Request | None, job_id: str) -> str:
    return f"{_base(request)}/api/jobs/{quote(job_id, safe='')}"


def job_page(request: Request | None, job_id: str) -> str:
    return f"{_base(request)}/jobs/{quote(job_id, safe='')}"


def film_url(request: Request | None, job_id: str, number: int, ext: str) -> str:
    return f"{job_url(request, job_id)}/films/{number}.{ext}"


# -- reading ------------------------------------------------------------------------------
def _parse_time(value: str | None, field: str, end: bool = False) -> str | None:
    """An ISO date or date-time from a query string, as a UTC ISO timestamp; a date
    alone is its whole day in the node's local time (``until``: up to its end, the
    bound being exclusive)."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            when = datetime.combine(day, time.min).astimezone()
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.astimezone()
    except ValueError:
        raise ApiError(400, f"{field}: {value!r} is not a date (YYYY-MM-DD) or an ISO "
                       "date-time", field) from None
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _state(value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    state = value.strip().upper()
    if state not in STATES:
        raise ApiError(400, f"query.state: {value!r} is not one of {', '.join(STATES)}",
                       "query.state")
    return state


def _text(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _label(job: dict[str, Any]) -> str:
    label = job.get("label", job.get("film_session_label"))
    if label is None:
        label = (job.get("session") or {}).get("film_session_label")
    return str(label or "")


def _film_count(job: dict[str, Any]) -> int:
    films = job.get("films", job.get("film_count", 0))
    if isinstance(films, list):
        return len(films)
    try:
        return int(films or 0)
    except (TypeError, ValueError):
        return 0


def summary(request: Request | None, job: dict[str, Any]) -> dict[str, Any]:
    """A job of the index (or a job record) as the list shows it."""
    job_id = str(job["job_id"])
    films = _film_count(job)
    return {
        "job_id": job_id, "state": str(job.get("state") or job.get("status") or ""),
        "status_info": str(job.get("status_info") or ""),
        "printer": str(job.get("printer") or ""), "calling_ae": str(job.get("calling_ae") or ""),
        "called_ae": str(job.get("called_ae") or ""), "label": _label(job),
        "created": job.get("created"), "finished": job.get("finished"), "films": films,
        "error": str(job.get("error") or ""),
        "url": job_url(request, job_id), "page": job_page(request, job_id),
        "thumbnail": (film_url(request, job_id, 1, "png") + f"?width={THUMBNAIL_WIDTH}")
        if films else None,
    }


def job_list(console: Any, request: Request | None = None, *, calling_ae: str | None = None,
             printer: str | None = None, state: str | None = None, since: str | None = None,
             until: str | None = None, label: str | None = None, limit: int = 50,
             offset: int = 0) -> dict[str, Any]:
    """The jobs matching the filters, newest first, one page of them (``limit`` from
    ``offset``); values as typed in a form or a query string (ISO dates)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"query.limit: {limit} is out of range; expected 1-{MAX_LIMIT}",
                       "query.limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiError(400, f"query.offset: {offset} is out of range; expected 0-{MAX_OFFSET}",
                       "query.offset")
    filters = {"calling_ae": _text(calling_ae), "printer": _text(printer),
               "state": _state(state), "since": _parse_time(since, "query.since"),
               "until": _parse_time(until, "query.until", end=True), "label": _text(label)}
    # Every spool records its jobs as they change; a sync now and then catches up what
    # no running spool wrote (a job finished before the console started, a CLI action).
    console.job_index.maybe_sync(SYNC_AGE)
    rows, total = console.job_index.query(**filters, limit=limit, offset=offset)
    jobs = [summary(request, row) for row in rows]
    return {"jobs": jobs, "total": int(total), "limit": limit, "offset": offset,
            "active": sum(j["state"] in ACTIVE_STATES for j in jobs),
            "filters": {k: v for k, v in (("calling_ae", calling_ae), ("printer", printer),
                                          ("state", state), ("since", since),
                                          ("until", until), ("label", label)) if v}}


def _attributes(record: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if key in skip or value is None or value == "" or (
                isinstance(value, dict | list)
                and key not in ("pixel_aspect_ratio", "requested_image_size")):
            continue
        out[KEYWORDS.get(key, key)] = value
    return out


def _film(request: Request | None, job_id: str, number: int, record: dict[str, Any],
          has_pdf: bool, has_source: bool) -> dict[str, Any]:
    boxes = [{"position": int(b.get("position", i + 1)),
              "attributes": _attributes(b, ("pixels", "position"))}
             for i, b in enumerate(record.get("image_boxes") or [])]
    notes = record.get("annotations") or {}
    return {"number": number,
            "attributes": _attributes(record, ("image_boxes", "annotations", "custom_layouts",
                                               "presentation_lut", "annotation_boxes",
                                               "index")),
            "image_boxes": boxes, "annotations": {str(k): str(v) for k, v in notes.items()},
            "pdf": film_url(request, job_id, number, "pdf") if has_pdf else None,
            "preview": film_url(request, job_id, number, "png") if has_source else None}


def _delivery(d: dict[str, Any]) -> dict[str, Any]:
    result = d.get("result") or {}
    cups = d.get("cups_job_id")
    if cups is None and isinstance(result, dict):
        cups = result.get("cups_job_id")
    next_attempt = d.get("next_attempt")
    when = None
    if isinstance(next_attempt, int | float) and next_attempt > 0 \
            and d.get("state") == "pending":
        when = datetime.fromtimestamp(next_attempt, UTC).isoformat(timespec="seconds")
    return {"target": str(d.get("label") or d.get("target") or "?"),
            "kind": str(d.get("kind") or ""), "state": str(d.get("state") or ""),
            "attempts": int(d.get("attempts") or 0), "last_error": str(d.get("last_error") or ""),
            "info": str(d.get("info") or ""), "next_attempt": when,
            "cups_job_id": cups if isinstance(cups, int) else None,
            "result": result if isinstance(result, dict) else {}}


def _event(e: dict[str, Any]) -> dict[str, Any]:
    return {"time": e.get("time"), "state": str(e.get("state") or e.get("status") or ""),
            "status_info": str(e.get("status_info") or ""), "detail": str(e.get("detail") or "")}


def job_detail(console: Any, job_id: str, request: Request | None = None) -> dict[str, Any]:
    """Everything about one job: its attributes, films, deliveries and events; 404 if
    the node knows no such job."""
    job = _job_record(console, job_id)
    state = str(job.get("state") or job.get("status") or "")
    info = str(job.get("status_info") or "")
    outputs = [str(p) for p in job.get("outputs") or ([job["output"]] if job.get("output")
                                                      else [])]
    has_pdf = _job_pdf(job) is not None
    reprintable = bool(job.get("reprintable", True))
    films = job.get("films") or []
    events = job.get("events")
    if events is None:
        events = console.job_index.events(job_id)
    actions = job.get("actions") or {}
    return {
        "job_id": job_id, "state": state, "status_info": info,
        "print_job_uid": str(job.get("print_job_uid") or ""),
        "printer": str(job.get("printer") or ""), "calling_ae": str(job.get("calling_ae") or ""),
        "called_ae": str(job.get("called_ae") or ""), "peer": str(job.get("peer") or ""),
        "label": _label(job), "created": job.get("created"), "finished": job.get("finished"),
        "error": str(job.get("error") or ""),
        "session": _attributes(job.get("session") or {}),
        "films": [_film(request, job_id, n, rec if isinstance(rec, dict) else {}, has_pdf,
                        reprintable) for n, rec in enumerate(films, start=1)],
        "deliveries": [_delivery(d) for d in job.get("deliveries") or []
                       if isinstance(d, dict)],
        "events": [_event(e) for e in events or [] if isinstance(e, dict)],
        "outputs": outputs, "reprint_of": job.get("reprint_of") or None,
        "reprintable": reprintable,
        "actions": [name for name in ACTIONS if actions.get(name)],
        "url": job_url(request, job_id), "page": job_page(request, job_id),
    }


def _job_pdf(job: dict[str, Any]) -> Path | None:
    """The PDF the job's film file target wrote (the first one), if it still exists."""
    for path in [*(job.get("outputs") or []), job.get("output") or ""]:
        if str(path).lower().endswith(".pdf") and Path(path).is_file():
            return Path(path)
    return None


# -- acting -------------------------------------------------------------------------------
def act(console: Any, action: str, job_id: str, user: User, source: str,
        printer: str | None = None, target: str | None = None) -> dict[str, Any]:
    """Do ``action`` to job ``job_id`` through JobControl, audited whatever the outcome;
    :class:`ApiError` 404 unknown job, 409 wrong state, 400 bad printer/target."""
    not_found, state_error = _errors()
    jobs = control(console)
    details: dict[str, Any] = {}
    if action == "reprint":
        details = {k: v for k, v in (("printer", printer), ("to_target", target)) if v}
    try:
        if action == "reprint":
            new_id = jobs.reprint(job_id, printer=printer or None, target=target or None)
            out: dict[str, Any] = {"job_id": str(new_id)}
            details["new_job_id"] = str(new_id)
        else:
            done = getattr(jobs, action)(job_id)
            out = {"job_id": job_id, **(done if isinstance(done, dict) else {})}
    except not_found:
        _audit(console, action, job_id, user, source, "not found", details)
        raise ApiError(404, f"no print job {job_id}") from None
    except state_error as exc:
        _audit(console, action, job_id, user, source, "refused", details, str(exc))
        raise ApiError(409, str(exc)) from None
    except (ValueError, KeyError) as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        field = "body.target" if message.startswith("target") else \
            "body.printer" if message.startswith("printer") or printer else \
            "body.target" if target else None
        _audit(console, action, job_id, user, source, "refused", details, message)
        raise ApiError(400, message, field) from None
    _audit(console, action, job_id, user, source, "success", details)
    return out


def _audit(console: Any, action: str, job_id: str, user: User, source: str, outcome: str,
           details: dict[str, Any], error: str = "") -> None:
    extra = dict(details)
    if error:
        extra["error"] = error
    audit.record(console.data_dir, f"job.{action}", job_id, user=user.name, source=source,
                 outcome=outcome, **extra)


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


# -- routes -------------------------------------------------------------------------------
@router.get("/jobs", response_model=JobList, summary="Print jobs, newest first")
def get_jobs(request: Request,
             calling_ae: str | None = Query(None, description="Calling AE title"),
             printer: str | None = Query(None, description="Printer profile name"),
             state: str | None = Query(None, description="PENDING, PRINTING, DONE, FAILURE, "
                                       "HELD or CANCELED"),
             since: str | None = Query(None, description="Created at or after (ISO)"),
             until: str | None = Query(None, description="Created before (ISO; a date: "
                                       "up to its end)"),
             label: str | None = Query(None, description="Film Session Label"),
             limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0, le=MAX_OFFSET)
             ) -> dict[str, Any]:
    return job_list(request.app.state.console, request, calling_ae=calling_ae,
                    printer=printer, state=state, since=since, until=until, label=label,
                    limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobDetail, summary="One print job")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    return job_detail(request.app.state.console, job_id, request)


@router.post("/jobs/bulk", response_model=BulkResult, summary="One action on many jobs")
def bulk(body: BulkRequest, request: Request, user: Admin) -> dict[str, Any]:
    console = request.app.state.console
    results = []
    for job_id in dict.fromkeys(body.job_ids):
        try:
            out = act(console, body.action, job_id, user, _source(request),
                      body.printer, body.target)
            results.append({"job_id": job_id, "ok": True, "status": 200,
                            "new_job_id": out["job_id"] if body.action == "reprint" else None})
        except ApiError as exc:
            results.append({"job_id": job_id, "ok": False, "status": exc.status,
                            "error": exc.message})
    ok = sum(r["ok"] for r in results)
    return {"action": body.action, "results": results, "ok": ok, "failed": len(results) - ok}


@router.post("/jobs/{job_id}/reprint", response_model=Created, status_code=201,
             summary="Print the same films again (same or another printer / target)")
def reprint(job_id: str, request: Request, user: Admin,
            body: ReprintRequest | None = None) -> dict[str, Any]:
    body = body or ReprintRequest()
    out = act(request.app.state.console, "reprint", job_id, user, _source(request),
              body.printer, body.target)
    return {"job_id": out["job_id"], "url": job_url(request, out["job_id"])}


def _simple(action: str) -> Any:
    def route(job_id: str, request: Request, user: Admin) -> dict[str, Any]:
        out = act(request.app.state.console, action, job_id, user, _source(request))
        return {"job_id": job_id, "state": str(out.get("state") or ""),
                "status_info": str(out.get("status_info") or "")}

    route.__name__ = f"{action}_job"
    return route


for _action, _what in (("cancel", "Cancel a pending or held job (FAILURE, JOB CANCELED)"),
                       ("hold", "Hold a pending job: it is not printed until released"),
                       ("release", "Release a held job")):
    router.add_api_route(f"/jobs/{{job_id}}/{_action}", _simple(_action), methods=["POST"],
                         response_model=ActionResult, summary=_what)


@router.delete("/jobs/{job_id}", response_model=ActionResult,
               summary="Delete a finished job: its record, films and source")
def delete(job_id: str, request: Request, user: Admin) -> dict[str, Any]:
    act(request.app.state.console, "delete", job_id, user, _source(request))
    return {"job_id": job_id, "state": "DELETED", "status_info": ""}


@router.get("/jobs/{job_id}/films/{number}.pdf", response_class=FileResponse,
            summary="The film's PDF (true size)",
            responses={200: {"content": {"application/pdf": {}}}})
def film_pdf(job_id: str, number: int, request: Request) -> Response:
    console = request.app.state.console
    path = film_pdf_path(console, job_id, number)
    return FileResponse(path, media_type="application/pdf",
                        headers={"Content-Disposition":
                                 f'inline; filename="{quote(job_id)}-film{number}.pdf"',
                                 "Cache-Control": "private, max-age=60"})


def film_pdf_path(console: Any, job_id: str, number: int) -> Path:
    """The PDF of film ``number`` of the job (404 when the job, the film or the file is
    not there)."""
    detail = _job_record(console, job_id)
    films = detail.get("films") or []
    if not 1 <= number <= len(films):
        raise ApiError(404, f"job {job_id} has {len(films)} film(s); no film {number}")
    path = _job_pdf(detail)
    if path is None:
        raise ApiError(404, f"job {job_id} has no PDF (not rendered yet, or no PDF target)")
    return path


def _job_record(console: Any, job_id: str) -> dict[str, Any]:
    not_found, _ = _errors()
    try:
        job = control(console).get(job_id)
    except not_found:
        job = None
    if job is None:
        raise ApiError(404, f"no print job {job_id}")
    return dict(job)


@router.get("/jobs/{job_id}/films/{number}.png", response_class=FileResponse,
            summary="PNG preview of a film at the requested width (cached)",
            responses={200: {"content": {"image/png": {}}}})
def film_png(job_id: str, number: int, request: Request,
             width: int = Query(512, description=f"Pixels, {MIN_WIDTH}-{MAX_WIDTH}")
             ) -> Response:
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ApiError(400, f"query.width: {width} is out of range; expected "
                       f"{MIN_WIDTH}-{MAX_WIDTH}", "query.width")
    from printscp.jobs.preview import film_preview

    not_found, _ = _errors()
    if number < 1:
        raise ApiError(404, f"no film {number} of job {job_id}: films are numbered from 1")
    try:
        path = film_preview(request.app.state.console.data_dir, job_id, number - 1, width)
    except not_found as exc:
        raise ApiError(404, str(exc)) from None
    except IndexError:
        raise ApiError(404, f"job {job_id} has no film {number}") from None
    return FileResponse(path, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})
