"""Print SCP with a pynetdicom SCU: every operation, every failure status, the films."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers.clients import associate
from helpers.images import step_wedge
from helpers.net import wait_until
from helpers.nodes import printed_jobs
from helpers.print_scu import PrintSCU, gray_item
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from printscp.core import status, uids

pytestmark = pytest.mark.slow  # every test runs a node

STRICT_PRINTER_TAGS = [0x21100010, 0x21100020, 0x21100030, 0x00080070, 0x00081090,
                       0x00181000, 0x00181020, 0x00181200, 0x00181201]


def test_echo(node):
    with PrintSCU(node.port) as scu:
        assert scu.assoc.send_c_echo().Status == 0


def test_printer_n_get_for_strict_clients(node):
    with PrintSCU(node.port) as scu:
        st, ds = scu.get_printer(STRICT_PRINTER_TAGS)
        cmd = scu.responses[-1]
    assert st.Status == 0x0000
    assert cmd.AffectedSOPClassUID == uids.PRINTER
    assert cmd.AffectedSOPInstanceUID == uids.PRINTER_INSTANCE
    assert ds.PrinterStatus == "NORMAL" and ds.PrinterName == "printscp"
    assert [int(e.tag) for e in ds] == sorted(STRICT_PRINTER_TAGS)


def test_printer_n_get_without_list_and_with_unknown_tags(node):
    with PrintSCU(node.port) as scu:
        st, ds = scu.get_printer()
        assert st.Status == 0 and "SoftwareVersions" in ds and "Manufacturer" in ds
        st, ds = scu.get_printer([0x00100010, 0x21100010])
        assert st.Status == 0 and ds.PatientName == "" and ds.PrinterStatus == "NORMAL"
        st, _ = scu.assoc.send_n_get([0x21100010], uids.PRINTER, "1.2.3.4",
                                     meta_uid=uids.BASIC_GRAYSCALE_PRINT_META)
        assert st.Status == status.NO_SUCH_SOP_INSTANCE


def test_full_print_flow_writes_a_pdf_with_copies_and_label(node):
    with PrintSCU(node.port) as scu:
        scu.film_session(NumberOfCopies="2", FilmSessionLabel="CT HEAD")
        fb_uid, boxes, rsp = scu.film_box("STANDARD\\2,2", FilmSizeID="8INX10IN")
        cmd = scu.responses[-1]
        assert cmd.AffectedSOPClassUID == uids.BASIC_FILM_BOX
        assert len(boxes) == 4
        assert {i.ReferencedSOPClassUID for i in rsp.ReferencedImageBoxSequence} == {
            uids.BASIC_GRAYSCALE_IMAGE_BOX}
        # Echoed film box with the defaults used.
        assert rsp.FilmSizeID == "8INX10IN" and rsp.MagnificationType == "BILINEAR"
        assert rsp.MinDensity == 20 and rsp.MaxDensity == 300 and rsp.BorderDensity == "BLACK"
        st, _ = scu.image(boxes[0], 1, step_wedge(bits=12), bits=12)
        assert st.Status == 0
        st, _ = scu.image(boxes[3], 4, step_wedge(bits=8), bits=8,
                          photometric="MONOCHROME1")
        assert st.Status == 0
        st, ds = scu.action(uids.BASIC_FILM_BOX, fb_uid)
        assert st.Status == 0x0000 and not ds
        assert scu.delete(uids.BASIC_FILM_BOX, fb_uid).Status == 0
        assert scu.delete(uids.BASIC_FILM_SESSION, scu.session_uid).Status == 0
    [job] = printed_jobs(node)
    assert job["status"] == "DONE" and job["calling_ae"] == "TESTSCU"
    assert job["pages"] == 2 and job["copies"] == 2
    assert "CT_HEAD" in job["output"] and job["output"].endswith(".pdf")
    pdf = Path(job["output"]).read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(
        b"/Type /Page ") >= 2


def test_film_session_n_action_prints_every_film_box_in_order(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        for value in (0, 4095):
            _, boxes, _ = scu.film_box()
            scu.image(boxes[0], 1, np.full((32, 32), value, np.uint16))
        st, _ = scu.action(uids.BASIC_FILM_SESSION, scu.session_uid)
        assert st.Status == 0
    [job] = printed_jobs(node)
    assert job["film_count"] == 2 and job["pages"] == 2


@pytest.mark.parametrize("shape", ["IDENTITY", "LIN OD"])
def test_presentation_lut_shapes(node, shape):
    with PrintSCU(node.port) as scu:
        ds = Dataset()
        ds.PresentationLUTShape = shape
        st, _ = scu.create(uids.PRESENTATION_LUT, ds)
        assert st.Status == 0
        plut = scu.last_uid
        scu.film_session()
        fb, boxes, rsp = scu.film_box(plut_uid=plut)
        assert rsp.ReferencedPresentationLUTSequence[0].ReferencedSOPInstanceUID == plut
        scu.image(boxes[0], 1, step_wedge())
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
        assert scu.delete(uids.PRESENTATION_LUT, plut).Status == 0
    [job] = printed_jobs(node)
    assert job["films"][0]["presentation_lut"] == {"shape": shape}


def test_explicit_presentation_lut(node):
    with PrintSCU(node.port) as scu:
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 12]
        item.add_new(0x00283006, "OW", np.arange(4095, -1, -1, dtype="<u2").tobytes())
        ds = Dataset()
        ds.PresentationLUTSequence = Sequence([item])
        st, _ = scu.create(uids.PRESENTATION_LUT, ds)
        assert st.Status == 0
        plut = scu.last_uid
        bad = Dataset()
        bad_item = Dataset()
        bad_item.LUTDescriptor = [4096, 0, 12]
        bad_item.add_new(0x00283006, "OW", bytes(20))
        bad.PresentationLUTSequence = Sequence([bad_item])
        st, _ = scu.create(uids.PRESENTATION_LUT, bad)
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        assert "LUTData" in st.ErrorComment
        scu.film_session()
        fb, boxes, _ = scu.film_box(plut_uid=plut)
        scu.image(boxes[0], 1, step_wedge())
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
    [job] = printed_jobs(node)
    assert job["films"][0]["presentation_lut"]["lut_descriptor"] == [4096, 0, 12]


# -- failure statuses ------------------------------------------------------------------
def test_missing_image_display_format_is_0120_naming_it(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        ds = Dataset()
        ref = Dataset()
        ref.ReferencedSOPClassUID = uids.BASIC_FILM_SESSION
        ref.ReferencedSOPInstanceUID = scu.session_uid
        ds.ReferencedFilmSessionSequence = Sequence([ref])
        ds.FilmSizeID = "A4"
        st, _ = scu.create(uids.BASIC_FILM_BOX, ds)
    # N-CREATE-RSP has no Attribute Identifier List (PS3.7 E.2): the comment names it.
    assert st.Status == status.MISSING_ATTRIBUTE
    assert st.ErrorComment.startswith("ImageDisplayFormat (2010,0010)")


def _tags(st: Dataset) -> list:
    tags = st.get("AttributeIdentifierList", [])
    return tags if isinstance(tags, list | tuple) else [tags]


@pytest.mark.parametrize("attr, value, code, tag", [
    ("FilmSizeID", "15INX17IN", status.INVALID_ATTRIBUTE_VALUE, "(2010,0050)"),
    ("MagnificationType", "SUPER", status.INVALID_ATTRIBUTE_VALUE, "(2010,0060)"),
    ("BorderDensity", "GRAY", status.INVALID_ATTRIBUTE_VALUE, "(2010,0100)"),
    ("ImageDisplayFormat", "STANDARD\\0,2", status.INVALID_ATTRIBUTE_VALUE, "(2010,0010)"),
    ("PatientName", "DOE^JOHN", status.NO_SUCH_ATTRIBUTE, "(0010,0010)"),
])
def test_bad_film_box_attributes(node, attr, value, code, tag):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        ds = Dataset()
        ds.ImageDisplayFormat = "STANDARD\\1,1"
        setattr(ds, attr, value)
        ref = Dataset()
        ref.ReferencedSOPClassUID = uids.BASIC_FILM_SESSION
        ref.ReferencedSOPInstanceUID = scu.session_uid
        ds.ReferencedFilmSessionSequence = Sequence([ref])
        st, _ = scu.create(uids.BASIC_FILM_BOX, ds)
        assert st.Status == code
        assert st.ErrorComment.startswith(f"{attr} {tag}")
        # The association and the server go on serving.
        _, boxes, _ = scu.film_box()
        assert len(boxes) == 1


def test_bad_film_session_attribute(node):
    with PrintSCU(node.port) as scu:
        ds = Dataset()
        ds.NumberOfCopies = "0"
        st, _ = scu.create(uids.BASIC_FILM_SESSION, ds)
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        assert "NumberOfCopies" in st.ErrorComment


def test_unknown_instances_and_class_conflicts(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box()
        assert scu.action(uids.BASIC_FILM_BOX, "1.2.3.4")[0].Status == status.NO_SUCH_SOP_INSTANCE
        ds = Dataset()
        ds.Polarity = "REVERSE"
        assert scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, "1.2.3", ds)[0].Status == \
            status.NO_SUCH_SOP_INSTANCE
        assert scu.delete(uids.BASIC_FILM_BOX, boxes[0]).Status == \
            status.CLASS_INSTANCE_CONFLICT
        assert scu.action(uids.BASIC_FILM_BOX, fb, action_type=2)[0].Status == \
            status.NO_SUCH_ACTION
        st, _ = scu.create(uids.BASIC_FILM_SESSION, None, uid=scu.session_uid)
        assert st.Status == status.DUPLICATE_SOP_INSTANCE


def test_film_session_without_film_boxes_is_c600(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        st, _ = scu.action(uids.BASIC_FILM_SESSION, scu.session_uid)
    assert st.Status == status.NO_FILM_BOXES


def test_empty_film_box_prints_with_warning(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb, _, _ = scu.film_box()
        st, _ = scu.action(uids.BASIC_FILM_BOX, fb)
    assert st.Status == status.EMPTY_FILM_BOX
    assert printed_jobs(node)[0]["status"] == "DONE"


@pytest.mark.parametrize("behavior, code", [
    (None, status.IMAGE_TOO_LARGE), ("FAIL", status.IMAGE_TOO_LARGE),
    ("CROP", status.IMAGE_CROPPED), ("DECIMATE", status.IMAGE_DECIMATED),
])
def test_image_larger_than_its_box(node, behavior, code):
    # 8 x 8 boxes on 8x10 in hold about 267 x 342 printer pixels; 512 do not fit.
    with PrintSCU(node.port) as scu:
        scu.film_session()
        _fb, boxes, _ = scu.film_box("STANDARD\\8,8", FilmSizeID="8INX10IN")
        attrs = {"RequestedDecimateCropBehavior": behavior} if behavior else {}
        st, _ = scu.image(boxes[0], 1, np.zeros((512, 512), np.uint16), **attrs)
        assert st.Status == code
        if code == status.IMAGE_TOO_LARGE:
            assert "RequestedDecimateCropBehavior" in st.ErrorComment


def test_bad_pixel_data(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        _, boxes, _ = scu.film_box()
        item = gray_item(np.zeros((16, 16), np.uint16))
        item.PixelData = item.PixelData[:100]
        ds = Dataset()
        ds.ImageBoxPosition = 1
        ds.BasicGrayscaleImageSequence = Sequence([item])
        st, _ = scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, boxes[0], ds)
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE and "PixelData" in st.ErrorComment
        assert [int(t) for t in _tags(st)] == [0x7FE00010]
        item = gray_item(np.zeros((16, 16), np.uint16))
        item.BitsStored = 10
        ds.BasicGrayscaleImageSequence = Sequence([item])
        st, _ = scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, boxes[0], ds)
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE and "BitsStored" in st.ErrorComment
        del item.Rows
        st, _ = scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, boxes[0], ds)
        assert st.Status == status.MISSING_ATTRIBUTE and "Rows" in st.ErrorComment
        st, _ = scu.image(boxes[0], 2, np.zeros((8, 8), np.uint16))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        assert "ImageBoxPosition" in st.ErrorComment


# -- associations ------------------------------------------------------------------------
def test_abort_discards_only_that_association(node):
    a = PrintSCU(node.port, calling="MOD_A")
    b = PrintSCU(node.port, calling="MOD_B")
    a.film_session()
    _fb_a, boxes_a, _ = a.film_box()
    a.image(boxes_a[0], 1, step_wedge())
    b.film_session()
    fb_b, boxes_b, _ = b.film_box()
    b.image(boxes_b[0], 1, step_wedge())
    a.assoc.abort()
    assert b.action(uids.BASIC_FILM_BOX, fb_b)[0].Status == 0
    b.close()
    assert [j["calling_ae"] for j in printed_jobs(node)] == ["MOD_B"]
    with PrintSCU(node.port, calling="MOD_A") as again:
        assert again.assoc.send_c_echo().Status == 0


def test_garbage_on_the_wire_does_not_stop_the_server(node):
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(b"\x01\x00\x00\x00\x00\x10" + b"\xff" * 16)
        with contextlib.suppress(OSError):
            s.recv(100)
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with contextlib.suppress(OSError):
            s.recv(100)
    with PrintSCU(node.port) as scu:
        assert scu.assoc.send_c_echo().Status == 0


def test_concurrent_modalities_get_their_own_films(node):
    results: dict[str, int] = {}

    def modality(name: str, value: int) -> None:
        with PrintSCU(node.port, calling=name) as scu:
            scu.film_session(FilmSessionLabel=name)
            fb, boxes, _ = scu.film_box("STANDARD\\2,1")
            for pos in (1, 2):
                scu.image(boxes[pos - 1], pos, np.full((64, 64), value, np.uint16))
            results[name] = scu.action(uids.BASIC_FILM_BOX, fb)[0].Status

    threads = [threading.Thread(target=modality, args=(f"MOD{i}", i * 1000)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {f"MOD{i}": 0 for i in range(4)}
    jobs = printed_jobs(node)
    assert sorted(j["calling_ae"] for j in jobs) == [f"MOD{i}" for i in range(4)]
    for job in jobs:
        assert job["session"]["film_session_label"] == job["calling_ae"]
        arrays = job["films"][0]["image_boxes"]
        assert [b.get("pixels") is not None for b in arrays] == [True, True]


def test_implicit_vr_only_client(node):
    from pydicom.uid import ImplicitVRLittleEndian

    with PrintSCU(node.port, transfer_syntax=[ImplicitVRLittleEndian]) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box()
        assert scu.image(boxes[0], 1, step_wedge(bits=8), bits=8)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
    assert printed_jobs(node)[0]["status"] == "DONE"


def test_big_endian_pixels_decode_like_little_endian(node):
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

    for ts in (ExplicitVRBigEndian, ExplicitVRLittleEndian):
        with PrintSCU(node.port, transfer_syntax=[ts]) as scu:
            assert scu.assoc.accepted_contexts[0].transfer_syntax[0] == ts
            scu.film_session()
            fb, boxes, _ = scu.film_box()
            big = ts == ExplicitVRBigEndian
            assert scu.image(boxes[0], 1, step_wedge(bits=12), big_endian=big)[0].Status == 0
            scu.action(uids.BASIC_FILM_BOX, fb)
    outputs = [j["output"] for j in printed_jobs(node)]
    assert len(outputs) == 2
    # Same pixels, same film: the image streams of the two PDFs are identical.
    streams = [_largest_stream(Path(p).read_bytes()) for p in outputs]
    assert streams[0] == streams[1] and len(streams[0]) > 10_000


def _largest_stream(pdf: bytes) -> bytes:
    import re
    import zlib

    found = re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S)
    return max((zlib.decompress(s) for s in found if s[:1] == b"x"), key=len)


def test_node_keeps_serving_after_many_failures(node):
    with PrintSCU(node.port) as scu:
        for _ in range(20):
            scu.action(uids.BASIC_FILM_BOX, "1.2.3")
        assert scu.assoc.send_c_echo().Status == 0


def test_access_rules_reject_with_the_proper_reason(make_node):
    from printscp.config import AccessConfig

    n = make_node(access=AccessConfig(calling_ae_titles=("MODALITY@127.0.0.1",),
                                      require_called_ae=True))

    def attempt(calling: str, called: str):
        assoc = associate(n.port, uids.VERIFICATION, calling=calling, called=called)
        result = assoc.is_established, assoc.acceptor.primitive
        if assoc.is_established:
            assoc.release()
        return result

    ok, _ = attempt("MODALITY", "PRINTSCP")
    assert ok
    ok, rj = attempt("INTRUDER", "PRINTSCP")
    assert not ok and (rj.result, rj.result_source, rj.diagnostic) == (1, 1, 3)
    ok, rj = attempt("MODALITY", "OTHER")
    assert not ok and (rj.result, rj.result_source, rj.diagnostic) == (1, 1, 7)


def test_n_set_and_n_action_responses_carry_class_and_instance(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box()
        assert scu.image(boxes[0], 1, step_wedge())[0].Status == 0
        cmd = scu.responses[-1]
        assert cmd.AffectedSOPClassUID == uids.BASIC_GRAYSCALE_IMAGE_BOX
        assert cmd.AffectedSOPInstanceUID == boxes[0]
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
        cmd = scu.responses[-1]
        assert cmd.AffectedSOPClassUID == uids.BASIC_FILM_BOX
        assert cmd.AffectedSOPInstanceUID == fb


def test_accepted_sockets_have_tcp_nodelay(node):
    with PrintSCU(node.port) as scu:
        assert scu.assoc.send_c_echo().Status == 0
        [server_side] = [a for a in node.ae.active_associations if a.is_acceptor]
        sock = server_side.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        if hasattr(socket, "TCP_QUICKACK"):  # Linux: quick-ack re-armed after every read
            assert type(sock).__name__ == "QuickAckSocket"


def test_full_print_queue_is_c602(make_node):
    n = make_node(max_queued_jobs=1)
    n.spool.stop()  # nothing renders: the first job stays queued
    try:
        with PrintSCU(n.port) as scu:
            scu.film_session()
            fb, boxes, _ = scu.film_box()
            scu.image(boxes[0], 1, step_wedge())
            assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
            st, _ = scu.action(uids.BASIC_FILM_BOX, fb)
            assert st.Status == status.PRINT_QUEUE_FULL
    finally:
        n.stop()
    # The acknowledged job is still on disk for the next start.
    spool = n.config.data_path / "spool"
    assert len([p for p in spool.iterdir() if not p.name.startswith(".")]) == 1


def test_printer_reports_the_recorded_calibration(node):
    from datetime import datetime

    from printscp.core.printer_state import Calibration, record_calibration

    with PrintSCU(node.port) as scu:
        _, ds = scu.get_printer([0x00181200, 0x00181201])
        assert ds.DateOfLastCalibration == "" and ds.TimeOfLastCalibration == ""
        record_calibration(node.config.data_path, Calibration(datetime(2026, 11, 26, 9, 30, 5)))
        _, ds = scu.get_printer([0x00181200, 0x00181201])
        assert ds.DateOfLastCalibration == "20261126" and ds.TimeOfLastCalibration == "093005"
        # a printer's own calibration (qa test-printer --recalibrate) wins over the node's
        record_calibration(node.config.data_path, Calibration(datetime(2026, 12, 8, 7, 0, 1)),
                           node.config.printer.name)
        record_calibration(node.config.data_path, Calibration(datetime(2026, 12, 1)),
                           "another-printer")
        _, ds = scu.get_printer([0x00181200, 0x00181201])
        assert ds.DateOfLastCalibration == "20261208" and ds.TimeOfLastCalibration == "070001"


def test_malformed_data_set_aborts_only_its_association(node):
    from io import BytesIO

    from pynetdicom.dimse_primitives import N_SET

    with PrintSCU(node.port) as good:
        good.film_session()
        _, boxes, _ = good.film_box()
        bad = PrintSCU(node.port, calling="BROKEN")
        bad.film_session()
        _, bad_boxes, _ = bad.film_box()
        req = N_SET()
        req.MessageID = 7
        req.RequestedSOPClassUID = uids.BASIC_GRAYSCALE_IMAGE_BOX
        req.RequestedSOPInstanceUID = bad_boxes[0]
        # (2020,0010) with the VR "ZZ", which no decoder can read.
        req.ModificationList = BytesIO(b"\x20\x20\x10\x00ZZ\x02\x00\x01\x00")
        cx = bad.assoc.accepted_contexts[0].context_id
        bad.assoc.dimse.send_msg(req, cx)
        wait_until(lambda: not bad.assoc.is_established, 10)
        assert bad.assoc.is_aborted
        # The other modality goes on printing.
        assert good.image(boxes[0], 1, step_wedge())[0].Status == 0


def test_annotation_boxes_are_created_set_and_drawn(node):
    with PrintSCU(node.port, contexts=(uids.BASIC_GRAYSCALE_PRINT_META,
                                       uids.BASIC_ANNOTATION_BOX)) as scu:
        scu.film_session()
        fb, boxes, rsp = scu.film_box("STANDARD\\1,1", AnnotationDisplayFormatID="BOTTOM2")
        refs = rsp.ReferencedBasicAnnotationBoxSequence
        assert [r.ReferencedSOPClassUID for r in refs] == [uids.BASIC_ANNOTATION_BOX] * 2
        scu.image(boxes[0], 1, step_wedge())

        def annotate(uid: str, position: int, text: str):
            ds = Dataset()
            ds.AnnotationPosition = position
            ds.TextString = text
            return scu.assoc.send_n_set(ds, uids.BASIC_ANNOTATION_BOX, uid)[0]

        assert annotate(refs[0].ReferencedSOPInstanceUID, 1, "PATIENT^TEST").Status == 0
        assert annotate(refs[1].ReferencedSOPInstanceUID, 2, "CT HEAD 2026").Status == 0
        st = annotate(refs[1].ReferencedSOPInstanceUID, 1, "wrong box")
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE and "AnnotationPosition" in \
            st.ErrorComment
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
        st, _ = scu.create(uids.BASIC_FILM_BOX,
                           scu.film_box_dataset(AnnotationDisplayFormatID="NO_SUCH_FORMAT"))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        assert st.ErrorComment.startswith("AnnotationDisplayFormatID (2010,0030)")
    [job] = printed_jobs(node)
    assert job["films"][0]["annotations"] == {"1": "PATIENT^TEST", "2": "CT HEAD 2026"}
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", job["output"], "-"],
                              capture_output=True, text=True, check=True).stdout
        line = next(ln for ln in text.splitlines() if "PATIENT^TEST" in ln)
        # Position 1 on the left half, position 2 on the right half of the strip.
        assert "CT HEAD 2026" in line and line.index("PATIENT") < line.index("CT HEAD")


def test_print_job_reference_and_n_get_from_a_later_association(node):
    contexts = (uids.BASIC_GRAYSCALE_PRINT_META, uids.PRINT_JOB)
    with PrintSCU(node.port, contexts=contexts) as scu:
        scu.film_session(PrintPriority="HIGH")
        fb, boxes, _ = scu.film_box()
        scu.image(boxes[0], 1, step_wedge())
        st, ds = scu.action(uids.BASIC_FILM_BOX, fb)
        assert st.Status == 0
        [ref] = ds[0x21000500].value
        assert ref.ReferencedSOPClassUID == uids.PRINT_JOB
        job_uid = ref.ReferencedSOPInstanceUID
    node.spool.wait_idle()
    with PrintSCU(node.port, calling="VIEWER", contexts=(uids.PRINT_JOB,)) as later:
        st, job = later.assoc.send_n_get(
            [0x21000020, 0x21000030, 0x20000020, 0x21000040, 0x21000050, 0x21100030,
             0x21000070], uids.PRINT_JOB, job_uid)
        assert st.Status == 0
        assert job.ExecutionStatus == "DONE" and job.ExecutionStatusInfo == "NORMAL"
        assert job.PrintPriority == "HIGH" and job.Originator == "TESTSCU"
        assert job.PrinterName == "printscp" and len(job.CreationDate) == 8
        st, _ = later.assoc.send_n_get([0x21000020], uids.PRINT_JOB,
                                       uids.UID_ROOT + "1.20200101000000000000.1")
        assert st.Status == status.NO_SUCH_SOP_INSTANCE
    [sidecar] = printed_jobs(node)
    assert sidecar["print_job_uid"] == job_uid


def test_print_job_is_pending_while_spooled(make_node):
    n = make_node()
    n.spool.stop()  # keep the job spooled
    try:
        with PrintSCU(n.port, contexts=(uids.BASIC_GRAYSCALE_PRINT_META,
                                        uids.PRINT_JOB)) as scu:
            scu.film_session()
            fb, _, _ = scu.film_box()
            _, ds = scu.action(uids.BASIC_FILM_BOX, fb)
            job_uid = ds[0x21000500].value[0].ReferencedSOPInstanceUID
            st, job = scu.assoc.send_n_get([0x21000020, 0x21000030], uids.PRINT_JOB, job_uid)
            assert st.Status == 0
            assert (job.ExecutionStatus, job.ExecutionStatusInfo) == ("PENDING", "QUEUED")
    finally:
        n.stop()


def test_printer_configuration_retrieval(node):
    with PrintSCU(node.port, contexts=(uids.PRINTER_CONFIGURATION_RETRIEVAL,)) as scu:
        st, ds = scu.assoc.send_n_get([], uids.PRINTER_CONFIGURATION_RETRIEVAL,
                                      uids.PRINTER_CONFIGURATION_INSTANCE)
        assert st.Status == 0
        [item] = ds.PrinterConfigurationSequence
        assert uids.BASIC_COLOR_PRINT_META in item.SOPClassesSupported
        assert uids.PRINT_JOB in item.SOPClassesSupported
        assert {m.FilmSizeID for m in item.MediaInstalledSequence} >= {"14INX17IN", "A4"}
        fmt = next(f for f in item.SupportedImageDisplayFormatsSequence
                   if f.FilmSizeID == "14INX17IN" and f.FilmOrientation == "PORTRAIT"
                   and f.PrinterResolutionID == "STANDARD")
        # 14x17 in at 300 DPI less the 4 mm edges: about 4106 x 5006 printable pixels.
        assert abs(fmt.Columns - 4106) <= 2 and abs(fmt.Rows - 5006) <= 2
        assert item.DefaultMagnificationType == "BILINEAR"
        assert item.DecimateCropResult == "FAIL"
        st, _ = scu.assoc.send_n_get([], uids.PRINTER_CONFIGURATION_RETRIEVAL, "1.2.3")
        assert st.Status == status.NO_SUCH_SOP_INSTANCE


def test_n_get_on_a_class_without_n_get_is_0118(node):
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb, _, _ = scu.film_box()
        st, _ = scu.assoc.send_n_get([0x20100010], uids.BASIC_FILM_BOX, fb,
                                     meta_uid=uids.BASIC_GRAYSCALE_PRINT_META)
        assert st.Status == status.NO_SUCH_SOP_CLASS


def test_print_job_events_reach_the_scu_while_it_keeps_working(node):
    from pynetdicom import evt

    received: list[tuple[int, str, str]] = []

    def on_event(event):
        info = event.event_information
        received.append((event.request.EventTypeID, str(event.request.AffectedSOPInstanceUID),
                         str(info.ExecutionStatusInfo)))
        return 0x0000, None

    contexts = (uids.BASIC_GRAYSCALE_PRINT_META, uids.PRINT_JOB)
    with PrintSCU(node.port, contexts=contexts,
                  evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event)]) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box()
        scu.image(boxes[0], 1, step_wedge())
        st, ds = scu.action(uids.BASIC_FILM_BOX, fb)
        assert st.Status == 0
        job_uid = ds[0x21000500].value[0].ReferencedSOPInstanceUID
        # The SCU keeps sending requests while the events arrive: none may be lost.
        for _ in range(10):
            assert scu.delete(uids.BASIC_FILM_BOX, "1.2.3").Status == \
                status.NO_SUCH_SOP_INSTANCE
        wait_until(lambda: len(received) >= 3, 10)
        assert scu.delete(uids.BASIC_FILM_BOX, fb).Status == 0
    assert [r[0] for r in received] == [1, 2, 3]  # PENDING, PRINTING, DONE
    assert {r[1] for r in received} == {job_uid}
    assert received[0][2] == "QUEUED" and received[-1][2] == "NORMAL"


def test_printer_status_follows_free_disk_space_and_is_reported(node):
    from pynetdicom import evt

    received: list[tuple[int, str]] = []

    def on_event(event):
        received.append((event.request.EventTypeID,
                         str(event.event_information.PrinterStatusInfo)))
        return 0x0000, None

    service = node.print_service
    normal = service.config
    with PrintSCU(node.port, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event)]) as scu:
        _, ds = scu.get_printer([0x21100010, 0x21100020])
        assert (ds.PrinterStatus, ds.PrinterStatusInfo) == ("NORMAL", "NORMAL")
        # Pretend the disk is nearly full: no real disk is filled.
        service.config = replace(normal, disk_warning_mb=1 << 40)
        _, ds = scu.get_printer([0x21100010, 0x21100020])
        assert (ds.PrinterStatus, ds.PrinterStatusInfo) == ("WARNING", "SUPPLY LOW")
        service.config = normal
        service.check_printer()
        wait_until(lambda: len(received) >= 2, 10)
        assert scu.assoc.send_c_echo().Status == 0
    assert received == [(2, "SUPPLY LOW"), (1, "NORMAL")]


def test_memory_allocation_is_recorded_with_b600_on_n_set(node):
    with PrintSCU(node.port) as scu:
        scu.film_session(MemoryAllocation="2048")
        ds = Dataset()
        ds.MemoryAllocation = "4096"
        st, _ = scu.set(uids.BASIC_FILM_SESSION, scu.session_uid, ds)
        assert st.Status == status.MEMORY_ALLOCATION_NOT_SUPPORTED
        fb, _, _ = scu.film_box()
        scu.action(uids.BASIC_FILM_BOX, fb)
    assert printed_jobs(node)[0]["session"]["memory_allocation"] == 4096
