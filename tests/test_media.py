"""DICOM media export/import (STD-GEN-CD File-sets), checked against DCMTK and pydicom."""

from __future__ import annotations

import io
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.dcmtk import tool
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    generate_uid,
)

from printscp.archive.media import (
    IMPLEMENTATION_CLASS_UID,
    MediaError,
    export_fileset,
    read_fileset,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
needs_dcmtk = pytest.mark.dcmtk("dcmmkdir", "dcmdump")
COMPONENT = re.compile(r"^[0-9A-Z_]{1,8}$")


def _instance(patient: tuple[str, str], study: str, series: str, number: int, *,
              modality: str = "CT", bits: int = 16, size: int = 16) -> Dataset:
    """A small, complete Secondary Capture image (every Type 1 DICOMDIR key present)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = patient
    ds.PatientBirthDate = "19700101"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240501", "101500", "7", ""
    ds.StudyDescription = "media test"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1, number
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits if bits == 8 else 12, \
        7 if bits == 8 else 11
    ds.PixelRepresentation = 0
    dtype = np.uint8 if bits == 8 else np.uint16
    top = 255 if bits == 8 else 4095
    pixels = (np.arange(size * size).reshape(size, size) * (number + 3)) % (top + 1)
    ds.PixelData = pixels.astype(dtype).tobytes()
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    return ds


def _save(ds: Dataset, path: Path, syntax: str = ExplicitVRLittleEndian) -> Path:
    """Write ``ds`` in ``syntax``, byte-swapping the pixels by hand for big endian."""
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax == ExplicitVRBigEndian and ds["PixelData"].VR == "OW":
        ds.PixelData = np.frombuffer(ds.PixelData, "<u2").astype(">u2").tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _jpeg(ds: Dataset, path: Path) -> Path:
    """Store 8-bit ``ds`` as JPEG baseline (encoded by Pillow, encapsulated by pydicom)."""
    out = io.BytesIO()
    Image.fromarray(ds.pixel_array.astype(np.uint8)).save(out, format="JPEG", quality=95)
    ds.PixelData = encapsulate([out.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _sr(patient: tuple[str, str], study: str, path: Path) -> Path:
    """A Basic Text SR in the given study: a non-IMAGE leaf (SR DOCUMENT record)."""
    ds = _instance(patient, study, generate_uid(), 1, modality="SR")
    for kw in ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
               "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData",
               "ConversionType"):
        delattr(ds, kw)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SeriesNumber = 90
    ds.ContentDate, ds.ContentTime = "20240501", "102000"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "11528-7", "LN", "Report"
    ds.ConceptNameCodeSequence = Sequence([code])
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    return _save(ds, path)


def _pdf(patient: tuple[str, str], study: str, path: Path) -> Path:
    """An Encapsulated PDF in the given study: an ENCAP DOC record."""
    ds = _instance(patient, study, generate_uid(), 1, modality="DOC")
    for kw in ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
               "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData"):
        delattr(ds, kw)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SeriesNumber = 91
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.DocumentTitle = "letter"
    ds.BurnedInAnnotation = "YES"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    return _save(ds, path)


@pytest.fixture
def synthetic(tmp_path: Path) -> dict[str, object]:
    """Two patients, three studies, five series, conversions and files that must be refused.

    Returns the sources, which of them must be converted or skipped, and the expected
    DICOMDIR counts.
    """
    src = tmp_path / "src"
    src.mkdir()
    alice, bob = ("Doe^Alice", "PID001"), ("Roe^Bob", "PID002")
    st_a1, st_a2, st_b = generate_uid(), generate_uid(), generate_uid()
    se = [generate_uid() for _ in range(3)]
    files: list[Path] = []
    for n in range(1, 4):
        files.append(_save(_instance(alice, st_a1, se[0], n), src / f"a1_{n}.dcm"))
    files.append(_save(_instance(alice, st_a1, se[0], 4), src / "a1_4_implicit.dcm",
                       ImplicitVRLittleEndian))
    files.append(_save(_instance(alice, st_a2, se[1], 1, modality="MR"),
                       src / "a2_big.dcm", ExplicitVRBigEndian))
    files.append(_save(_instance(alice, st_a2, se[1], 2, modality="MR"),
                       src / "a2_deflated.dcm", DeflatedExplicitVRLittleEndian))
    files.append(_jpeg(_instance(bob, st_b, se[2], 1, bits=8), src / "b_jpeg.dcm"))
    files.append(_save(_instance(bob, st_b, se[2], 2, bits=8), src / "b_8bit.dcm"))
    files.append(_sr(bob, st_b, src / "b_sr.dcm"))
    files.append(_pdf(bob, st_b, src / "b_pdf.dcm"))
    jls = _instance(bob, st_b, se[2], 3, bits=8)
    jls.PixelData = encapsulate([b"\xff\xd8\xff\xf7 not really JPEG-LS \xff\xd9"])
    jls.file_meta.TransferSyntaxUID = JPEGLSLossless
    refused = [src / "b_jpegls.dcm", src / "not_dicom.dcm"]
    pydicom.dcmwrite(refused[0], jls, enforce_file_format=True)
    refused[1].write_bytes(b"this is not DICOM" * 10)
    converted = [src / "a1_4_implicit.dcm", src / "a2_big.dcm", src / "a2_deflated.dcm",
                 src / "b_jpeg.dcm"]
    return {"files": files, "refused": refused, "converted": converted,
            "counts": {"PATIENT": 2, "STUDY": 3, "SERIES": 5, "IMAGE": 8, "SR DOCUMENT": 1,
                       "ENCAP DOC": 1}}


def _file_ids(root: Path) -> list[Path]:
    """Every file of the File-set but the DICOMDIR, relative to its root."""
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.is_file() and p.name != "DICOMDIR")


def _dcmdump_record_types(dicomdir: Path) -> Counter[str]:
    """Directory record types as DCMTK reads them (it follows the record offsets)."""
    out = subprocess.run([tool("dcmdump"), "+P", "0004,1430", str(dicomdir)], check=True,
                         capture_output=True, text=True).stdout
    return Counter(re.findall(r"CS \[([A-Z ]+)\]", out))


def _dcmmkdir(root: Path, work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Let DCMTK build its own STD-GEN-CD DICOMDIR from our files (into ``work``).

    ``-Pgp`` checks every file against the profile (transfer syntax, SOP Class, File ID
    characters and length, Type 1 keys) and ``-a`` aborts on the first inconsistent one,
    so exit status 0 means DCMTK accepts every file of the File-set.
    """
    target = work / "DCMTKDIR"
    ids = [str(p) for p in _file_ids(root)]
    return subprocess.run([tool("dcmmkdir"), "-Pgp", "-a", "-nb", "+D", str(target), *extra,
                           *ids], cwd=root, capture_output=True, text=True)


@needs_dcmtk
def test_export_synthetic_is_std_gen_cd(synthetic: dict, tmp_path: Path) -> None:
    sources = [*synthetic["files"], *synthetic["refused"]]
    calls: list[int] = []
    out = tmp_path / "cd"
    report = export_fileset(sources, out, fileset_id="PATIENT_CD",
                            on_file=lambda: calls.append(1))

    assert len(calls) == len(sources)  # once per source, skipped ones included
    assert (report.files, report.patients, report.studies, report.series) == (10, 2, 3, 5)
    assert sorted(report.converted) == sorted(map(str, synthetic["converted"]))
    assert sorted(p for p, _ in report.skipped) == sorted(map(str, synthetic["refused"]))
    reasons = dict(report.skipped)
    assert "JPEG-LS" in reasons[str(synthetic["refused"][0])]
    assert "not a readable DICOM" in reasons[str(synthetic["refused"][1])]
    assert report.invented == []
    assert report.bytes == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work dir left

    ids = _file_ids(out)
    assert len(ids) == 10
    for file_id in ids:  # PS3.10 8.2 / PS3.12 F.1.2: no extension, [0-9A-Z_]{1,8}, depth <= 8
        assert len(file_id.parts) <= 8
        assert all(COMPONENT.match(part) for part in file_id.parts), file_id

    # DCMTK: our DICOMDIR parses, its records follow our offsets, and in strict mode
    # dcmmkdir accepts every file for STD-GEN-CD and builds the same hierarchy.
    ours = _dcmdump_record_types(out / "DICOMDIR")
    assert ours == Counter(synthetic["counts"])
    done = _dcmmkdir(out, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _dcmdump_record_types(tmp_path / "DCMTKDIR") == ours
    for file_id in ids:
        subprocess.run([tool("dcmdump"), "-q", str(out / file_id)], check=True, capture_output=True)
    head = subprocess.run([tool("dcmdump"), "-M", "+P", "0004,1130", str(out / "DICOMDIR")],
                          check=True, capture_output=True, text=True).stdout
    assert "[PATIENT_CD]" in head

    # pydicom's own loader agrees: no orphans, every referenced file in place.
    fs = FileSet(out / "DICOMDIR")
    assert fs.ID == "PATIENT_CD"
    assert len(fs) == 10
    assert {i.ReferencedFileID[-1][:2] for i in fs} <= {"IM", "SR", "ED"}

    # Contents: Explicit VR LE, our File Meta, pixels equal to the source (decoded for JPEG).
    by_uid = {}
    for file_id in ids:
        ds = pydicom.dcmread(out / file_id)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        by_uid[ds.SOPInstanceUID] = ds
    for source in synthetic["files"]:
        original = pydicom.dcmread(source)
        copy = by_uid[original.SOPInstanceUID]
        if "PixelData" in original:
            assert np.array_equal(copy.pixel_array, original.pixel_array), source
        syntax = original.file_meta.TransferSyntaxUID
        if syntax == JPEGBaseline8Bit:
            assert copy.LossyImageCompression == "01"
        elif syntax != ExplicitVRBigEndian and "PixelData" in original:
            assert copy.PixelData == original.PixelData  # byte for byte, not just values
    assert by_uid[pydicom.dcmread(synthetic["files"][-1]).SOPInstanceUID] \
        .EncapsulatedDocument.startswith(b"%PDF")


@needs_dcmtk
def test_export_samples_invents_missing_record_keys(tmp_path: Path) -> None:
    """The wedge samples lack Study Date/ID, Series and Instance Number (Type 2 in them)."""
    sources = sorted(SAMPLES.glob("*.dcm"))
    out = tmp_path / "cd"
    report = export_fileset(sources, out)
    assert report.files == len(sources)
    assert report.skipped == []
    invented = dict(report.invented)
    assert "StudyID" in invented[str(SAMPLES / "wedge_12bit.dcm")]
    assert str(SAMPLES / "CT_small.dcm") not in invented
    types = _dcmdump_record_types(out / "DICOMDIR")
    assert types["PATIENT"] == report.patients
    assert types["STUDY"] == report.studies
    assert types["SERIES"] == report.series
    assert types["IMAGE"] == len(sources)
    # The files keep their Type 2 emptiness, so DCMTK needs +I (invent) as we did.
    done = _dcmmkdir(out, tmp_path, "+I")
    assert done.returncode == 0, done.stderr
    for source in sources:
        original = pydicom.dcmread(source)
        match = [p for p in out.rglob("IM*")
                 if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
                 == original.SOPInstanceUID]
        assert len(match) == 1
        assert np.array_equal(pydicom.dcmread(match[0]).pixel_array, original.pixel_array)


def test_import_round_trip(synthetic: dict, tmp_path: Path) -> None:
    out = tmp_path / "cd"
    export_fileset(synthetic["files"], out)
    files, errors = read_fileset(out)
    assert errors == []
    assert len(files) == len(synthetic["files"])
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files}
    assert uids == {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
                    for p in synthetic["files"]}
    report = read_fileset(out / "DICOMDIR")  # the DICOMDIR itself works as the argument
    assert report.fileset_id == "PRINTSCP"
    assert len(report.files) == len(files)


def test_import_reports_missing_and_corrupt_files(synthetic: dict, tmp_path: Path) -> None:
    out = tmp_path / "cd"
    export_fileset(synthetic["files"], out)
    ids = _file_ids(out)
    (out / ids[0]).unlink()
    (out / ids[1]).write_bytes(b"\0" * 50)
    truncated = out / ids[2]
    truncated.write_bytes(truncated.read_bytes()[:-200])
    report = read_fileset(out)
    assert len(report.files) == len(ids) - 3
    reasons = {Path(p).relative_to(out): r for p, r in report.errors}
    assert set(reasons) == {ids[0], ids[1], ids[2]}
    assert reasons[ids[0]] == "file not found"
    assert "not a readable DICOM" in reasons[ids[1]]
    assert "truncated" in reasons[ids[2]]


def test_import_lower_case_cd(synthetic: dict, tmp_path: Path) -> None:
    """Discs mounted without ISO 9660 name mapping show lower-case names with ';1'."""
    out = tmp_path / "cd"
    export_fileset(synthetic["files"], out)
    for path in sorted(out.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        name = path.name.lower() + (";1" if path.is_file() else "")
        path.rename(path.with_name(name))
    assert (out / "dicomdir;1").is_file()
    files, errors = read_fileset(out)
    assert errors == []
    assert len(files) == len(synthetic["files"])
    assert all(p.name.startswith(("im", "sr", "ed")) for p in files)


def test_import_without_dicomdir(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no DICOMDIR"):
        read_fileset(tmp_path)
    (tmp_path / "DICOMDIR").write_bytes(b"garbage")
    with pytest.raises(MediaError, match="not a readable DICOMDIR"):
        read_fileset(tmp_path)


def test_export_refusals(synthetic: dict, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(MediaError, match="not an empty directory"):
        export_fileset(synthetic["files"], busy)
    with pytest.raises(ValueError, match="File-set ID"):
        export_fileset(synthetic["files"], tmp_path / "a", fileset_id="lower-case")
    with pytest.raises(ValueError, match="File-set ID"):
        export_fileset(synthetic["files"], tmp_path / "a", fileset_id="X" * 17)
    with pytest.raises(MediaError, match="nothing to export") as caught:
        export_fileset(synthetic["refused"], tmp_path / "b")
    assert caught.value.report is not None and len(caught.value.report.skipped) == 2
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "src"]  # no leftovers

    empty = tmp_path / "empty"
    empty.mkdir()
    twice = [synthetic["files"][0], synthetic["files"][0]]
    report = export_fileset(twice, empty)
    assert report.files == 1
    assert "duplicate SOP Instance UID" in report.skipped[0][1]


@pytest.mark.slow
@needs_dcmtk
def test_export_rate(tmp_path: Path) -> None:
    """Export rate for 300 small files (64x64, 16-bit), printed for the record."""
    src = tmp_path / "src"
    src.mkdir()
    patient = ("Rate^Test", "PIDRATE")
    study = generate_uid()
    series = [generate_uid() for _ in range(3)]
    sources = [_save(_instance(patient, study, series[n % 3], n + 1, size=64),
                     src / f"{n:04d}.dcm") for n in range(300)]
    start = time.perf_counter()
    report = export_fileset(sources, tmp_path / "cd")
    elapsed = time.perf_counter() - start
    assert report.files == 300
    assert _dcmdump_record_types(tmp_path / "cd" / "DICOMDIR")["IMAGE"] == 300
    rate = 300 / elapsed
    print(f"\nexport: 300 files in {elapsed:.2f} s = {rate:.0f} files/s")
    start = time.perf_counter()
    files, _ = read_fileset(tmp_path / "cd")
    print(f"import: {len(files)} files in {time.perf_counter() - start:.2f} s")
    assert rate > 20
