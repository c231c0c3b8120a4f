"""[limits]: each limit hit by a real client gets the standard's status, with its Error
Comment and the attribute at fault; nothing is stored or allocated; the next request,
from another association, is served (issue 17 section 3)."""

from __future__ import annotations

import logging
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import nodes
from helpers.archive_data import Study, instance
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.images import step_wedge
from helpers.print_scu import PrintSCU
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from printscp.core import status, uids
from printscp.core.limits import sequence_depth
from printscp.net import pdata
from printscp.net.testing import send_files_as_they_are

pytestmark = pytest.mark.slow  # nodes

LIMITS = """
[limits]
max_dataset_mb = 1
max_image_box_mb = 1
max_pixel_mb = 1
max_sequence_depth = 8
max_image_boxes = 4
max_film_boxes = 2
"""
CT = "1.2.840.10008.5.1.4.1.1.2"


def study(size: int = 16) -> Study:
    return Study("LIM1", "LIMITS^TEST", "20260101", "A1", size=size)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """One node with small limits for the whole module (a node costs ~1 s to start)."""
    n = nodes.make_node(tmp_path_factory.mktemp("limits"), LIMITS)
    yield n
    n.stop()


def tags(value) -> list[int]:
    """An AT value as pydicom reads it (one tag alone, or a list)."""
    return [int(t) for t in (value if isinstance(value, list | tuple | MultiValue)
                             else [value])]


def stored(node) -> int:
    return sum(1 for _ in node.archive.instances())


def serves_others(node) -> None:
    """Another association is served as usual: a C-ECHO and a small C-STORE."""
    ds = instance(study(), 0, 1)
    assoc = associate(node.port, uids.VERIFICATION, (CT, ExplicitVRLittleEndian),
                      calling="OTHER")
    try:
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(ds).Status == 0
    finally:
        assoc.release()


def store(node, ds, calling: str = "HOSTILE"):
    assoc = associate(node.port, (CT, [str(ds.file_meta.TransferSyntaxUID)]),
                      calling=calling)
    try:
        return assoc.send_c_store(ds)
    finally:
        assoc.release()


# -- largest data set, while it is assembled --------------------------------------------
def test_the_assembler_drops_a_data_set_past_its_limit(caplog):
    limit = pdata.SizeLimit(100, status.OUT_OF_RESOURCES, "C-STORE data set", "X@h")
    message = pdata.MessageAssembler(limits=lambda command: limit)
    command = pdata.store_request(7, CT, "1.2.3")
    message.add(1, 0x03, memoryview(command))
    with caplog.at_level(logging.WARNING, "printscp.limits"):
        for last in (False, False, True):
            message.add(1, 0x02 if last else 0x00, memoryview(b"\0" * 60))
    assert message.complete and message.data_bytes == 180
    assert [c for c, _ in message.parts] == [0x03]  # the data set was not kept
    answer = pdata.parse_command(message.refused)
    assert pdata.command_us(answer, pdata.STATUS) == 0xA700
    assert pdata.command_us(answer, pdata.MESSAGE_ID_RESPONDED) == 7
    assert pdata.command_text(answer, pdata.ERROR_COMMENT) == "C-STORE data set over 0 MiB"
    assert caplog.text.count("over the 0 MiB accepted") == 1


def big_instance() -> Dataset:
    return instance(study(800), 0, 1)  # 800 x 800 x 2 bytes: 1.2 MiB


def test_pynetdicom_store_over_max_dataset_mb_is_a700(node, caplog):
    before = stored(node)
    with caplog.at_level(logging.WARNING, "printscp.limits"):
        rsp = store(node, big_instance())
    assert rsp.Status == 0xA700
    assert rsp.ErrorComment == "C-STORE data set over 1 MiB"
    assert "HOSTILE@127.0.0.1: C-STORE data set over the 1 MiB accepted" in caplog.text
    assert stored(node) == before
    serves_others(node)


@pytest.mark.dcmtk("storescu")
def test_storescu_over_max_dataset_mb_is_a700(node, tmp_path):
    path = tmp_path / "big.dcm"
    big_instance().save_as(path, enforce_file_format=True)
    before = stored(node)
    run = subprocess.run([tool("storescu"), "-d", "-aet", "DCMTK", "-aec", "PRINTSCP",
                          "127.0.0.1", str(node.port), str(path)],
                         capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert "DIMSE Status                  : 0xa700: Refused: Out of resources" in out, out
    assert "(0000,0902) LO [C-STORE data set over 1 MiB]" in out, out
    assert stored(node) == before
    serves_others(node)


# -- declared pixel size ---------------------------------------------------------------
def compressed(rows: int) -> Dataset:
    """A JPEG instance declaring rows x rows 8-bit pixels in a few bytes."""
    ds = instance(study(), 0, 1)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xd9"])
    ds["PixelData"].VR = "OB"
    return ds


def short_native() -> Dataset:
    ds = instance(study(), 0, 1)
    ds.Rows = ds.Columns = 600  # declares 720,000 bytes, sends 512
    return ds


@pytest.mark.parametrize(("make", "code", "comment", "offending"), [
    (lambda: compressed(2048), 0xA700, "Rows x Columns x ... declare 4 MiB, over 1 MiB",
     [0x00280010, 0x00280011]),
    (short_native, 0xA900, "Pixel Data 512 bytes, needs 720000", [0x7FE00010]),
], ids=["over-max_pixel_mb", "more-than-sent"])
def test_declared_pixel_size_is_checked_before_storing(node, make, code, comment, offending):
    before = stored(node)
    rsp = store(node, make())
    assert rsp.Status == code
    assert rsp.ErrorComment == comment
    assert tags(rsp.OffendingElement) == offending
    assert stored(node) == before
    serves_others(node)


# -- sequence nesting -----------------------------------------------------------------
def nested(depth: int, undefined: bool) -> bytes:
    """``depth`` nested (0040,A730) Content Sequences, explicit VR LE, as raw bytes."""
    inner = struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 2) + b"X "
    for _ in range(depth):
        length = 0xFFFFFFFF if undefined else len(inner)
        item = struct.pack("<HHL", 0xFFFE, 0xE000, length) + inner + (
            struct.pack("<HHL", 0xFFFE, 0xE00D, 0) if undefined else b"")
        inner = struct.pack("<HH2s2xL", 0x0040, 0xA730, b"SQ",
                            0xFFFFFFFF if undefined else len(item)) + item + (
            struct.pack("<HHL", 0xFFFE, 0xE0DD, 0) if undefined else b"")
    return inner


def deep_file(folder: Path, depth: int, undefined: bool) -> Path:
    """A Part 10 file whose data set holds ``depth`` nested sequences (pydicom could
    not write it: it writes sequences by recursion)."""
    ds = instance(study(), 0, 1)
    del ds.PixelData
    head = ds.copy()
    head.file_meta = ds.file_meta
    path = folder / f"deep{depth}{'u' if undefined else 'd'}.dcm"
    head.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    # (0040,A730) sorts after every element of the instance: appended, it stays in order.
    path.write_bytes(data + nested(depth, undefined))
    return path


@pytest.mark.parametrize("depth", [9, 2000])
@pytest.mark.parametrize("undefined", [True, False], ids=["undefined", "defined"])
def test_sequences_nested_too_deep_are_c000(node, tmp_path, monkeypatch, depth, undefined,
                                            caplog):
    path = deep_file(tmp_path, depth, undefined)
    send_files_as_they_are(monkeypatch)
    before = stored(node)
    assoc = associate(node.port, (CT, ExplicitVRLittleEndian), calling="HOSTILE")
    try:
        with caplog.at_level(logging.WARNING):
            rsp = assoc.send_c_store(path)
    finally:
        assoc.release()
    assert rsp.Status == 0xC000
    assert rsp.ErrorComment == "(0040,A730) nests sequences over 8 deep"
    assert tags(rsp.OffendingElement) == [0x0040A730]
    assert "RecursionError" not in caplog.text and "Traceback" not in caplog.text
    assert stored(node) == before
    serves_others(node)


