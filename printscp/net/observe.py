"""pynetdicom's notification events for the messages printscp parses and frames itself.

On pynetdicom's own path every P-DATA-TF PDU fires ``EVT_DATA_RECV`` and ``EVT_PDU_RECV``
when it is decoded, every DIMSE message ``EVT_DIMSE_RECV`` when it is complete and
``EVT_DIMSE_SENT`` before it is sent, and every PDU sent ``EVT_PDU_SENT`` and
``EVT_DATA_SENT``.  Its debug log (``-d``) is made of handlers bound to those events
(``LOG_HANDLER_LEVEL = "standard"``), and so are a user's own monitors.  The fast paths
(C-STORE, C-FIND and C-GET served on the DUL thread, responses framed by
:mod:`printscp.net.pdata`) fire the same events with the same objects, in the same order.

Building pynetdicom's objects costs what the fast paths save, so each function first asks
whether anything is bound to its event, and does nothing when nothing is (the node binds
nothing unless pynetdicom's logging is on).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pynetdicom import evt
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

from printscp.net import pdata


def pdu_received(assoc: Any, header: bytes | memoryview, body: bytes | memoryview) -> None:
    """A P-DATA-TF PDU read from the peer (before it is parsed)."""
    data_handlers = assoc.get_handlers(evt.EVT_DATA_RECV)
    pdu_handlers = assoc.get_handlers(evt.EVT_PDU_RECV)
    if not (data_handlers or pdu_handlers):
        return
    raw = bytes(header) + bytes(body)
    if data_handlers:
        evt.trigger(assoc, evt.EVT_DATA_RECV, {"data": raw})
    if pdu_handlers:
        pdu = P_DATA_TF()
        pdu.decode(raw)
        evt.trigger(assoc, evt.EVT_PDU_RECV, {"pdu": pdu})


def message_received(assoc: Any, message: pdata.MessageAssembler) -> None:
    """A whole DIMSE message a fast path is about to serve."""
    if not assoc.get_handlers(evt.EVT_DIMSE_RECV):
        return
    evt.trigger(assoc, evt.EVT_DIMSE_RECV, {"message": _decoded(assoc, message.pdv_list())})


def message_sent(assoc: Any, context_id: int, command: bytes,
                 data_set: bytes | memoryview | None, pdus: list[Any]) -> None:
    """A DIMSE message framed by hand, before its PDUs (``pdus``: the buffers of
    :func:`printscp.net.pdata.message_pdus`, header then value) are written."""
    if assoc.get_handlers(evt.EVT_DIMSE_SENT):
        fragments = pdata.message_fragments(command, data_set, 0)
        pdv_list = [[context_id, bytes((control,)) + bytes(chunk)]
                    for control, chunk in fragments]
        evt.trigger(assoc, evt.EVT_DIMSE_SENT, {"message": _decoded(assoc, pdv_list)})
    pdus_sent(assoc, (bytes(pdus[i]) + bytes(pdus[i + 1]) for i in range(0, len(pdus), 2)))



def pdus_sent(assoc: Any, pdus: Iterable[bytes]) -> None:
    """P-DATA-TF PDUs written to the peer (encoded)."""
    pdu_handlers = assoc.get_handlers(evt.EVT_PDU_SENT)
    data_handlers = assoc.get_handlers(evt.EVT_DATA_SENT)
    if not (pdu_handlers or data_handlers):
        return
    for raw in pdus:
        if pdu_handlers:
            pdu = P_DATA_TF()
            pdu.decode(raw)
            evt.trigger(assoc, evt.EVT_PDU_SENT, {"pdu": pdu})
        if data_handlers:
            evt.trigger(assoc, evt.EVT_DATA_SENT, {"data": raw})


def _decoded(assoc: Any, pdv_list: list[list[Any]]) -> DIMSEMessage:
    """pynetdicom's message object for a whole message's PDVs (it becomes the subclass
    for its Command Field, C_STORE_RQ and so on, as in ``receive_primitive``)."""
    primitive = P_DATA()
    primitive.presentation_data_value_list = pdv_list
    message = DIMSEMessage()
    message.decode_msg(primitive, assoc)
    return message
