"""Print Management requests served on the DUL thread as soon as they are whole.

A print session is some thirty DIMSE-N messages, twenty of them 512 KB Image Box
N-SETs.  On pynetdicom's path each one's fragments were copied into P-DATA primitives
and a BytesIO, its command set decoded by pydicom, the message handed to the
association's reactor thread, wrapped in pynetdicom's service class and answered
through a response primitive turned into a pydicom command set: about 1.2 ms of a
message beside the handler's own work, some 35 ms of a DCMTK session.  Here
(:func:`claim`, attached to each association with
:func:`printscp.net.channel.serve_dimse_n`) the request's command, parsed on the DUL
thread (:mod:`printscp.net.pdata`), becomes pynetdicom's request primitive directly,
its data set one BytesIO of its own; the node's handlers are called through
pynetdicom's ``evt.trigger`` exactly as its service class calls them (the same Event,
the same routing by SOP Class, ``abort()`` non-blocking meanwhile), and the response
is the command set pynetdicom would send (:func:`response`; tests compare the bytes),
framed by hand.  pynetdicom's statuses, its N-CREATE rule for the new instance's UID
and its choice of when a data set goes out are kept.

Every request of the Print Management SOP Classes (:data:`PRINT_CLASSES`) on any
accepted context is claimed, so none of them is left behind in pynetdicom's queue
while a later one is answered here; a command that does not even name its Message ID
or its SOP Class goes to pynetdicom, which refuses it as before.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pynetdicom import evt
from pynetdicom.dimse_primitives import N_ACTION, N_CREATE, N_DELETE, N_GET, N_SET
from pynetdicom.dsutils import encode
from pynetdicom.service_class_n import PrintManagementServiceClass
from pynetdicom.status import STATUS_SUCCESS, STATUS_WARNING, code_to_category

from printscp.core import uids
from printscp.jobs import staging
from printscp.net import channel, pdata

LOGGER = logging.getLogger("printscp.print")

N_GET_RQ, N_SET_RQ, N_ACTION_RQ, N_CREATE_RQ, N_DELETE_RQ = (0x0110, 0x0120, 0x0130,
                                                             0x0140, 0x0150)
PROCESSING_FAILURE = 0x0110

#: The SOP Classes of Print Management (those the print dispatch serves).
PRINT_CLASSES = frozenset({
    uids.BASIC_FILM_SESSION, uids.BASIC_FILM_BOX, uids.BASIC_GRAYSCALE_IMAGE_BOX,
    uids.BASIC_COLOR_IMAGE_BOX, uids.BASIC_ANNOTATION_BOX, uids.PRESENTATION_LUT,
    uids.PRINTER, uids.PRINT_JOB, uids.PRINTER_CONFIGURATION_RETRIEVAL,
})

#: Command Field -> (pynetdicom primitive, event, data set parameter of the request).
_REQUESTS: dict[int, tuple[type, Any, str | None]] = {
    N_GET_RQ: (N_GET, evt.EVT_N_GET, None),
    N_SET_RQ: (N_SET, evt.EVT_N_SET, "ModificationList"),
    N_ACTION_RQ: (N_ACTION, evt.EVT_N_ACTION, "ActionInformation"),
    N_CREATE_RQ: (N_CREATE, evt.EVT_N_CREATE, "AttributeList"),
    N_DELETE_RQ: (N_DELETE, evt.EVT_N_DELETE, None),
}
#: Status elements each response carries, as pynetdicom encodes them (its command set
#: keywords for the -RSP; any other element of a status Dataset is dropped).
_STATUS_ELEMENTS = {
    N_GET_RQ: ("ErrorComment", "ErrorID", "AttributeIdentifierList"),
    N_SET_RQ: ("ErrorComment", "ErrorID", "AttributeIdentifierList"),
    N_ACTION_RQ: ("ErrorComment", "ErrorID"),
    N_CREATE_RQ: ("ErrorComment", "ErrorID"),
    N_DELETE_RQ: ("ErrorComment", "ErrorID"),
}
_KNOWN_STATUSES = PrintManagementServiceClass.statuses

ERROR_ID = 0x0903
ATTRIBUTE_IDENTIFIER_LIST = 0x1005
ACTION_TYPE_ID = 0x1008


def attach(assoc: Any) -> None:
    """Serve ``assoc``'s print requests here (no-op where the network layer has no
    DIMSE-N fast path)."""
    serve_dimse_n = getattr(channel, "serve_dimse_n", None)
    if serve_dimse_n is not None:
        serve_dimse_n(assoc, claim)


def handle_requested(event: Any) -> None:
    """EVT_REQUESTED: attach the fast path to the new association."""
    attach(event.assoc)


def claim(assoc: Any, message: pdata.MessageAssembler) -> Callable[[], None] | None:
    """A callable serving the DIMSE-N request ``message`` if it is for a Print
    Management SOP Class, else None (pynetdicom serves it)."""
    command = message.command or {}
    field = pdata.command_us(command, pdata.COMMAND_FIELD)
    spec = _REQUESTS.get(field or 0)
    affected = field == N_CREATE_RQ
    sop_class = pdata.command_text(command, pdata.AFFECTED_SOP_CLASS if affected
                                   else pdata.REQUESTED_SOP_CLASS)
    message_id = pdata.command_us(command, pdata.MESSAGE_ID)
    context = channel.accepted_context(assoc, message.context_id)
    if spec is None or sop_class not in PRINT_CLASSES or message_id is None \
            or context is None:
        return None
    primitive, event, data_keyword = spec
    try:
        req = _request(primitive, command, affected, message_id, sop_class, field or 0)
    except (ValueError, TypeError, struct.error):
        return None  # pynetdicom's decoding says what is wrong with it

    def serve() -> None:
        if data_keyword is not None and pdata.command_us(
                command, pdata.DATA_SET_TYPE) not in (None, pdata.NO_DATA_SET):
            setattr(req, data_keyword, message.data_set_stream())
        # Images staged by the handler go to disk once the response is out.
        with staging.deferred_writes(), channel.serving_request(assoc, on_reactor=False):
            _serve(assoc, context, field or 0, event, req)

    return serve


def _request(primitive: type, command: dict[int, bytes], affected: bool, message_id: int,
             sop_class: str, field: int) -> Any:
    """pynetdicom's request primitive for ``command``, as its decoding would set it."""
    req = primitive()
    req.MessageID = message_id
    instance = pdata.command_text(command, pdata.AFFECTED_SOP_INSTANCE if affected
                                  else pdata.REQUESTED_SOP_INSTANCE)
    if affected:
        req.AffectedSOPClassUID = sop_class
        req.AffectedSOPInstanceUID = instance or None
    else:
        req.RequestedSOPClassUID = sop_class
        req.RequestedSOPInstanceUID = instance or None
    if field == N_ACTION_RQ:
        req.ActionTypeID = pdata.command_us(command, ACTION_TYPE_ID)
    elif field == N_GET_RQ and ATTRIBUTE_IDENTIFIER_LIST in command:
        raw = command[ATTRIBUTE_IDENTIFIER_LIST]
        tags = [BaseTag(group << 16 | element)
                for group, element in struct.iter_unpack("<HH", raw)]
        req.AttributeIdentifierList = tags or None
    return req


