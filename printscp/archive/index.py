"""The archive's index: patients, studies, series and instances in SQLite.

One small module holds all SQL, written in the portable subset (no SQLite-only
types; ``?`` parameters are the only dialect point), so a shared PostgreSQL can
take its place later.  Each level keeps its Q/R attributes twice: the commonly
queried ones as normalised columns (SQL prefilters on them) and all of them as DICOM
JSON (return keys, and the exact PS3.4 C.2 check in
:mod:`printscp.query.matching`).

The database is ``<data_dir>/index.sqlite`` in WAL mode (:mod:`printscp.core.database`):
a C-STORE is answered only after its row is committed and the WAL flushed to disk.
The instance's file is complete, fsynced and renamed into place before its row is
written, so the index never names a file that is incomplete or other than the one
whose checksum it holds; the write transaction is short (no file I/O but a check that
the file is still there).  Writers serialise on the database's writer lock
(:class:`printscp.core.database.WriterLock`), under which replaced files are deleted as
well, so two workers storing the same instance leave one good copy.

The IMAGE-level JSON of an instance is built by
:class:`printscp.archive.instance_json.InstanceJson`, which decodes only the elements
not seen before in the series; :func:`level_dataset` states the same rules on a
decoded data set (and builds the levels above).
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from printscp.archive import part10
from printscp.archive.files import ArchiveFiles, StagedFile, remove
from printscp.archive.instance_json import (
    BULK_DATA_THRESHOLD,
    BULK_VRS,
    MAX_VALUE_CHARS,
    SKIPPED_GROUPS,
    InstanceJson,
)
from printscp.core.database import Database
from printscp.query import matching

LOGGER = logging.getLogger("printscp.archive")


class Level(Enum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


ORDER = [Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE]

#: Attributes kept at each level above IMAGE (PS3.4 C.6 keys plus what a viewer shows);
#: every other top-level attribute of an instance (bulk data excepted) is kept at IMAGE.
#: Specific Character Set is kept at every level: a response made of one level's
#: values declares the character set they came in (PS3.4 C.4.1.1.3.2).
LEVEL_KEYWORDS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: (
        "SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence",
        "PatientBirthDate", "PatientBirthTime", "PatientSex", "OtherPatientIDsSequence",
        "OtherPatientNames", "EthnicGroup", "PatientComments", "PatientSpeciesDescription",
        "ResponsiblePerson",
    ),
    Level.STUDY: (
        "SpecificCharacterSet", "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
        "IssuerOfAccessionNumberSequence", "StudyID", "StudyDescription",
        "ReferringPhysicianName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
        "ProcedureCodeSequence", "AdmittingDiagnosesDescription", "PatientAge",
        "PatientSize", "PatientWeight", "Occupation", "AdditionalPatientHistory",
        "InstitutionName",
    ),
    Level.SERIES: (
        "SpecificCharacterSet", "SeriesInstanceUID", "Modality", "SeriesNumber",
        "SeriesDescription", "SeriesDate",
        "SeriesTime", "BodyPartExamined", "Laterality", "PerformingPhysicianName",
        "ProtocolName", "OperatorsName", "StationName", "Manufacturer",
        "ManufacturerModelName", "RequestAttributesSequence",
        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
        "PerformedProcedureStepID", "InstitutionalDepartmentName",
    ),
}
_HIGHER = {kw for level in (Level.PATIENT, Level.STUDY, Level.SERIES)
           for kw in LEVEL_KEYWORDS[level]} - {"SpecificCharacterSet"}

#: Normalised columns: (table, column) per keyword, for SQL prefilters.
COLUMNS: dict[str, tuple[str, str]] = {
    "PatientID": ("p", "patient_id"), "PatientName": ("p", "patient_name"),
    "PatientBirthDate": ("p", "birth_date"), "PatientSex": ("p", "sex"),
    "StudyInstanceUID": ("st", "study_uid"), "StudyDate": ("st", "study_date"),
    "StudyTime": ("st", "study_time"), "AccessionNumber": ("st", "accession_number"),
    "StudyID": ("st", "study_id"), "ReferringPhysicianName": ("st", "referring_physician"),
    "StudyDescription": ("st", "study_description"),
    "SeriesInstanceUID": ("se", "series_uid"), "Modality": ("se", "modality"),
    "SeriesNumber": ("se", "series_number"), "SeriesDate": ("se", "series_date"),
    "SOPInstanceUID": ("i", "sop_uid"), "SOPClassUID": ("i", "sop_class_uid"),
    "InstanceNumber": ("i", "instance_number"),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    pk INTEGER PRIMARY KEY,
    patient_key TEXT NOT NULL UNIQUE,
    patient_id TEXT, patient_name TEXT, birth_date TEXT, sex TEXT,
    attrs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    pk INTEGER PRIMARY KEY,
    patient_pk INTEGER NOT NULL REFERENCES patients(pk),
    study_uid TEXT NOT NULL UNIQUE,
    study_date TEXT, study_time TEXT, accession_number TEXT, study_id TEXT,
    referring_physician TEXT, study_description TEXT,
    attrs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    pk INTEGER PRIMARY KEY,
    study_pk INTEGER NOT NULL REFERENCES studies(pk),
    series_uid TEXT NOT NULL UNIQUE,
    modality TEXT, series_number TEXT, series_date TEXT,
    attrs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    pk INTEGER PRIMARY KEY,
    series_pk INTEGER NOT NULL REFERENCES series(pk),
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL, instance_number TEXT,
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    stored_at TEXT NOT NULL, source_ae TEXT,
    attrs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_name ON patients(patient_name);
CREATE INDEX IF NOT EXISTS patients_id ON patients(patient_id);
CREATE INDEX IF NOT EXISTS studies_patient ON studies(patient_pk);
CREATE INDEX IF NOT EXISTS studies_date ON studies(study_date);
CREATE INDEX IF NOT EXISTS studies_accession ON studies(accession_number);
CREATE INDEX IF NOT EXISTS series_study ON series(study_pk);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_pk);
CREATE INDEX IF NOT EXISTS instances_size ON instances(size);
"""

