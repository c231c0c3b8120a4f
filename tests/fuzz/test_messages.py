"""DIMSE messages from a hostile peer: P-DATA fragmentation, command sets, and the data
sets the Storage and Print Management handlers decode.

* Fragmentation: a valid message cut into PDVs and PDUs anywhere must give exactly
  what the whole message gives (in-process: the assembled command and data set; live:
  the stored file and the response).
* Command sets and data sets: every example is answered with a status or an A-ABORT
  within :data:`wire.ANSWER_BOUND`; a C-ECHO sent behind it on the same association is
  answered (or the association was aborted); no traceback is logged; an instance
  acknowledged with Success is a file pydicom reads to its last element.
"""

from __future__ import annotations

import io
import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from fuzz import strategies as fst
from fuzz import wire
from printscp.net import pdata

pytestmark = pytest.mark.slow

VERIFY, STORE_SC, PRINT, STORE_CT = 1, 3, 5, 7
CONTEXTS = [wire.context_item(VERIFY), wire.context_item(STORE_SC, wire.SECONDARY_CAPTURE,
                                                          [wire.EXPLICIT_LE]),
            wire.context_item(PRINT, wire.GRAYSCALE_PRINT_META),
            wire.context_item(STORE_CT, wire.CT_IMAGE)]
ECHO_ID = 0xFFF0
_SERIAL = itertools.count(int(time.time() * 1000) % 10**12)


def fixed_uid(kind: int) -> str:
    """A fresh UID of fixed length: a data set built around it has the same size in
    every example, as hypothesis needs to replay its draws."""
    return f"1.2.826.0.1.3680043.9.7433.{kind}.1{next(_SERIAL):012d}"  # no leading 0


def encode(ds: Dataset, implicit: bool = True) -> bytes:
    from pynetdicom.dsutils import encode as dsencode

    return bytes(dsencode(ds, implicit, True))


def sc_image(uid: str, size: int = 8) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = wire.SECONDARY_CAPTURE
    ds.SOPInstanceUID = uid
    ds.PatientName, ds.PatientID = "FUZZ^PATIENT", "FUZZ1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7433.2.1", \
        "1.2.826.0.1.3680043.9.7433.2.1.1"
    ds.Modality = "OT"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(i % 256 for i in range(size * size))
    return ds


def open_association(port: int) -> wire.Peer:
    peer = wire.Peer(port)
    answer = peer.associate(CONTEXTS, calling="FUZZER")
    assert answer.kind == "A-ASSOCIATE-AC", answer
    accepted = {cid for cid, (result, _) in answer.contexts.items() if result == 0}
    assert {VERIFY, STORE_SC, PRINT, STORE_CT} <= accepted, answer.contexts
    return peer


def answered_then_echo(peer: wire.Peer) -> list[tuple[dict[int, bytes], bytes]]:
    """Send a C-ECHO behind what was sent; read up to its response.  Returns the
    messages read before it; an A-ABORT is fine (printscp aborts a malformed data set
    as service-user, source 0; a malformed PDU as provider, 2), silence is not."""
    peer.send(wire.message_stream(VERIFY, wire.echo_rq(ECHO_ID)))
    before = []
    while True:
        answer = peer.read_message()
        assert answer.kind in ("P-DATA-TF", "A-ABORT", "closed"), answer
        assert answer.seconds < wire.ANSWER_BOUND
        if answer.kind != "P-DATA-TF":
            if answer.kind == "A-ABORT":
                assert answer.abort[0] in (0, 2), answer.abort  # the node as user or provider
            return before
        command, data = answer.messages[0]
        if pdata.command_us(command, pdata.MESSAGE_ID_RESPONDED) == ECHO_ID and \
                pdata.command_us(command, pdata.COMMAND_FIELD) == 0x8030:
            assert pdata.command_us(command, pdata.STATUS) == 0x0000
            peer.release()
            return before
        before.append((command, data))


def stored_file(live, sop_instance: str):
    return list(live.data.rglob(f"{sop_instance}.*.dcm"))


# -- fragmentation ----------------------------------------------------------------------
@given(st.lists(st.integers(1, 200), max_size=6), st.lists(st.integers(1, 300), max_size=8),
       st.integers(1, 4))
def test_random_fragmentation_assembles_the_same_message_in_process(cuts, data_cuts, per_pdu):
    command = pdata.store_request(7, wire.SECONDARY_CAPTURE, "1.2.3.4")
    data_set = encode(sc_image("1.2.3.4"), implicit=False)
    stream = wire.message_stream(STORE_SC, command, data_set, cuts, data_cuts, per_pdu)
    assembler, offset, done = pdata.MessageAssembler(), 0, False
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 2:offset + 6], "big")
        for context_id, control, fragment in pdata.pdvs(
                memoryview(stream[offset + 6:offset + 6 + length])):
            assert not done
            done = assembler.add(context_id, control, fragment)
        offset += 6 + length
    assert done
    assert assembler.command == pdata.parse_command(command)
    assert assembler.data_set() == data_set


@given(st.lists(st.integers(1, 120), max_size=5), st.lists(st.integers(1, 400), max_size=6),
       st.integers(1, 3))
