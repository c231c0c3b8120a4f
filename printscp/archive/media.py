"""DICOM media: export to and import from a PS3.10 File-set (STD-GEN-CD, PS3.11 Annex D).

A patient CD is the one interchange every site can read, so the export writes exactly the
General Purpose CD-R profile (STD-GEN-CD) and nothing looser: a ``DICOMDIR`` with the
PATIENT / STUDY / SERIES / leaf records of PS3.3 Annex F, and every file in *Explicit VR
Little Endian*, under File IDs of at most 8 components of at most 8 characters from
``[0-9A-Z_]``, without extension and with no patient information in the names. The module
knows nothing about the node's archive: it takes Part 10 files and writes a directory (and
reads one back), so the archive and the CLI only feed it paths.

What pydicom's :class:`pydicom.fileset.FileSet` does for us, and what it does not:

* It builds the record tree (merging records by Patient ID, Study / Series Instance UID),
  computes the record offsets and encodes the ``DICOMDIR`` in Explicit VR Little Endian
  with the File-set ID; its File IDs (``PT000000/ST000000/SE000000/IM000000``) are already
  conformant and carry no information. We use it for all of that.
* It refuses an instance that lacks a Type 1 record key (Study ID, Study Date, Series
  Number, Instance Number...), although those are Type 2 in the instance and often empty.
  We build the PATIENT / STUDY / SERIES / IMAGE records ourselves and invent the missing
  keys in the record only, as DCMTK's ``dcmmkdir +I`` does (the instance is not edited);
  the other leaf types (SR, KOS, ENCAP DOC, PRESENTATION, RT...) use pydicom's recorders.
* It copies instances as they are: no transfer syntax conversion, pydicom's own
  Implementation Class UID in the File Meta Information. We re-encode every file.
* ``FileSet.add`` stages a full copy of each instance in the system temporary directory
  and ``write`` copies it again; for a DVD's worth of images that doubles the I/O and can
  fill a RAM-backed ``/tmp``. We hand it a stub (the File Meta Information and the SOP
  UIDs only), write each real file once next to the output, and move it over its stub
  once pydicom has written the tree.

Transfer syntaxes (decision): STD-GEN-CD allows Explicit VR Little Endian only, so that is
all the export writes. Implicit VR Little Endian, Deflated and Explicit VR Big Endian
files are re-encoded (lossless, same SOP Instance UID). Compressed files are decompressed
when a pydicom decoder is installed (Pillow covers JPEG baseline and JPEG 2000, pydicom
itself RLE): lossless codecs give the exact pixels; for lossy ones the decoded pixels are
the image, *Lossy Image Compression* stays (or is set to) ``01`` and the SOP Instance UID
is kept so that presentation states and key object selections still resolve. A file whose
codec cannot be decoded here is skipped with the reason in :attr:`ExportReport.skipped`;
the export never writes a file the profile does not allow.

Atomicity: everything is written into a hidden work directory beside ``out_dir`` on the
same file system and renamed to ``out_dir`` at the end, so a crash or a refusal leaves no
half File-set behind. ``out_dir`` must not exist or be an empty directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import DIRECTORY_RECORDERS, FileSet, RecordNode
from pydicom.multival import MultiValue
from pydicom.pixels import get_decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)

from printscp.core import uids

#: The profile every export writes (PS3.11 Annex D).
PROFILE = "STD-GEN-CD"
#: The files carry the identity the node declares in its associations (it keeps
#: pynetdicom's Implementation Class UID and names its version), so that a reader of the CD
#: can tell which implementation wrote them.
IMPLEMENTATION_CLASS_UID = UID(uids.IMPLEMENTATION_CLASS_UID)

#: PS3.10 8.5 / PS3.12 F.1: File-set IDs use the File ID repertoire, CS of at most 16.
_FILESET_ID = re.compile(r"^[A-Z0-9_ ]{0,16}$")
#: Bytes per value of the VRs whose raw bytes must be swapped between big and little endian.
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
#: Leaf record types by SOP Class UID prefix (PS3.3 F.4, PS3.4 B.5); the longest prefix
#: wins. Anything else with pixel data is an IMAGE; anything else without is refused, as a
#: guessed record type would make readers skip or misfile it.
_LEAF_BY_SOP_PREFIX = {
    "1.2.840.10008.5.1.4.1.1.88.59": "KEY OBJECT DOC",
    "1.2.840.10008.5.1.4.1.1.88.": "SR DOCUMENT",
    "1.2.840.10008.5.1.4.1.1.11.": "PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.9.": "WAVEFORM",
    "1.2.840.10008.5.1.4.1.1.104.": "ENCAP DOC",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT DOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT STRUCTURE SET",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT PLAN",
    "1.2.840.10008.5.1.4.1.1.481.8": "RT PLAN",
    "1.2.840.10008.5.1.4.1.1.4.2": "SPECTROSCOPY",
    "1.2.840.10008.5.1.4.1.1.66.1": "REGISTRATION",
    "1.2.840.10008.5.1.4.1.1.66.2": "FIDUCIAL",
    "1.2.840.10008.5.1.4.1.1.66.3": "REGISTRATION",
    "1.2.840.10008.5.1.4.1.1.66": "RAW DATA",
}
_LOSSLESS_PIXELS = {ImplicitVRLittleEndian, ExplicitVRLittleEndian,
                    DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian}
_ALWAYS_LOSSY = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless}


class MediaError(Exception):
    """A File-set could not be written or found at all (per-file problems are reported).

    Carries the :class:`ExportReport` when an export was refused after looking at the
    files, so that the caller can still show why each one was skipped.
    """

    def __init__(self, message: str, report: ExportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ExportReport:
    """What an export wrote, so the CLI can print it and the caller can check the CD.

    ``bytes`` is the size of the whole File-set (files and ``DICOMDIR``), the figure that
    must fit on the medium. ``converted`` lists the sources that were re-encoded into
    Explicit VR Little Endian (or decompressed), ``skipped`` the sources left out with the
    reason, ``invented`` the sources whose records needed a made-up Type 1 key (and which).
    """

    files: int = 0
    patients: int = 0
    studies: int = 0
    series: int = 0
    bytes: int = 0
    converted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    invented: list[tuple[str, str]] = field(default_factory=list)
    profile: str = PROFILE
    fileset_id: str = ""


@dataclass
class ImportReport:
    """The readable files of a File-set and why the others could not be read.

    Unpacks as ``files, errors = read_fileset(directory)``.
    """

    files: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    dicomdir: Path | None = None
    fileset_id: str = ""

    def __iter__(self) -> Iterator[object]:
        """Let callers that only want the two lists unpack the report."""
        yield self.files
        yield self.errors


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------


def export_fileset(
    sources: Iterable[str | os.PathLike[str]],
    out_dir: Path,
    *,
    fileset_id: str = "PRINTSCP",
    on_file: Callable[[], None] = lambda: None,
) -> ExportReport:
    """Write ``sources`` (DICOM Part 10 files) as a STD-GEN-CD File-set in ``out_dir``.

    ``on_file`` is called once per source, exported or skipped, so that a progress bar over
    the number of sources ends at 100 %. Raises :class:`MediaError` when ``out_dir`` is not
    empty or when none of the sources could be exported (nothing is written then), and
    :class:`ValueError` for a File-set ID outside the CS repertoire or longer than 16.
    """
    if not _FILESET_ID.match(fileset_id):
        raise ValueError(
            f"File-set ID {fileset_id!r}: at most 16 characters from A-Z, 0-9, _ and space"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise MediaError(f"{out_dir} exists and is not an empty directory; not writing into it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    report = ExportReport(fileset_id=fileset_id)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial",
                                 dir=out_dir.parent))
    try:
        root = _export_into(sources, work, fileset_id, on_file, report)
        if report.files == 0:
            reasons = "; ".join(f"{p}: {r}" for p, r in report.skipped[:3]) or "no sources"
            raise MediaError(f"nothing to export ({reasons})", report)
        report.bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above; rename cannot replace it everywhere
        root.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


class _Keys:
    """Invented Type 1 record keys, remembered so every file of a study agrees."""

    def __init__(self) -> None:
        self.study_ids: dict[str, str] = {}
        self.series_numbers: dict[str, int] = {}
        self.instance_numbers: dict[str, int] = {}


def _export_into(
    sources: Iterable[str | os.PathLike[str]],
    work: Path,
    fileset_id: str,
    on_file: Callable[[], None],
    report: ExportReport,
) -> Path:
    """Write the File-set under ``work/FILESET`` and return that directory.

    Real files go to ``work/held`` first (one write each); pydicom writes the tree of
    stubs and the DICOMDIR, then each real file replaces its stub by a rename.
    """
    held = work / "held"
    held.mkdir()
    root = work / "FILESET"
    fs = FileSet()
    fs.ID = fileset_id or None
    keys = _Keys()
    sources_by_uid: dict[str, str] = {}
    held_by_uid: dict[str, Path] = {}
    patients: set[str] = set()
    studies: set[tuple[str, str]] = set()
    series: set[tuple[str, str, str]] = set()

    for source in sources:
        name = os.fspath(source)
        try:
            ds, converted = _load_for_media(Path(name))
            uid = str(ds.SOPInstanceUID)
            if uid in sources_by_uid:
                raise _Skip(f"duplicate SOP Instance UID {uid} (already from "
                            f"{sources_by_uid[uid]})")
            leaf, invented, (patient, study, serie) = _records(ds, keys)
        except _Skip as exc:
            report.skipped.append((name, str(exc)))
            on_file()
            continue
        path = held / f"{len(held_by_uid):08d}"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        fs.add_custom(_stub(ds), leaf)
        sources_by_uid[uid] = name
        held_by_uid[uid] = path
        if converted:
            report.converted.append(name)
        if invented:
            report.invented.append((name, ", ".join(invented)))
        patients.add(patient)
        studies.add((patient, study))
        series.add((patient, study, serie))
        on_file()

    if not held_by_uid:
        return root
    fs.write(root)
    for instance in fs:
        os.replace(held_by_uid[str(instance.SOPInstanceUID)], root / instance.FileID)
    report.files = len(held_by_uid)
    report.patients, report.studies, report.series = len(patients), len(studies), len(series)
    return root


class _Skip(Exception):
    """A source that cannot go on the medium; the message is the reason shown to the user."""


def _load_for_media(path: Path) -> tuple[Dataset, bool]:
    """Read ``path`` and re-encode it for STD-GEN-CD; return it and whether it was converted.

    The File Meta Information is rebuilt because this implementation is the one writing
    the file now (PS3.10 7.1): only the SOP identity carries over.
    """
    try:
        ds = pydicom.dcmread(path)
        _check_complete(ds)
    except Exception as exc:  # pydicom raises many kinds for foreign or broken files
        raise _Skip(f"not a readable DICOM Part 10 file ({exc})") from exc
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise _Skip("no SOP Class or SOP Instance UID: not a composite instance")
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian))
    converted = syntax != ExplicitVRLittleEndian
    if syntax == ExplicitVRBigEndian:
        _swap_to_little_endian(ds)
    elif syntax not in _LOSSLESS_PIXELS and "PixelData" in ds:
        _decompress(ds, syntax)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = uids.IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    return ds, converted


def _check_complete(ds: Dataset) -> None:
    """Raise if a top-level value is shorter than its declared length.

    pydicom returns a truncated last value (a cut-off copy, a disc read error) without a
    word; the raw elements still know the length the file promised, so compare it. No
    value is decoded, so this costs nothing on pixel data.
    """
    for tag in list(ds.keys()):  # tags only: iterating ds would decode every value
        elem = ds.get_item(tag)
        value = getattr(elem, "value", None)
        length = getattr(elem, "length", None)
        if isinstance(value, bytes) and length not in (None, 0xFFFFFFFF) \
                and len(value) < length:
            raise ValueError(f"{elem.tag} is truncated: {len(value)} of {length} bytes")


def _decompress(ds: Dataset, syntax: UID) -> None:
    """Decode compressed pixel data in place, or refuse when this host has no decoder."""
    if not syntax.is_compressed:
        raise _Skip(f"unknown transfer syntax {syntax}; {PROFILE} needs Explicit VR "
                    "Little Endian")
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise _Skip(f"{syntax.name} pixel data cannot be decoded here (no pydicom decoder "
                    f"installed); {PROFILE} allows only Explicit VR Little Endian")
    try:
        ds.decompress(generate_instance_uid=False)
    except Exception as exc:  # decoder plugins raise their own error types
        raise _Skip(f"{syntax.name} pixel data could not be decoded ({exc})") from exc
    if syntax in _ALWAYS_LOSSY:
        # PS3.3 C.7.6.1.1.5: once lossy, always lossy. Syntaxes that may be either (JPEG
        # 2000, HTJ2K) leave the flag as the creator set it, which the standard requires.
        ds.LossyImageCompression = "01"


def _swap_to_little_endian(ds: Dataset) -> None:
    """Byte-swap the raw binary values pydicom does not convert itself (see ``dcmwrite``).

    Numbers with VRs such as US or FL are decoded on reading and re-encoded on writing;
    OW/OF/OL/OD/OV values stay raw bytes, so they are swapped here, in nested sequences
    too. UN values cannot be swapped without knowing their structure and are left alone.
    """
    for elem in _walk(ds):
        width = _SWAP_WIDTH.get(elem.VR)
        if width and elem.value:
            raw = bytes(elem.value)
            usable = len(raw) - len(raw) % width
            swapped = np.frombuffer(raw[:usable], dtype=f">u{width}").astype(f"<u{width}")
            elem.value = swapped.tobytes() + raw[usable:]


def _walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    """Every element of ``ds``, depth first, sequence items included."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def _stub(ds: Dataset) -> Dataset:
    """The minimal instance pydicom stages for ``ds``: its identity, no content."""
    stub = Dataset()
    stub.SOPClassUID = ds.SOPClassUID
    stub.SOPInstanceUID = ds.SOPInstanceUID
    stub.file_meta = ds.file_meta
    return stub