def level_dataset(ds: Dataset, level: Level) -> Dataset:
    """The attributes of ``ds`` that belong to ``level`` (IMAGE: all the rest, no bulk
    data, no longer values; the rules :class:`InstanceJson` applies element by element)."""
    out = Dataset()
    if level is Level.IMAGE:
        for elem in ds:
            if elem.keyword in _HIGHER or elem.tag.group in SKIPPED_GROUPS \
                    or elem.VR in BULK_VRS:
                continue
            if elem.VR != "SQ" and len(elem.value if isinstance(elem.value, bytes | str)
                                       else str(elem.value)) > MAX_VALUE_CHARS:
                continue
            out.add(elem)
    else:
        for keyword in LEVEL_KEYWORDS[level]:
            if keyword in ds:
                out.add(ds[keyword])
    return out


def _json(ds: Dataset) -> str:
    return json.dumps(ds.to_json_dict(bulk_data_threshold=BULK_DATA_THRESHOLD),
                      separators=(",", ":"))


def _from_json(text: str) -> Dataset:
    return Dataset.from_json(text)


_LEVEL_TAGS = {level: tuple(Tag(kw) for kw in keywords)
               for level, keywords in LEVEL_KEYWORDS.items()}


_UNREAD = object()


def _fingerprint(ds: Dataset, level: Level) -> tuple[object, ...]:
    """The level's values as read (raw bytes while undecoded): cheap to compare.

    The transfer syntax and character sets are part of it (the same bytes may mean
    other values); a value not read yet (deferred) never compares equal.
    """
    elements = ds._dict  # by tag; pydicom's keyword lookups dominate otherwise
    values: list[object] = [ds.original_encoding, ds.original_character_set]
    for tag in _LEVEL_TAGS[level]:
        elem = elements.get(tag)
        if elem is None:
            values.append(None)
        elif elem.value is None and isinstance(elem, RawDataElement) and elem.length:
            values.append(_UNREAD)
        else:
            values.append(elem.value)
    return tuple(values)


_INSERT_INSTANCE = (
    "INSERT INTO instances (series_pk, sop_uid, sop_class_uid, instance_number,"
    " transfer_syntax, path, size, sha256, stored_at, source_ae, attrs)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sop_uid) DO UPDATE SET"
    " series_pk = excluded.series_pk, sop_class_uid = excluded.sop_class_uid,"
    " instance_number = excluded.instance_number,"
    " transfer_syntax = excluded.transfer_syntax, path = excluded.path,"
    " size = excluded.size, sha256 = excluded.sha256,"
    " stored_at = excluded.stored_at, source_ae = excluded.source_ae,"
    " attrs = excluded.attrs")