@pytest.mark.dcmtk("storescu")
def test_storescu_deep_sequence_is_c000(node, tmp_path):
    path = deep_file(tmp_path, 2000, True)
    run = subprocess.run([tool("storescu"), "-d", "-aec", "PRINTSCP", "127.0.0.1",
                          str(node.port), str(path)], capture_output=True, text=True,
                         timeout=60)
    out = run.stdout + run.stderr
    assert "DIMSE Status                  : 0xc000: Error: Cannot understand" in out, \
        out[-3000:]
    assert "(0000,0902) LO [(0040,A730) nests sequences over 8 deep]" in out, out[-3000:]
    serves_others(node)


@pytest.mark.parametrize("depth, found", [(8, None), (9, 9), (2000, 9)])
@pytest.mark.parametrize("undefined", [True, False])
def test_sequence_depth_on_the_bytes(depth, found, undefined):
    deep = sequence_depth(nested(depth, undefined), limit=8)
    assert (deep and deep.depth) == found


def test_sequence_depth_of_implicit_vr_and_un():
    # Implicit VR: a defined-length sequence is known by its first Item tag.
    inner = b""
    for _ in range(20):
        item = struct.pack("<HHL", 0xFFFE, 0xE000, len(inner)) + inner
        inner = struct.pack("<HHL", 0x0009, 0x1010, len(item)) + item  # private
    assert sequence_depth(inner, implicit_vr=True, limit=8).depth == 9
    # Explicit VR, UN of undefined length: an implicit VR little endian sequence inside.
    un = struct.pack("<HH2s2xL", 0x0009, 0x1010, b"UN", 0xFFFFFFFF) + \
        struct.pack("<HHL", 0xFFFE, 0xE000, len(inner)) + inner + \
        struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    assert sequence_depth(un, limit=8).depth == 9
    # A private value that only starts like an item, then a deep nest: still found.
    decoy = struct.pack("<HH2s2xL", 0x0009, 0x0010, b"UN", 12) + \
        struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFF) + b"ABCD"
    assert sequence_depth(decoy + nested(9, False), limit=8).depth == 9


# -- Print Management -----------------------------------------------------------------
def test_image_box_over_max_image_box_mb_is_c605(node, caplog):
    with PrintSCU(node.port, calling="HOSTILE") as scu:
        scu.film_session()
        _, boxes, _ = scu.film_box()
        with caplog.at_level(logging.WARNING, "printscp.limits"):
            st, _ = scu.image(boxes[0], 1, np.zeros((800, 800), np.uint16))  # 1.2 MiB
        assert st.Status == 0xC605
        assert st.ErrorComment == "Image Box N-SET data set over 1 MiB"
        assert "Image Box N-SET data set over the 1 MiB accepted" in caplog.text
        # Nothing was kept: the box is still empty, and the association goes on.
        st, _ = scu.image(boxes[0], 1, step_wedge())
        assert st.Status == 0
    serves_others(node)


@pytest.mark.parametrize(("rows", "data", "code", "comment", "expected"), [
    (1024, 8, 0xC605, "Rows x Columns declare 2 MiB, over 1 MiB", [0x00280010, 0x00280011]),
    (256, 8, 0x0106, "PixelData (7FE0,0010): invalid value '8 bytes'", [0x7FE00010]),
], ids=["over-max_pixel_mb", "more-than-sent"])
def test_image_box_declared_pixel_size(node, rows, data, code, comment, expected):
    item = Dataset()
    item.SamplesPerPixel = 1
    item.PhotometricInterpretation = "MONOCHROME2"
    item.Rows = item.Columns = rows
    item.BitsAllocated, item.BitsStored, item.HighBit = 16, 12, 11
    item.PixelRepresentation = 0
    item.PixelData = b"\0" * data
    ds = Dataset()
    ds.ImageBoxPosition = 1
    ds.BasicGrayscaleImageSequence = Sequence([item])
    with PrintSCU(node.port, calling="HOSTILE") as scu:
        scu.film_session()
        _, boxes, _ = scu.film_box()
        st, _ = scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, boxes[0], ds)
        assert st.Status == code
        assert str(st.ErrorComment).startswith(comment)
        assert tags(st.AttributeIdentifierList) == expected
    serves_others(node)


