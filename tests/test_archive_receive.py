"""The archive's in-process store path: the IMAGE-level JSON built from cached element
fragments equals pydicom's, unread Pixel Data is still length-checked, files and
temporary files end where they should, and writers serialise on the writer lock."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest
from helpers.archive_data import Study, instance
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.dsutils import encode

from printscp.archive.archive import Archive, DuplicatePolicy, decode
from printscp.archive.index import _HIGHER, Level, StoreResult, _json, level_dataset
from printscp.archive.instance_json import InstanceJson, element_json, fast_element_json
from printscp.core.database import Database, writer_lock
from printscp.net import pdata

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
            DeflatedExplicitVRLittleEndian]


def part10(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """``ds`` as the server receives it: its file meta, then the data set in ``syntax``."""
    body = encode(ds, syntax == ImplicitVRLittleEndian, syntax != ExplicitVRBigEndian,
                  syntax == DeflatedExplicitVRLittleEndian)
    assert body is not None
    return pdata.file_meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax) + body


def reference_json(encoded: bytes) -> str:
    """The IMAGE-level JSON as the index made it before :class:`InstanceJson`."""
    return _json(level_dataset(pydicom.dcmread(io.BytesIO(encoded)), Level.IMAGE))


def assert_same_json(builder: InstanceJson, encoded: bytes) -> None:
    expected = reference_json(encoded)
    got = builder(decode(encoded))
    assert json.loads(got) == json.loads(expected)
    assert got == expected  # the same text, even: elements in tag order, same separators


def ct_series(n: int, **kw) -> list[Dataset]:
    """A CT series whose instances differ where real ones do."""
    study = Study("P1", "DOE^JANE", "20261101", "A1", size=8)
    out = []
    for i in range(1, n + 1):
        ds = instance(study, 0, i)
        ds.ImagePositionPatient = [-180, -180, -1.25 * i]
        ds.SliceLocation = f"{-1.25 * i:.2f}"
        ds.ContentTime = f"1017{i % 60:02d}.{i:03d}"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.703125, 0.703125]
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
        for key, value in kw.items():
            setattr(ds, key, value)
        out.append(ds)
    return out


# -- JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_instance_json_equals_pydicom_for_the_samples(syntax):
    builder = InstanceJson(_HIGHER)
    for path in sorted(SAMPLES.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for _ in range(2):  # cold, then every element from the cache
            assert_same_json(builder, part10(ds, syntax))


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_instance_json_equals_pydicom_across_a_series(syntax):
    builder = InstanceJson(_HIGHER)
    for ds in ct_series(12):
        assert_same_json(builder, part10(ds, syntax))


def test_pixel_representation_decides_ambiguous_values_in_implicit_vr():
    """The same bytes of a US or SS element read in implicit VR mean 65535 or -1."""
    builder = InstanceJson(_HIGHER)
    for representation in (0, 1, 0):
        ds = ct_series(1)[0]
        ds.PixelRepresentation = representation
        ds.SmallestImagePixelValue = 0xFFFF if representation == 0 else -1
        item = Dataset()
        item.LUTDescriptor = [2, 0, 16]
        item.LUTData = b"\x01\x00\x02\x00"
        item.ModalityLUTType = "HU"
        item.RealWorldValueFirstValueMapped = 0xFFFF if representation == 0 else -1
        ds.RealWorldValueMappingSequence = Sequence([item])
        encoded = part10(ds, ImplicitVRLittleEndian)
        assert_same_json(builder, encoded)
        smallest = json.loads(builder(decode(encoded)))["00280106"]["Value"]
        assert smallest == ([65535] if representation == 0 else [-1])


def test_vr_decided_by_another_attribute_is_never_taken_from_the_cache():
    """LUT Data read in implicit VR is US when LUT Descriptor says one entry, else OW
    (bulk data, left out): the same bytes give either."""
    builder = InstanceJson(_HIGHER)
    for entries in (1, 2, 1):
        ds = ct_series(1)[0]
        ds.LUTDescriptor = [entries, 0, 16]
        ds.LUTData = b"\x07\x00"
        encoded = part10(ds, ImplicitVRLittleEndian)
        assert_same_json(builder, encoded)
        assert ("00283006" in json.loads(builder(decode(encoded)))) is (entries == 1)


def test_private_elements_character_sets_and_long_values():
    builder = InstanceJson(_HIGHER)
    for n, charset in enumerate(("ISO_IR 100", "ISO_IR 192", "ISO_IR 100")):
        ds = ct_series(1)[0]
        ds.SpecificCharacterSet = charset
        ds.SeriesDescription = "Série"
        ds.ImageComments = "commentaire é"  # the same text, other bytes per charset
        ds.DerivationDescription = "x" * 1500  # longer than the index keeps
        block = ds.private_block(0x0019, "ACME 1.0", create=True)
        block.add_new(0x10, "LO", f"private {n}")
        block.add_new(0x11, "DS", "1.5")
        block.add_new(0x12, "OB", b"\x00" * 40)
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            assert_same_json(builder, part10(ds, syntax))


@pytest.mark.slow
def test_values_left_unread_are_read_or_left_out_as_before():
    """Elements over the defer size: a large sequence is still indexed, a large text is
    left out (longer than 1024 characters), bulk data is never read."""
    builder = InstanceJson(_HIGHER)
    ds = ct_series(1)[0]
    ds.ReferencedImageSequence = Sequence(
        [_reference(i) for i in range(1200)])  # about 100 KB
    ds.TextValue = "y" * 70000
    ds.add_new(0x00091010, "OB", b"\x01" * 70000)
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        encoded = part10(ds, syntax)
        decoded = decode(encoded)
        assert decoded._dict[0x00081140].value is None  # deferred, not read by decode
        assert_same_json(builder, encoded)
        assert len(json.loads(builder(decode(encoded)))["00081140"]["Value"]) == 1200


def _reference(i: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = f"1.2.3.4.5.6.7.8.9.{i}"
    return item


@pytest.mark.parametrize(("vr", "raw"), [
    ("DS", b"-1.25"), ("DS", b"1e3 "), ("DS", b".5\\+7\\-0\\00012"), ("DS", b"120"),
    ("DS", b"1.0000000000000001"), ("DS", b" 5"), ("DS", b"1,5"), ("DS", b"1.5\\\\2"),
    ("IS", b"+7"), ("IS", b"00012\\-3 "), ("IS", b"99999999999"), ("IS", b"1.0"),
    ("UI", b"1.2.840.10008.5.1.4.1.1.2\x00"), ("UI", b"1.2\\3.4"), ("UI", b"1.02"),
    ("DA", b"20261101"), ("DA", b"20261301"), ("DA", b"2026-11-01"),
    ("TM", b"101730.123456"), ("TM", b"1017"), ("TM", b"251730"), ("TM", b"10:17"),
])
def test_fast_values_equal_pydicom(vr, raw):
    """Values the index turns into JSON itself: equal to pydicom's, or left to it."""
    from pydicom.dataelem import RawDataElement, convert_raw_data_element

    elem = convert_raw_data_element(
        RawDataElement(0x00181234, vr, len(raw), raw, 0, False, True))
    fast = fast_element_json(0x00181234, vr, raw)
    assert fast is None or fast == element_json(elem)
    if raw in (b"-1.25", b"1e3 ", b"+7", b"20261101", b"1017", b"1.2\\3.4"):
        assert fast is not None  # the common forms do take the fast path


