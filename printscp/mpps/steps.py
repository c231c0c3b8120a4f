"""Performed procedure steps in the node's database (``<data_dir>/index.sqlite``).

The steps live in the same SQLite file as the archive index so that "how many of
the images this step produced have arrived" is one JOIN against ``instances``, and
so that every worker process of the node sees the same state: the node may run
several receiving processes, and a step's N-CREATE and its N-SETs can land on
different ones.  The state check of an N-SET (is the step still IN PROGRESS?) and
its write therefore happen inside one ``BEGIN IMMEDIATE`` transaction; checking in
Python and writing later would let two final N-SETs both succeed.

Each step is kept whole as DICOM JSON (``attrs``) - that is what N-GET, a report or
a later correction needs - plus the columns the listing and the usage report filter
and group on.  ``mpps_links`` holds every Scheduled Step Attributes Sequence item
(a step can fulfil several scheduled steps, PS3.4 F.7.2.1 / PS3.17 "group case"),
``mpps_references`` every SOP Instance named in the Performed Series Sequence.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pydicom.dataset import Dataset

from printscp.core.database import Database

IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
FINAL_STATUSES = (COMPLETED, DISCONTINUED)
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)

#: Modality Performed Procedure Step SOP Class (PS3.4 F.7.3).
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS mpps_steps (
    pk INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    pps_id TEXT, station_ae TEXT, station_name TEXT, calling_ae TEXT, modality TEXT,
    start_dt TEXT, end_dt TEXT,
    patient_id TEXT, patient_name TEXT,
    study_uid TEXT, accession_number TEXT, sps_id TEXT, requested_procedure_id TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    attrs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mpps_links (
    step_pk INTEGER NOT NULL REFERENCES mpps_steps(pk),
    study_uid TEXT, accession_number TEXT, sps_id TEXT, requested_procedure_id TEXT
);
CREATE TABLE IF NOT EXISTS mpps_references (
    step_pk INTEGER NOT NULL REFERENCES mpps_steps(pk),
    series_uid TEXT, sop_uid TEXT NOT NULL, sop_class_uid TEXT
);
CREATE INDEX IF NOT EXISTS mpps_steps_start ON mpps_steps(start_dt);
CREATE INDEX IF NOT EXISTS mpps_steps_status ON mpps_steps(status);
CREATE INDEX IF NOT EXISTS mpps_links_step ON mpps_links(step_pk);
CREATE INDEX IF NOT EXISTS mpps_links_accession ON mpps_links(accession_number);
CREATE INDEX IF NOT EXISTS mpps_links_study ON mpps_links(study_uid);
CREATE INDEX IF NOT EXISTS mpps_references_step ON mpps_references(step_pk);
"""

_COLUMNS = ("pk, sop_uid, status, pps_id, station_ae, station_name, calling_ae, modality,"
            " start_dt, end_dt, patient_id, patient_name, study_uid, accession_number, sps_id,"
            " requested_procedure_id, created_at, updated_at, attrs")


class StepExists(Exception):
    """N-CREATE for a SOP Instance UID that is already a step (0x0111)."""


class StepNotFound(Exception):
    """N-SET for a SOP Instance UID that is no step here (0x0112)."""