def test_random_fragmentation_stores_the_same_instance(live, cuts, data_cuts, per_pdu):
    uid = fixed_uid(3)
    data_set = encode(sc_image(uid), implicit=False)
    with open_association(live.port) as peer:
        peer.send(wire.message_stream(STORE_SC, wire.store_rq(wire.SECONDARY_CAPTURE, uid),
                                      data_set, cuts, data_cuts, per_pdu))
        [(command, _)] = answered_then_echo(peer)
    assert pdata.command_us(command, pdata.STATUS) == 0x0000
    assert pdata.command_text(command, pdata.AFFECTED_SOP_INSTANCE) == uid
    [path] = stored_file(live, uid)
    assert path.read_bytes().endswith(data_set)  # the data set exactly as sent
    live.check_up(echo=False)


# -- command sets ----------------------------------------------------------------------
@given(fst.command_sets(), st.sampled_from([VERIFY, STORE_SC, PRINT, STORE_CT]),
       st.binary(max_size=64))
def test_command_sets_are_answered_or_aborted(live, command_and_data, context_id, data):
    command, with_data = command_and_data
    with open_association(live.port) as peer:
        peer.send(wire.message_stream(context_id, command, data if with_data else None))
        for message, _ in answered_then_echo(peer):
            assert pdata.command_us(message, pdata.STATUS) is not None, message
    live.check_up(echo=False)


# -- data sets ---------------------------------------------------------------------------
@given(st.data())
def test_storage_data_sets(live, data):
    """A mutated C-STORE data set: a status (0x0000, 0xA9xx, 0xC000...) or an abort;
    Success only for a file that decodes to its last element."""
    uid = fixed_uid(4)
    valid = encode(sc_image(uid), implicit=False)
    data_set = data.draw(fst.mutated(valid))
    with open_association(live.port) as peer:
        peer.send(wire.message_stream(STORE_SC, wire.store_rq(wire.SECONDARY_CAPTURE, uid),
                                      data_set))
        answers = answered_then_echo(peer)
    if answers:
        status = pdata.command_us(answers[0][0], pdata.STATUS)
        assert status is not None
        if status == 0x0000:
            import pydicom

            [path] = stored_file(live, uid)
            ds = pydicom.dcmread(path)
            ds.walk(lambda _ds, elem: elem.value)  # every element decodes
            assert "PixelData" not in ds or len(ds.PixelData) >= 0
        else:
            assert not stored_file(live, uid)
    live.check_up(echo=False)


def _film_session(peer: wire.Peer) -> str:
    session = Dataset()
    session.NumberOfCopies = "1"
    peer.send(wire.message_stream(PRINT, wire.n_create_rq("1.2.840.10008.5.1.1.1", 1,
                                                          instance=fixed_uid(5)),
                                  encode(session)))
    answer = peer.read_message()
    command = answer.messages[0][0]
    assert pdata.command_us(command, pdata.STATUS) == 0, command
    return pdata.command_text(command, pdata.AFFECTED_SOP_INSTANCE)


def _film_box_data(session_uid: str, fmt: str = "STANDARD\\1,1") -> Dataset:
    from printscp.outputs.print_scu import reference

    ds = Dataset()
    ds.ImageDisplayFormat = fmt
    ds.ReferencedFilmSessionSequence = reference("1.2.840.10008.5.1.1.1", session_uid)
    return ds


@given(st.data())
def test_print_film_box_n_create_data_sets(live, data):
    with open_association(live.port) as peer:
        session = _film_session(peer)
        valid = encode(_film_box_data(session, data.draw(st.sampled_from(
            ["STANDARD\\1,1", "STANDARD\\2,2", "ROW\\1,2", "STANDARD\\999,999"]))))
        peer.send(wire.message_stream(PRINT, wire.n_create_rq("1.2.840.10008.5.1.1.2", 2),
                                      data.draw(fst.mutated(valid))))
        for message, _ in answered_then_echo(peer):
            assert pdata.command_us(message, pdata.STATUS) is not None
    live.check_up(echo=False)


@given(st.data())
def test_print_image_box_n_set_data_sets(live, data):
    import pydicom
    from helpers.print_scu import gray_item

    with open_association(live.port) as peer:
        session = _film_session(peer)
        peer.send(wire.message_stream(PRINT, wire.n_create_rq("1.2.840.10008.5.1.1.2", 2),
                                      encode(_film_box_data(session))))
        answer = peer.read_message()
        box = pydicom.dcmread(io.BytesIO(answer.messages[0][1]), force=True)
        image_box = str(box.ReferencedImageBoxSequence[0].ReferencedSOPInstanceUID)
        import numpy as np

        ds = Dataset()
        ds.ImageBoxPosition = 1
        ds.BasicGrayscaleImageSequence = [gray_item(np.arange(64, dtype=np.uint16)
                                                    .reshape(8, 8))]
        valid = encode(ds)
        peer.send(wire.message_stream(PRINT, wire.n_set_rq("1.2.840.10008.5.1.1.4",
                                                           image_box, 3),
                                      data.draw(fst.mutated(valid))))
        for message, _ in answered_then_echo(peer):
            assert pdata.command_us(message, pdata.STATUS) is not None
    live.check_up(echo=False)
