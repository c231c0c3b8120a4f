"""Browsing the archive as a person does (the console's archive pages and API):
patients, studies and series with their counts and dates, a thumbnail per series,
the files of a study, and deleting a study.

Listing is SQL with ``LIMIT``/``OFFSET`` on the index's normalised columns, and the
counts of a page come from one ``GROUP BY`` over that page's rows only, so a page
costs the same with 50 or 50,000 instances.  Display values (names, descriptions) come
from the level's stored DICOM JSON, not from the normalised (case-folded) columns.

Deleting a study removes its rows in one write transaction first and its files after,
both under the index's writer lock (where the archive deletes files, see
:mod:`printscp.archive.files`): the index never names a missing file, and a crash
between the two leaves orphans that ``printscp archive verify`` reports.

May import: :mod:`printscp.core`, :mod:`printscp.query` (and numpy, Pillow, pydicom).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from printscp.archive.archive import Archive
from printscp.archive.files import remove, valid_uid
from printscp.archive.index import InstanceRecord
from printscp.core.files import atomic_write, fsync_dir

LOGGER = logging.getLogger("printscp.archive")

#: Largest page a listing returns.
MAX_PAGE = 500

#: Thumbnail widths the cache accepts (each a file per series).
THUMBNAIL_SIZES = (64, 128, 256)

_INSTANCE_COLUMNS = ("i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.path, i.size, i.sha256,"
                     " st.study_uid, se.series_uid")


def _attr(attrs: str | None, keyword_tag: str) -> str:
    """The first value of a tag (``"00100010"``) in a level's DICOM JSON, as text."""
    if not attrs:
        return ""
    try:
        element = json.loads(attrs).get(keyword_tag)
    except ValueError:
        return ""
    values = (element or {}).get("Value") or []
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):  # a person name
        return str(first.get("Alphabetic") or first.get("Ideographic") or "")
    return str(first)


_TAGS = {"PatientName": "00100010", "PatientID": "00100020", "PatientBirthDate": "00100030",
         "PatientSex": "00100040", "StudyDescription": "00081030",
         "AccessionNumber": "00080050", "StudyDate": "00080020", "StudyTime": "00080030",
         "StudyID": "00200010", "ReferringPhysicianName": "00080090",
         "SeriesDescription": "0008103E", "SeriesNumber": "00200011",
         "Modality": "00080060", "SeriesDate": "00080021", "BodyPartExamined": "00180015"}


def _text(attrs: str | None, keyword: str) -> str:
    return _attr(attrs, _TAGS[keyword])


def _da(value: date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(int(limit), MAX_PAGE)), max(0, int(offset))


