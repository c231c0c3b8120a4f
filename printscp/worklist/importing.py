r"""Worklist items from command-line fields, CSV, DICOM JSON and DICOM files.

Formats (chosen by file name; directories are searched for ``*.wl``, ``*.dcm``,
``*.json`` and ``*.csv``):

* ``.json`` — DICOM JSON (PS3.18 F): one data set object or an array of them, each a
  whole item (Scheduled Procedure Step Sequence included).
* ``.csv`` — one item per row, a header row naming the columns below (any order, any
  subset; ``,``, ``;`` or tab separated; UTF-8, a spreadsheet's BOM allowed).  An unknown
  column rejects the file, so a typo never silently drops data.
* anything else — a DICOM file, with or without File Meta Information (DCMTK's
  ``wlmscpfs`` ``.wl`` files are either, as ``dump2dcm`` writes them).

CSV columns (= the options of ``printscp worklist add``; dates ``YYYYMMDD`` or
``YYYY-MM-DD``, times ``HHMM[SS]`` or ``HH:MM[:SS]``, codes ``CODE^SCHEME^MEANING``):

=======================  ====================================================================
column                   attribute
=======================  ====================================================================
patient_name             Patient's Name (0010,0010), ``FAMILY^GIVEN``; required
patient_id               Patient ID (0010,0020); required
birth_date, sex          Patient's Birth Date (0010,0030), Patient's Sex (0010,0040) M/F/O
age, weight              Patient's Age (0010,1010) (``45`` = ``045Y``), Patient's Weight
                         (0010,1030) in kg
accession                Accession Number (0008,0050)
procedure_id             Requested Procedure ID (0040,1001); default: the accession number
procedure_description    Requested Procedure Description (0032,1060)
procedure_code           Requested Procedure Code Sequence (0032,1064)
reason                   Reason for the Requested Procedure (0040,1002)
priority                 Requested Procedure Priority (0040,1003): STAT HIGH ROUTINE MEDIUM LOW
referring_physician      Referring Physician's Name (0008,0090)
requesting_service       Requesting Service (0032,1033)
study_uid                Study Instance UID (0020,000D); default: derived from patient ID,
                         accession and procedure ID (so a re-import updates, never doubles)
modality                 > Modality (0008,0060); required
station_ae               > Scheduled Station AE Title (0040,0001); required
station_name             > Scheduled Station Name (0040,0010)
start_date, start_time   > Scheduled Procedure Step Start Date/Time (0040,0002/0003);
                         required (``worklist add``: now)
sps_description          > Scheduled Procedure Step Description (0040,0007)
protocol_code            > Scheduled Protocol Code Sequence (0040,0008)
performing_physician     > Scheduled Performing Physician's Name (0040,0006)
sps_id                   > Scheduled Procedure Step ID (0040,0009); default: procedure_id
status                   > Scheduled Procedure Step Status (0040,0020); default SCHEDULED
=======================  ====================================================================

(``>``: inside the Scheduled Procedure Step Sequence.)

All or nothing, per file: a file is stored only when every item in it is valid, in one
transaction; otherwise nothing of it is, and every bad item is reported (file, row or
item number, reason).  The other files of the run are imported regardless: a batch of
``.wl`` files is one item per file, and one bad order should not hold up the rest.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pydicom
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import generate_uid

from printscp.core.uids import UID_ROOT
from printscp.worklist.items import ItemRejected, WorklistStore, split_steps, validate_item

__all__ = [
    "COLUMNS",
    "FileResult",
    "build_item",
    "expand_paths",
    "import_files",
    "read_file",
]

#: CSV columns / ``worklist add`` fields → (keyword, in the SPS item?).
COLUMNS: dict[str, tuple[str, bool]] = {
    "patient_name": ("PatientName", False), "patient_id": ("PatientID", False),
    "birth_date": ("PatientBirthDate", False), "sex": ("PatientSex", False),
    "age": ("PatientAge", False), "weight": ("PatientWeight", False),
    "accession": ("AccessionNumber", False), "procedure_id": ("RequestedProcedureID", False),
    "procedure_description": ("RequestedProcedureDescription", False),
    "procedure_code": ("RequestedProcedureCodeSequence", False),
    "reason": ("ReasonForTheRequestedProcedure", False),
    "priority": ("RequestedProcedurePriority", False),
    "referring_physician": ("ReferringPhysicianName", False),
    "requesting_service": ("RequestingService", False),
    "study_uid": ("StudyInstanceUID", False),
    "modality": ("Modality", True), "station_ae": ("ScheduledStationAETitle", True),
    "station_name": ("ScheduledStationName", True),
    "start_date": ("ScheduledProcedureStepStartDate", True),
    "start_time": ("ScheduledProcedureStepStartTime", True),
    "sps_description": ("ScheduledProcedureStepDescription", True),
    "protocol_code": ("ScheduledProtocolCodeSequence", True),
    "performing_physician": ("ScheduledPerformingPhysicianName", True),
    "sps_id": ("ScheduledProcedureStepID", True),
    "status": ("ScheduledProcedureStepStatus", True),
}

_DATE_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_TIME_RE = re.compile(r"(\d{2}):?(\d{2})(?::?(\d{2}(?:\.\d{1,6})?))?")


def _date(text: str) -> str:
    m = _DATE_RE.fullmatch(text)
    return "".join(m.groups()) if m else text  # invalid ones are reported by validation


def _time(text: str) -> str:
    m = _TIME_RE.fullmatch(text)
    return f"{m[1]}{m[2]}{m[3] or '00'}" if m else text


def _code(text: str, name: str) -> Dataset:
    parts = [p.strip() for p in text.split("^", 2)]
    if len(parts) != 3 or not all(parts):
        raise ItemRejected([f"{name}: {text!r} is not CODE^SCHEME^MEANING"])
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = parts
    return item


def _age(text: str) -> str:
    return f"{int(text):03d}Y" if text.isdigit() and len(text) <= 3 else text.upper()


@contextlib.contextmanager
def _quiet_values() -> Iterator[None]:
    """No pydicom warnings for invalid values while items are built and read: validation
    reports each one with its file and row, a warning on stderr would only repeat it."""
    settings = pydicom_config.settings
    saved = settings.reading_validation_mode, settings.writing_validation_mode
    settings.reading_validation_mode = settings.writing_validation_mode = pydicom_config.IGNORE
    try:
        yield
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = saved


def derive_study_uid(patient_id: str, accession: str, procedure_id: str) -> str:
    """A Study Instance UID for an order that has none: derived from its identifiers when
    it has an accession number or requested procedure ID (importing the same order twice
    gives the same UID, so the item is updated, not doubled), else random."""
    if accession or procedure_id:
        return generate_uid(UID_ROOT, entropy_srcs=["worklist", patient_id, accession,
                                                    procedure_id])
    return generate_uid(UID_ROOT)


def build_item(fields: Mapping[str, str | None], *, now: datetime | None = None) -> Dataset:
    """A worklist item from the columns of :data:`COLUMNS` (empty values: absent).

    With ``now`` the Scheduled Procedure Step Start Date/Time default to it (``worklist
    add``); without, they are required (CSV).  Raises :class:`ItemRejected` for unknown
    fields or malformed codes; the rest is checked by
    :func:`~printscp.worklist.items.validate_item`.
    """
    unknown = sorted(k for k in fields if k not in COLUMNS)
    if unknown:
        raise ItemRejected([f"unknown column {', '.join(unknown)}"])
    values = {k: str(v).strip() for k, v in fields.items() if v is not None and str(v).strip()}
    values.setdefault("procedure_id", values.get("accession", ""))
    if not values["procedure_id"]:
        values["procedure_id"] = uuid.uuid4().hex[:12].upper()
    values.setdefault("sps_id", values["procedure_id"])
    if now is not None:
        values.setdefault("start_date", now.strftime("%Y%m%d"))
        values.setdefault("start_time", now.strftime("%H%M%S"))
    values.setdefault("study_uid", derive_study_uid(values.get("patient_id", ""),
                                                    values.get("accession", ""),
                                                    values["procedure_id"]))
    item, step = Dataset(), Dataset()
    with _quiet_values():
        _fill(item, step, values)
    if "AccessionNumber" not in item:
        item.AccessionNumber = ""  # Type 2: present, empty
    item.ScheduledProcedureStepSequence = [step]
    return item


def _fill(item: Dataset, step: Dataset, values: Mapping[str, str]) -> None:
    for name, text in values.items():
        keyword, in_step = COLUMNS[name]
        target = step if in_step else item
        if name.endswith("_code"):
            setattr(target, keyword, [_code(text, name)])
        elif name in ("birth_date", "start_date"):
            setattr(target, keyword, _date(text))
        elif name == "start_time":
            setattr(target, keyword, _time(text))
        elif name == "age":
            target.PatientAge = _age(text)
        elif name in ("sex", "priority", "modality", "status"):
            setattr(target, keyword, text.upper())
        else:
            setattr(target, keyword, text)


# -- files ------------------------------------------------------------------------------

@dataclass
class FileResult:
    """What became of one file: items stored, or the reasons it was rejected."""

    path: Path
    imported: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


SUFFIXES = (".wl", ".dcm", ".json", ".csv")


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files named, and the worklist files (by suffix) under directories named."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*")
                              if f.is_file() and f.suffix.lower() in SUFFIXES))
        else:
            out.append(p)
    return out


def _read_json(path: Path) -> list[tuple[str, Dataset | str]]:
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    objects = data if isinstance(data, list) else [data]
    out: list[tuple[str, Dataset | str]] = []
    for i, obj in enumerate(objects, 1):
        where = f"item {i}"
        if not isinstance(obj, dict):
            out.append((where, "not a DICOM JSON object"))
            continue
        try:
            out.append((where, Dataset.from_json(obj)))
        except Exception as exc:  # pydicom raises many kinds for malformed JSON
            out.append((where, f"not valid DICOM JSON: {exc}"))
    return out


def _read_csv(path: Path) -> list[tuple[str, Dataset | str]]:
    text = path.read_text(encoding="utf-8-sig")
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = max(",;\t", key=first.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        return [("header", f"unknown column {', '.join(unknown)} (known: "
                           f"{', '.join(COLUMNS)})")]
    reader.fieldnames = header
    out: list[tuple[str, Dataset | str]] = []
    for row in reader:
        where = f"line {reader.line_num}"
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        if None in row:
            out.append((where, "more fields than columns"))
            continue
        try:
            out.append((where, build_item({k: v for k, v in row.items() if k})))
        except ItemRejected as exc:
            out.append((where, "; ".join(exc.reasons)))
    return out


def _read_dicom(path: Path) -> list[tuple[str, Dataset | str]]:
    try:
        ds = pydicom.dcmread(path, force=True)
        for elem in list(ds):
            if elem.tag.group == 0x0002:
                del ds[elem.tag]
        if not len(ds):
            raise InvalidDicomError("no data elements")
        ds.decode()  # apply the Specific Character Set now: items are kept as Unicode
    except Exception as exc:  # truncated or non-DICOM files raise many kinds
        return [("file", f"not a readable DICOM file: {exc}")]
    return [("file", ds)]


def read_file(path: Path) -> list[tuple[str, Dataset | str]]:
    """(location, item or reason) for each record of ``path``."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _read_json(path)
        if suffix == ".csv":
            return _read_csv(path)
        return _read_dicom(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [("file", f"cannot read: {exc}")]


def _fill_study_uid(ds: Dataset) -> None:
    if not str(ds.get("StudyInstanceUID", "") or "").strip():
        ds.StudyInstanceUID = derive_study_uid(str(ds.get("PatientID", "") or ""),
                                               str(ds.get("AccessionNumber", "") or ""),
                                               str(ds.get("RequestedProcedureID", "") or ""))


def import_file(store: WorklistStore, path: Path) -> FileResult:
    """Store every item of ``path`` in one transaction, or none of them."""
    result = FileResult(path)
    items: list[Dataset] = []
    with _quiet_values():
        records = read_file(path)
    for where, record in records:
        if isinstance(record, str):
            result.problems.append(f"{where}: {record}")
            continue
        _fill_study_uid(record)
        steps = split_steps(record)
        for n, step in enumerate(steps, 1):
            label = where if len(steps) == 1 else f"{where} step {n}"
            result.problems.extend(f"{label}: {p}" for p in validate_item(step))
        items.extend(steps)
    if not items and not result.problems:
        result.problems.append("no worklist items in the file")
    if result.problems:
        return result
    try:
        result.imported = len(store.add_many(items, source=str(path)))
    except ItemRejected as exc:  # validated above; kept for safety
        result.problems.extend(exc.reasons)
    return result


def import_files(store: WorklistStore, paths: Iterable[Path | str],
                 advance: Callable[[], None] | None = None) -> list[FileResult]:
    """:func:`import_file` for each file of ``paths`` (directories searched)."""
    results = []
    for path in expand_paths(paths):
        results.append(import_file(store, path))
        if advance is not None:
            advance()
    return results