class StepFinal(Exception):
    """N-SET after COMPLETED or DISCONTINUED: the step may no longer be updated (0x0110)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the step is {status} and may no longer be updated")
        self.status = status


@dataclass(frozen=True)
class Link:
    """One Scheduled Step Attributes Sequence item: what the step was scheduled as."""

    study_uid: str
    accession_number: str
    sps_id: str
    requested_procedure_id: str


@dataclass(frozen=True)
class StepRecord:
    pk: int
    uid: str
    status: str
    pps_id: str
    station_ae: str
    station_name: str
    calling_ae: str
    modality: str
    start: datetime | None
    end: datetime | None
    patient_id: str
    patient_name: str
    study_uid: str
    accession_number: str
    sps_id: str
    requested_procedure_id: str
    created_at: str
    updated_at: str
    attrs: str

    @property
    def dataset(self) -> Dataset:
        """The whole step as last set (N-CREATE merged with every N-SET)."""
        return Dataset.from_json(self.attrs)

    @property
    def duration(self) -> float | None:
        """Seconds from PPS start to end, if both are known and in order."""
        if self.start is None or self.end is None or self.end < self.start:
            return None
        return (self.end - self.start).total_seconds()

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip()


def parse_date(text: str) -> date | None:
    """A DA value (``YYYYMMDD``; the ACR-NEMA ``YYYY.MM.DD`` form too) or None."""
    text = text.strip().replace(".", "").replace("-", "")
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date() if len(text) >= 8 else None
    except ValueError:
        return None


def parse_datetime(da: str, tm: str) -> datetime | None:
    """Date and time of a DA/TM pair; TM may be ``HH``, ``HHMM``, ``HHMMSS[.F]``, ``HH:MM:SS``.

    A missing or unreadable time counts as midnight: the date still places the step
    in a report, only its duration is then unknown (the end is parsed the same way).
    """
    day = parse_date(da)
    if day is None:
        return None
    digits, _, fraction = tm.strip().replace(":", "").partition(".")
    try:
        hour = int(digits[0:2]) if len(digits) >= 2 else 0
        minute = int(digits[2:4]) if len(digits) >= 4 else 0
        second = min(int(digits[4:6]), 59) if len(digits) >= 6 else 0
        micro = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
        return datetime(day.year, day.month, day.day, hour, minute, second, micro)
    except ValueError:
        return datetime(day.year, day.month, day.day)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(sep=" ", timespec="seconds") if value else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def links_of(ds: Dataset) -> list[Link]:
    """The worklist keys of every Scheduled Step Attributes Sequence item."""
    return [Link(_text(item, "StudyInstanceUID"), _text(item, "AccessionNumber"),
                 _text(item, "ScheduledProcedureStepID"), _text(item, "RequestedProcedureID"))
            for item in ds.get("ScheduledStepAttributesSequence") or []]


def references_of(ds: Dataset) -> list[tuple[str, str, str]]:
    """(Series Instance UID, SOP Instance UID, SOP Class UID) the step says it made.

    Both the Referenced Image Sequence and the Referenced Non-Image Composite SOP
    Instance Sequence of each Performed Series Sequence item count (PS3.3 C.4.15):
    an SR or a presentation state made during the step must arrive too.
    """
    out = []
    for series in ds.get("PerformedSeriesSequence") or []:
        series_uid = _text(series, "SeriesInstanceUID")
        for keyword in ("ReferencedImageSequence",
                        "ReferencedNonImageCompositeSOPInstanceSequence"):
            for ref in series.get(keyword) or []:
                sop_uid = _text(ref, "ReferencedSOPInstanceUID")
                if sop_uid:
                    out.append((series_uid, sop_uid, _text(ref, "ReferencedSOPClassUID")))
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json(ds: Dataset) -> str:
    return json.dumps(ds.to_json_dict(bulk_data_threshold=1 << 20), separators=(",", ":"))


class MppsStore(Database):
    """The performed steps of the node whose data directory is ``data_dir``.

    One SQLite connection per thread (pynetdicom serves each association on its own
    thread), WAL mode like the archive index so readers (``printscp mpps list``)
    never block the server.
    """

    def __init__(self, data_dir: Path) -> None:
        super().__init__(Path(data_dir) / "index.sqlite", SCHEMA)

    # -- connection ------------------------------------------------------------------

    # -- writing ---------------------------------------------------------------------
    def create(self, uid: str, ds: Dataset, calling_ae: str = "") -> StepRecord:
        """Record a new step (N-CREATE); :class:`StepExists` if ``uid`` is taken."""
        now = _now()
        with self._write() as db:
            if db.execute("SELECT 1 FROM mpps_steps WHERE sop_uid = ?", (uid,)).fetchone():
                raise StepExists(uid)
            cur = db.execute(
                "INSERT INTO mpps_steps (sop_uid, status, calling_ae, created_at, updated_at,"
                " attrs) VALUES (?, ?, ?, ?, ?, ?)",
                (uid, _text(ds, "PerformedProcedureStepStatus"), calling_ae, now, now, "{}"))
            pk = int(cur.lastrowid or 0)
            self._write_step(db, pk, ds, now)
            return self._row(db, pk)

    def update(self, uid: str, change: Callable[[Dataset], Dataset]) -> StepRecord:
        """Apply ``change`` to the stored step (N-SET) inside one write transaction.

        ``change`` gets the current step and returns the new one; whatever it raises
        leaves the step untouched.  :class:`StepNotFound` for an unknown ``uid``,
        :class:`StepFinal` once the step is COMPLETED or DISCONTINUED.
        """
        with self._write() as db:
            row = db.execute("SELECT pk, status, attrs FROM mpps_steps WHERE sop_uid = ?",
                             (uid,)).fetchone()
            if row is None:
                raise StepNotFound(uid)
            pk, status, attrs = row
            if status in FINAL_STATUSES:
                raise StepFinal(status)
            new = change(Dataset.from_json(attrs))
            self._write_step(db, pk, new, _now())
            return self._row(db, pk)

    def _write_step(self, db: sqlite3.Connection, pk: int, ds: Dataset, now: str) -> None:
        links = links_of(ds)
        first = links[0] if links else Link("", "", "", "")
        start = parse_datetime(_text(ds, "PerformedProcedureStepStartDate"),
                               _text(ds, "PerformedProcedureStepStartTime"))
        end = parse_datetime(_text(ds, "PerformedProcedureStepEndDate"),
                             _text(ds, "PerformedProcedureStepEndTime"))
        db.execute(
            "UPDATE mpps_steps SET status = ?, pps_id = ?, station_ae = ?, station_name = ?,"
            " modality = ?, start_dt = ?, end_dt = ?, patient_id = ?, patient_name = ?,"
            " study_uid = ?, accession_number = ?, sps_id = ?, requested_procedure_id = ?,"
            " updated_at = ?, attrs = ? WHERE pk = ?",
            (_text(ds, "PerformedProcedureStepStatus"), _text(ds, "PerformedProcedureStepID"),
             _text(ds, "PerformedStationAETitle"), _text(ds, "PerformedStationName"),
             _text(ds, "Modality"), _iso(start), _iso(end), _text(ds, "PatientID"),
             _text(ds, "PatientName"), first.study_uid, first.accession_number, first.sps_id,
             first.requested_procedure_id, now, _json(ds), pk))
        db.execute("DELETE FROM mpps_links WHERE step_pk = ?", (pk,))
        db.executemany(
            "INSERT INTO mpps_links (step_pk, study_uid, accession_number, sps_id,"
            " requested_procedure_id) VALUES (?, ?, ?, ?, ?)",
            [(pk, link.study_uid, link.accession_number, link.sps_id,
              link.requested_procedure_id) for link in links])
        db.execute("DELETE FROM mpps_references WHERE step_pk = ?", (pk,))
        db.executemany(
            "INSERT INTO mpps_references (step_pk, series_uid, sop_uid, sop_class_uid)"
            " VALUES (?, ?, ?, ?)", [(pk, *ref) for ref in references_of(ds)])

    # -- reading ---------------------------------------------------------------------
    @staticmethod
    def _record(row: tuple) -> StepRecord:
        values = [v if v is not None else "" for v in row]
        values[8] = _from_iso(row[8])
        values[9] = _from_iso(row[9])
        return StepRecord(*values)

    def _row(self, db: sqlite3.Connection, pk: int) -> StepRecord:
        row = db.execute(f"SELECT {_COLUMNS} FROM mpps_steps WHERE pk = ?", (pk,)).fetchone()
        return self._record(row)

    def get(self, uid: str) -> StepRecord | None:
        row = self._connect().execute(f"SELECT {_COLUMNS} FROM mpps_steps WHERE sop_uid = ?",
                                      (uid,)).fetchone()
        return self._record(row) if row else None

    def steps(self, since: date | None = None, until: date | None = None,
              status: str | None = None) -> list[StepRecord]:
        """Steps whose PPS start falls on ``since`` .. ``until`` (inclusive), oldest first.

        A step without a readable start date is listed only when no date bound is
        given: it cannot be placed in a period.
        """
        where, params = [], []
        if since is not None:
            where.append("start_dt >= ?")
            params.append(since.isoformat())
        if until is not None:
            where.append("start_dt < date(?, '+1 day')")
            params.append(until.isoformat())
        if status:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {_COLUMNS} FROM mpps_steps"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_dt IS NULL, start_dt, pk"
        return [self._record(row) for row in self._connect().execute(sql, params)]

    def links(self, step: StepRecord) -> list[Link]:
        return [Link(*(v or "" for v in row)) for row in self._connect().execute(
            "SELECT study_uid, accession_number, sps_id, requested_procedure_id FROM mpps_links"
            " WHERE step_pk = ? ORDER BY rowid", (step.pk,))]

    def completeness(self, step: StepRecord) -> tuple[int, int]:
        """(instances arrived in the archive, instances the step references).

        Counted by SOP Instance UID against the archive's ``instances`` table; an
        archive that was never opened (no table) has received nothing.
        """
        db = self._connect()
        expected = db.execute("SELECT COUNT(DISTINCT sop_uid) FROM mpps_references"
                              " WHERE step_pk = ?", (step.pk,)).fetchone()[0]
        if not expected or not self._has_archive(db):
            return 0, int(expected)
        arrived = db.execute(
            "SELECT COUNT(DISTINCT r.sop_uid) FROM mpps_references r JOIN instances i"
            " ON i.sop_uid = r.sop_uid WHERE r.step_pk = ?", (step.pk,)).fetchone()[0]
        return int(arrived), int(expected)

    def missing(self, step: StepRecord) -> list[str]:
        """SOP Instance UIDs the step references that the archive does not hold."""
        db = self._connect()
        if not self._has_archive(db):
            return [r[0] for r in db.execute(
                "SELECT DISTINCT sop_uid FROM mpps_references WHERE step_pk = ?", (step.pk,))]
        return [r[0] for r in db.execute(
            "SELECT DISTINCT r.sop_uid FROM mpps_references r LEFT JOIN instances i"
            " ON i.sop_uid = r.sop_uid WHERE r.step_pk = ? AND i.pk IS NULL", (step.pk,))]

    @staticmethod
    def _has_archive(db: sqlite3.Connection) -> bool:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                          " AND name = 'instances'").fetchone() is not None
