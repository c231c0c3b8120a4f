"""Storage SCP: DCMTK storescu in several transfer syntaxes, refusals, duplicates,
durability across kill -9, and ``printscp archive verify``."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from helpers.archive_data import CT_IMAGE, Study, instance, write_study
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.net import free_port, wait_for_port
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from printscp.app.node import Node
from printscp.archive.archive import Archive

pytestmark = pytest.mark.slow  # every test runs a node


def stored(node: Node) -> dict[str, pydicom.Dataset]:
    archive = node.archive
    assert archive is not None
    return {r.sop_uid: archive.read(r) for r in archive.instances()}


CONVERSIONS = {  # DCMTK conversion, storescu's proposal, transfer syntax stored
    "implicit": (["dcmconv", "+ti"], "-xi", "1.2.840.10008.1.2"),
    "jpeg-lossless": (["dcmcjpeg", "+e1"], "-xs", "1.2.840.10008.1.2.4.70"),
    "jpeg-extended": (["dcmcjpeg", "+ee"], "-xx", "1.2.840.10008.1.2.4.51"),
    "jpeg-ls": (["dcmcjpls", "+el"], "-xt", "1.2.840.10008.1.2.4.80"),
    "rle": (["dcmcrle"], "-xr", "1.2.840.10008.1.2.5"),
    "explicit-le": (["dcmconv", "+te"], "-x=", "1.2.840.10008.1.2.1"),
}


@pytest.mark.dcmtk("storescu", "dcmconv", "dcmcjpeg", "dcmcjpls", "dcmcrle")
@pytest.mark.parametrize("syntax", sorted(CONVERSIONS))
def test_storescu_instances_are_stored_as_received(node, tmp_path, syntax):
    convert, propose, uid = CONVERSIONS[syntax]
    [source] = write_study(Study("P1", "DOE^JANE", "20261101", "A1", images=1), tmp_path / "in")
    sent = tmp_path / f"{syntax}.dcm"
    subprocess.run([*convert, str(source), str(sent)], check=True, capture_output=True)
    res = subprocess.run([tool("storescu"), propose, "-aec", "PRINTSCP", "127.0.0.1",
                          str(node.port), str(sent)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    original = pydicom.dcmread(sent)
    [(uid_stored, ds)] = stored(node).items()
    assert uid_stored == original.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == uid  # no transcoding
    assert ds.PixelData == original.PixelData  # byte for byte as sent
    report = node.archive.verify()  # the checksum taken as the data arrived
    assert report.checked == 1 and not report.bad


@pytest.mark.parametrize("syntax", [DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian])
def test_deflated_and_big_endian_are_stored_as_received(node, syntax):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    ds.file_meta.TransferSyntaxUID = syntax  # pynetdicom encodes it so
    assert _send(node.port, ds, syntax).Status == 0
    [(_, got)] = stored(node).items()
    assert got.file_meta.TransferSyntaxUID == syntax
    assert got.pixel_array.tolist() == ds.pixel_array.tolist()


def _send(port: int, ds: pydicom.Dataset, syntax=ExplicitVRLittleEndian,
          body: pydicom.Dataset | None = None) -> pydicom.Dataset:
    """C-STORE ``ds``; with ``body``, the data set sent is ``body`` while the command
    still names ``ds``'s SOP Class and Instance (a peer whose two disagree)."""
    from pynetdicom.dsutils import encode

    assoc = associate(port, (ds.SOPClassUID, syntax), calling="STORESCU")
    try:
        if body is None:
            return assoc.send_c_store(ds)
        with mock.patch("pynetdicom.association.encode",
                        lambda _ds, *a, **k: encode(body, *a, **k)):
            return assoc.send_c_store(ds)
    finally:
        assoc.release()


@pytest.mark.parametrize(("change", "status", "comment"), [
    (lambda ds: setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.4"), 0xA900,
     "SOPClassUID"),
    (lambda ds: setattr(ds, "StudyInstanceUID", "1.2.03.4"), 0xA900, "StudyInstanceUID"),
    (lambda ds: setattr(ds, "SeriesInstanceUID", "../../../etc"), 0xA900, "SeriesInstanceUID"),
    (lambda ds: delattr(ds, "StudyInstanceUID"), 0xA900, "StudyInstanceUID"),
    (lambda ds: setattr(ds, "PixelData", ds.PixelData[:100]), 0xA900, "Pixel Data"),
])
def test_bad_instances_are_refused_and_not_stored(node, change, status, comment):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    body = copy.deepcopy(ds)
    change(body)
    rsp = _send(node.port, ds, body=body)
    assert rsp.Status == status
    assert comment in rsp.ErrorComment
    assert stored(node) == {}
    assert not list((node.config.data_path / "archive").rglob("*.dcm"))


def test_undecodable_data_set_is_cannot_understand(node):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    # A data set cut off inside an element: the server cannot decode it.
    with mock.patch("pynetdicom.association.encode",
                    lambda *a, **k: b"\x08\x00\x16\x00UI\x40\x001.2.3"):
        rsp = _send(node.port, ds)
    assert rsp.Status == 0xC000 and "decode" in rsp.ErrorComment
    assert stored(node) == {}
    assert _send(node.port, ds).Status == 0x0000  # the server still serves


