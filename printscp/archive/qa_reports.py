"""Calibration QA reports in the archive, as Encapsulated PDF under a QA patient.

``printscp qa report … --archive`` files the report a physicist signs where the node's
other documents are, so Query/Retrieve and DICOMDIR media carry it.  All reports belong
to one patient, :data:`QA_PATIENT_ID` (a device is not a person, but a PACS files by
patient), with one study per device (its UID derived from the device id, so every
report of a display lands in the same study) and one instance per report (its UID
derived from the PDF's bytes, so storing the same report twice replaces it).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset

from printscp.archive.archive import Archive
from printscp.archive.documents import PdfDocument, encapsulated_pdf, store_document

QA_PATIENT_ID = "PRINTSCP-QA"
QA_PATIENT_NAME = "QA^CALIBRATION"
_NAMESPACE = uuid.UUID("6f1c2a52-9d0e-4b7e-8a8e-2f3f4c1d9b10")


def _uid(text: str) -> str:
    """A UID under 2.25 (PS3.5 B.2) derived from ``text``."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, text).int}"


def qa_report_instance(pdf: bytes, device_id: str, device_kind: str, title: str,
                       created: datetime | None = None) -> Dataset:
    """The Encapsulated PDF data set of one QA report of ``device_id``."""
    created = (created or datetime.now()).astimezone()
    context = Dataset()
    context.PatientID = QA_PATIENT_ID
    context.PatientName = QA_PATIENT_NAME
    context.StudyInstanceUID = _uid(f"study:{device_id}")
    context.StudyID = device_id[:16]
    context.StudyDescription = f"QA {device_kind} {device_id}"[:64]
    context.StudyDate = created.strftime("%Y%m%d")
    context.StudyTime = created.strftime("%H%M%S")
    digest = hashlib.sha256(pdf).hexdigest()
    doc = PdfDocument(pdf=pdf, sop_uid=_uid(f"report:{device_id}:{digest}"),
                      series_uid=_uid(f"series:{device_id}"), study_uid="", created=created,
                      series_number=1, series_description=f"QA reports of {device_id}",
                      document_title=title, study_description="")
    return encapsulated_pdf(doc, context)


def store_qa_report(archive: Archive, pdf: bytes, device_id: str, device_kind: str,
                    title: str, created: datetime | None = None) -> dict[str, Any]:
    """Store the report; what was stored (UIDs), for the command's output."""
    ds = qa_report_instance(pdf, device_id, device_kind, title, created)
    store_document(archive, ds, "QA", "QA report")
    return {"sop_instance_uid": str(ds.SOPInstanceUID),
            "study_instance_uid": str(ds.StudyInstanceUID), "patient_id": QA_PATIENT_ID}
