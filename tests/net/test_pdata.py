"""printscp.net.pdata: hand-made P-DATA framing and C-STORE command sets equal pynetdicom's."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, encode, encode_file_meta
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

from printscp.net import pdata

SOP = "1.2.826.0.1.3680043.8.498.1.2.3"  # odd length: padded with a NUL


def pynetdicom_command(primitive: C_STORE) -> bytes:
    msg = (C_STORE_RSP if primitive.MessageIDBeingRespondedTo is not None else C_STORE_RQ)()
    msg.primitive_to_message(primitive)
    return encode(msg.command_set, True, True)


@pytest.mark.parametrize(("status", "comment"), [
    (0x0000, ""), (0xA900, "SOPInstanceUID 1.2 is not the request's"), (0xC000, "odd")])
def test_store_response_equals_pynetdicom(status: int, comment: str) -> None:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = CTImageStorage
    rsp.AffectedSOPInstanceUID = SOP
    rsp.Status = status
    if comment:
        rsp.ErrorComment = comment
    assert pdata.store_response(7, CTImageStorage, SOP, status, comment) == \
        pynetdicom_command(rsp)


@pytest.mark.parametrize("originator", [None, ("MOVESCU", 12)])
def test_store_request_equals_pynetdicom(originator: tuple[str, int] | None) -> None:
    rq = C_STORE()
    rq.MessageID = 3
    rq.AffectedSOPClassUID = CTImageStorage
    rq.AffectedSOPInstanceUID = SOP
    rq.Priority = 2
    rq.DataSet = io.BytesIO(b"\x08\x00\x16\x00\x00\x00\x00\x00")
    if originator:
        rq.MoveOriginatorApplicationEntityTitle = originator[0]
        rq.MoveOriginatorMessageID = originator[1]
    assert pdata.store_request(3, CTImageStorage, SOP, 2, originator) == pynetdicom_command(rq)


def test_file_meta_equals_pynetdicom() -> None:
    """As ``Event.encoded_dataset(include_meta=True)`` builds it."""
    meta = create_file_meta(sop_class_uid=CTImageStorage, sop_instance_uid=SOP,
                            transfer_syntax=ExplicitVRLittleEndian)
    assert pdata.file_meta(CTImageStorage, SOP, ExplicitVRLittleEndian) == \
        b"\0" * 128 + b"DICM" + encode_file_meta(meta)


@pytest.mark.parametrize("max_pdu", [0, 4096, 16384, 65536])
def test_message_pdus_decode_with_pynetdicom(max_pdu: int) -> None:
    """The PDUs are well formed, within the peer's limit, and carry the message intact."""
    command = pdata.store_request(5, CTImageStorage, SOP)
    data_set = bytes(range(256)) * 700  # 179,200 bytes
    stream = b"".join(bytes(b) for b in pdata.message_pdus(1, command, data_set, max_pdu))
    msg = DIMSEMessage()
    offset, pdus, done = 0, 0, False
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 2:offset + 6], "big")
        if max_pdu:
            assert length <= max_pdu
        pdu = P_DATA_TF()
        pdu.decode(stream[offset:offset + 6 + length])
        primitive = P_DATA()
        primitive.presentation_data_value_list = [
            [item.presentation_context_id, item.presentation_data_value]
            for item in pdu.presentation_data_value_items]
        assert not done
        done = msg.decode_msg(primitive)
        offset += 6 + length
        pdus += 1
    assert done
    assert msg.command_set.AffectedSOPInstanceUID == SOP
    assert msg.data_set.getvalue() == data_set
    assert pdus == (2 if not max_pdu else 1 + -(-len(data_set) // (max_pdu - 6)))


def test_assembler_collects_a_message_across_pdus() -> None:
    command = pdata.store_request(9, CTImageStorage, SOP)
    data_set = b"\x01\x02" * 5000
    assembler = pdata.MessageAssembler()
    complete = []
    stream = b"".join(bytes(b) for b in pdata.message_pdus(3, command, data_set, 4096))
    offset = 0
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 2:offset + 6], "big")
        for cx, control, fragment in pdata.pdvs(memoryview(stream[offset + 6:offset + 6 + length])):
            complete.append(assembler.add(cx, control, fragment))
        offset += 6 + length
    assert complete[-1] and not any(complete[:-1])
    assert pdata.command_us(assembler.command, pdata.MESSAGE_ID) == 9
    assert pdata.command_text(assembler.command, pdata.AFFECTED_SOP_INSTANCE) == SOP
    assert assembler.data_set() == data_set
    # pynetdicom decodes the same message from the assembler's PDV list.
    primitive = P_DATA()
    primitive.presentation_data_value_list = assembler.pdv_list()
    msg = DIMSEMessage()
    assert msg.decode_msg(primitive)
    assert msg.data_set.getvalue() == data_set