_KEY_COLUMN = {Level.PATIENT: "patient_key", Level.STUDY: "study_uid",
               Level.SERIES: "series_uid"}

#: Insert-or-update of each level row, parents first.
_UPSERTS: dict[Level, tuple[str, str]] = {
    Level.PATIENT: ("patients",
                    "INSERT INTO patients (patient_key, patient_id, patient_name, birth_date, sex,"
                    " attrs) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (patient_key) DO UPDATE SET"
                    " patient_name = excluded.patient_name, birth_date = excluded.birth_date,"
                    " sex = excluded.sex, attrs = excluded.attrs"),
    Level.STUDY: ("studies",
                  "INSERT INTO studies (patient_pk, study_uid, study_date, study_time,"
                  " accession_number, study_id, referring_physician, study_description, attrs)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study_uid) DO UPDATE SET"
                  " study_date = excluded.study_date, study_time = excluded.study_time,"
                  " accession_number = excluded.accession_number,"
                  " study_id = excluded.study_id,"
                  " referring_physician = excluded.referring_physician,"
                  " study_description = excluded.study_description, attrs = excluded.attrs"),
    Level.SERIES: ("series",
                   "INSERT INTO series (study_pk, series_uid, modality, series_number,"
                   " series_date, attrs) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (series_uid)"
                   " DO UPDATE SET modality = excluded.modality,"
                   " series_number = excluded.series_number,"
                   " series_date = excluded.series_date, attrs = excluded.attrs"),
}


def _upsert_values(level: Level, ds: Dataset, parent: int | None, key: str) -> tuple:
    attrs = _json(level_dataset(ds, level))
    if level is Level.PATIENT:
        return (key, _column(ds, "PatientID"), _column(ds, "PatientName"),
                _column(ds, "PatientBirthDate"), _column(ds, "PatientSex"), attrs)
    if level is Level.STUDY:
        return (parent, key, _column(ds, "StudyDate"), _column(ds, "StudyTime"),
                _column(ds, "AccessionNumber"), _column(ds, "StudyID"),
                _column(ds, "ReferringPhysicianName"), _column(ds, "StudyDescription"), attrs)
    return (parent, key, _column(ds, "Modality"), _column(ds, "SeriesNumber"),
            _column(ds, "SeriesDate"), attrs)


@functools.cache
def _tag(keyword: str) -> BaseTag:
    return Tag(keyword)


def _column(ds: Dataset, keyword: str) -> str | None:
    tag = _tag(keyword)  # by tag: pydicom's keyword lookups cost more than the rest
    if tag not in ds._dict:
        return None
    return matching.normalise(ds[tag])


_UID_KEYWORDS = frozenset({"SOPInstanceUID", "SOPClassUID", "StudyInstanceUID",
                           "SeriesInstanceUID"})


def _text(ds: Dataset, keyword: str) -> str:
    """The value of ``keyword`` as text; "" when absent or empty (a UID read from its
    bytes: :func:`printscp.archive.part10.uid_value`)."""
    tag = _tag(keyword)
    if tag not in ds._dict:
        return ""
    if keyword in _UID_KEYWORDS:
        return str(part10.uid_value(ds, tag) or "")
    return str(ds[tag].value or "")


#: Return keys computed from the rows below a record (PS3.4 C.3.4 / C.6).
DERIVED_TAGS = frozenset(Tag(kw) for kw in (
    "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
    "NumberOfPatientRelatedInstances", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "ModalitiesInStudy", "SOPClassesInStudy",
    "NumberOfSeriesRelatedInstances", "AvailableTransferSyntaxUID"))


class StoreResult(Enum):
    STORED = "stored"
    REPLACED = "replaced"
    KEPT = "kept"  #: a copy was there and the duplicate policy keeps it


