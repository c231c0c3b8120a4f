"""The archive: what a C-STORE does, checked and durable, independent of the network.

:meth:`Archive.receive` takes the data set exactly as the peer encoded it (no
transcoding), refuses what it must (PS3.4 B.2.3 statuses, naming the attribute),
writes the file durably (fsynced, renamed into place, folder fsynced) and indexes it
(committed); only then may the C-STORE be answered.

The bytes go to a temporary file first, and are hashed by another thread, while
the data set is decoded and checked (:mod:`printscp.archive.files`).  It is decoded
only as far as checking and indexing need: values longer than :data:`DEFER_SIZE`
(Pixel Data above all) stay unread, since the file is stored as received and the
index never keeps them; native Pixel Data is length-checked on its encoded length,
as far as the data set holds it.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from printscp.archive import part10
from printscp.archive.files import ArchiveFiles, PendingWrite, sha256_of, valid_uid
from printscp.archive.index import Index, InstanceRecord, StoreResult
from printscp.core.limits import (
    UNDEFINED,
    DataSetLimits,
    mib,
    pixel_bytes,
    sequence_depth,
)
from printscp.core.status import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    SUCCESS,
)

LOGGER = logging.getLogger("printscp.archive")


#: Transfer syntaxes whose Pixel Data is native (length can be checked).
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}

#: Values longer than this are left unread when a data set is decoded.
DEFER_SIZE = 64 << 10

_SOP_CLASS, _SOP_INSTANCE = BaseTag(0x00080016), BaseTag(0x00080018)
_STUDY, _SERIES = BaseTag(0x0020000D), BaseTag(0x0020000E)
_PIXEL_DATA = BaseTag(0x7FE00010)
_PATIENT_ID = BaseTag(0x00100020)
_ROWS, _COLUMNS = BaseTag(0x00280010), BaseTag(0x00280011)
_SAMPLES, _FRAMES, _BITS = BaseTag(0x00280002), BaseTag(0x00280008), BaseTag(0x00280100)
_KEYWORDS = {_SOP_CLASS: "SOPClassUID", _SOP_INSTANCE: "SOPInstanceUID",
             _STUDY: "StudyInstanceUID", _SERIES: "SeriesInstanceUID"}


class DuplicatePolicy(StrEnum):
    """What a second C-STORE of a stored SOP Instance UID does."""

    REPLACE = "replace"  #: the new copy replaces the old (a corrected image wins)
    KEEP = "keep"  #: the first copy stays; the new one is acknowledged and discarded


@dataclass
class Outcome:
    status: int
    comment: str = ""
    result: StoreResult | None = None
    #: The tags at fault, for the response's Offending Element (0000,0901).
    offending: tuple[int, ...] = ()
    #: The stored instance's Study Instance UID and Patient ID (for the audit trail).
    study: str = ""
    patient: str = ""


@dataclass
class VerifyReport:
    checked: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  #: (SOP Instance UID, reason)
    orphans: list[str] = field(default_factory=list)  #: files no index row names


class Archive:
    """Files under ``<data_dir>/archive`` and their index ``<data_dir>/index.sqlite``."""

    def __init__(self, data_dir: Path, duplicates: DuplicatePolicy = DuplicatePolicy.REPLACE,
                 limits: DataSetLimits | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.files = ArchiveFiles(self.data_dir / "archive")
        self.index = Index(self.data_dir / "index.sqlite")
        self.duplicates = duplicates
        #: [limits]: data set size, declared pixel size, sequence nesting.
        self.limits = limits or DataSetLimits()

    def receive(self, encoded: bytes, sop_class: str, sop_instance: str,
                source_ae: str = "", *, sha256: str | None = None) -> Outcome:
        """Check, store and index one C-STORE data set (Part 10 bytes with file meta);
        ``sha256`` is its hex SHA-256 when the caller took it already."""
        refused = self._over_limits(encoded)
        if refused is not None:
            LOGGER.warning("C-STORE %s from %s refused (0x%04X, [limits]): %s", sop_instance,
                           source_ae or "?", refused.status, refused.comment,
                           extra={"status": refused.status, "calling_ae": source_ae})
            return refused
        pending = self.files.write(encoded, sha256)  # on its way to disk while this checks
        try:
            checked = self._refusal(encoded, sop_class, sop_instance)
            if isinstance(checked, Outcome):
                return checked
            try:
                return self._store(checked, pending, source_ae)
            except OSError as exc:
                LOGGER.error("cannot store %s: %s", sop_instance, exc)
                return Outcome(OUT_OF_RESOURCES, f"cannot store: {exc.strerror}"[:64])
            except (NotImplementedError, ValueError, KeyError, TypeError) as exc:
                # pydicom decodes an element only when it is read: an unknown VR or a
                # value of the wrong length shows here, while the index reads the data
                # set.  The sender's data set, not our fault: 0xC000, one log line.
                LOGGER.warning("C-STORE %s from %s: cannot decode the data set: %s",
                               sop_instance, source_ae or "?", exc)
                return Outcome(CANNOT_UNDERSTAND, f"cannot decode the data set: {exc}"[:64])
        finally:
            pending.discard()  # unless it was put in place

    def _over_limits(self, encoded: bytes) -> Outcome | None:
        """The refusal of a data set over [limits] (size, sequence nesting), judged on
        its bytes before anything is written or decoded: 0xA700 Refused: Out of
        Resources for its size, 0xC000 Cannot understand for sequences nested deeper
        than allowed (pydicom would recurse into them)."""
        limits = self.limits
        try:
            start = _data_set_start(encoded)
            syntax = _transfer_syntax(encoded, start)
        except (ValueError, struct.error):
            return None  # not Part 10 as expected: decoding refuses it
        data, size = encoded, len(encoded) - start
        if limits.max_bytes and size > limits.max_bytes:
            return Outcome(OUT_OF_RESOURCES, f"data set of {mib(size)} over the "
                           f"{mib(limits.max_bytes)} accepted")
        if syntax == DEFLATED:
            # Inflated as far as the limit allows, never further (a deflate bomb).
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                data = inflater.decompress(encoded[start:], limits.max_bytes + 1
                                           if limits.max_bytes else 0)
            except zlib.error:
                return None  # decoding refuses it
            if limits.max_bytes and (len(data) > limits.max_bytes or inflater.unconsumed_tail):
                return Outcome(OUT_OF_RESOURCES, f"inflated data set over the "
                               f"{mib(limits.max_bytes)} accepted")
            start = 0
        if limits.max_depth:
            deep = sequence_depth(data, start, implicit_vr=syntax == IMPLICIT,
                                  little_endian=syntax != BIG_ENDIAN, limit=limits.max_depth)
            if deep is not None:
                return Outcome(CANNOT_UNDERSTAND, deep.comment, offending=(deep.tag,))
        return None

    def _store(self, ds: Dataset, pending: PendingWrite, source_ae: str) -> Outcome:
        """Put the checked data set's file in place and index it."""
        keep = self.duplicates is DuplicatePolicy.KEEP
        sop_uid = str(part10.uid_value(ds, _SOP_INSTANCE))
        study, patient = str(part10.uid_value(ds, _STUDY)), \
            str(_value(ds, _PATIENT_ID, "") or "")
        if keep and self.index.has_instance(sop_uid):  # checked again when indexing
            return Outcome(SUCCESS, result=StoreResult.KEPT, study=study, patient=patient)
        attrs = self.index.instance_json(ds)  # while the disk writes the file
        staged = self.files.stage(pending, study, str(part10.uid_value(ds, _SERIES)), sop_uid)
        self.files.place(staged)
        result = self.index.store(ds, str(ds.file_meta.TransferSyntaxUID), staged, self.files,
                                  replace=not keep, source_ae=source_ae, attrs=attrs)
        return Outcome(SUCCESS, result=result, study=study, patient=patient)

    def _refusal(self, encoded: bytes, sop_class: str, sop_instance: str
                 ) -> Outcome | Dataset:
        """The refusal ``encoded`` deserves, or its data set, decoded."""
        try:
            ds = decode(encoded)
            return self._check(ds, sop_class, sop_instance) or ds
        except Exception as exc:  # an element the checks read does not decode
            return Outcome(CANNOT_UNDERSTAND, f"cannot decode the data set: {exc}"[:64])

    def _check(self, ds: Dataset, sop_class: str, sop_instance: str) -> Outcome | None:
        """The refusal ``ds`` deserves, if any."""
        # A data set cut off inside its last element would be a file DCMTK cannot
        # read (pydicom truncates the value).  Cut off inside Pixel Data, the pixel
        # check below says how much is missing; inside anything else (a UID the checks
        # would compare, cut short), it cannot be understood.
        overrun = element_overrun(ds)
        if overrun is not None and next(reversed(ds._dict)) != _PIXEL_DATA:
            return Outcome(CANNOT_UNDERSTAND, f"cannot decode: {overrun}"[:64])
        for tag, expected in ((_SOP_CLASS, sop_class), (_SOP_INSTANCE, sop_instance)):
            value = str(part10.uid_value(ds, tag) or "")
            if value != str(expected):
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               f"{_KEYWORDS[tag]} {value or '(missing)'} is not the request's",
                               offending=(int(tag),))
        for tag in (_STUDY, _SERIES, _SOP_INSTANCE):
            if not valid_uid(part10.uid_value(ds, tag)):
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               f"{_KEYWORDS[tag]} missing or not a valid UID"[:64],
                               offending=(int(tag),))
        if _PIXEL_DATA in ds._dict:
            refused = self._check_pixels(ds)
            if refused is not None:
                return refused
        if overrun is not None:
            return Outcome(CANNOT_UNDERSTAND, f"cannot decode: {overrun}"[:64])
        return None

    def _check_pixels(self, ds: Dataset) -> Outcome | None:
        """Pixel Data against the size its Image Pixel Module declares (Rows x Columns x
        Samples per Pixel x Bits Allocated x Number of Frames): native data must hold
        that many bytes (0xA900), and no image may declare more than [limits]
        max_pixel_mb (0xA700: decoding it, for a preview or a print, would allocate
        that much; a compressed one can declare any size in a few bytes)."""
        native = str(ds.file_meta.TransferSyntaxUID) in NATIVE
        try:
            dims = [int(v) for v in (
                _number(ds, _ROWS), _number(ds, _COLUMNS), _number(ds, _SAMPLES, 1),
                _number(ds, _FRAMES, 1) or 1, _number(ds, _BITS))]
        except (TypeError, ValueError):
            if not native:
                return None  # the compressed stream says; nothing is decoded here
            return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                           "Pixel Data without Rows, Columns or Bits Allocated",
                           offending=(int(_ROWS), int(_COLUMNS), int(_BITS)))
        expected = math.prod(dims)
        if native:
            length = pixel_data_length(ds)
            if length * 8 < expected:
                return Outcome(DOES_NOT_MATCH_SOP_CLASS,
                               f"Pixel Data {length} bytes, needs {expected // 8}",
                               offending=(int(_PIXEL_DATA),))
        limit = self.limits.max_pixel_bytes
        declared = pixel_bytes(dims[0], dims[1], dims[2], dims[4], dims[3])
        if limit and declared > limit:
            return Outcome(OUT_OF_RESOURCES,
                           f"Rows x Columns x ... declare {mib(declared)}, over {mib(limit)}",
                           offending=(int(_ROWS), int(_COLUMNS)))
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


