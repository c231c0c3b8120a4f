"""The printers API (issue 16 section 3): each printer profile with its status, what it
supports, its targets and how they fare, its last calibration and QC test; and a test of its
targets (C-ECHO and Printer N-GET upstream, the CUPS queue's state, folders writable).

The data comes from :mod:`printscp.http.printer_status`, which the Printers page
renders too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from printscp.core import audit
from printscp.http import printer_status
from printscp.http.auth import User, admin, viewer
from printscp.http.errors import ApiError

router = APIRouter(tags=["printers"], dependencies=[Depends(viewer)])
Admin = Annotated[User, Depends(admin)]


class TargetState(BaseModel):
    label: str
    kind: str = Field(description="pdf, png, tiff, cups, dicom or archive")
    where: str = Field(description="Queue, AE@HOST:PORT or folder")
    state: str = Field(description="ok, failing, or unknown (nothing sent there yet)")
    ok: bool | None = None
    error: str = ""
    info: str = Field("", description="Printer Status Info while failing")
    since: str | None = None


class Calibration(BaseModel):
    date: str = Field(description="Date of Last Calibration (0018,1200)")
    time: str = Field(description="Time of Last Calibration (0018,1201)")
    when: str
    conforms: bool | None = Field(None, description="Verdict of the recorded analysis")
    profile: str = ""


class QualityControl(BaseModel):
    device: str = Field("", description="Its QA device id (the Printer Name)")
    test_id: int | None = Field(None, description="The last QC test's record number")
    when: str | None = Field(None, description="When the last QC test was run (UTC)")
    kind: str | None = Field(None, description="acceptance or constancy")
    verdict: str | None = Field(None, description="pass or fail; None: never tested")
    failed: list[str] = Field([], description="The figures that failed their limits")
    due: str | None = Field(None, description="When the next constancy test is due")
    overdue: bool = Field(False, description="The next test is due and not done "
                          "(or none was ever done)")
    error: str = Field("", description="Why the QA store could not be read")


class QAProfile(BaseModel):
    version: str = Field(description="e.g. v0002")
    path: str
    created: str = ""
    note: str = ""


class Printer(BaseModel):
    name: str = Field(description="Printer Name; what jobs record and reprints name")
    section: str = Field(description="Its configuration section")
    called_ae_title: str
    status: str = Field(description="Printer Status: NORMAL, WARNING, FAILURE")
    status_info: str = Field(description="Printer Status Info")
    free_bytes: int
    manufacturer: str
    model: str
    serial_number: str
    film_sizes: list[str]
    display_formats: list[str]
    magnification_types: list[str]
    medium_types: list[str]
    default_film_size: str
    default_medium_type: str
    min_density_range: list[int]
    max_density_range: list[int]
    output_profile: str
    qa_profile: QAProfile | None = Field(None, description="The profile version "
                                       "printscp qa test-printer --recalibrate made "
                                       "current: new jobs render with it")
    targets: list[TargetState]
    calibration: Calibration | None
    qc: QualityControl | None = Field(None, description="Its last QC test (printscp qa); "
                                      "None: not a QA device")


class PrinterList(BaseModel):
    printers: list[Printer]


class TargetTest(BaseModel):
    target: str
    kind: str
    where: str
    ok: bool
    detail: str
    seconds: float


class PrinterTest(BaseModel):
    printer: str
    ok: bool = Field(description="Every target passed")
    targets: list[TargetTest]


def printer_list(console: Any) -> dict[str, Any]:
    return {"printers": printer_status.all_printers(console.config)}


def printer_detail(console: Any, name: str) -> dict[str, Any]:
    """One profile by its Printer Name (or ``[printers.NAME]`` key, or called AE
    title); 404 naming the known ones."""
    found = printer_status.find_profile(console.config, name)
    if found is None:
        known = ", ".join(p.name for _, p in printer_status.profiles(console.config))
        raise ApiError(404, f"no printer profile {name!r} (known: {known})")
    return printer_status.printer_status(console.config, *found)


@router.get("/printers", response_model=PrinterList, summary="Every printer profile")
def get_printers(request: Request) -> dict[str, Any]:
    return printer_list(request.app.state.console)


@router.get("/printers/{name}", response_model=Printer, summary="One printer profile")
def get_printer(name: str, request: Request) -> dict[str, Any]:
    return printer_detail(request.app.state.console, name)


@router.post("/printers/{name}/test", response_model=PrinterTest,
             summary="Check every target of the printer now")
def test_printer(name: str, request: Request, user: Admin) -> dict[str, Any]:
    console = request.app.state.console
    found = printer_status.find_profile(console.config, name)
    if found is None:
        printer_detail(console, name)  # raises the 404
        raise AssertionError
    results = printer_status.test_targets(console.config, found[1])
    ok = all(r["ok"] for r in results)
    audit.record(console.data_dir, "printer.test", found[1].name, user=user.name,
                 source=request.client.host if request.client else "",
                 outcome="success" if ok else "failure",
                 failed=[r["target"] for r in results if not r["ok"]])
    return {"printer": found[1].name, "ok": ok, "targets": results}