@dataclass(frozen=True)
class InstanceRecord:
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    path: str  #: relative to the archive folder
    size: int
    sha256: str
    study_uid: str = ""
    series_uid: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Index(Database):
    """The index at ``path``; one connection per thread."""

    def __init__(self, path: Path) -> None:
        #: (table alias, pk) -> (attrs JSON, parsed) of rows read by queries.
        self._parsed_rows: dict[tuple[str, int], tuple[str, Dataset]] = {}
        #: (level, key) -> (attribute fingerprint, row pk) of level rows written here.
        self._levels: dict[tuple[Level, str], tuple[tuple[object, ...], int]] = {}
        #: The IMAGE-level JSON of an instance, decoding only the elements that vary.
        self.instance_json = InstanceJson(_HIGHER)
        super().__init__(path, SCHEMA)

    # -- storing ---------------------------------------------------------------------
    def has_instance(self, sop_uid: str) -> bool:
        """Whether ``sop_uid`` is indexed (a read: a store may be committing meanwhile)."""
        return self._connect().execute("SELECT 1 FROM instances WHERE sop_uid = ?",
                                       (sop_uid,)).fetchone() is not None

    def update_patient(self, patient_id: str, attrs: Dataset, issuer: str | None = None
                       ) -> list[tuple[str, str]]:
        """Set the patient-level attributes in ``attrs`` (only keywords of the PATIENT
        level; Patient ID and Issuer are the row's key and stay) on every patient row
        with ``patient_id`` (and ``issuer`` when given, "" for none): an HL7 ADT^A08.
        Returns (patient_key, attrs JSON before) per row changed, for an undo."""
        keep = set(LEVEL_KEYWORDS[Level.PATIENT]) - {"PatientID", "IssuerOfPatientID"}
        changed: list[tuple[str, str]] = []
        with self._write() as db:
            rows = db.execute("SELECT pk, patient_key, attrs FROM patients WHERE"
                              " patient_id = ?", (patient_id,)).fetchall()
            for pk, key, before in rows:
                if issuer is not None and key != f"{patient_id}\\{issuer}":
                    continue
                ds = _from_json(before)
                for elem in attrs:
                    if elem.keyword in keep:
                        ds[elem.tag] = elem
                db.execute("UPDATE patients SET patient_name = ?, birth_date = ?, sex = ?,"
                           " attrs = ? WHERE pk = ?",
                           (_column(ds, "PatientName"), _column(ds, "PatientBirthDate"),
                            _column(ds, "PatientSex"),
                            _json(level_dataset(ds, Level.PATIENT)), pk))
                changed.append((key, before))
        self._levels.clear()  # a store must rewrite the row it remembered
        return changed

    def move_studies(self, from_key: str, to_key: str, attrs: Dataset | None = None,
                     study_uids: Iterable[str] | None = None) -> list[str]:
        """Move the studies of the patient row ``from_key`` ("PatientID\\Issuer"; all,
        or ``study_uids``) to the row ``to_key``, made from ``attrs`` (patient level)
        when there is none; ``from_key``'s row goes when no study is left: an HL7 A40
        merge.  Returns the study UIDs moved (the reverse call with them undoes it)."""
        with self._write() as db:
            source = db.execute("SELECT pk FROM patients WHERE patient_key = ?",
                                (from_key,)).fetchone()
            if source is None:
                return []
            target = db.execute("SELECT pk FROM patients WHERE patient_key = ?",
                                (to_key,)).fetchone()
            if target is None:
                ds = Dataset() if attrs is None else level_dataset(attrs, Level.PATIENT)
                patient_id, _, issuer = to_key.partition("\\")
                ds.PatientID = patient_id
                if issuer:
                    ds.IssuerOfPatientID = issuer
                elif "IssuerOfPatientID" in ds:
                    del ds.IssuerOfPatientID
                db.execute("INSERT INTO patients (patient_key, patient_id, patient_name,"
                           " birth_date, sex, attrs) VALUES (?, ?, ?, ?, ?, ?)",
                           (to_key, _column(ds, "PatientID"), _column(ds, "PatientName"),
                            _column(ds, "PatientBirthDate"), _column(ds, "PatientSex"),
                            _json(level_dataset(ds, Level.PATIENT))))
                target = db.execute("SELECT pk FROM patients WHERE patient_key = ?",
                                    (to_key,)).fetchone()
            sql = "SELECT study_uid FROM studies WHERE patient_pk = ?"
            params: list[object] = [source[0]]
            if study_uids is not None:
                uids = list(study_uids)
                if not uids:
                    return []
                sql += f" AND study_uid IN ({', '.join('?' * len(uids))})"
                params.extend(uids)
            moved = [uid for (uid,) in db.execute(sql, params)]
            for uid in moved:
                db.execute("UPDATE studies SET patient_pk = ? WHERE study_uid = ?",
                           (target[0], uid))
            left = db.execute("SELECT COUNT(*) FROM studies WHERE patient_pk = ?",
                              (source[0],)).fetchone()[0]
            if not left:
                db.execute("DELETE FROM patients WHERE pk = ?", (source[0],))
        self._levels.clear()
        return moved

    def store(self, ds: Dataset, transfer_syntax: str, staged: StagedFile, files: ArchiveFiles,
              *, replace: bool = True, source_ae: str = "", attrs: str | None = None
              ) -> StoreResult:
        """Index ``ds``, whose file ``staged`` is already in place (fsynced, renamed).

        Under the writer lock: with ``replace`` false an instance already stored is
        kept and ``staged``'s file deleted unless it is the kept one (same content, same
        name); otherwise the row is written, the file put back first if a concurrent
        store of the same instance deleted it, and after the commit the file of the
        replaced copy, if another, is deleted.  ``attrs`` is ``instance_json(ds)``
        if the caller made it already.
        """
        if attrs is None:
            attrs = self.instance_json(ds)
        sop_uid = _text(ds, "SOPInstanceUID")
        patient_key = "\\".join((_text(ds, "PatientID"), _text(ds, "IssuerOfPatientID")))
        keys = {Level.PATIENT: patient_key, Level.STUDY: _text(ds, "StudyInstanceUID"),
                Level.SERIES: _text(ds, "SeriesInstanceUID")}
        prints = {level: _fingerprint(ds, level) for level in keys}
        instance_values = (sop_uid, _text(ds, "SOPClassUID"), _column(ds, "InstanceNumber"),
                           transfer_syntax, staged.relative, staged.size, staged.sha256)
        known: dict[Level, int] = {}
        for attempt in range(2):
            known.clear()
            try:
                with self._writer():
                    with self._write() as db:
                        row = db.execute("SELECT path FROM instances WHERE sop_uid = ?",
                                         (sop_uid,)).fetchone()
                        if row is not None and not replace:
                            if row[0] != staged.relative:
                                remove(staged.final)
                            return StoreResult.KEPT
                        series_pk = self._write_levels(db, ds, keys, prints, known)
                        files.ensure_placed(staged)
                        db.execute(_INSERT_INSTANCE,
                                   (series_pk, *instance_values, _now(), source_ae, attrs))
                    if row is not None and row[0] != staged.relative:
                        self._remove_replaced(files, row[0])
                break
            except sqlite3.IntegrityError:
                # A row this process remembers was deleted by another (a study deleted
                # from the console): forget them all and write the levels again.
                if attempt:
                    raise
                self._levels.clear()
        for level, pk in known.items():  # committed: remember what the rows hold
            if len(self._levels) > 10000:
                self._levels.clear()
            self._levels[(level, keys[level])] = (prints[level], pk)
        return StoreResult.REPLACED if row is not None else StoreResult.STORED

    def _write_levels(self, db: sqlite3.Connection, ds: Dataset, keys: dict[Level, str],
                      prints: dict[Level, tuple[object, ...]], known: dict[Level, int]) -> int:
        """Insert or update the patient, study and series rows; the series row's pk.

        A level row this process wrote with the same attributes is not rewritten: most
        instances of a series repeat them, and JSON and upserts are the cost.
        """
        parent = None
        for level, (table, sql) in _UPSERTS.items():
            cached = self._levels.get((level, keys[level]))
            if cached is not None and cached[0] == prints[level]:
                known[level] = parent = cached[1]
                continue
            db.execute(sql, _upsert_values(level, ds, parent, keys[level]))
            (parent,) = db.execute(f"SELECT pk FROM {table} WHERE {_KEY_COLUMN[level]} = ?",
                                   (keys[level],)).fetchone()
            known[level] = parent
        assert parent is not None
        return parent

    @staticmethod
    def _remove_replaced(files: ArchiveFiles, relative: str) -> None:
        """Delete the file of a replaced copy (under the writer lock: see
        :mod:`printscp.archive.files`); the new one is indexed, so a failure only
        leaves an orphan."""
        try:
            remove(str(files.root / relative))
        except OSError as exc:
            LOGGER.warning("cannot delete the replaced file %s: %s", relative, exc)

    # -- reading ---------------------------------------------------------------------
    def instance(self, sop_uid: str) -> InstanceRecord | None:
        row = self._connect().execute(
            "SELECT i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.path, i.size, i.sha256,"
            " st.study_uid, se.series_uid FROM instances i JOIN series se ON"
            " i.series_pk = se.pk JOIN studies st ON se.study_pk = st.pk WHERE i.sop_uid = ?",
            (sop_uid,)).fetchone()
        return InstanceRecord(*row) if row else None

    def all_instances(self) -> Iterator[InstanceRecord]:
        yield from (InstanceRecord(*row) for row in self._connect().execute(
            "SELECT i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.path, i.size, i.sha256,"
            " st.study_uid, se.series_uid FROM instances i JOIN series se ON"
            " i.series_pk = se.pk JOIN studies st ON se.study_pk = st.pk ORDER BY i.pk"))

    def study_by_accession(self, accession: str) -> Dataset | None:
        """Patient and study attributes of the study with ``accession`` (the latest)."""
        row = self._connect().execute(
            "SELECT p.attrs, st.attrs FROM studies st JOIN patients p ON st.patient_pk = p.pk"
            " WHERE st.accession_number = ? ORDER BY st.pk DESC", (accession,)).fetchone()
        if row is None:
            return None
        ds = _from_json(row[0])
        ds.update(_from_json(row[1]))
        return ds

    def patient_by_id(self, patient_id: str) -> Dataset | None:
        row = self._connect().execute(
            "SELECT attrs FROM patients WHERE patient_id = ? ORDER BY pk DESC",
            (patient_id,)).fetchone()
        return _from_json(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        db = self._connect()
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("patients", "studies", "series", "instances")}

    # -- querying --------------------------------------------------------------------
    def query(self, level: Level, identifier: Dataset, *, patient_root: bool = False,
              conditions: Iterable[str] = ()) -> Iterator[tuple[Dataset, list[InstanceRecord]]]:
        """Records at ``level`` whose attributes match ``identifier`` (PS3.4 C.2).

        Yields the merged attributes of the record (its own level and those above, plus
        the derived counts and lists) and, for retrieval, nothing (see
        :meth:`instances_for`).  SQL narrows with the normalised columns; the exact
        check runs on the stored attributes.
        """
        depth = ORDER.index(level)
        tables = ["patients p", "studies st ON st.patient_pk = p.pk",
                  "series se ON se.study_pk = st.pk", "instances i ON i.series_pk = se.pk"]
        aliases = ["p", "st", "se", "i"][:depth + 1]
        sql = "SELECT " + ", ".join(f"{a}.attrs, {a}.pk" for a in aliases) + " FROM " + \
            " JOIN ".join(tables[:depth + 1])
        where, params = [], []
        for elem in identifier:
            column = COLUMNS.get(elem.keyword)
            if column is None or column[0] not in aliases:
                continue
            condition = matching.sql_condition(f"{column[0]}.{column[1]}", elem)
            if condition is not None:
                where.append(condition[0])
                params.extend(condition[1])
        if where:
            sql += " WHERE " + " AND ".join(where)
        skip = {0x00080052, 0x00080005, 0x00080054, 0x00080056}
        db = self._connect()
        # Derived keys cost queries per record: computed only when the identifier has them.
        derived = any(elem.tag in DERIVED_TAGS for elem in identifier)
        matches = matching.identifier_matcher(identifier, skip=skip)
        for row in db.execute(sql, params):
            merged = Dataset()
            for i in range(len(aliases)):
                # The level datasets' elements are whole (parsed from JSON, validated
                # as set there): merged by tag, without Dataset.__setitem__'s checks
                # per element (an instance row has dozens: most of a query's cost).
                merged._dict.update(self._parsed(aliases[i], row[2 * i + 1], row[2 * i])._dict)
            if derived:
                self._add_derived(db, merged, level, row)
            if matches(merged):
                yield merged, []

    def _parsed(self, alias: str, pk: int, text: str) -> Dataset:
        """The level attributes of a row, parsed once while the row is unchanged: the
        upper levels repeat on every record of a query below them."""
        key = (alias, pk)
        hit = self._parsed_rows.get(key)
        if hit is not None and hit[0] == text:
            return hit[1]
        ds = _from_json(text)
        if len(self._parsed_rows) > 20000:
            self._parsed_rows.clear()
        self._parsed_rows[key] = (text, ds)
        return ds

    def _add_derived(self, db: sqlite3.Connection, ds: Dataset, level: Level,
                     row: tuple[Any, ...]) -> None:
        """Number of ... Related ..., Modalities / SOP Classes in Study (PS3.4 C.3.4)."""
        if level is Level.PATIENT:
            pk = row[1]
            n = db.execute(
                "SELECT COUNT(DISTINCT st.pk), COUNT(DISTINCT se.pk), COUNT(i.pk) FROM studies"
                " st LEFT JOIN series se ON se.study_pk = st.pk LEFT JOIN instances i ON"
                " i.series_pk = se.pk WHERE st.patient_pk = ?", (pk,)).fetchone()
            ds.NumberOfPatientRelatedStudies, ds.NumberOfPatientRelatedSeries, \
                ds.NumberOfPatientRelatedInstances = n
        elif level is Level.STUDY:
            pk = row[3]
            series = db.execute("SELECT COUNT(*) FROM series WHERE study_pk = ?",
                                (pk,)).fetchone()[0]
            instances = db.execute(
                "SELECT COUNT(*) FROM instances i JOIN series se ON i.series_pk = se.pk"
                " WHERE se.study_pk = ?", (pk,)).fetchone()[0]
            modalities = [r[0] for r in db.execute(
                "SELECT DISTINCT modality FROM series WHERE study_pk = ? AND modality IS NOT"
                " NULL ORDER BY modality", (pk,))]
            classes = [r[0] for r in db.execute(
                "SELECT DISTINCT i.sop_class_uid FROM instances i JOIN series se ON"
                " i.series_pk = se.pk WHERE se.study_pk = ? ORDER BY 1", (pk,))]
            ds.NumberOfStudyRelatedSeries = series
            ds.NumberOfStudyRelatedInstances = instances
            ds.ModalitiesInStudy = modalities
            ds.SOPClassesInStudy = classes
        elif level is Level.SERIES:
            pk = row[5]
            ds.NumberOfSeriesRelatedInstances = db.execute(
                "SELECT COUNT(*) FROM instances WHERE series_pk = ?", (pk,)).fetchone()[0]
        else:
            record = db.execute("SELECT transfer_syntax FROM instances WHERE pk = ?",
                                (row[7],)).fetchone()
            if record:
                ds.AvailableTransferSyntaxUID = record[0]

    def instances_for(self, level: Level, identifier: Dataset, *, patient_root: bool = False
                      ) -> list[InstanceRecord]:
        """Every instance under the records a C-MOVE/C-GET identifier selects."""
        keys = {Level.PATIENT: ("PatientID", "p.patient_id"),
                Level.STUDY: ("StudyInstanceUID", "st.study_uid"),
                Level.SERIES: ("SeriesInstanceUID", "se.series_uid"),
                Level.IMAGE: ("SOPInstanceUID", "i.sop_uid")}
        where, params = [], []
        for lvl in ORDER[:ORDER.index(level) + 1]:
            keyword, column = keys[lvl]
            if keyword not in identifier or not identifier[keyword].value:
                continue
            values = [str(v) for v in (identifier[keyword].value
                                       if identifier[keyword].VM > 1
                                       else [identifier[keyword].value])]
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        if not where:
            return []
        rows = self._connect().execute(
            "SELECT i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.path, i.size, i.sha256,"
            " st.study_uid, se.series_uid FROM patients p JOIN studies st ON"
            " st.patient_pk = p.pk JOIN series se ON se.study_pk = st.pk JOIN instances i ON"
            " i.series_pk = se.pk WHERE " + " AND ".join(where) +
            " ORDER BY st.pk, se.pk, i.pk", params)
        return [InstanceRecord(*row) for row in rows]


def element(keyword: str, value: object) -> DataElement:
    """A data element by keyword (tests and tools)."""
    ds = Dataset()
    setattr(ds, keyword, value)
    return ds[Tag(keyword)]
