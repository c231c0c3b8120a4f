"""The workflow API (issue 16 section 3): worklist items (list, add, remove), the
Modality Performed Procedure Steps and storage commitment requests with whether their
report was delivered.

An item added here goes through the same calls as ``printscp worklist add``
(:func:`printscp.worklist.importing.build_item`, then
:func:`~printscp.worklist.items.validate_item` and the store), and is audited.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydicom.dataset import Dataset

from printscp.archive import browse
from printscp.core import audit
from printscp.http.auth import User, admin, viewer
from printscp.http.errors import ApiError
from printscp.mpps.steps import STATUSES, StepRecord
from printscp.worklist.importing import COLUMNS, build_item
from printscp.worklist.items import ItemRejected, split_steps, validate_item

router = APIRouter(tags=["workflow"], dependencies=[Depends(viewer)])
Admin = Annotated[User, Depends(admin)]

_TAG_KEY = re.compile(r"^[0-9A-Fa-f]{8}$")
_KEYWORD = re.compile(r"[A-Z][A-Za-z]+")
_COLUMN_OF = {keyword: column for column, (keyword, _) in COLUMNS.items()}


def worklist_of(request: Request) -> Any:
    store = request.app.state.console.worklist
    if store is None:
        raise ApiError(404, "the worklist is disabled ([worklist] enabled = false)")
    return store


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


# -- worklist -------------------------------------------------------------------------

def worklist_items(console: Any) -> list[dict[str, Any]]:
    """Every item in schedule order (what the page and the API list)."""
    if console.worklist is None:
        return []
    return [item.to_dict() for item in console.worklist.items()]


@router.get("/workflow/worklist", summary="Worklist items, in schedule order")
def list_worklist(request: Request,
                  status: Annotated[str | None, Query(
                      description="Scheduled Procedure Step Status")] = None
                  ) -> dict[str, Any]:
    worklist_of(request)
    items = worklist_items(request.app.state.console)
    if status:
        items = [i for i in items if i["status"] == status.strip().upper()]
    return {"items": items, "total": len(items)}


ITEM_EXAMPLE = {"patient_name": "DOE^JANE", "patient_id": "P1234", "accession": "A1001",
                "procedure_description": "CHEST PA", "modality": "CR", "station_ae": "CR01",
                "start_date": "2024-05-01", "start_time": "09:30"}


@router.post("/workflow/worklist", status_code=201, summary="Add a worklist item")
def add_worklist_item(
        request: Request, user: Admin,
        body: Annotated[dict[str, Any], Body(
            description="The fields of ``printscp worklist add`` (patient_name, patient_id, "
            "accession, procedure_description, modality, station_ae, start_date, "
            "start_time...; start defaults to now) or one DICOM JSON data set (PS3.18 F)",
            examples=[ITEM_EXAMPLE])]) -> dict[str, Any]:
    store = worklist_of(request)
    dicom_json = bool(body) and all(_TAG_KEY.match(k) for k in body)
    ds = _dataset(body, dicom_json)
    for step in split_steps(ds):
        problems = validate_item(step)
        if problems:
            raise ApiError(400, problems[0], _field(problems[0], dicom_json))
    try:
        ids = store.add_many([ds], source=f"console:{user.name}")
    except ItemRejected as exc:
        raise ApiError(400, str(exc)) from None
    audit.record(request.app.state.console.data_dir, "worklist.add",
                 str(ds.get("AccessionNumber", "") or ds.StudyInstanceUID), user=user.name,
                 source=_source(request), items=ids, patient_id=str(ds.get("PatientID", "")))
    items = [i.to_dict() for i in store.items() if i.id in ids]
    return {"ids": ids, "items": items}


def _dataset(body: dict[str, Any], dicom_json: bool) -> Dataset:
    if dicom_json:
        try:
            return Dataset.from_json(body)
        except Exception as exc:
            raise ApiError(400, f"not a DICOM JSON data set: {exc}", "body") from None
    unknown = sorted(k for k in body if k not in COLUMNS)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; known: {', '.join(COLUMNS)}",
                       f"body.{unknown[0]}")
    fields = {k: None if v is None else str(v) for k, v in body.items()}
    try:
        return build_item(fields, now=datetime.now())
    except ItemRejected as exc:
        column = exc.reasons[0].split(":", 1)[0] if exc.reasons else ""
        raise ApiError(400, str(exc), f"body.{column}" if column in COLUMNS else "body"
                       ) from None


def _field(problem: str, dicom_json: bool) -> str:
    """The field a problem of :func:`validate_item` names: the innermost attribute
    (as its form field when the body used them)."""
    head = problem.split(":", 1)[0] if ":" in problem.split(" ", 1)[0] else problem
    head = re.sub(r"'[^']*'", "", head.split(" is ")[0].split(" or ")[0])
    words = _KEYWORD.findall(head)
    keyword = words[-1] if words else ""
    if not keyword:
        return "body"
    if not dicom_json and keyword in _COLUMN_OF:
        return f"body.{_COLUMN_OF[keyword]}"
    return f"body.{keyword}"


#: A worklist item's number (SQLite row id; a larger one would overflow the query).
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the item's id")]


@router.delete("/workflow/worklist/{item_id}", summary="Remove a worklist item")
def remove_worklist_item(request: Request, item_id: ItemId, user: Admin) -> dict[str, Any]:
    store = worklist_of(request)
    ds = store.get(item_id)
    if ds is None:
        raise ApiError(404, f"no worklist item {item_id}")
    removed = store.remove(item_ids=[item_id])
    audit.record(request.app.state.console.data_dir, "worklist.remove", str(item_id),
                 user=user.name, source=_source(request),
                 accession=str(ds.get("AccessionNumber", "")),
                 patient_id=str(ds.get("PatientID", "")))
    return {"removed": removed}


# -- MPPS -----------------------------------------------------------------------------

def step_dict(store: Any, step: StepRecord) -> dict[str, Any]:
    arrived, expected = store.completeness(step)
    return {"uid": step.uid, "status": step.status, "pps_id": step.pps_id,
            "station_ae": step.station_ae, "station_name": step.station_name,
            "calling_ae": step.calling_ae, "modality": step.modality,
            "start": step.start.isoformat() if step.start else None,
            "end": step.end.isoformat() if step.end else None,
            "duration_seconds": step.duration, "patient_id": step.patient_id,
            "patient_name": step.patient_name, "study_uid": step.study_uid,
            "accession_number": step.accession_number, "sps_id": step.sps_id,
            "instances_arrived": arrived, "instances_expected": expected,
            "updated_at": step.updated_at}


def mpps_steps(console: Any, *, status: str | None = None, since: date | None = None,
               until: date | None = None, limit: int = 200) -> tuple[list[dict], int]:
    """Steps, newest start first (what the page and the API list); (page, total)."""
    store = console.mpps
    steps = store.steps(since=since, until=until, status=status)
    steps.reverse()
    return [step_dict(store, s) for s in steps[:limit]], len(steps)


@router.get("/workflow/mpps", summary="Performed procedure steps, newest first")
def list_mpps(request: Request,
              status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
              since: Annotated[date | None, Query(description="started on or after")] = None,
              until: Annotated[date | None, Query(description="started on or before")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    if status and status.strip().upper() not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}", "query.status")
    items, total = mpps_steps(request.app.state.console,
                              status=status.strip().upper() if status else None,
                              since=since, until=until, limit=limit)
    return {"items": items, "total": total}


# -- storage commitment ---------------------------------------------------------------

@router.get("/workflow/commitments",
            summary="Storage commitment requests and whether their report was delivered")
def list_commitments(request: Request,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    items = browse.commitments(request.app.state.console.data_dir, limit)
    return {"items": items, "pending": sum(not i["delivered"] for i in items)}