def _serve(assoc: Any, context: Any, field: int, event: Any, req: Any) -> None:
    """pynetdicom's ``ServiceClass._n_*_scp`` for one request (see the module)."""
    affected = field == N_CREATE_RQ
    sop_class = req.AffectedSOPClassUID if affected else req.RequestedSOPClassUID
    sop_instance = req.AffectedSOPInstanceUID if affected else req.RequestedSOPInstanceUID
    action_type = req.ActionTypeID if field == N_ACTION_RQ else None

    def send(status: int, fields: dict[str, Any] | None = None,
             data: bytes | None = None, instance: str | None = sop_instance) -> None:
        command = response(field | 0x8000, req.MessageID, sop_class, status, instance,
                           data is not None, fields or {}, action_type)
        channel.send_message(assoc, context.context_id, command, data)

    try:
        with channel.handler_running(assoc):  # abort() non-blocking, as pynetdicom's
            result = evt.trigger(assoc, event, {"request": req,
                                                "context": context.as_tuple})
    except Exception as exc:
        LOGGER.error("Exception in the handler bound to 'evt.%s'", event.name)
        LOGGER.exception(exc)
        send(PROCESSING_FAILURE)
        return
    if not assoc.is_established:
        return
    user_status, ds = (result, None) if field == N_DELETE_RQ else result
    status, fields = status_fields(user_status, field)
    if status not in _KNOWN_STATUSES:
        send(status, fields)
        return
    category = code_to_category(status)
    if field == N_CREATE_RQ and category == STATUS_SUCCESS and sop_instance is None:
        if isinstance(ds, Dataset) and "AffectedSOPInstanceUID" in ds:
            sop_instance = str(ds.AffectedSOPInstanceUID)
            del ds.AffectedSOPInstanceUID
        else:
            LOGGER.error("The N-CREATE-RQ has no 'Affected SOP Instance UID' value and the "
                         "'evt.EVT_N_CREATE' handler doesn't include one in the "
                         "'Attribute List' dataset")
            send(PROCESSING_FAILURE, fields)
            return
    data = None
    if category in (STATUS_SUCCESS, STATUS_WARNING) and ds:
        syntax = context.transfer_syntax[0]
        data = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
        if data is None:
            LOGGER.error("Failed encoding the response data set")
            status = PROCESSING_FAILURE
    send(status, fields, data, sop_instance)


def status_fields(user_status: Any, field: int) -> tuple[int, dict[str, Any]]:
    """pynetdicom's ``validate_status``: the status code and the status elements the
    response carries."""
    if isinstance(user_status, Dataset):
        if "Status" not in user_status:
            LOGGER.error("User callback returned a `Dataset` without a Status element")
            return 0xC001, {}
        allowed = _STATUS_ELEMENTS[field]
        fields = {e.keyword: e.value for e in user_status
                  if e.keyword in allowed and e.value is not None}
        return int(user_status.Status), fields
    if isinstance(user_status, int):
        return user_status, {}
    LOGGER.error("Invalid status returned by callback")
    return 0xC002, {}


def response(field: int, message_id: int, sop_class: str, status: int,
             sop_instance: str | None, data_set: bool, fields: dict[str, Any],
             action_type: int | None = None) -> bytes:
    """The DIMSE-N response command set pynetdicom encodes for these values, elements in
    tag order: Affected SOP Class, Command Field, Message ID Being Responded To, Data
    Set Type, Status, Error Comment, Error ID, Affected SOP Instance, Attribute
    Identifier List, Action Type ID (N-ACTION)."""
    elements = [(pdata.AFFECTED_SOP_CLASS, pdata.ui(sop_class)),
                (pdata.COMMAND_FIELD, pdata.us(field)),
                (pdata.MESSAGE_ID_RESPONDED, pdata.us(message_id)),
                (pdata.DATA_SET_TYPE, pdata.us(0x0001 if data_set else pdata.NO_DATA_SET)),
                (pdata.STATUS, pdata.us(status))]
    if fields.get("ErrorComment") is not None:
        elements.append((pdata.ERROR_COMMENT, pdata.lo(str(fields["ErrorComment"]))))
    if fields.get("ErrorID") is not None:
        elements.append((ERROR_ID, pdata.us(int(fields["ErrorID"]))))
    if sop_instance:
        elements.append((pdata.AFFECTED_SOP_INSTANCE, pdata.ui(sop_instance)))
    tags = fields.get("AttributeIdentifierList")
    if tags is not None:
        tags = [tags] if isinstance(tags, int) else list(tags)  # one tag, or several
        elements.append((ATTRIBUTE_IDENTIFIER_LIST, b"".join(
            struct.pack("<HH", int(t) >> 16, int(t) & 0xFFFF) for t in tags)))
    if action_type is not None:
        elements.append((ACTION_TYPE_ID, pdata.us(action_type)))
    return pdata.encode_command(elements)