def _text(ds: Dataset, keyword: str) -> str:
    """A single-valued element as text, empty when absent or empty."""
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _records(ds: Dataset, keys: _Keys) -> tuple[RecordNode, list[str], tuple[str, str, str]]:
    """The PATIENT, STUDY, SERIES and leaf records of ``ds``; return the leaf node.

    Also returns the keywords whose Type 1 record values had to be invented and the
    (Patient ID, Study, Series Instance UID) keys pydicom merges records by. A file
    without Study or Series Instance UID is refused: inventing an identity would split or
    merge studies on the CD.
    """
    invented: list[str] = []
    study_uid, series_uid = _text(ds, "StudyInstanceUID"), _text(ds, "SeriesInstanceUID")
    if not study_uid or not series_uid:
        raise _Skip("no Study or Series Instance UID")
    charset = ds.get("SpecificCharacterSet")

    patient = Dataset()
    patient.DirectoryRecordType = "PATIENT"
    patient.PatientName = ds.get("PatientName", "")
    patient.PatientID = _text(ds, "PatientID")
    if not patient.PatientID:
        # Same made-up ID for the same name and birth date, so one patient stays one record.
        seed = f"{ds.get('PatientName', '')}|{ds.get('PatientBirthDate', '')}".encode()
        patient.PatientID = "NOID" + hashlib.sha1(seed).hexdigest()[:12].upper()
        invented.append("PatientID")

    study = Dataset()
    study.DirectoryRecordType = "STUDY"
    study.StudyDate = _first(ds, ("StudyDate", "SeriesDate", "AcquisitionDate",
                                  "ContentDate")) or "19000101"
    study.StudyTime = _first(ds, ("StudyTime", "SeriesTime", "AcquisitionTime",
                                  "ContentTime")) or "000000"
    if not _text(ds, "StudyDate"):
        invented.append("StudyDate")
    if not _text(ds, "StudyTime"):
        invented.append("StudyTime")
    study.StudyDescription = ds.get("StudyDescription", "")
    study.StudyInstanceUID = study_uid
    study.StudyID = _text(ds, "StudyID")
    if not study.StudyID:
        study.StudyID = keys.study_ids.setdefault(study_uid, str(len(keys.study_ids) + 1))
        invented.append("StudyID")
    study.AccessionNumber = ds.get("AccessionNumber", "")

    serie = Dataset()
    serie.DirectoryRecordType = "SERIES"
    serie.Modality = _text(ds, "Modality") or "OT"
    if not _text(ds, "Modality"):
        invented.append("Modality")
    serie.SeriesInstanceUID = series_uid
    serie.SeriesNumber = _text(ds, "SeriesNumber")
    if not serie.SeriesNumber:
        serie.SeriesNumber = keys.series_numbers.setdefault(
            series_uid, len(keys.series_numbers) + 1)
        invented.append("SeriesNumber")

    leaf = _leaf_record(ds, keys, invented)
    leaf.ReferencedSOPClassUIDInFile = ds.SOPClassUID
    leaf.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
    leaf.ReferencedTransferSyntaxUIDInFile = ExplicitVRLittleEndian

    nodes = []
    for record in (patient, study, serie, leaf):
        if charset:
            record.SpecificCharacterSet = charset
        nodes.append(RecordNode(record))
    for parent, child in itertools.pairwise(nodes):
        child.parent = parent
    return nodes[-1], invented, (str(patient.PatientID), study_uid, series_uid)


