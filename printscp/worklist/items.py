"""Worklist items in the node's SQLite database, their validation, queries and status.

One *item* is one Scheduled Procedure Step of one Requested Procedure, as a Modality
Worklist C-FIND response presents it (PS3.4 K.6.1): patient, visit, imaging service
request, requested procedure and a Scheduled Procedure Step Sequence of exactly one item.
A record with several steps is split into one item per step on the way in (they share
everything else), so every step is matched, returned and moved through its states on its
own, and the matching columns are single-valued where the data dictionary says so.

Storage follows :mod:`printscp.archive.index` (same file, ``<data_dir>/index.sqlite``):
WAL, flushed to disk before a write returns (:mod:`printscp.core.database`), one connection
per thread, writes in ``BEGIN IMMEDIATE`` transactions.  Each item is kept twice: the
matching keys as columns holding :func:`printscp.query.matching.normalise` values (the
SQL prefilter of :func:`~printscp.query.matching.sql_condition` relies on exactly that
form) and the whole item as DICOM JSON (PS3.18 F), from which responses are built and on
which the exact PS3.4 C.2 check runs.

Items are identified by (Study Instance UID, Scheduled Procedure Step ID): storing an item
with the same pair replaces the stored one (a RIS re-sending an order updates it) but keeps
its Scheduled Procedure Step Status unless the new item states one, so re-importing a batch
file never resurrects a step the modality has already completed.

Status API for the MPPS service (PS3.4 F.7): :meth:`WorklistStore.find_item` links an MPPS
to an item by the keys of its Scheduled Step Attributes Sequence; :meth:`WorklistStore.mark`
sets the step's Scheduled Procedure Step Status (0040,0020) from the MPPS status.
Whether COMPLETED / DISCONTINUED items still match is the C-FIND's choice
(:class:`WorklistConfig`, ``completed = "hide" | "mark"``); the store keeps them either way.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import validate_value

from printscp.core.database import Database
from printscp.core.errors import StatusError, wrong_value
from printscp.query import matching

__all__ = [
    "DONE_STATUSES",
    "MPPS_TO_SPS",
    "SPS_STATUSES",
    "CompletedSteps",
    "ItemRejected",
    "WorklistConfig",
    "WorklistItem",
    "WorklistStore",
    "split_steps",
    "validate_item",
]

SPS_SEQUENCE = 0x00400100
SPS_STATUS = "ScheduledProcedureStepStatus"

#: Defined terms of Scheduled Procedure Step Status (PS3.3 C.4.10).
SPS_STATUSES = ("SCHEDULED", "ARRIVED", "READY", "STARTED", "DEPARTED", "CANCELED",
                "DISCONTINUED", "COMPLETED")
#: Statuses of a step that is over: hidden from C-FIND under ``completed = "hide"``.
DONE_STATUSES = frozenset({"COMPLETED", "DISCONTINUED", "CANCELED"})
#: The Performed Procedure Step Status of an MPPS (PS3.3 C.4.14) → the step's status.
MPPS_TO_SPS = {"IN PROGRESS": "STARTED", "COMPLETED": "COMPLETED",
               "DISCONTINUED": "DISCONTINUED"}
PRIORITIES = ("STAT", "HIGH", "ROUTINE", "MEDIUM", "LOW")

#: Matching-key columns: top-level keyword → column.
TOP_COLUMNS = {
    "StudyInstanceUID": "study_uid", "AccessionNumber": "accession_number",
    "RequestedProcedureID": "requested_procedure_id", "PatientID": "patient_id",
    "PatientName": "patient_name", "ReferringPhysicianName": "referring_physician",
}
#: Matching-key columns: keyword inside the Scheduled Procedure Step Sequence → column.
SPS_COLUMNS = {
    "ScheduledStationAETitle": "station_ae", "ScheduledStationName": "station_name",
    "Modality": "modality", "ScheduledProcedureStepStartDate": "start_date",
    "ScheduledProcedureStepStartTime": "start_time",
    "ScheduledPerformingPhysicianName": "performing_physician",
    "ScheduledProcedureStepID": "sps_id", "ScheduledProcedureStepStatus": "sps_status",
}

#: Type 1 attributes of a worklist item (PS3.4 Table K.6-1 return key types).
REQUIRED_TOP = ("PatientName", "PatientID", "StudyInstanceUID", "RequestedProcedureID")
REQUIRED_SPS = ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
                "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID")

SCHEMA = """
CREATE TABLE IF NOT EXISTS worklist_items (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids stay unique (cache, MPPS)
    version INTEGER NOT NULL DEFAULT 0,    -- bumped on every change (query cache key)
    study_uid TEXT NOT NULL,
    sps_id TEXT NOT NULL,
    accession_number TEXT, requested_procedure_id TEXT,
    patient_id TEXT, patient_name TEXT, referring_physician TEXT,
    station_ae TEXT, station_name TEXT, modality TEXT,
    start_date TEXT, start_time TEXT, performing_physician TEXT,
    sps_status TEXT NOT NULL,
    source TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    attrs TEXT NOT NULL,
    UNIQUE (study_uid, sps_id)
);
CREATE INDEX IF NOT EXISTS worklist_start ON worklist_items(start_date, start_time);
CREATE INDEX IF NOT EXISTS worklist_accession ON worklist_items(accession_number);
CREATE INDEX IF NOT EXISTS worklist_patient ON worklist_items(patient_id);
CREATE INDEX IF NOT EXISTS worklist_sps ON worklist_items(sps_id);
CREATE INDEX IF NOT EXISTS worklist_station ON worklist_items(station_ae);
"""

_COLUMN_ORDER = (*TOP_COLUMNS.values(), *SPS_COLUMNS.values())


class ItemRejected(ValueError):
    """An item that cannot be stored; ``reasons`` lists every problem found."""

    def __init__(self, reasons: Sequence[str], where: str = "") -> None:
        self.reasons = list(reasons)
        self.where = where
        shown = "; ".join(self.reasons[:10])  # the message stays readable; reasons has all
        if len(self.reasons) > 10:
            shown += f"; ... {len(self.reasons) - 10} more"
        super().__init__((f"{where}: " if where else "") + shown)


class CompletedSteps(StrEnum):
    """What a Modality Worklist C-FIND does with finished steps (``[worklist] completed``)."""

    HIDE = "hide"  #: steps COMPLETED, DISCONTINUED or CANCELED do not match
    MARK = "mark"  #: they match, and return their Scheduled Procedure Step Status


@dataclass(frozen=True)
class WorklistConfig:
    """``[worklist]`` of the node's configuration.

    ``completed``: what a C-FIND does with steps whose status is COMPLETED, DISCONTINUED
    or CANCELED: ``"hide"`` (default; a modality's list shows only what is still to do)
    or ``"mark"`` (they match, and return their status).  A string is converted to
    :class:`CompletedSteps`; anything else raises :class:`ConfigError` naming the key.
    """

    enabled: bool = True
    completed: CompletedSteps = CompletedSteps.HIDE

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "completed", CompletedSteps(self.completed))
        except ValueError:
            raise wrong_value(self.completed, "one of " + ", ".join(CompletedSteps),
                              "completed") from None

    def validate(self) -> WorklistConfig:
        return self


@dataclass(frozen=True)
class WorklistItem:
    """A stored item's summary (what ``printscp worklist list`` shows)."""

    id: int
    study_uid: str
    sps_id: str
    accession_number: str
    requested_procedure_id: str
    patient_id: str
    patient_name: str
    modality: str
    station_ae: str
    start_date: str
    start_time: str
    status: str
    description: str
    updated_at: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


# -- validation ---------------------------------------------------------------------------

def _steps(ds: Dataset) -> list[Dataset]:
    elem = ds.get(SPS_SEQUENCE)
    if elem is None or elem.VR != "SQ" or not elem.value:
        return []
    return list(elem.value)


def split_steps(ds: Dataset) -> list[Dataset]:
    """One item per Scheduled Procedure Step: copies of ``ds`` with one step each."""
    steps = _steps(ds)
    if len(steps) <= 1:
        return [ds]
    out = []
    for step in steps:
        item = copy.deepcopy(ds)
        item.ScheduledProcedureStepSequence = [copy.deepcopy(step)]
        out.append(item)
    return out


def _text_values(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes):
        values: list[object] = [value]
    elif isinstance(value, Sequence):
        values = list(value)
    else:
        values = [value]
    return [str(getattr(v, "original_string", None) or v) for v in values if v != ""]


def _check_value(elem: DataElement, where: str, problems: list[str]) -> None:
    """Dates, times and the matching keys must be valid values of their VR (PS3.5 6.2)."""
    vr = str(elem.VR)
    name = f"{where}{keyword_for_tag(elem.tag) or elem.tag}"
    for text in _text_values(elem):
        try:
            validate_value(vr, text, pydicom_config.RAISE)
            if vr == "DA":
                date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except (ValueError, TypeError) as exc:
            reason = str(exc).split(" Please see")[0]
            problems.append(f"{name}: {reason}" if name not in reason else reason)


_KEY_KEYWORDS = frozenset({*TOP_COLUMNS, *SPS_COLUMNS, "PatientBirthDate", "PatientSex",
                           "RequestedProcedurePriority", "PatientAge", "PatientWeight"})


def _walk_values(ds: Dataset, where: str, problems: list[str]) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                _walk_values(item, f"{where}{elem.keyword or elem.tag}[{i}].", problems)
        elif elem.VR in ("DA", "TM", "DT") or elem.keyword in _KEY_KEYWORDS:
            _check_value(elem, where, problems)


def _elem(ds: Dataset, keyword: str) -> DataElement | None:
    """The element (not its value, which is what ``Dataset.get`` gives for keywords)."""
    return ds[keyword] if keyword in ds else None  # noqa: SIM401 (get gives the value)


def _empty(ds: Dataset, keyword: str) -> bool:
    elem = _elem(ds, keyword)
    return elem is None or elem.value is None or elem.value == "" or elem.value == []


def validate_item(ds: Dataset) -> list[str]:
    """Every reason ``ds`` (one step, see :func:`split_steps`) is not a usable worklist item.

    Checks the Type 1 attributes of PS3.4 Table K.6-1 (Requested Procedure Description or
    Code Sequence: one of the two), the values of the matching keys and of every date and
    time against their VR, and the enumerated Requested Procedure Priority and Patient's
    Sex.  Other attributes are kept as given: a RIS's extra data is not our business.
    """
    problems: list[str] = []
    steps = _steps(ds)
    if SPS_SEQUENCE not in ds:
        problems.append("ScheduledProcedureStepSequence (0040,0100) is missing")
    elif not steps:
        problems.append("ScheduledProcedureStepSequence (0040,0100) has no item")
    elif len(steps) > 1:
        problems.append("ScheduledProcedureStepSequence has several items (split them first)")
    for keyword in REQUIRED_TOP:
        if _empty(ds, keyword):
            problems.append(f"{keyword} is missing or empty (Type 1)")
    if _empty(ds, "RequestedProcedureDescription") and \
            _empty(ds, "RequestedProcedureCodeSequence"):
        problems.append("RequestedProcedureDescription or RequestedProcedureCodeSequence "
                        "is required")
    for step in steps[:1]:
        for keyword in REQUIRED_SPS:
            if _empty(step, keyword):
                problems.append(f"ScheduledProcedureStepSequence > {keyword} is missing or "
                                "empty (Type 1)")
        status = str(step.get(SPS_STATUS, "") or "").strip()
        if status and status not in SPS_STATUSES:
            problems.append(f"ScheduledProcedureStepStatus {status!r} is not one of "
                            f"{', '.join(SPS_STATUSES)}")
    priority = str(ds.get("RequestedProcedurePriority", "") or "").strip()
    if priority and priority not in PRIORITIES:
        problems.append(f"RequestedProcedurePriority {priority!r} is not one of "
                        f"{', '.join(PRIORITIES)}")
    sex = str(ds.get("PatientSex", "") or "").strip()
    if sex and sex not in ("M", "F", "O"):
        problems.append(f"PatientSex {sex!r} is not M, F or O")
    _walk_values(ds, "", problems)
    return problems


def _has_non_ascii(ds: Dataset) -> str | None:
    """All the item's text, when some of it is not ASCII (else None)."""
    texts: list[str] = []

    def walk(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value or []:
                    walk(item)
            elif elem.VR in ("PN", "LO", "SH", "LT", "ST", "UT", "UC"):
                texts.extend(_text_values(elem))
    walk(ds)
    text = "".join(texts)
    return None if text.isascii() else text


def _settle_charset(ds: Dataset) -> None:
    """Give an item with non-ASCII text and no Specific Character Set one it fits in.

    Items from JSON, CSV and the command line are Unicode; a response must say how it is
    encoded.  Latin-1 (ISO_IR 100) when it suffices, since modalities support it far more
    widely than UTF-8 (ISO_IR 192), which covers the rest.
    """
    if "SpecificCharacterSet" in ds and ds.SpecificCharacterSet:
        return
    text = _has_non_ascii(ds)
    if text is None:
        return
    try:
        text.encode("latin-1")
        ds.SpecificCharacterSet = "ISO_IR 100"
    except UnicodeEncodeError:
        ds.SpecificCharacterSet = "ISO_IR 192"


def _column(ds: Dataset, keyword: str) -> str | None:
    elem = _elem(ds, keyword)
    return None if elem is None else matching.normalise(elem)


def _row_values(ds: Dataset) -> dict[str, str | None]:
    step = _steps(ds)[0]
    values = {column: _column(ds, kw) for kw, column in TOP_COLUMNS.items()}
    values.update({column: _column(step, kw) for kw, column in SPS_COLUMNS.items()})
    return values


def _json(ds: Dataset) -> str:
    return json.dumps(ds.to_json_dict(bulk_data_threshold=1 << 20), separators=(",", ":"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- the store ----------------------------------------------------------------------------

class WorklistStore(Database):
    """Worklist items in the SQLite database at ``path`` (the node's ``index.sqlite``)."""

    #: Parsed items kept for queries (a day's worklist of a department fits).
    cache_size = 5000

    def __init__(self, path: Path | str) -> None:
        self._cache: OrderedDict[tuple[int, int], Dataset] = OrderedDict()
        self._cache_lock = threading.Lock()
        super().__init__(Path(path), SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> WorklistStore:
        """The store of a node whose data directory is ``data_dir``."""
        return cls(Path(data_dir) / "index.sqlite")


    # -- writing ---------------------------------------------------------------------
    def add(self, ds: Dataset, *, source: str = "") -> int:
        """Store one item (split per step first; its first step's id is returned)."""
        return self.add_many([ds], source=source)[0]

    def add_many(self, datasets: Iterable[Dataset], *, source: str = "") -> list[int]:
        """Store every item or none: all are validated first, then written in one
        transaction.  Raises :class:`ItemRejected` listing the problems of every bad one
        (``where`` = its position, counted from 1).  Returns the ids, one per step.
        """
        items: list[Dataset] = []
        problems: list[str] = []
        for n, ds in enumerate(datasets, 1):
            for item in split_steps(ds):
                bad = validate_item(item)
                if bad:
                    problems.extend(f"item {n}: {p}" for p in bad)
                else:
                    items.append(item)
        if problems:
            raise ItemRejected(problems)
        ids = []
        with self._write() as db:
            for item in items:
                ids.append(self._upsert(db, item, source))
        return ids

    def _upsert(self, db: sqlite3.Connection, ds: Dataset, source: str) -> int:
        ds = copy.deepcopy(ds)
        step = _steps(ds)[0]
        study_uid = str(ds.StudyInstanceUID).strip(" \x00")
        sps_id = str(step.ScheduledProcedureStepID).strip()
        explicit = str(step.get(SPS_STATUS, "") or "").strip()
        old = db.execute("SELECT sps_status FROM worklist_items WHERE study_uid = ? AND"
                         " sps_id = ?", (study_uid, sps_id)).fetchone()
        step.ScheduledProcedureStepStatus = explicit or (old[0] if old else "SCHEDULED")
        _settle_charset(ds)
        values = _row_values(ds)
        values["study_uid"], values["sps_id"] = study_uid, sps_id
        now = _now()
        columns = ", ".join(_COLUMN_ORDER)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMN_ORDER)
        db.execute(
            f"INSERT INTO worklist_items ({columns}, source, created_at, updated_at, attrs)"
            f" VALUES ({', '.join('?' * (len(_COLUMN_ORDER) + 4))})"
            f" ON CONFLICT (study_uid, sps_id) DO UPDATE SET {updates},"
            " source = excluded.source, updated_at = excluded.updated_at,"
            " version = worklist_items.version + 1,"
            " attrs = excluded.attrs",
            (*(values[c] for c in _COLUMN_ORDER), source, now, now, _json(ds)))
        (pk,) = db.execute("SELECT pk FROM worklist_items WHERE study_uid = ? AND sps_id = ?",
                           (study_uid, sps_id)).fetchone()
        return int(pk)

    def remove(self, *, sps_ids: Iterable[str] = (), accessions: Iterable[str] = (),
               item_ids: Iterable[int] = ()) -> int:
        """Delete items by Scheduled Procedure Step ID, Accession Number or item id.

        Returns how many were deleted.
        """
        where, params = [], []
        for column, values in (("sps_id", [s.strip() for s in sps_ids]),
                               ("accession_number", [a.strip() for a in accessions]),
                               ("pk", [int(i) for i in item_ids])):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if not where:
            return 0
        with self._write() as db:
            cur = db.execute("DELETE FROM worklist_items WHERE " + " OR ".join(where), params)
            return int(cur.rowcount)

    # -- status (the MPPS service's API) ---------------------------------------------
    def find_items(self, study_uid: str | None = None, sps_id: str | None = None,
                   accession: str | None = None,
                   requested_procedure_id: str | None = None) -> list[int]:
        """Ids of the items matching every given (non-empty) key; [] when none given."""
        where, params = [], []
        for column, value in (("study_uid", study_uid), ("sps_id", sps_id),
                              ("accession_number", accession),
                              ("requested_procedure_id", requested_procedure_id)):
            if value is not None and str(value).strip(" \x00"):
                where.append(f"{column} = ?")
                params.append(str(value).strip(" \x00"))
        if not where:
            return []
        rows = self._connect().execute(
            "SELECT pk FROM worklist_items WHERE " + " AND ".join(where) + " ORDER BY pk",
            params)
        return [int(r[0]) for r in rows]

    def find_item(self, study_uid: str | None = None, sps_id: str | None = None,
                  accession: str | None = None,
                  requested_procedure_id: str | None = None) -> int | None:
        """The one item the keys designate, else None (no match, or several)."""
        ids = self.find_items(study_uid, sps_id, accession, requested_procedure_id)
        return ids[0] if len(ids) == 1 else None

    def mark(self, item_id: int | None = None, *, study_uid: str | None = None,
             sps_id: str | None = None, accession: str | None = None,
             requested_procedure_id: str | None = None, status: str) -> int:
        """Set the Scheduled Procedure Step Status of the designated items.

        ``status`` is an MPPS Performed Procedure Step Status (``IN PROGRESS`` →
        STARTED, ``COMPLETED``, ``DISCONTINUED``) or any SPS status defined term.  The
        items are ``item_id`` if given, else all those matching every given key.  No
        transition is refused: the MPPS SCP owns its state machine.  Returns the number
        of items changed.
        """
        new = MPPS_TO_SPS.get(status.strip().upper(), status.strip().upper())
        if new not in SPS_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._write() as db:
            if item_id is not None:
                ids = [int(item_id)]
            else:
                ids = self.find_items(study_uid, sps_id, accession, requested_procedure_id)
            changed = 0
            for pk in ids:
                row = db.execute("SELECT attrs FROM worklist_items WHERE pk = ?",
                                 (pk,)).fetchone()
                if row is None:
                    continue
                ds = Dataset.from_json(row[0])
                _steps(ds)[0].ScheduledProcedureStepStatus = new
                db.execute("UPDATE worklist_items SET sps_status = ?, updated_at = ?,"
                           " version = version + 1,"
                           " attrs = ? WHERE pk = ?", (new, _now(), _json(ds), pk))
                changed += 1
        return changed

    # -- reading ---------------------------------------------------------------------
    def get(self, item_id: int) -> Dataset | None:
        row = self._connect().execute("SELECT attrs FROM worklist_items WHERE pk = ?",
                                      (int(item_id),)).fetchone()
        return Dataset.from_json(row[0]) if row else None

    def count(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM worklist_items").fetchone()[0])

    def items(self) -> list[WorklistItem]:
        """Every item, in schedule order."""
        rows = self._connect().execute(
            "SELECT pk, study_uid, sps_id, accession_number, requested_procedure_id,"
            " patient_id, patient_name, modality, station_ae, start_date, start_time,"
            " sps_status, attrs, updated_at FROM worklist_items"
            " ORDER BY start_date, start_time, pk")
        out = []
        for row in rows:
            ds = Dataset.from_json(row[12])
            step = _steps(ds)[0] if _steps(ds) else Dataset()
            description = str(ds.get("RequestedProcedureDescription", "") or
                              step.get("ScheduledProcedureStepDescription", "") or "")
            out.append(WorklistItem(int(row[0]), *(str(v or "") for v in row[1:12]),
                                    description, str(row[13])))
        return out

    def query(self, identifier: Dataset, *, include_done: bool = False
              ) -> Iterator[tuple[int, Dataset]]:
        """(id, item) of every item matching a Modality Worklist identifier (PS3.4 K.6,
        C.2), in schedule order.

        SQL narrows with the columns; :func:`~printscp.query.matching.match_dataset`
        then checks each candidate exactly, with combined date-time matching of
        Scheduled Procedure Step Start Date and Time (C.2.2.2.5.1).  Steps whose status is
        in :data:`DONE_STATUSES` are left out unless ``include_done``.  Raises
        :class:`StatusError` (0xA900 / 0xC000) for identifiers it cannot answer, before
        anything is yielded.
        """
        check_identifier(identifier)
        where, params = sql_conditions(identifier)
        if not include_done:
            where.append(f"sps_status NOT IN ({', '.join('?' * len(DONE_STATUSES))})")
            params.extend(sorted(DONE_STATUSES))
        sql = "SELECT pk, version, attrs FROM worklist_items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_date, start_time, pk"
        matches = matching.identifier_matcher(identifier, combined_datetime=True)
        for pk, version, attrs in self._connect().execute(sql, params):
            item = self._parsed(int(pk), int(version), attrs)
            if matches(item):
                yield int(pk), item

    def _parsed(self, pk: int, version: int, attrs: str) -> Dataset:
        """The item as a Dataset, from a small cache: modalities poll the same items all
        day, and decoding the JSON is half of a query's cost.  Keyed by the row's
        ``version`` too (bumped by every write, from any process), so a changed item is
        never served stale; callers must not modify the returned Dataset."""
        key = (pk, version)
        with self._cache_lock:
            item = self._cache.get(key)
            if item is not None:
                self._cache.move_to_end(key)
                return item
        item = Dataset.from_json(attrs)
        with self._cache_lock:
            self._cache[key] = item
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return item


# -- identifiers --------------------------------------------------------------------------

_IDENTIFIER_DOES_NOT_MATCH = 0xA900
_UNABLE_TO_PROCESS = 0xC000


def _check_keys(ds: Dataset, where: str) -> None:
    for elem in ds:
        tag = elem.tag
        if tag.group in (0x0000, 0x0002) or tag.element == 0x0000:
            continue
        name = f"{where}{elem.keyword or tag}"
        if not tag.is_private:
            try:
                expected = dictionary_VR(tag)
            except KeyError:
                expected = ""
            if expected and elem.VR not in ("UN", expected) and \
                    str(elem.VR) not in expected.split(" or "):
                raise StatusError(_IDENTIFIER_DOES_NOT_MATCH,
                                    f"{name} has VR {elem.VR}, not {expected}")
        if elem.VR == "SQ":  # items first, so the comment names the innermost key
            for item in elem.value or []:
                _check_keys(item, f"{name}>")
        try:
            matching.classify(elem)
        except matching.InvalidKeyError as exc:
            # The Error Comment holds 64 characters: the key's own name comes first.
            raise StatusError(_UNABLE_TO_PROCESS,
                                f"{elem.keyword or tag}: {exc} (in {name})") from None


def check_identifier(identifier: Dataset) -> None:
    """Raise :class:`StatusError` for an identifier the worklist cannot answer.

    0xA900 (identifier does not match the SOP class) for a key whose VR is not its data
    dictionary VR (such as a Scheduled Procedure Step Sequence that is no sequence);
    0xC000 (unable to process) for a key with no defined meaning, the comment naming it:
    a sequence key with several items, a date or time that is none.
    """
    _check_keys(identifier, "")


def sql_conditions(identifier: Dataset) -> tuple[list[str], list[object]]:
    """The SQL prefilter of an identifier: conditions on the item columns (a superset of
    the exact match; the same normalisation on both sides makes it exact for most keys)."""
    where: list[str] = []
    params: list[object] = []

    def add(condition: tuple[str, list[object]] | None) -> None:
        if condition is not None:
            where.append(condition[0])
            params.extend(condition[1])

    for elem in identifier:
        column = TOP_COLUMNS.get(elem.keyword)
        if column is not None and elem.VR != "SQ":
            add(matching.sql_condition(column, elem))
    sps = identifier.get(SPS_SEQUENCE)
    if sps is None or sps.VR != "SQ" or len(sps.value or []) != 1:
        return where, params
    key = sps.value[0]
    date_key = _elem(key, "ScheduledProcedureStepStartDate")
    time_key = _elem(key, "ScheduledProcedureStepStartTime")
    if date_key is not None and time_key is not None:
        add(matching.sql_datetime_pair("start_date", "start_time", date_key, time_key))
        # Implied by the pair (its bounds start with the date key's), and indexed.
        add(matching.sql_condition("start_date", date_key))
    for elem in key:
        column = SPS_COLUMNS.get(elem.keyword)
        if column is None or elem.VR == "SQ":
            continue
        if column in ("start_date", "start_time") and date_key is not None \
                and time_key is not None:
            continue
        add(matching.sql_condition(column, elem))
    return where, params
