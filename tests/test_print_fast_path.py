"""Print requests served on the DUL thread (print_management.fast_path): the response
command sets are the bytes pynetdicom sends, and a whole print goes that way."""

from __future__ import annotations

import io

import pytest
from helpers.images import step_wedge
from helpers.nodes import printed_jobs
from helpers.print_scu import PrintSCU
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pynetdicom import dimse_messages, dimse_primitives
from pynetdicom.dsutils import encode

from printscp.core import status, uids
from printscp.net import channel, pdata
from printscp.services.dimse import status_dataset
from printscp.services.print_management import fast_path

INSTANCE = "1.2.826.0.1.3680043.8.498.12345"


def pynetdicoms(kind: str, message_id: int, sop_class: str, code: int,
                instance: str | None, data: bytes | None, fields: dict,
                action_type: int | None = None) -> bytes:
    """The response command set as pynetdicom builds and encodes it."""
    rsp = getattr(dimse_primitives, kind)()
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = sop_class
    rsp.AffectedSOPInstanceUID = instance
    if action_type is not None:
        rsp.ActionTypeID = action_type
    rsp.Status = code
    for keyword, value in fields.items():
        setattr(rsp, keyword, value)
    if data is not None:
        setattr(rsp, {"N_GET": "AttributeList", "N_SET": "AttributeList",
                      "N_CREATE": "AttributeList", "N_ACTION": "ActionReply"}[kind],
                io.BytesIO(data))
    message = getattr(dimse_messages, f"{kind}_RSP")()
    message.primitive_to_message(rsp)
    return encode(message.command_set, True, True)


FIELD = {"N_GET": 0x8110, "N_SET": 0x8120, "N_ACTION": 0x8130, "N_CREATE": 0x8140,
         "N_DELETE": 0x8150}


@pytest.mark.parametrize("kind, code, instance, data, fields, action_type", [
    ("N_SET", 0x0000, INSTANCE, None, {}, None),
    ("N_SET", 0x0105, INSTANCE, None, {"ErrorComment": "PatientName not supported",
                                       "AttributeIdentifierList": BaseTag(0x00100010)},
     None),
    ("N_SET", 0x0106, INSTANCE, None, {"ErrorComment": "x" * 64,
                                       "AttributeIdentifierList": [BaseTag(0x20200010),
                                                                   BaseTag(0x20200110)]},
     None),
    ("N_SET", 0xB609, INSTANCE, None, {}, None),
    ("N_GET", 0x0000, uids.PRINTER_INSTANCE, b"\x10\x21\x10\x00\x06\x00\x00\x00NORMAL",
     {}, None),
    ("N_CREATE", 0x0000, INSTANCE, b"\x10\x20\x10\x00\x02\x00\x00\x001 ", {}, None),
    ("N_CREATE", 0x0106, None, None, {"ErrorComment": "no Film Session", "ErrorID": 7},
     None),
    ("N_ACTION", 0x0000, INSTANCE, None, {}, 1),
    ("N_ACTION", 0xB603, INSTANCE, None, {}, 1),
    ("N_ACTION", 0x0123, INSTANCE, None, {"ErrorComment": "Action Type ID 2"}, 2),
    ("N_DELETE", 0x0000, INSTANCE, None, {}, None),
    ("N_DELETE", 0x0112, INSTANCE, None, {"ErrorComment": "no SOP Instance"}, None),
])
def test_responses_are_the_bytes_pynetdicom_sends(kind, code, instance, data, fields,
                                                  action_type):
    ours = fast_path.response(FIELD[kind], 7, uids.BASIC_FILM_BOX, code, instance,
                              data is not None, fields, action_type)
    assert ours == pynetdicoms(kind, 7, uids.BASIC_FILM_BOX, code, instance, data, fields,
                               action_type)


def test_an_error_comment_over_64_characters_is_cut_to_one_lo_value():
    ours = fast_path.response(0x8120, 7, uids.BASIC_FILM_BOX, 0x0106, INSTANCE, False,
                              {"ErrorComment": "x" * 80})
    assert b"x" * 64 in ours and b"x" * 65 not in ours  # pynetdicom would send all 80


