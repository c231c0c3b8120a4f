"""Synthetic DICOM instances for archive tests: patients, studies, series, CT images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class Study:
    patient_id: str
    patient_name: str
    study_date: str
    accession: str
    modality: str = "CT"
    series: int = 1
    images: int = 2
    description: str = "CHEST"
    birth_date: str = "19700101"
    sex: str = "O"
    study_time: str = "101500"
    size: int = 16

    def __post_init__(self) -> None:
        self.study_uid = generate_uid()
        self.series_uids = [generate_uid() for _ in range(self.series)]


def instance(study: Study, series_index: int, number: int, rows: int | None = None) -> Dataset:
    rows = rows or study.size
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = CT_IMAGE if study.modality == "CT" else MR_IMAGE
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.AccessionNumber = study.accession
    ds.StudyID = study.accession[-4:]
    ds.StudyDescription = study.description
    ds.ReferringPhysicianName = "WHO^CARES"
    ds.SeriesInstanceUID = study.series_uids[series_index]
    ds.Modality = study.modality
    ds.SeriesNumber = series_index + 1
    ds.SeriesDescription = f"SERIES {series_index + 1}"
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    rng = np.random.default_rng(number + 1000 * series_index)
    ds.PixelData = rng.integers(0, 4096, (rows, rows), dtype=np.uint16).tobytes()
    return ds


def write_study(study: Study, folder: Path) -> list[Path]:
    """Every instance of ``study`` as a Part 10 file under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(study.series):
        for n in range(1, study.images + 1):
            ds = instance(study, s, n)
            path = folder / f"{study.accession}_{s}_{n}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths
