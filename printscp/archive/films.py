"""Printed films in the archive, as Encapsulated PDF instances (PS3.3 A.45.1).

A print job has no patient of its own: Print Management carries none.  The Film
Session Label is what modalities put a patient reference in, and a modality prints
while its procedure step is in progress, so the job is linked (1) to the study whose
Accession Number equals the label, (2) to the worklist order with that Accession
Number, (3) to the patient whose Patient ID equals the label, (4) to the worklist step
STARTED on the calling modality when there is exactly one, else (5) to a "prints"
patient named after the calling AE.  UIDs derive from the Print Job UID, so a delivery
repeated after a crash replaces the same instance instead of adding one.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from printscp.archive.archive import Archive
from printscp.archive.documents import (
    ENCAPSULATED_PDF,
    PdfDocument,
    encapsulated_pdf,
    store_document,
)

__all__ = ["ENCAPSULATED_PDF", "film_instance", "store_film"]


#: What a worklist item gives a printed film: its patient and its (future) study.
_FROM_ITEM = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
              "StudyInstanceUID", "AccessionNumber", "ReferringPhysicianName")


def _from_item(item: Dataset) -> Dataset:
    out = Dataset()
    for keyword in _FROM_ITEM:
        if keyword in item:
            out.add(item[keyword])
    return out


def _link(archive: Archive, label: str, calling_ae: str, worklist: Any = None
          ) -> tuple[Dataset, str]:
    """(patient and study attributes to use, how the job was linked).

    In order: the archived study whose Accession Number is the label; the worklist item
    with that Accession Number; the archived patient whose ID is the label; the one
    worklist step in progress (STARTED) on the calling modality; else "prints".
    """
    out = Dataset()
    if label:
        study = archive.index.study_by_accession(label)
        if study is not None:
            return study, f"study with Accession Number {label}"
        if worklist is not None:
            ids = worklist.find_items(accession=label)
            item = worklist.get(ids[0]) if ids else None
            if item is not None:
                return _from_item(item), f"worklist order {label}"
        patient = archive.index.patient_by_id(label)
        if patient is not None:
            return patient, f"patient {label}"
    if worklist is not None:
        started = [i for i in worklist.items()
                   if i.status == "STARTED" and i.station_ae == calling_ae.strip()]
        if len(started) == 1:
            item = worklist.get(started[0].id)
            if item is not None:
                return _from_item(item), (f"the step in progress on {calling_ae.strip()} "
                                          f"({started[0].accession_number or started[0].sps_id})")
    ae = calling_ae.strip() or "UNKNOWN"
    out.PatientID = f"PRINTS-{ae}"[:64]
    out.PatientName = f"PRINTS^{ae}"
    return out, f"prints patient of {ae}"


def film_instance(pdf: bytes, job: dict[str, Any], archive: Archive, worklist: Any = None
                  ) -> tuple[Dataset, str]:
    """The Encapsulated PDF data set of a printed job, and how it was linked."""
    uid = str(job["print_job_uid"])
    session = job.get("session", {})
    label = str(session.get("film_session_label") or "").strip()
    context, how = _link(archive, label, str(job.get("calling_ae", "")), worklist)
    doc = PdfDocument(
        pdf=pdf, sop_uid=f"{uid}.1", series_uid=f"{uid}.2", study_uid=f"{uid}.3",
        created=datetime.fromisoformat(job["created"]).astimezone(), series_number=999,
        series_description=f"Films from {job.get('calling_ae', '')}",
        document_title=f"Film session {label}" if label else "Printed films",
        study_description="Printed films")
    return encapsulated_pdf(doc, context), how


def store_film(archive: Archive, folder: Path, pdf_path: Path, worklist: Any = None
               ) -> dict[str, Any]:
    """Store the job in spool ``folder`` (its films in ``pdf_path``) in the archive;
    ``worklist`` (a :class:`~printscp.worklist.items.WorklistStore`) links it too."""
    job = json.loads((Path(folder) / "job.json").read_text("utf-8"))
    ds, how = film_instance(Path(pdf_path).read_bytes(), job, archive, worklist)
    store_document(archive, ds, str(job.get("calling_ae", "")), "film")
    return {"sop_instance_uid": str(ds.SOPInstanceUID),
            "study_instance_uid": str(ds.StudyInstanceUID), "patient_id": str(ds.PatientID),
            "linked_to": how}