@pytest.mark.parametrize(("pdvs", "why"), [
    ([(1, 0x00, b"data first")], "before the command"),
    ([(1, 0x01, b"\x00\x00"), (3, 0x01, b"\x00\x00")], "context 3"),
    ([(1, 0x03, b"\x00\x00\x00\x01\x04")], "ends inside"),
    ([(1, 0x03, b"\x08\x00\x00\x01\x02\x00\x00\x00\x01\x00")], "invalid command element"),
])
def test_assembler_refuses_malformed_messages(pdvs: list[tuple[int, int, bytes]],
                                              why: str) -> None:
    assembler = pdata.MessageAssembler()
    with pytest.raises(pdata.PDataError, match=why):
        for cx, control, data in pdvs:
            assembler.add(cx, control, memoryview(data))


@pytest.mark.parametrize(("body", "why"), [
    (b"\x00\x00\x00\x01\x01\x03", "length 1"),
    (b"\x00\x00\x00\x10\x01\x03abc", "does not fit"),
    (b"\x00\x00\x00", "inside a PDV item header"),
])
def test_pdvs_refuse_bad_items(body: bytes, why: str) -> None:
    with pytest.raises(pdata.PDataError, match=why):
        list(pdata.pdvs(memoryview(body)))


def _primitives() -> list[tuple[str, object]]:
    from pynetdicom.dimse_primitives import (
        C_ECHO,
        C_FIND,
        C_GET,
        C_MOVE,
        N_ACTION,
        N_CREATE,
        N_EVENT_REPORT,
        N_GET,
        N_SET,
    )

    out: list[tuple[str, object]] = []
    echo = C_ECHO()
    echo.MessageID = 1
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    out.append(("C-ECHO-RQ", echo))
    find = C_FIND()
    find.MessageIDBeingRespondedTo = 4
    find.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    find.Status = 0xFF00
    find.Identifier = io.BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    out.append(("C-FIND-RSP pending", find))
    failed = C_FIND()
    failed.MessageIDBeingRespondedTo = 4
    failed.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    failed.Status = 0xA900
    failed.ErrorComment = "Query/Retrieve Level missing"
    failed.OffendingElement = [0x00080052]
    out.append(("C-FIND-RSP failure", failed))
    get = C_GET()
    get.MessageIDBeingRespondedTo = 2
    get.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.3"
    get.Status = 0xFF00
    get.NumberOfRemainingSuboperations = 99
    get.NumberOfCompletedSuboperations = 1
    get.NumberOfFailedSuboperations = 0
    get.NumberOfWarningSuboperations = 0
    out.append(("C-GET-RSP pending", get))
    move = C_MOVE()
    move.MessageID = 9
    move.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.2"
    move.Priority = 0
    move.MoveDestination = "MOVESCU"
    move.Identifier = io.BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    out.append(("C-MOVE-RQ", move))
    action = N_ACTION()
    action.MessageIDBeingRespondedTo = 3
    action.AffectedSOPClassUID = "1.2.840.10008.5.1.1.1"
    action.AffectedSOPInstanceUID = SOP
    action.ActionTypeID = 1
    action.Status = 0xC600
    action.ErrorComment = "Film Session has no Film Box"
    out.append(("N-ACTION-RSP", action))
    create = N_CREATE()
    create.MessageIDBeingRespondedTo = 5
    create.AffectedSOPClassUID = "1.2.840.10008.5.1.1.2"
    create.AffectedSOPInstanceUID = SOP
    create.Status = 0x0106
    create.AttributeIdentifierList = [0x20100010, 0x20100040]
    out.append(("N-CREATE-RSP", create))
    event = N_EVENT_REPORT()
    event.MessageID = 6
    event.AffectedSOPClassUID = "1.2.840.10008.5.1.1.16"
    event.AffectedSOPInstanceUID = "1.2.840.10008.5.1.1.17"
    event.EventTypeID = 2
    out.append(("N-EVENT-REPORT-RQ", event))
    nget = N_GET()
    nget.MessageID = 7
    nget.RequestedSOPClassUID = "1.2.840.10008.5.1.1.16"
    nget.RequestedSOPInstanceUID = "1.2.840.10008.5.1.1.17"
    nget.AttributeIdentifierList = [0x21100010]
    out.append(("N-GET-RQ", nget))
    nset = N_SET()
    nset.MessageIDBeingRespondedTo = 8
    nset.AffectedSOPClassUID = "1.2.840.10008.3.1.2.3.3"
    nset.AffectedSOPInstanceUID = SOP
    nset.Status = 0x0110
    nset.ErrorID = 0xA710
    out.append(("N-SET-RSP", nset))
    return out