def _like(text: str) -> str:
    """A LIKE pattern finding ``text`` anywhere (its own % and _ taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- patients -------------------------------------------------------------------------

def patients(archive: Archive, *, text: str | None = None, limit: int = 50,
             offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Patients whose ID or name contains ``text``, by name, with their study and
    instance counts and their last study date; (page, total)."""
    limit, offset = _page(limit, offset)
    where, params = "", []
    if text:
        where = " WHERE p.patient_id LIKE ? ESCAPE '\\' OR p.patient_name LIKE ? ESCAPE '\\'"
        params = [_like(text), _like(text.casefold())]
    db = archive.index._connect()
    total = db.execute(f"SELECT COUNT(*) FROM patients p{where}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT p.pk, p.patient_id, p.attrs FROM patients p{where}"
        " ORDER BY p.patient_name, p.pk LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
    counts: dict[int, tuple[int, int, str]] = {}
    if rows:
        marks = ", ".join("?" * len(rows))
        for pk, studies, last in db.execute(
                f"SELECT patient_pk, COUNT(*), MAX(study_date) FROM studies WHERE patient_pk"
                f" IN ({marks}) GROUP BY patient_pk", [r[0] for r in rows]):
            counts[pk] = (studies, 0, last or "")
        for pk, instances in db.execute(
                "SELECT st.patient_pk, COUNT(i.pk) FROM studies st JOIN series se ON"
                " se.study_pk = st.pk JOIN instances i ON i.series_pk = se.pk WHERE"
                f" st.patient_pk IN ({marks}) GROUP BY st.patient_pk", [r[0] for r in rows]):
            studies, _, last = counts.get(pk, (0, 0, ""))
            counts[pk] = (studies, instances, last)
    out = []
    for pk, patient_id, attrs in rows:
        studies, instances, last = counts.get(pk, (0, 0, ""))
        out.append({"patient_id": patient_id or "", "patient_name": _text(attrs, "PatientName"),
                    "birth_date": _text(attrs, "PatientBirthDate"),
                    "sex": _text(attrs, "PatientSex"), "studies": studies,
                    "instances": instances, "last_study_date": last})
    return out, int(total)


# -- studies --------------------------------------------------------------------------

@dataclass(frozen=True)
class StudyFilter:
    """What a study listing is narrowed to (every given field must hold)."""

    patient_id: str | None = None  #: exact Patient ID
    patient_name: str | None = None  #: contained in the name, case-insensitive
    since: date | None = None  #: Study Date on or after
    until: date | None = None  #: Study Date on or before
    modality: str | None = None  #: a series of this modality
    text: str | None = None  #: in the patient ID or name, accession or description

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if self.patient_id:
            where.append("p.patient_id = ?")
            params.append(self.patient_id)
        if self.patient_name:
            where.append("p.patient_name LIKE ? ESCAPE '\\'")
            params.append(_like(self.patient_name.casefold()))
        if self.since:
            where.append("st.study_date >= ?")
            params.append(_da(self.since))
        if self.until:
            where.append("st.study_date <= ?")
            params.append(_da(self.until))
        if self.modality:
            where.append("EXISTS (SELECT 1 FROM series m WHERE m.study_pk = st.pk"
                         " AND m.modality = ?)")
            params.append(self.modality.strip().upper())
        if self.text:
            where.append("(p.patient_id LIKE ? ESCAPE '\\' OR p.patient_name LIKE ? ESCAPE '\\'"
                         " OR st.accession_number LIKE ? ESCAPE '\\'"
                         " OR st.study_description LIKE ? ESCAPE '\\')")
            params.extend([_like(self.text), _like(self.text.casefold()), _like(self.text),
                           _like(self.text)])
        return (" WHERE " + " AND ".join(where)) if where else "", params


def studies(archive: Archive, filters: StudyFilter = StudyFilter(), *, limit: int = 50,
            offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Studies matching ``filters``, newest Study Date first, each with its patient,
    modalities, series and instance counts, bytes and when it was last stored to;
    (page, total)."""
    limit, offset = _page(limit, offset)
    where, params = filters.sql()
    db = archive.index._connect()
    base = "FROM studies st JOIN patients p ON st.patient_pk = p.pk" + where
    total = db.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT st.pk, st.study_uid, st.attrs, p.patient_id, p.attrs {base}"
        " ORDER BY st.study_date IS NULL, st.study_date DESC, st.study_time DESC, st.pk DESC"
        " LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
    stats = _study_stats(db, [r[0] for r in rows])
    return [_study_dict(row, stats.get(row[0])) for row in rows], int(total)


def _study_stats(db: Any, pks: list[int]) -> dict[int, dict[str, Any]]:
    """Counts of the studies ``pks``: one GROUP BY over their series and instances."""
    if not pks:
        return {}
    marks = ", ".join("?" * len(pks))
    out: dict[int, dict[str, Any]] = {
        pk: {"series": 0, "instances": 0, "bytes": 0, "modalities": [], "last_stored": None}
        for pk in pks}
    for pk, series, modalities in db.execute(
            "SELECT study_pk, COUNT(*), GROUP_CONCAT(DISTINCT modality) FROM series"
            f" WHERE study_pk IN ({marks}) GROUP BY study_pk", pks):
        out[pk]["series"] = series
        out[pk]["modalities"] = sorted(set(filter(None, (modalities or "").split(","))))
    for pk, instances, size, last in db.execute(
            "SELECT se.study_pk, COUNT(*), SUM(i.size), MAX(i.stored_at) FROM series se"
            f" JOIN instances i ON i.series_pk = se.pk WHERE se.study_pk IN ({marks})"
            " GROUP BY se.study_pk", pks):
        out[pk].update(instances=instances, bytes=int(size or 0), last_stored=last)
    return out


def _study_dict(row: tuple[Any, ...], stats: dict[str, Any] | None) -> dict[str, Any]:
    _, uid, attrs, patient_id, patient_attrs = row
    return {"study_uid": uid, "patient_id": patient_id or "",
            "patient_name": _text(patient_attrs, "PatientName"),
            "birth_date": _text(patient_attrs, "PatientBirthDate"),
            "sex": _text(patient_attrs, "PatientSex"),
            "study_date": _text(attrs, "StudyDate"), "study_time": _text(attrs, "StudyTime"),
            "accession_number": _text(attrs, "AccessionNumber"),
            "study_id": _text(attrs, "StudyID"),
            "description": _text(attrs, "StudyDescription"),
            "referring_physician": _text(attrs, "ReferringPhysicianName"),
            **(stats or {"series": 0, "instances": 0, "bytes": 0, "modalities": [],
                         "last_stored": None})}


def study(archive: Archive, study_uid: str) -> dict[str, Any] | None:
    """One study as :func:`studies` lists it, or None."""
    db = archive.index._connect()
    row = db.execute(
        "SELECT st.pk, st.study_uid, st.attrs, p.patient_id, p.attrs FROM studies st JOIN"
        " patients p ON st.patient_pk = p.pk WHERE st.study_uid = ?", (study_uid,)).fetchone()
    if row is None:
        return None
    return _study_dict(row, _study_stats(db, [row[0]]).get(row[0]))


# -- series ---------------------------------------------------------------------------

def series(archive: Archive, study_uid: str) -> list[dict[str, Any]] | None:
    """The series of a study by Series Number, with instance counts, bytes, dates and
    SOP classes; None for an unknown study."""
    db = archive.index._connect()
    found = db.execute("SELECT pk FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
    if found is None:
        return None
    rows = db.execute(
        "SELECT se.pk, se.series_uid, se.attrs, COUNT(i.pk), SUM(i.size), MIN(i.stored_at),"
        " MAX(i.stored_at), GROUP_CONCAT(DISTINCT i.sop_class_uid) FROM series se LEFT JOIN"
        " instances i ON i.series_pk = se.pk WHERE se.study_pk = ? GROUP BY se.pk"
        " ORDER BY CAST(se.series_number AS INTEGER), se.pk", (found[0],)).fetchall()
    out = []
    for _, uid, attrs, count, size, first, last, classes in rows:
        out.append({"series_uid": uid, "modality": _text(attrs, "Modality"),
                    "series_number": _text(attrs, "SeriesNumber"),
                    "description": _text(attrs, "SeriesDescription"),
                    "series_date": _text(attrs, "SeriesDate"),
                    "body_part": _text(attrs, "BodyPartExamined"),
                    "instances": count, "bytes": int(size or 0), "first_stored": first,
                    "last_stored": last,
                    "sop_classes": sorted(set(filter(None, (classes or "").split(","))))})
    return out


def series_instances(archive: Archive, series_uid: str) -> list[dict[str, Any]]:
    """The instances of a series by Instance Number: UID, number, class, size, when."""
    rows = archive.index._connect().execute(
        "SELECT i.sop_uid, i.instance_number, i.sop_class_uid, i.transfer_syntax, i.size,"
        " i.stored_at, i.source_ae FROM instances i JOIN series se ON i.series_pk = se.pk"
        " WHERE se.series_uid = ? ORDER BY CAST(i.instance_number AS INTEGER), i.pk",
        (series_uid,))
    keys = ("sop_uid", "instance_number", "sop_class_uid", "transfer_syntax", "size",
            "stored_at", "source_ae")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def middle_instance(archive: Archive, series_uid: str) -> InstanceRecord | None:
    """The instance in the middle of a series by Instance Number (what a thumbnail shows)."""
    db = archive.index._connect()
    row = db.execute("SELECT se.pk, COUNT(i.pk) FROM series se JOIN instances i ON"
                     " i.series_pk = se.pk WHERE se.series_uid = ? GROUP BY se.pk",
                     (series_uid,)).fetchone()
    if row is None:
        return None
    found = db.execute(
        f"SELECT {_INSTANCE_COLUMNS} FROM instances i JOIN series se ON i.series_pk = se.pk"
        " JOIN studies st ON se.study_pk = st.pk WHERE se.pk = ?"
        " ORDER BY CAST(i.instance_number AS INTEGER), i.pk LIMIT 1 OFFSET ?",
        (row[0], row[1] // 2)).fetchone()
    return InstanceRecord(*found) if found else None


def study_instances(archive: Archive, study_uid: str) -> list[InstanceRecord]:
    """Every instance of a study, series by series."""
    return [InstanceRecord(*row) for row in archive.index._connect().execute(
        f"SELECT {_INSTANCE_COLUMNS} FROM instances i JOIN series se ON i.series_pk = se.pk"
        " JOIN studies st ON se.study_pk = st.pk WHERE st.study_uid = ?"
        " ORDER BY se.pk, CAST(i.instance_number AS INTEGER), i.pk", (study_uid,))]


# -- thumbnails -----------------------------------------------------------------------

class NoPreview(Exception):
    """The instance has no pixel data this can render (compressed without a decoder,
    a PDF, an SR...); the message says why."""


def previews_dir(archive: Archive) -> Path:
    return archive.data_dir / "previews" / "series"


def series_thumbnail(archive: Archive, series_uid: str, size: int = 128) -> Path | None:
    """A PNG of the series' middle instance fitting ``size`` × ``size`` pixels, cached
    under ``data_dir/previews/series`` (named after the instance's checksum, so a
    replaced instance gets a new one); None for an unknown series.  Raises
    :class:`NoPreview` when the instance cannot be rendered."""
    if size not in THUMBNAIL_SIZES:
        raise ValueError(f"size must be one of {', '.join(map(str, THUMBNAIL_SIZES))}")
    if not valid_uid(series_uid):
        return None
    record = middle_instance(archive, series_uid)
    if record is None:
        return None
    path = previews_dir(archive) / f"{series_uid}.{record.sha256[:12]}.{size}.png"
    if path.exists():
        return path
    png = render_thumbnail(archive.path_of(record), size)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{series_uid}.*.{size}.png"):
        remove(str(old))
    atomic_write(path, png)
    return path


def render_thumbnail(file: Path, size: int) -> bytes:
    """PNG bytes of the middle frame of a DICOM file, windowed for display."""
    import pydicom
    from PIL import Image

    try:
        ds = pydicom.dcmread(file)
        if "PixelData" not in ds:
            raise NoPreview("the instance has no pixel data")
        pixels = ds.pixel_array
    except NoPreview:
        raise
    except Exception as exc:  # a missing decoder, a damaged file
        raise NoPreview(f"cannot decode the pixel data: {exc}") from None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    if samples == 3:
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            pixels = convert_color_space(pixels, photometric, "RGB")
        image = Image.fromarray(_to_8bit(pixels.astype(np.float64)), "RGB")
    else:
        values = pixels.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1) or 1) \
            + float(getattr(ds, "RescaleIntercept", 0) or 0)
        grey = _window(values, ds)
        if photometric == "MONOCHROME1":
            grey = 255 - grey
        image = Image.fromarray(grey, "L")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value[0] if isinstance(value, list | tuple) or
                     type(value).__name__ == "MultiValue" else value)
    except (TypeError, ValueError, IndexError):
        return None


def _window(values: np.ndarray, ds: Any) -> np.ndarray:
    """8-bit grey levels: the data set's first VOI window, else the 1st-99th percentile."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or not width or width <= 1:
        low, high = np.percentile(values, (1, 99)) if values.size else (0.0, 1.0)
    else:
        low, high = center - width / 2, center + width / 2
    return _scale(values, float(low), float(high))


def _to_8bit(values: np.ndarray) -> np.ndarray:
    return _scale(values, float(values.min(initial=0)), float(values.max(initial=1)))


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low if high > low else 1.0
    return np.clip((values - low) * (255.0 / span), 0, 255).astype(np.uint8)


# -- deleting -------------------------------------------------------------------------

@dataclass(frozen=True)
class Deleted:
    """What deleting a study removed."""

    study_uid: str
    patient_id: str
    series: int
    instances: int
    bytes: int
    files_left: tuple[str, ...] = ()  #: files that could not be deleted (now orphans)

    def to_dict(self) -> dict[str, Any]:
        return {"study_uid": self.study_uid, "patient_id": self.patient_id,
                "series": self.series, "instances": self.instances, "bytes": self.bytes,
                "files_left": list(self.files_left)}


def delete_study(archive: Archive, study_uid: str) -> Deleted | None:
    """Remove a study from the index and the disk, durably; None if unknown.

    Rows first (one transaction: instances, series, study, and the patient once it has
    no study left), then the files, their folders and the series' thumbnails, all
    under the writer lock so no concurrent store of the same study interleaves.
    """
    index = archive.index
    with index._writer():
        with index._write() as db:
            row = db.execute(
                "SELECT st.pk, st.patient_pk, p.patient_id FROM studies st JOIN patients p"
                " ON st.patient_pk = p.pk WHERE st.study_uid = ?", (study_uid,)).fetchone()
            if row is None:
                return None
            study_pk, patient_pk, patient_id = row
            series_rows = db.execute("SELECT pk, series_uid FROM series WHERE study_pk = ?",
                                     (study_pk,)).fetchall()
            files = db.execute(
                "SELECT i.path, i.size FROM instances i JOIN series se ON i.series_pk = se.pk"
                " WHERE se.study_pk = ?", (study_pk,)).fetchall()
            db.execute("DELETE FROM instances WHERE series_pk IN (SELECT pk FROM series"
                       " WHERE study_pk = ?)", (study_pk,))
            db.execute("DELETE FROM series WHERE study_pk = ?", (study_pk,))
            db.execute("DELETE FROM studies WHERE pk = ?", (study_pk,))
            db.execute("DELETE FROM patients WHERE pk = ? AND NOT EXISTS (SELECT 1 FROM"
                       " studies WHERE patient_pk = ?)", (patient_pk,) * 2)
        index._levels.clear()  # the writer's cache of level rows names deleted pks
        left = list(_delete_files(archive, [r[0] for r in files]))
        for _, series_uid in series_rows:
            for old in previews_dir(archive).glob(f"{series_uid}.*.png"):
                with contextlib.suppress(OSError):
                    old.unlink()
    return Deleted(study_uid, patient_id or "", len(series_rows), len(files),
                   sum(int(r[1]) for r in files), tuple(left))


def _delete_files(archive: Archive, relatives: list[str]) -> Iterator[str]:
    """Delete the files, then the series and study folders they leave empty, each
    change made durable by an fsync of its folder; yields the files that could not be
    deleted."""
    series_folders: set[Path] = set()
    for relative in relatives:
        try:
            path = archive.files.absolute(relative)
            remove(str(path))
            series_folders.add(path.parent)
        except (OSError, ValueError) as exc:
            LOGGER.warning("cannot delete %s: %s", relative, exc)
            yield relative
    root = archive.files.root.resolve()
    study_folders = {folder.parent for folder in series_folders}
    for folder in [*series_folders, *study_folders]:
        if folder == root or root not in folder.parents:
            continue
        with contextlib.suppress(OSError):
            fsync_dir(folder)
            os.rmdir(folder)  # only when empty
        with contextlib.suppress(OSError):
            fsync_dir(folder.parent)


# -- storage commitment ---------------------------------------------------------------

#: Delivered storage commitment reports, one JSON line each, in ``<data_dir>/commitment``
#: (a request's own file is removed once its report is delivered).
DELIVERED_LOG = "delivered.jsonl"
#: Lines the delivered log keeps when it is trimmed (on writing, past twice this).
DELIVERED_KEPT = 1000


def record_delivered(data_dir: Path, commitment: Any, how: str, status: int) -> None:
    """Note that ``commitment``'s report was accepted (call before
    :meth:`~printscp.archive.commitment.CommitmentStore.done` forgets it)."""
    line = {"transaction_uid": commitment.transaction_uid,
            "requester_ae": commitment.requester_ae,
            "requester_address": commitment.requester_address,
            "references": len(commitment.references),
            "committed": len(commitment.succeeded or []),
            "failed": len(commitment.failed or []), "received": commitment.received,
            "attempts": commitment.attempts + 1, "delivered": time.time(), "via": how,
            "status": status}
    path = Path(data_dir) / "commitment" / DELIVERED_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    with contextlib.suppress(OSError):
        if path.stat().st_size > DELIVERED_KEPT * 2 * 400:
            lines = path.read_text("utf-8").splitlines()[-DELIVERED_KEPT:]
            atomic_write(path, ("\n".join(lines) + "\n").encode())


def _iso(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def commitments(data_dir: Path, limit: int = 200) -> list[dict[str, Any]]:
    """Storage commitment requests, newest first: those whose report is still owed
    (``delivered`` false, with attempts, next attempt and last error) and those whose
    report was delivered."""
    from printscp.archive.commitment import CommitmentStore

    out: list[dict[str, Any]] = []
    for c in CommitmentStore(Path(data_dir)).pending():
        out.append({"transaction_uid": c.transaction_uid, "requester_ae": c.requester_ae,
                    "requester_address": c.requester_address,
                    "references": len(c.references),
                    "committed": None if c.succeeded is None else len(c.succeeded),
                    "failed": None if c.failed is None else len(c.failed),
                    "received": _iso(c.received), "attempts": c.attempts,
                    "next_attempt": _iso(c.next_attempt), "last_error": c.last_error,
                    "delivered": False, "delivered_at": None, "via": None, "status": None})
    path = Path(data_dir) / "commitment" / DELIVERED_LOG
    with contextlib.suppress(OSError):
        for text in path.read_text("utf-8").splitlines()[-limit:]:
            try:
                line = json.loads(text)
            except ValueError:
                continue
            out.append({**line, "received": _iso(line.get("received")),
                        "next_attempt": None, "last_error": "", "delivered": True,
                        "delivered_at": _iso(line.pop("delivered", None))})
    out.sort(key=lambda item: item["received"] or "", reverse=True)
    return out[:limit]
