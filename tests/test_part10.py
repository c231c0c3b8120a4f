"""printscp.archive.part10.read gives what pydicom's dcmread gives, element for element.

Every data set a C-STORE stores is decoded by :func:`read`; the checks, the index's
JSON and its caches rely on it being dcmread's data set.  So it is compared with
dcmread on pydicom's own test files (every one written as the network delivers them:
Part 10 bytes) and on data sets made to exercise each branch, and the tests make sure
the fast path is really taken where it should be.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from printscp.archive import part10
from printscp.archive.archive import DEFER_SIZE

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _part10(path: Path) -> bytes | None:
    """``path`` as a C-STORE delivers it (preamble, DICM, File Meta, data set)."""
    data = path.read_bytes()
    return data if data[128:132] == b"DICM" else None


def _files() -> list[Path]:
    # The test files pydicom ships (not those it would download).
    files = sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*.dcm"))
    files += sorted(SAMPLES.glob("*.dcm"))
    return [p for p in files if _part10(p) is not None]


def _dcmread(data: bytes) -> pydicom.FileDataset:
    return pydicom.dcmread(io.BytesIO(data), defer_size=DEFER_SIZE)


def _same(ours: Dataset, theirs: Dataset) -> None:
    assert list(ours._dict) == list(theirs._dict)
    for tag, elem in theirs._dict.items():
        mine = ours._dict[tag]
        assert type(mine) is type(elem), tag
        if isinstance(elem, RawDataElement):
            assert tuple(mine) == tuple(elem), tag
        else:
            assert isinstance(elem, DataElement)
            assert (mine.VR, mine.is_undefined_length) == (elem.VR, elem.is_undefined_length)
            assert mine.to_json_dict(None, 1 << 30) == elem.to_json_dict(None, 1 << 30), tag
    assert ours.original_encoding == theirs.original_encoding
    assert ours.original_character_set == theirs.original_character_set
    assert ours._character_set == theirs._character_set


def _compare(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _dcmread(data)
        ours = part10.read(data, DEFER_SIZE)
        _same(ours, theirs)
        _same(ours.file_meta, theirs.file_meta)
        assert ours.preamble == theirs.preamble
        assert (ours._read_implicit, ours._read_little) == \
               (theirs._read_implicit, theirs._read_little)
        # The values read from the data set (deferred ones from its buffer) agree too.
        for tag in theirs._dict:
            try:
                expected = theirs[tag].value
            except Exception as exc:  # pydicom cannot decode it: nor from ours
                with pytest.raises(type(exc)):
                    ours[tag].value  # noqa: B018
                continue
            assert ours[tag].value == expected, tag


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_same_data_set_as_dcmread(path: Path) -> None:
    _compare(path.read_bytes())


def _encode(ds: Dataset, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _instance(**extra: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "ID1"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.arange(64 * 64, dtype=np.uint16).tobytes()
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_fast_path_taken_and_equal(syntax: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sequence, a character set, an empty value, a value past DEFER_SIZE (left
    unread): read without dcmread, equal to it."""
    pixels = np.arange(256 * 256, dtype=np.uint16).tobytes()  # 128 KiB: deferred
    ds = _instance(SpecificCharacterSet="ISO_IR 100", PatientComments="Ünïcode",
                   StudyDescription="", Rows=256, Columns=256, PixelData=pixels,
                   ReferencedImageSequence=Sequence([_item(ReferencedSOPInstanceUID="1.2",
                                                           ReferencedSOPClassUID="1.2.3")]))
    data = _encode(ds, syntax)
    read = pydicom.dcmread
    _compare(data)
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: pytest.fail("dcmread used"))
    ours = part10.read(data, DEFER_SIZE)
    assert ours.PatientComments == "Ünïcode"
    assert ours._dict[pydicom.tag.Tag("PixelData")].value is None  # deferred
    assert ours.PixelData == pixels  # read from the buffer
    monkeypatch.setattr(pydicom, "dcmread", read)


def test_undefined_length_sequence_and_encapsulated_pixels() -> None:
    ds = _instance(ReferencedImageSequence=Sequence([_item(ReferencedSOPInstanceUID="1.2")]))
    data = _encode(ds, ExplicitVRLittleEndian)
    # Re-encode the sequence with undefined lengths (as many modalities send it).
    ds = pydicom.dcmread(io.BytesIO(data))
    ds["ReferencedImageSequence"].is_undefined_length = True
    for item in ds.ReferencedImageSequence:
        item.is_undefined_length_sequence_item = True
    out = io.BytesIO()
    ds.save_as(out)
    _compare(out.getvalue())
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8" + b"\0" * 100 + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    out = io.BytesIO()
    ds.save_as(out)
    _compare(out.getvalue())


def test_odd_data_sets_fall_back_to_dcmread() -> None:
    """Big endian, a truncated value, trailing bytes, a wrong VR claim: dcmread's
    answer (and its warnings or errors) whatever they are."""
    big = _encode(_instance(), ExplicitVRBigEndian)
    _compare(big)
    good = _encode(_instance(), ExplicitVRLittleEndian)
    _compare(good[:-100])  # Pixel Data shorter than its length
    _compare(good + b"\0\0\0")  # bytes after the last element
    # A data set in implicit VR whose File Meta Information says explicit VR.
    implicit = _encode(_instance(), ImplicitVRLittleEndian)
    meta = pydicom.dcmread(io.BytesIO(good)).file_meta
    start = 132 + 12 + meta.FileMetaInformationGroupLength
    body = implicit[132 + 12 + pydicom.dcmread(io.BytesIO(implicit)).file_meta
                    .FileMetaInformationGroupLength:]
    _compare(good[:start] + body)