@pytest.mark.parametrize(("name", "primitive"), _primitives(), ids=[n for n, _ in _primitives()])
def test_command_sets_encode_as_pynetdicom(name: str, primitive: object) -> None:
    """Every kind of command set printscp exchanges, byte for byte as pydicom writes it."""
    from printscp.net.reactors import message_for

    del name
    msg = message_for(primitive)
    msg.primitive_to_message(primitive)
    assert pdata.encode_command_set(msg.command_set) == encode(msg.command_set, True, True)


def _identifiers() -> list[tuple[str, Dataset]]:
    from pydicom.dataset import Dataset
    from pydicom.valuerep import DSfloat

    study = Dataset()
    study.SpecificCharacterSet = "ISO_IR 100"
    study.QueryRetrieveLevel = "STUDY"
    study.StudyDate = "20210105"
    study.StudyTime = "101010.123"
    study.AccessionNumber = "ACC0000007"
    study.PatientName = "DOE^JANE^^DR=ドウ^ジェーン".encode("ascii", "ignore").decode()
    study.PatientID = "PID000003"
    study.StudyInstanceUID = SOP
    study.ModalitiesInStudy = ["CT", "MR", "SR"]
    study.NumberOfStudyRelatedInstances = 50
    study.StudyDescription = ""
    study.RetrieveAETitle = "PRINTSCP"
    image = Dataset()
    image.QueryRetrieveLevel = "IMAGE"
    image.SOPInstanceUID = SOP + "1"
    image.InstanceNumber = "12"
    image.SliceThickness = "1.50"
    image.PixelSpacing = [DSfloat("0.48828125"), DSfloat(0.5)]
    image.ImageComments = "x" * 300
    image.add_new(0x00081190, "UR", "http://example.org/wado")
    image.add_new(0x00189074, "DT", "20210105101010")
    image.add_new(0x00400280, "ST", None)
    return [("study", study), ("image", image)]


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize(("name", "ds"), _identifiers(), ids=[n for n, _ in _identifiers()])
def test_identifiers_encode_as_pydicom(name: str, ds: Dataset, implicit: bool) -> None:
    del name
    assert pdata.encode_identifier(ds, implicit) == encode(ds, implicit, True)


def test_identifier_encoder_leaves_what_it_cannot_to_pydicom() -> None:
    from pydicom.dataset import Dataset

    seq = Dataset()
    seq.ReferencedSOPSequence = [Dataset()]
    accented = Dataset()
    accented.PatientName = "MÜLLER^JOSÉ"
    binary = Dataset()
    binary.add_new(0x00280010, "US", 512)
    for ds in (seq, accented, binary):
        assert pdata.encode_identifier(ds, False) is None


def test_assembler_hashes_the_file_as_its_data_set_arrives():
    """The SHA-256 taken fragment by fragment is the one of the bytes stored."""
    import hashlib

    command = pdata.store_request(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4")
    data_set = bytes(range(256)) * 1000
    prefix = pdata.file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1")
    assembler = pdata.MessageAssembler()
    fragments = list(pdata.message_fragments(command, data_set, 16384))
    for i, (control, chunk) in enumerate(fragments):
        assembler.add(1, control, memoryview(bytes(chunk)))
        if i == 0:
            assembler.start_file(prefix)
    assert assembler.complete
    assert assembler.file_bytes() == prefix + data_set
    assert assembler.hasher.hexdigest() == hashlib.sha256(prefix + data_set).hexdigest()