def test_an_element_claiming_more_bytes_than_sent_is_refused(node):
    """An OB element announcing 0xFFFFFFF0 bytes at the end of the data set was answered
    Success and stored: a file dcmdump cannot read (pydicom truncates it quietly)."""
    import struct

    from pynetdicom.dsutils import encode

    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    tail = struct.pack("<HH2sHL", 0x0009, 0x1010, b"OB", 0, 0xFFFFFFF0) + bytes(512)
    with mock.patch("pynetdicom.association.encode",
                    lambda _ds, *a, **k: encode(_ds, *a, **k) + tail):
        rsp = _send(node.port, ds)
    assert rsp.Status == 0xC000 and "(0009,1010) claims 4294967280" in rsp.ErrorComment
    assert stored(node) == {}
    assert not list((node.config.data_path / "archive").rglob("*.dcm"))
    assert _send(node.port, ds).Status == 0x0000  # the server still serves


@pytest.mark.parametrize("policy", ["replace", "keep"])
def test_duplicates_follow_the_policy(make_node, policy):
    node = make_node(f'[archive]\nduplicates = "{policy}"\n')
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    assert _send(node.port, ds).Status == 0x0000
    ds.SeriesDescription = "CORRECTED"
    assert _send(node.port, ds, ImplicitVRLittleEndian).Status == 0x0000
    [(_, kept)] = stored(node).items()
    files = list((node.config.data_path / "archive").rglob("*.dcm"))
    assert len(files) == 1  # the replaced file is gone
    assert kept.SeriesDescription == ("CORRECTED" if policy == "replace" else "SERIES 1")
    assert kept.file_meta.TransferSyntaxUID == (
        ImplicitVRLittleEndian if policy == "replace" else ExplicitVRLittleEndian)


def test_concurrent_stores_of_one_instance_leave_one_good_copy(node):
    import threading

    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1", size=128), 0, 1)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        int(_send(node.port, ds).Status))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 6
    report = node.archive.verify()
    assert report.checked == 1 and not report.bad and not report.orphans


def _serve(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "printscp", "serve", "--port", str(port),
                             "--bind", "127.0.0.1", "--data-dir", str(data), "--workers", "1",
                             "--no-http"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    wait_for_port(port, 20, proc)
    return proc


@pytest.mark.dcmtk("storescu")
def test_kill_9_during_a_store_burst_loses_nothing_acknowledged(tmp_path):
    study = Study("P9", "BURST^TEST", "20261101", "B1", images=60, size=256)
    files = write_study(study, tmp_path / "in")
    port = free_port()
    data = tmp_path / "data"
    server = _serve(data, port)
    client = subprocess.Popen([tool("storescu"), "-v", "-aec", "PRINTSCP", "127.0.0.1", str(port),
                               *map(str, files)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    assert client.stdout is not None
    head = []  # kill once a few stores are acknowledged, however fast they go
    while sum("Received Store Response (Success)" in line for line in head) < 5:
        line = client.stdout.readline()
        assert line, "".join(head)[-2000:]
        head.append(line)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)
    log = "".join(head) + client.communicate(timeout=30)[0]
    acknowledged = len(re.findall(r"Received Store Response \(Success\)", log))
    assert 0 < acknowledged < len(files), log[-2000:]
    sent_uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    server = _serve(data, port)  # restart: the index opens cleanly
    try:
        archive = Archive(data)
        have = {r.sop_uid for r in archive.instances()}
        assert set(sent_uids[:acknowledged]) <= have
        report = archive.verify()
        assert not report.bad  # every indexed file is whole
        res = subprocess.run([sys.executable, "-m", "printscp", "archive", "verify",
                              "--data-dir", str(data)], capture_output=True, text=True)
        assert res.returncode == 0 and f"{len(have)} instance(s) checked, 0 bad" in res.stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def test_archive_verify_reports_a_damaged_file(node, tmp_path):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    assert _send(node.port, ds).Status == 0
    [path] = (node.config.data_path / "archive").rglob("*.dcm")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    res = subprocess.run([sys.executable, "-m", "printscp", "archive", "verify", "--data-dir",
                          str(node.config.data_path)], capture_output=True, text=True)
    assert res.returncode == 1
    assert f"BAD {ds.SOPInstanceUID}: checksum differs" in res.stdout


def test_every_storage_class_is_offered(node, client):
    assoc = client(node.port, CT_IMAGE,
                   "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
                   "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
                   calling="PROBE")
    assert len(assoc.accepted_contexts) == 3


def test_a_path_outside_the_archive_is_refused(tmp_path):
    """The index only names files under the archive; a path that leads out of it (``..``,
    absolute, a symbolic link to elsewhere) is refused rather than read."""
    import os

    from printscp.archive.files import ArchiveFiles

    files = ArchiveFiles(tmp_path / "archive")
    assert files.absolute("1.2/3.4/5.dcm") == (tmp_path / "archive/1.2/3.4/5.dcm").resolve()
    os.symlink("/etc", tmp_path / "archive" / "elsewhere")
    for bad in ("../x.dcm", "/etc/passwd", "", "a/../../b", "elsewhere/passwd"):
        with pytest.raises(ValueError, match="outside the archive"):
            files.absolute(bad)