def test_status_datasets_keep_only_what_each_response_carries():
    failure = status_dataset(status.INVALID_ATTRIBUTE_VALUE, "bad", [BaseTag(0x20200010)])
    assert fast_path.status_fields(failure, fast_path.N_SET_RQ) == (
        0x0106, {"ErrorComment": "bad", "AttributeIdentifierList": BaseTag(0x20200010)})
    # N-ACTION-RSP has no Attribute Identifier List: pynetdicom drops it too
    assert fast_path.status_fields(failure, fast_path.N_ACTION_RQ) == (0x0106,
                                                                 {"ErrorComment": "bad"})
    assert fast_path.status_fields(0xB605, fast_path.N_SET_RQ) == (0xB605, {})
    assert fast_path.status_fields(Dataset(), fast_path.N_SET_RQ) == (0xC001, {})
    assert fast_path.status_fields("nonsense", fast_path.N_SET_RQ) == (0xC002, {})


@pytest.mark.skipif(not hasattr(channel, "serve_dimse_n"),
                    reason="the network layer has no DIMSE-N fast path")
def test_a_print_is_served_on_the_dul_thread(node, monkeypatch):
    served = []
    real = fast_path._serve

    def spy(assoc, context, field, event, req):
        served.append(field)
        return real(assoc, context, field, event, req)

    monkeypatch.setattr(fast_path, "_serve", spy)
    with PrintSCU(node.port) as scu:
        assert scu.get_printer()[0].Status == 0
        scu.film_session()
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,2", FilmSizeID="8INX10IN")
        for position, uid in enumerate(boxes, start=1):
            assert scu.image(uid, position, step_wedge(bits=12), bits=12)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, fb_uid)[0].Status == 0
        assert scu.delete(uids.BASIC_FILM_BOX, fb_uid).Status == 0
    assert served == [0x0110, 0x0140, 0x0140, 0x0120, 0x0120, 0x0130, 0x0150]
    [job] = printed_jobs(node)
    assert job["status"] == "DONE"


def command(field: int, sop_class: str, message_id: int | None = 3) -> dict[int, bytes]:
    out = {pdata.COMMAND_FIELD: pdata.us(field),
           pdata.REQUESTED_SOP_CLASS: pdata.ui(sop_class),
           pdata.REQUESTED_SOP_INSTANCE: pdata.ui(INSTANCE),
           pdata.DATA_SET_TYPE: pdata.us(pdata.NO_DATA_SET)}
    if message_id is not None:
        out[pdata.MESSAGE_ID] = pdata.us(message_id)
    return out


class Assoc:
    """Just what claim() asks of an association: its accepted contexts."""

    def __init__(self) -> None:
        from pynetdicom.presentation import PresentationContext

        cx = PresentationContext()
        cx.context_id, cx.abstract_syntax = 1, uids.BASIC_GRAYSCALE_PRINT_META
        cx.transfer_syntax = ["1.2.840.10008.1.2.1"]
        self._accepted_cx = {1: cx}


@pytest.mark.parametrize("cmd, claimed", [
    (command(0x0150, uids.BASIC_FILM_BOX), True),
    (command(0x0110, uids.PRINTER), True),
    (command(0x0120, "1.2.840.10008.3.1.2.3.3"), False),  # MPPS: its own service
    (command(0x0130, "1.2.840.10008.1.20.1"), False),  # Storage Commitment
    (command(0x0150, uids.BASIC_FILM_BOX, message_id=None), False),  # pynetdicom refuses
    (command(0x0001, uids.BASIC_FILM_BOX), False),  # not a DIMSE-N request
])
def test_only_print_requests_are_claimed(cmd, claimed):
    message = pdata.MessageAssembler(context_id=1, command=cmd, complete=True)
    assert (fast_path.claim(Assoc(), message) is not None) is claimed


def test_a_request_on_a_context_not_accepted_is_left_to_pynetdicom():
    message = pdata.MessageAssembler(context_id=3, command=command(0x0150,
                                                                   uids.BASIC_FILM_BOX))
    assert fast_path.claim(Assoc(), message) is None
