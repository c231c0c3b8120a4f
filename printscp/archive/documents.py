"""Encapsulated PDF instances (PS3.3 A.45.1) made by the node itself.

Printed films (:mod:`printscp.archive.films`) and calibration QA reports
(:mod:`printscp.archive.qa_reports`) both become an Encapsulated PDF in the archive, so
that the node's Query/Retrieve and media export carry them like any other instance.
They differ only in the patient and study they are filed under and in their titles:
this module builds the rest, once, and stores it through :meth:`Archive.receive` (the
C-STORE path: checked, durable, indexed).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from printscp import __version__
from printscp.archive.archive import Archive

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@dataclass(frozen=True)
class PdfDocument:
    """What varies between the node's PDF instances."""

    pdf: bytes
    sop_uid: str
    series_uid: str
    study_uid: str  #: used unless ``context`` holds a Study Instance UID already
    created: datetime  #: aware
    series_number: int
    series_description: str
    document_title: str
    study_description: str


def encapsulated_pdf(doc: PdfDocument, context: Dataset) -> Dataset:
    """The Encapsulated PDF data set of ``doc``, filed under ``context``'s patient (and
    study, when it names one; else a new study ``doc.study_uid``)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for elem in context:
        ds.add(elem)
    ds.PatientName = ds.get("PatientName", "")
    ds.PatientID = ds.get("PatientID", "")
    for keyword in ("PatientBirthDate", "PatientSex", "ReferringPhysicianName",
                    "AccessionNumber", "StudyID"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    created = doc.created
    if "StudyInstanceUID" not in ds:
        ds.StudyInstanceUID = doc.study_uid[:64]
        ds.StudyDate = created.strftime("%Y%m%d")
        ds.StudyTime = created.strftime("%H%M%S")
        ds.StudyDescription = doc.study_description[:64]
    ds.SeriesInstanceUID = doc.series_uid[:64]
    ds.SOPInstanceUID = doc.sop_uid[:64]
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.Modality = "DOC"
    ds.SeriesNumber = doc.series_number
    ds.SeriesDescription = doc.series_description[:64]
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"  # workstation: rendered by us, not scanned
    ds.Manufacturer = "printscp"
    ds.SoftwareVersions = __version__
    ds.ContentDate = created.strftime("%Y%m%d")
    ds.ContentTime = created.strftime("%H%M%S")
    ds.AcquisitionDateTime = created.strftime("%Y%m%d%H%M%S")
    ds.InstanceCreationDate = ds.ContentDate
    ds.InstanceCreationTime = ds.ContentTime
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = doc.document_title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.add_new(0x00420011, "OB", doc.pdf + (b"\0" if len(doc.pdf) % 2 else b""))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds


def store_document(archive: Archive, ds: Dataset, source_ae: str, what: str) -> None:
    """Store ``ds`` through the archive's C-STORE path; RuntimeError naming ``what`` and
    the status when the archive refuses it."""
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    outcome = archive.receive(buf.getvalue(), ENCAPSULATED_PDF, str(ds.SOPInstanceUID),
                              source_ae)
    if outcome.status != 0:
        raise RuntimeError(f"archive refused the {what} (0x{outcome.status:04X}): "
                           f"{outcome.comment}")