IMPLICIT, BIG_ENDIAN, DEFLATED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2",
                                   "1.2.840.10008.1.2.1.99")


def _data_set_start(part10: bytes) -> int:
    """Where the data set starts: after preamble, prefix and File Meta Information,
    whose group length (0002,0000) says how long it is."""
    if part10[128:132] != b"DICM" or part10[132:138] != b"\x02\x00\x00\x00UL":
        raise ValueError("no File Meta Information group length")
    return 144 + struct.unpack_from("<L", part10, 140)[0]


def _transfer_syntax(part10: bytes, start: int) -> str:
    """Transfer Syntax UID (0002,0010) of the File Meta Information (explicit VR LE)."""
    pos = 144
    while pos + 8 <= start:
        group, element, vr = struct.unpack_from("<HH2s", part10, pos)
        if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            length, header = struct.unpack_from("<L", part10, pos + 8)[0], 12
        else:
            length, header = struct.unpack_from("<H", part10, pos + 6)[0], 8
        if (group, element) == (2, 0x10):
            value = part10[pos + header:pos + header + length]
            return value.rstrip(b"\0 ").decode("ascii", "replace")
        pos += header + length
    raise ValueError("no Transfer Syntax UID")


def decode(encoded: bytes) -> Dataset:
    """``encoded`` (Part 10) as a data set whose long values stay unread (pydicom reads
    them from its buffer if asked: the inflated one for a deflated data set); read by
    :func:`printscp.archive.part10.read`, which gives what ``dcmread`` gives, faster."""
    return part10.read(encoded, DEFER_SIZE)