def test_cache_is_bounded():
    builder = InstanceJson(_HIGHER, max_entries=50)
    for ds in ct_series(20):
        assert_same_json(builder, part10(ds))
        assert builder._entries <= 50


# -- receive --------------------------------------------------------------------------


def test_truncated_pixel_data_is_refused_though_unread(tmp_path):
    archive = Archive(tmp_path)
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1", size=256), 0, 1)
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian):
        encoded = part10(ds, syntax)[:-1000]  # the data set ends inside Pixel Data
        outcome = archive.receive(encoded, str(ds.SOPClassUID), str(ds.SOPInstanceUID))
        assert outcome.status == 0xA900
        assert outcome.comment == f"Pixel Data {256 * 256 * 2 - 1000} bytes, needs {256 * 256 * 2}"
    assert not list(archive.files.root.rglob("*.dcm"))
    assert not list(archive.files.incoming.iterdir())  # no temporary file left


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_whole_data_sets_are_stored_byte_for_byte(tmp_path, syntax):
    archive = Archive(tmp_path)
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1", size=256), 0, 1)
    encoded = part10(ds, syntax)
    outcome = archive.receive(encoded, str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    assert outcome.status == 0 and outcome.result is StoreResult.STORED
    [record] = archive.instances()
    assert archive.path_of(record).read_bytes() == encoded
    assert not list(archive.files.incoming.iterdir())
    report = archive.verify()
    assert report.checked == 1 and not report.bad and not report.orphans


def test_refused_and_undecodable_data_sets_leave_no_file(tmp_path):
    archive = Archive(tmp_path)
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    bad = copy.deepcopy(ds)
    bad.SeriesInstanceUID = "../../etc"
    assert archive.receive(part10(bad), str(ds.SOPClassUID),
                           str(ds.SOPInstanceUID)).status == 0xA900
    assert archive.receive(b"\x08\x00\x16\x00UI\x40\x001.2.3", str(ds.SOPClassUID),
                           str(ds.SOPInstanceUID)).status == 0xC000
    assert not [p for p in archive.files.root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("policy", list(DuplicatePolicy))
def test_duplicates_leave_one_file(tmp_path, policy):
    archive = Archive(tmp_path, policy)
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    first = part10(ds)
    assert archive.receive(first, str(ds.SOPClassUID), str(ds.SOPInstanceUID)).status == 0
    ds.SeriesDescription = "CORRECTED"
    second = part10(ds, ImplicitVRLittleEndian)
    for _ in range(2):  # another copy, then the same one again
        outcome = archive.receive(second, str(ds.SOPClassUID), str(ds.SOPInstanceUID))
        assert outcome.status == 0
    assert outcome.result is (StoreResult.KEPT if policy is DuplicatePolicy.KEEP
                              else StoreResult.REPLACED)
    [path] = archive.files.root.rglob("*.dcm")
    assert path.read_bytes() == (first if policy is DuplicatePolicy.KEEP else second)
    assert not list(archive.files.incoming.iterdir())
    report = archive.verify()
    assert report.checked == 1 and not report.bad and not report.orphans


def test_a_file_deleted_by_a_concurrent_store_is_put_back(tmp_path):
    """Between putting its file in place and indexing it, a store's file may be deleted
    by a concurrent store of the same instance that replaced it: it is written again."""
    archive = Archive(tmp_path)
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    encoded = part10(ds)
    pending = archive.files.write(encoded)
    staged = archive.files.stage(pending, str(ds.StudyInstanceUID),
                                 str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
    archive.files.place(staged)
    Path(staged.final).unlink()  # what the other store did, under the writer lock
    assert archive.index.store(decode(encoded), ExplicitVRLittleEndian, staged,
                               archive.files) is StoreResult.STORED
    assert Path(staged.final).read_bytes() == encoded
    assert not archive.verify().bad


def test_level_rows_follow_a_changed_character_set(tmp_path):
    """The same bytes of a patient's name in another character set are another name:
    the patient row is rewritten although the bytes did not change."""
    archive = Archive(tmp_path)
    study = Study("P1", "DOE^JANE", "20261101", "A1")
    for n, (charset, name) in enumerate((("ISO_IR 100", "Ã©"), ("ISO_IR 192", "é")), 1):
        ds = instance(study, 0, n)
        ds.SpecificCharacterSet = charset
        ds.PatientName = name  # encoded, both are the bytes C3 A9
        encoded = part10(ds)
        assert b"\xc3\xa9" in encoded
        assert archive.receive(encoded, str(ds.SOPClassUID), str(ds.SOPInstanceUID)).status == 0
        row = archive.index.patient_by_id("P1")
        assert row is not None and str(row.PatientName) == name


# -- writer lock ----------------------------------------------------------------------


def test_writers_of_one_database_share_one_lock(tmp_path):
    one = Database(tmp_path / "x.sqlite", "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    two = Database(tmp_path / "x.sqlite", "")
    assert writer_lock(one.path) is writer_lock(two.path)
    order: list[str] = []
    with one._write() as db:
        db.execute("INSERT INTO t VALUES (1)")
        thread = threading.Thread(target=lambda: _insert(two, order))
        thread.start()
        time.sleep(0.2)
        order.append("first commits")
    thread.join(10)
    assert order == ["first commits", "second wrote"]


def _insert(database: Database, order: list[str]) -> None:
    with database._write() as db:
        db.execute("INSERT INTO t VALUES (2)")
        order.append("second wrote")


def test_the_writer_lock_excludes_other_processes(tmp_path):
    database = Database(tmp_path / "x.sqlite", "CREATE TABLE IF NOT EXISTS t (a INTEGER);")
    probe = ("import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except BlockingIOError:\n    print('held')\nelse:\n    print('free')\n")
    lock_file = str(tmp_path / "x.sqlite.lock")
    with database._write():
        held = subprocess.run([sys.executable, "-c", probe, lock_file],
                              capture_output=True, text=True, check=True).stdout.strip()
    free = subprocess.run([sys.executable, "-c", probe, lock_file],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert (held, free) == ("held", "free")


def test_temporary_files_of_dead_processes_are_removed(tmp_path):
    """A store interrupted by a crash leaves a temporary file; the next start removes
    it, but not one of a live process (another worker storing right now)."""
    from printscp.archive.files import ArchiveFiles

    files = ArchiveFiles(tmp_path / "archive")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    abandoned = files.incoming / f".tmp-{dead}-1"
    live = files.incoming / f".tmp-{os.getpid()}-1"
    abandoned.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    ArchiveFiles(tmp_path / "archive")
    assert not abandoned.exists()
    assert live.exists()
