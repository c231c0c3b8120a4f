"""The archive: what a C-STORE does, checked and durable, independent of the network.

:meth:`Archive.receive` takes the data set exactly as the peer encoded it (no
transcoding), refuses what it must (PS3.4 B.2.3 statuses, naming the attribute),
writes the file durably and indexes it; only then may the C-STORE be answered.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from printscp.archive.index import Index, InstanceRecord, StoreResult
from printscp.archive.store import ArchiveFiles, sha256_of, valid_uid
from printscp.status import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    SUCCESS,
)

LOGGER = logging.getLogger("printscp.archive")


#: Transfer syntaxes whose Pixel Data is native (length can be checked).
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}


class DuplicatePolicy(StrEnum):
    """What a second C-STORE of a stored SOP Instance UID does."""

    REPLACE = "replace"  #: the new copy replaces the old (a corrected image wins)
    KEEP = "keep"  #: the first copy stays; the new one is acknowledged and discarded


@dataclass
class Outcome:
    status: int
    comment: str = ""
    result: StoreResult | None = None


@dataclass
class VerifyReport:
    checked: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  #: (SOP Instance UID, reason)
    orphans: list[str] = field(default_factory=list)  #: files no index row names


class Archive:
    """Files under ``<data_dir>/archive`` and their index ``<data_dir>/index.sqlite``."""

    def __init__(self, data_dir: Path, duplicates: DuplicatePolicy = DuplicatePolicy.REPLACE
                 ) -> None:
        self.data_dir = Path(data_dir)
        self.files = ArchiveFiles(self.data_dir / "archive")
        self.index = Index(self.data_dir / "index.sqlite")
        self.duplicates = duplicates
        self._lock = threading.Lock()

    def receive(self, encoded: bytes, sop_class: str, sop_instance: str,
                source_ae: str = "") -> Outcome:
        """Check, store and index one C-STORE data set (Part 10 bytes with file meta)."""
        try:
            ds = pydicom.dcmread(io.BytesIO(encoded))
            ds.SOPInstanceUID  # noqa: B018 - decode enough to know it is usable
        except Exception as exc:
            return Outcome(CANNOT_UNDERSTAND, f"cannot decode the data set: {exc}"[:64])
        problem = self._check(ds, sop_class, sop_instance)
        if problem is not None:
            return problem
        transfer_syntax = str(ds.file_meta.TransferSyntaxUID)
        try:
            staged = self.files.stage(encoded, str(ds.StudyInstanceUID),
                                      str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
            result, old = self.index.store(
                ds, transfer_syntax, staged, self.files,
                replace=self.duplicates is DuplicatePolicy.REPLACE, source_ae=source_ae)
        except OSError as exc:
            LOGGER.error("cannot store %s: %s", sop_instance, exc)
            return Outcome(OUT_OF_RESOURCES, f"cannot store: {exc.strerror}"[:64])
        if old is not None:
            old.unlink(missing_ok=True)
        return Outcome(SUCCESS, result=result)

    def _check(self, ds: Dataset, sop_class: str, sop_instance: str) -> Outcome | None:
        for keyword, expected in (("SOPClassUID", sop_class), ("SOPInstanceUID", sop_instance)):
            value = str(ds.get(keyword, "") or "")
            if value != str(expected):
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               f"{keyword} {value or '(missing)'} is not the request's")
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            if not valid_uid(ds.get(keyword)):
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               f"{keyword} missing or not a valid UID"[:64])
        if "PixelData" in ds and str(ds.file_meta.TransferSyntaxUID) in NATIVE:
            try:
                expected = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                            * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated))
            except (AttributeError, TypeError, ValueError):
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               "Pixel Data without Rows, Columns or Bits Allocated")
            if len(ds.PixelData) * 8 < expected:
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               f"Pixel Data {len(ds.PixelData)} bytes, needs {expected // 8}")
        return None

    def import_file(self, path: Path, source_ae: str = "MEDIA") -> Outcome:
        """Store a Part 10 file (from media) as if it had been sent by C-STORE."""
        try:
            data = Path(path).read_bytes()
            meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            return self.receive(data, str(meta.SOPClassUID), str(meta.SOPInstanceUID),
                                source_ae)
        except Exception as exc:
            return Outcome(CANNOT_UNDERSTAND, f"unreadable: {exc}"[:64])

    # -- reading -------------------------------------------------------------------
    def path_of(self, record: InstanceRecord) -> Path:
        return self.files.absolute(record.path)

    def read(self, record: InstanceRecord) -> Dataset:
        return pydicom.dcmread(self.path_of(record))

    def verify(self, on_file=lambda: None) -> VerifyReport:
        """Re-check every indexed file against its stored checksum; list orphans."""
        report = VerifyReport()
        named: set[Path] = set()
        for record in self.index.all_instances():
            report.checked += 1
            on_file()
            path = self.path_of(record)
            named.add(path)
            try:
                digest = sha256_of(path)
            except OSError as exc:
                report.bad.append((record.sop_uid, f"unreadable: {exc.strerror}"))
                continue
            if digest != record.sha256:
                report.bad.append((record.sop_uid, "checksum differs from the stored one"))
        for path in self.files.root.rglob("*.dcm"):
            if path.resolve() not in named:
                report.orphans.append(str(path))
        return report

    def instances(self) -> Iterator[InstanceRecord]:
        return self.index.all_instances()