def element_overrun(ds: Dataset) -> str | None:
    """Whether the last element of ``ds`` announces more bytes than the data set holds
    (``(0009,1010) claims 4294967280 bytes, 512 remain``), None if not.  Only the last
    can: the bytes of any element before it were there, or it would not follow.  (A
    value of undefined length ends with its delimiter and is not measured.)"""
    if not ds._dict:
        return None
    tag = next(reversed(ds._dict))
    elem = ds._dict[tag]
    if not isinstance(elem, RawDataElement) or elem.length == UNDEFINED:
        return None
    if elem.value is not None:
        have = len(elem.value)
    else:
        buffer = getattr(ds, "buffer", None)
        if buffer is None:
            return None
        have = max(0, buffer.seek(0, io.SEEK_END) - elem.value_tell)
    if have < elem.length:
        return f"{tag} claims {elem.length} bytes, {have} remain"
    return None


def pixel_data_length(ds: Dataset) -> int:
    """The bytes of Pixel Data that ``ds`` holds: for an unread value, its encoded
    length as far as the data set reaches (a truncated data set holds less)."""
    elem = ds._dict[_PIXEL_DATA]
    if isinstance(elem, RawDataElement):
        if elem.value is not None:
            return len(elem.value)
        buffer = getattr(ds, "buffer", None)
        if elem.length != UNDEFINED and buffer is not None:
            size = buffer.seek(0, io.SEEK_END)  # the stream read: inflated if deflated
            return max(0, min(elem.length, size - elem.value_tell))
    return len(ds.PixelData)


def _value(ds: Dataset, tag: BaseTag, default: Any = None) -> Any:
    """The value of ``tag`` in ``ds``, or ``default`` (by tag: pydicom's keyword
    lookups cost more than the rest of a check)."""
    if tag not in ds._dict:
        return default
    return ds[tag].value


def _number(ds: Dataset, tag: BaseTag, default: Any = None) -> Any:
    """Like :func:`_value`, for a US or IS attribute, but leaving the element as read:
    the index's :class:`~printscp.archive.instance_json.InstanceJson` finds it in its
    cache then (the VR is fixed: nothing else in the data set changes its decoding)."""
    elem = ds._dict.get(tag)
    if elem is None:
        return default
    if isinstance(elem, RawDataElement) and elem.value is not None:
        if elem.VR == "US":
            return part10.us_value(ds, tag)
        return convert_raw_data_element(elem, encoding=ds.original_character_set,
                                        ds=ds).value
    return ds[tag].value