def _first(ds: Dataset, keywords: tuple[str, ...]) -> str:
    """The first non-empty of ``keywords``: the closest date or time a study can claim."""
    return next((_text(ds, kw) for kw in keywords if _text(ds, kw)), "")


def _leaf_record(ds: Dataset, keys: _Keys, invented: list[str]) -> Dataset:
    """The lowest record: IMAGE built here (Instance Number invented if need be), the
    other types by pydicom's recorder for them, refusing files those cannot describe."""
    sop_class = str(ds.SOPClassUID)
    prefix = max((p for p in _LEAF_BY_SOP_PREFIX if sop_class.startswith(p)), key=len,
                 default="")
    kind = _LEAF_BY_SOP_PREFIX.get(prefix)
    if "EncapsulatedDocument" in ds:
        kind = "ENCAP DOC"
    if kind is None:
        if "PixelData" not in ds and "FloatPixelData" not in ds \
                and "DoubleFloatPixelData" not in ds:
            raise _Skip(f"no {PROFILE} directory record type for SOP Class {sop_class}")
        kind = "IMAGE"
    if kind == "IMAGE":
        record = Dataset()
        number = _text(ds, "InstanceNumber")
        if not number:
            series_uid = str(ds.SeriesInstanceUID)
            number = str(keys.instance_numbers.get(series_uid, 0) + 1)
            keys.instance_numbers[series_uid] = int(number)
            invented.append("InstanceNumber")
        record.InstanceNumber = number
    else:
        try:
            record = DIRECTORY_RECORDERS[kind](ds)
        except (ValueError, KeyError, AttributeError) as exc:
            raise _Skip(f"cannot build its {kind} directory record: {exc}") from exc
    record.DirectoryRecordType = kind
    return record


