"""Storage SCP: DCMTK storescu in several transfer syntaxes, refusals, duplicates,
durability across kill -9, and ``printscp archive verify``."""

from __future__ import annotations

import copy
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from archive_data import CT_IMAGE, Study, instance, write_study
from dcmtk import HAVE_DCMTK, tool
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE

from printscp.app.node import Node
from printscp.archive.archive import Archive
from printscp.config import load_config
from printscp.net.workarounds import guard_requestor

DCMTK = pytest.mark.skipif(not HAVE_DCMTK, reason="needs Debian's dcmtk")


@pytest.fixture
def archive_node(tmp_path):
    node = Node(load_config(None, port=0, bind="127.0.0.1",
                            data_dir=str(tmp_path / "data"))).start()
    yield node
    node.stop()


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


@DCMTK
@pytest.mark.parametrize("syntax", sorted(CONVERSIONS))
def test_storescu_instances_are_stored_as_received(archive_node, tmp_path, syntax):
    convert, propose, uid = CONVERSIONS[syntax]
    [source] = write_study(Study("P1", "DOE^JANE", "20261101", "A1", images=1), tmp_path / "in")
    sent = tmp_path / f"{syntax}.dcm"
    subprocess.run([*convert, str(source), str(sent)], check=True, capture_output=True)
    res = subprocess.run([tool("storescu"), propose, "-aec", "PRINTSCP", "127.0.0.1",
                          str(archive_node.port), str(sent)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    original = pydicom.dcmread(sent)
    [(uid_stored, ds)] = stored(archive_node).items()
    assert uid_stored == original.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == uid  # no transcoding
    assert ds.PixelData == original.PixelData  # byte for byte as sent
    report = archive_node.archive.verify()  # the checksum taken as the data arrived
    assert report.checked == 1 and not report.bad


@pytest.mark.parametrize("syntax", [DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian])
def test_deflated_and_big_endian_are_stored_as_received(archive_node, syntax):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    ds.file_meta.TransferSyntaxUID = syntax  # pynetdicom encodes it so
    assert _send(archive_node.port, ds, syntax).Status == 0
    [(_, got)] = stored(archive_node).items()
    assert got.file_meta.TransferSyntaxUID == syntax
    assert got.pixel_array.tolist() == ds.pixel_array.tolist()


def _send(port: int, ds: pydicom.Dataset, syntax=ExplicitVRLittleEndian,
          body: pydicom.Dataset | None = None) -> pydicom.Dataset:
    """C-STORE ``ds``; with ``body``, the data set sent is ``body`` while the command
    still names ``ds``'s SOP Class and Instance (a peer whose two disagree)."""
    from pynetdicom.dsutils import encode

    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(ds.SOPClassUID, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="PRINTSCP")
    guard_requestor(assoc)
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
def test_bad_instances_are_refused_and_not_stored(archive_node, change, status, comment):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    body = copy.deepcopy(ds)
    change(body)
    rsp = _send(archive_node.port, ds, body=body)
    assert rsp.Status == status
    assert comment in rsp.ErrorComment
    assert stored(archive_node) == {}
    assert not list((archive_node.config.data_path / "archive").rglob("*.dcm"))


def test_undecodable_data_set_is_cannot_understand(archive_node):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    # A data set cut off inside an element: the server cannot decode it.
    with mock.patch("pynetdicom.association.encode",
                    lambda *a, **k: b"\x08\x00\x16\x00UI\x40\x001.2.3"):
        rsp = _send(archive_node.port, ds)
    assert rsp.Status == 0xC000 and "decode" in rsp.ErrorComment
    assert stored(archive_node) == {}
    assert _send(archive_node.port, ds).Status == 0x0000  # the server still serves


@pytest.mark.parametrize("policy", ["replace", "keep"])
def test_duplicates_follow_the_policy(tmp_path, policy):
    toml = tmp_path / "n.toml"
    toml.write_text(f'[node]\nport = 0\nbind = "127.0.0.1"\ndata_dir = "{tmp_path / "d"}"\n'
                    f'[archive]\nduplicates = "{policy}"\n')
    with Node(load_config(toml)) as node:
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


def test_concurrent_stores_of_one_instance_leave_one_good_copy(archive_node):
    import threading

    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1", size=128), 0, 1)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        int(_send(archive_node.port, ds).Status))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 6
    report = archive_node.archive.verify()
    assert report.checked == 1 and not report.bad and not report.orphans


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "printscp", "serve", "--port", str(port),
                             "--bind", "127.0.0.1", "--data-dir", str(data), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    raise AssertionError("server did not start")


@DCMTK
def test_kill_9_during_a_store_burst_loses_nothing_acknowledged(tmp_path):
    study = Study("P9", "BURST^TEST", "20261101", "B1", images=60, size=256)
    files = write_study(study, tmp_path / "in")
    port = _free_port()
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


def test_archive_verify_reports_a_damaged_file(archive_node, tmp_path):
    ds = instance(Study("P1", "DOE^JANE", "20261101", "A1"), 0, 1)
    assert _send(archive_node.port, ds).Status == 0
    [path] = (archive_node.config.data_path / "archive").rglob("*.dcm")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    res = subprocess.run([sys.executable, "-m", "printscp", "archive", "verify", "--data-dir",
                          str(archive_node.config.data_path)], capture_output=True, text=True)
    assert res.returncode == 1
    assert f"BAD {ds.SOPInstanceUID}: checksum differs" in res.stdout


def test_every_storage_class_is_offered(archive_node):
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(CT_IMAGE)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.104.1")  # Encapsulated PDF
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.88.22")  # Enhanced SR
    assoc = ae.associate("127.0.0.1", archive_node.port, ae_title="PRINTSCP")
    try:
        assert len(assoc.accepted_contexts) == 3
    finally:
        assoc.release()