def test_image_box_sequences_nested_too_deep_are_0106(node):
    ds = Dataset()
    ds.ImageBoxPosition = 1
    inner = Dataset()
    inner.PatientName = "X"
    for _ in range(12):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds.BasicGrayscaleImageSequence = Sequence([inner])
    with PrintSCU(node.port, calling="HOSTILE") as scu:
        scu.film_session()
        _, boxes, _ = scu.film_box()
        st, _ = scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, boxes[0], ds)
        assert st.Status == 0x0106
        assert st.ErrorComment == "(2020,0110) nests sequences over 8 deep"
        assert scu.assoc.is_established  # refused, not aborted
    serves_others(node)


@pytest.mark.parametrize(("fmt", "comment"), [
    ("STANDARD\\3,2", "ImageDisplayFormat STANDARD/3,2: 6 image boxes, over 4"),
    ("STANDARD\\999,999", "ImageDisplayFormat (2010,0010): invalid value 'STANDARD//999,999"),
    ("ROW\\16,16,16", "ImageDisplayFormat ROW/16,16,16: 48 image boxes, over 4"),
])
def test_image_boxes_per_film_box(node, fmt, comment):
    with PrintSCU(node.port, calling="HOSTILE") as scu:
        scu.film_session()
        st, _ = scu.create(uids.BASIC_FILM_BOX, scu.film_box_dataset(fmt))
        assert st.Status == 0x0106
        assert st.ErrorComment == comment
        assert scu.film_box("STANDARD\\2,2")[1]  # four boxes: accepted
    serves_others(node)


def test_film_boxes_per_session_is_0213(node):
    with PrintSCU(node.port, calling="HOSTILE") as scu:
        scu.film_session()
        scu.film_box()
        scu.film_box()
        st, _ = scu.create(uids.BASIC_FILM_BOX, scu.film_box_dataset())
        assert st.Status == 0x0213
        assert st.ErrorComment == "the Film Session has 2 Film Boxes, the most accepted"
    with PrintSCU(node.port, calling="OTHER") as other:  # a session of its own
        other.film_session()
        assert other.film_box()[1]


def test_pending_jobs_per_calling_ae_is_c602(make_node, caplog):
    n = make_node("[limits]\npending_jobs_per_ae = 1\n")
    n.spool.stop()  # nothing renders: jobs stay queued
    with caplog.at_level(logging.WARNING, "printscp.spool"), \
            PrintSCU(n.port, calling="BUSY") as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box()
        scu.image(boxes[0], 1, step_wedge())
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
        st, _ = scu.action(uids.BASIC_FILM_BOX, fb)
        assert st.Status == 0xC602
        assert st.ErrorComment.startswith("print queue is full (1 jobs from BUSY")
    assert "print job from BUSY refused: 1 of its jobs already queued" in caplog.text
    with PrintSCU(n.port, calling="QUIET") as other:
        other.film_session()
        fb, boxes, _ = other.film_box()
        other.image(boxes[0], 1, step_wedge())
        assert other.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0


def test_associations_per_host(tmp_path):
    """[limits] associations_per_host: an association from an address that already has
    that many is rejected transient, local limit exceeded (PS3.8 Table 9-21: 2, 3, 2);
    once one of them is released, the address is served again."""
    n = nodes.make_node(tmp_path, "[limits]\nassociations_per_host = 2\n")
    try:
        held = [associate(n.port, uids.VERIFICATION) for _ in range(2)]
        assert all(a.is_established for a in held)
        extra = associate(n.port, uids.VERIFICATION)
        assert extra.is_rejected
        assert (extra.acceptor.primitive.result, extra.acceptor.primitive.result_source,
                extra.acceptor.primitive.diagnostic) == (2, 3, 2)
        held.pop().release()
        deadline = time.monotonic() + 10  # the node ends its side of the released one
        while len(n.ae.active_associations) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        again = associate(n.port, uids.VERIFICATION)
        assert again.is_established
        assert again.send_c_echo().Status == 0x0000
        again.release()
        for a in held:
            a.release()
    finally:
        n.stop()
