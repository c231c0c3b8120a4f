"""QA reports filed in the archive as Encapsulated PDF under the QA patient."""

from __future__ import annotations

from datetime import UTC, datetime

from printscp.archive.archive import Archive
from printscp.archive.documents import ENCAPSULATED_PDF
from printscp.archive.qa_reports import QA_PATIENT_ID, store_qa_report

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _docs(archive: Archive):
    return [archive.read(r) for r in archive.instances() if r.sop_class_uid == ENCAPSULATED_PDF]


def test_report_is_an_encapsulated_pdf_of_the_qa_patient(tmp_path):
    archive = Archive(tmp_path)
    when = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    out = store_qa_report(archive, PDF, "RAD-1", "display", "Constancy test RAD-1", when)
    [ds] = _docs(archive)
    assert ds.PatientID == QA_PATIENT_ID and out["patient_id"] == QA_PATIENT_ID
    assert ds.Modality == "DOC" and ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert bytes(ds.EncapsulatedDocument).rstrip(b"\0") == PDF
    assert ds.DocumentTitle == "Constancy test RAD-1"
    assert ds.StudyDescription == "QA display RAD-1"
    assert str(ds.SOPInstanceUID) == out["sop_instance_uid"]


def test_reports_of_one_device_share_a_study_and_a_repeat_replaces(tmp_path):
    archive = Archive(tmp_path)
    a = store_qa_report(archive, PDF, "RAD-1", "display", "one")
    b = store_qa_report(archive, PDF + b"% second\n", "RAD-1", "display", "two")
    c = store_qa_report(archive, PDF, "RAD-1", "display", "one again")
    other = store_qa_report(archive, PDF, "PRINTER-A", "printer", "film QC")
    assert a["study_instance_uid"] == b["study_instance_uid"] != other["study_instance_uid"]
    assert a["sop_instance_uid"] == c["sop_instance_uid"] != b["sop_instance_uid"]
    assert len(_docs(archive)) == 3