# --------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------


def find_dicomdir(directory: Path) -> Path:
    """The DICOMDIR of the File-set in ``directory`` (or ``directory`` if it is the file).

    Matched without regard to case and to the ``.`` or ``;1`` that some CD file systems
    and mounts append, since discs burnt on other systems show any of those.
    """
    directory = Path(directory)
    if directory.is_file():
        return directory
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise MediaError(f"cannot read {directory}: {exc}") from exc
    for entry in entries:
        if _normal_name(entry.name) == "dicomdir" and entry.is_file():
            return entry
    raise MediaError(f"no DICOMDIR in {directory}: not a DICOM File-set")


def read_fileset(directory: Path) -> ImportReport:
    """Return the readable Part 10 files a File-set's DICOMDIR references, and the errors.

    Every record in use that has a Referenced File ID counts (IMAGE, SR DOCUMENT, ENCAP
    DOC, PRESENTATION, private ones...), orphaned records included, since an import should
    rescue whatever the disc holds. File IDs are resolved component by component without
    regard to case. Each file is parsed in full so that a truncated one is reported here
    rather than stored broken. Raises :class:`MediaError` when there is no readable
    DICOMDIR at all.
    """
    dicomdir = find_dicomdir(directory)
    root = dicomdir.parent
    try:
        dirds = pydicom.dcmread(dicomdir)
        records = list(dirds.DirectoryRecordSequence)
    except Exception as exc:  # any parse failure means the directory cannot be trusted
        raise MediaError(f"{dicomdir} is not a readable DICOMDIR ({exc})") from exc
    report = ImportReport(dicomdir=dicomdir, fileset_id=_text(dirds, "FileSetID"))
    listings: dict[Path, dict[str, str]] = {}
    seen: set[Path] = set()
    for record in records:
        if "ReferencedFileID" not in record or record.get("RecordInUseFlag", 0xFFFF) == 0:
            continue
        value = record.ReferencedFileID
        parts = [str(p).strip() for p in (value if isinstance(value, MultiValue) else
                                          str(value).split("\\"))]
        label = "/".join(parts)
        if not parts or any(p in ("", ".", "..") or "/" in p or ":" in p for p in parts):
            report.errors.append((label, "invalid Referenced File ID"))
            continue
        path = _resolve(root, parts, listings)
        if path is None:
            report.errors.append((str(root.joinpath(*parts)), "file not found"))
            continue
        if path in seen:
            continue
        seen.add(path)
        try:
            _check_complete(pydicom.dcmread(path))
        except Exception as exc:  # whatever pydicom raises, the file is unusable
            report.errors.append((str(path), f"not a readable DICOM file ({exc})"))
            continue
        report.files.append(path)
    return report


def _normal_name(name: str) -> str:
    """A directory entry's name as a File ID component: no ``;1`` version, no trailing dot."""
    return re.sub(r";\d+$", "", name).rstrip(".").casefold()


def _resolve(root: Path, parts: list[str], listings: dict[Path, dict[str, str]]) -> Path | None:
    """The existing path of a File ID under ``root``, component by component, any case."""
    current = root
    for part in parts:
        if current not in listings:
            names: dict[str, str] = {}
            with contextlib.suppress(OSError):
                for entry in os.scandir(current):
                    names.setdefault(_normal_name(entry.name), entry.name)
            listings[current] = names
        actual = listings[current].get(_normal_name(part))
        if actual is None:
            return None
        current = current / actual
    return current if current.is_file() else None
