"""P-DATA framing (PS3.8 9.3.5, E.2) and C-STORE command sets (PS3.7 9.3.1), by hand.

pynetdicom turns every PDU into objects, every PDV into a copied slice, and every
command set into a pydicom Dataset that is validated and encoded element by element:
about 3.5 ms of CPU per 512 KB C-STORE on this project's hardware, more than the
archive's own work.  The archive's hot path (see :mod:`printscp.net.reactors`) frames and
parses these few fixed structures here instead; everything else still goes through
pynetdicom.  Tests compare every encoding below with pynetdicom's own.
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.multival import MultiValue
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from printscp.core.status import error_comment

P_DATA_TF = 0x04
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_FIND_RQ = 0x0020
#: N-GET-RQ, N-SET-RQ, N-ACTION-RQ, N-CREATE-RQ and N-DELETE-RQ (PS3.7 E.1-1).
DIMSE_N_REQUESTS = frozenset({0x0110, 0x0120, 0x0130, 0x0140, 0x0150})
NO_DATA_SET = 0x0101

#: Command elements (group 0000), as element number -> VR, for the ones used here.
AFFECTED_SOP_CLASS = 0x0002
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_RESPONDED = 0x0120
PRIORITY = 0x0700
DATA_SET_TYPE = 0x0800
STATUS = 0x0900
OFFENDING_ELEMENT = 0x0901
ERROR_COMMENT = 0x0902
AFFECTED_SOP_INSTANCE = 0x1000
REMAINING = 0x1020
COMPLETED = 0x1021
FAILED = 0x1022
WARNING = 0x1023
MOVE_ORIGINATOR_AE = 0x1030
MOVE_ORIGINATOR_ID = 0x1031

LOGGER = logging.getLogger("printscp.limits")

_PDV = struct.Struct(">LBB")  # item length, presentation context ID, control header
_PDU = struct.Struct(">BBL")  # type, reserved, length
_ELEMENT = struct.Struct("<HHL")  # implicit VR LE: group, element, length


class PDataError(ValueError):
    """A P-DATA-TF PDU or command set that cannot be parsed: the association aborts."""


def pdvs(body: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """(context ID, control header, fragment) of each PDV in a P-DATA-TF body."""
    offset, end = 0, len(body)
    while offset < end:
        if end - offset < 6:
            raise PDataError("P-DATA-TF ends inside a PDV item header")
        length, context_id, control = _PDV.unpack_from(body, offset)
        if length < 2 or offset + 4 + length > end:
            raise PDataError(f"PDV item length {length} does not fit the PDU")
        yield context_id, control, body[offset + 6:offset + 4 + length]
        offset += 4 + length


def parse_command(data: bytes | memoryview) -> dict[int, bytes]:
    """Group 0000 of an Implicit VR Little Endian command set: element -> value bytes."""
    out: dict[int, bytes] = {}
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < 8:
            raise PDataError("command set ends inside an element header")
        group, element, length = _ELEMENT.unpack_from(data, offset)
        offset += 8
        if group != 0 or length == 0xFFFFFFFF or offset + length > end:
            raise PDataError(f"invalid command element ({group:04X},{element:04X})")
        out[element] = bytes(data[offset:offset + length])
        offset += length
    return out


def command_us(command: dict[int, bytes], element: int) -> int | None:
    value = command.get(element)
    return struct.unpack("<H", value)[0] if value is not None and len(value) == 2 else None


def command_text(command: dict[int, bytes], element: int) -> str:
    return command.get(element, b"").rstrip(b"\0 ").decode("ascii", "replace")


#: DIMSE command names by Command Field (0000,0100), PS3.7 E.1-1 (requests; a response
#: is the request's field with bit 15 set).
COMMAND_NAMES = {0x0001: "C-STORE", 0x0010: "C-GET", 0x0020: "C-FIND", 0x0021: "C-MOVE",
                 0x0030: "C-ECHO", 0x0100: "N-EVENT-REPORT", 0x0110: "N-GET",
                 0x0120: "N-SET", 0x0130: "N-ACTION", 0x0140: "N-CREATE",
                 0x0150: "N-DELETE", 0x0FFF: "C-CANCEL"}
REQUESTED_SOP_CLASS = 0x0003
REQUESTED_SOP_INSTANCE = 0x1001


def command_name(field: int | None) -> str:
    """``C-STORE-RQ``, ``N-ACTION-RSP``... for a Command Field (``0x....`` if unknown)."""
    if field is None:
        return "(no command field)"
    name = COMMAND_NAMES.get(field & 0x7FFF)
    if name is None:
        return f"0x{field:04X}"
    if name == "C-CANCEL":
        return name
    return f"{name}-{'RSP' if field & 0x8000 else 'RQ'}"


def command_fields(command: dict[int, bytes], context_id: int | None = None
                   ) -> dict[str, Any]:
    """What a log line says of a command set, as fields: ``dimse`` (C-STORE-RQ...),
    ``message_id``, ``context``, ``sop_class``, ``sop_instance``, ``status`` and
    ``data_set``, each only when the command has it."""
    out: dict[str, Any] = {"dimse": command_name(command_us(command, COMMAND_FIELD))}
    message_id = command_us(command, MESSAGE_ID)
    if message_id is None:
        message_id = command_us(command, MESSAGE_ID_RESPONDED)
    if message_id is not None:
        out["message_id"] = message_id
    if context_id is not None:
        out["context"] = context_id
    sop_class = command_text(command, AFFECTED_SOP_CLASS) or \
        command_text(command, REQUESTED_SOP_CLASS)
    if sop_class:
        out["sop_class"] = sop_class
    instance = command_text(command, AFFECTED_SOP_INSTANCE) or \
        command_text(command, REQUESTED_SOP_INSTANCE)
    if instance:
        out["sop_instance"] = instance
    status = command_us(command, STATUS)
    if status is not None:
        out["status"] = f"0x{status:04X}"
    if command_us(command, DATA_SET_TYPE) not in (None, NO_DATA_SET):
        out["data_set"] = True
    return out


def describe_command(fields: dict[str, Any]) -> str:
    """One line for :func:`command_fields`, as printscp's DIMSE log writes it."""
    parts = [fields["dimse"]]
    for key, label in (("message_id", "id"), ("context", "context"), ("sop_class", "class"),
                       ("sop_instance", "instance"), ("status", "status")):
        if key in fields:
            parts.append(f"{label}={fields[key]}")
    if fields.get("data_set"):
        parts.append("with data set")
    return " ".join(parts)


def _pad(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def encode_command(elements: list[tuple[int, bytes]]) -> bytes:
    """An Implicit VR LE command set with its group length; ``elements`` in tag order."""
    body = b"".join(_ELEMENT.pack(0, element, len(value)) + value
                    for element, value in elements)
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<L", len(body)) + body


def ui(uid: str) -> bytes:
    """A UI value, NUL-padded to even length."""
    return _pad(uid.encode("ascii"), b"\0")


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def lo(text: str) -> bytes:
    """An Error Comment (LO, at most 64 characters), space-padded; one value (a
    backslash would make it several)."""
    return _pad(error_comment(text).encode("ascii", "replace"), b" ")


#: Text VRs (of command elements and C-FIND return keys): (padding, 4-byte explicit length).
_TEXT_VRS = {"AE": (b" ", False), "AS": (b" ", False), "CS": (b" ", False),
             "DA": (b" ", False), "DS": (b" ", False), "DT": (b" ", False),
             "IS": (b" ", False), "LO": (b" ", False), "LT": (b" ", False),
             "PN": (b" ", False), "SH": (b" ", False), "ST": (b" ", False),
             "TM": (b" ", False), "UI": (b"\0", False), "UT": (b" ", True),
             "UC": (b" ", True), "UR": (b" ", True)}


_NUMBER = {"US": "H", "SS": "h", "UL": "L", "SL": "l"}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | MultiValue) else [value]


def encode_command_set(ds: Any) -> bytes | None:
    """A pydicom command set (group 0000) in Implicit VR Little Endian, or None when
    it holds an element this encoder does not know (pydicom's encoder then does it).

    Group length included as the data set holds it: pynetdicom encodes every command
    twice through pydicom's validating writer (once to measure it); this is the same
    bytes at a fraction of the cost.
    """
    out = []
    for elem in ds:
        tag, vr, value = elem.tag, elem.VR, elem.value
        if tag.group != 0:
            return None
        if value is None or value == "" or value == []:
            data = b""
        elif vr in _TEXT_VRS:
            data = _encode_text(value, _TEXT_VRS[vr][0])
            if data is None:
                return None
        elif vr in _NUMBER:
            items = _items(value)
            data = struct.pack(f"<{len(items)}{_NUMBER[vr]}", *items)
        elif vr == "AT":
            data = b"".join(struct.pack("<HH", int(t) >> 16, int(t) & 0xFFFF)
                            for t in _items(value))
        else:
            return None
        out.append(_ELEMENT.pack(0, tag.element, len(data)) + data)
    return b"".join(out)


def _text(value: Any) -> str:
    """A value as pydicom writes it: number strings keep the text they were read as."""
    original = getattr(value, "original_string", None)  # DS / IS (PN: bytes)
    return original if isinstance(original, str) else str(value)


def _encode_text(value: Any, pad: bytes) -> bytes | None:
    """A text value (or values) as pydicom writes it, padded; None if not ASCII."""
    text = "" if value is None or value == "" else "\\".join(_text(v) for v in _items(value))
    try:
        return _pad(text.encode("ascii"), pad)
    except UnicodeEncodeError:
        return None


def encode_identifier(ds: Any, implicit_vr: bool) -> bytes | None:
    """A Little Endian C-FIND identifier of text elements, or None when it holds
    anything else (sequences, binary VRs, non-ASCII text): pydicom encodes those.

    pydicom's validating writer takes about 0.3 ms for a 10-key study response, as
    long as the archive's matching for it; the bytes are the same (tested).
    """
    return encode_elements(list(ds), implicit_vr)


def encode_elements(elements: list[Any], implicit_vr: bool) -> bytes | None:
    """:func:`encode_identifier` for data elements already in tag order."""
    out = []
    for elem in elements:
        spec = _TEXT_VRS.get(elem.VR)
        if spec is None:
            return None
        data = _encode_text(elem.value, spec[0])
        if data is None:
            return None
        tag = elem.tag
        if implicit_vr:
            out.append(_ELEMENT.pack(tag.group, tag.element, len(data)))
        elif spec[1]:
            out.append(struct.pack("<HH2s2xL", tag.group, tag.element, elem.VR.encode(),
                                   len(data)))
        elif len(data) > 0xFFFF:
            return None
        else:
            out.append(struct.pack("<HH2sH", tag.group, tag.element, elem.VR.encode(),
                                   len(data)))
        out.append(data)
    return b"".join(out)


def response(command_field: int, message_id: int, sop_class: str, status: int,
             comment: str = "", *, sop_instance: str | None = None, data_set: bool = False,
             counts: list[tuple[int, int]] = (), offending: tuple[int, ...] = ()) -> bytes:
    """A response command set (C-STORE/C-FIND/C-GET-RSP, or any DIMSE-N-RSP without a
    data set), elements in tag order: the ``offending`` elements' tags as Offending
    Element (0000,0901) and an Error Comment when given, sub-operation ``counts`` as
    (element, value)."""
    elements = [(AFFECTED_SOP_CLASS, ui(sop_class)), (COMMAND_FIELD, us(command_field)),
                (MESSAGE_ID_RESPONDED, us(message_id)),
                (DATA_SET_TYPE, us(0x0001 if data_set else NO_DATA_SET)), (STATUS, us(status))]
    if offending:
        elements.append((OFFENDING_ELEMENT, b"".join(
            struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in offending)))
    if comment:
        elements.append((ERROR_COMMENT, lo(comment)))
    if sop_instance is not None:
        elements.append((AFFECTED_SOP_INSTANCE, ui(sop_instance)))
    elements += [(element, us(value)) for element, value in counts]
    return encode_command(elements)


def store_response(message_id: int, sop_class: str, sop_instance: str, status: int,
                   comment: str = "", offending: tuple[int, ...] = ()) -> bytes:
    """The C-STORE-RSP command set pynetdicom would send for these values."""
    return response(C_STORE_RSP, message_id, sop_class, status, comment,
                    sop_instance=sop_instance, offending=offending)


def store_request(message_id: int, sop_class: str, sop_instance: str, priority: int = 2,
                  move_originator: tuple[str, int] | None = None) -> bytes:
    """A C-STORE-RQ command set (with a data set), as pynetdicom encodes it."""
    elements = [(AFFECTED_SOP_CLASS, ui(sop_class)), (COMMAND_FIELD, us(C_STORE_RQ)),
                (MESSAGE_ID, us(message_id)), (PRIORITY, us(priority)),
                (DATA_SET_TYPE, us(0x0001)), (AFFECTED_SOP_INSTANCE, ui(sop_instance))]
    if move_originator is not None:
        aet, msg_id = move_originator
        elements += [(MOVE_ORIGINATOR_AE, _pad(aet.encode("ascii"), b" ")),
                     (MOVE_ORIGINATOR_ID, us(msg_id))]
    return encode_command(elements)


def message_fragments(command: bytes, data_set: bytes | memoryview | None, max_pdu: int
                      ) -> Iterator[tuple[int, memoryview]]:
    """(message control header, value) of each PDV carrying one message, one PDV per
    PDU of at most ``max_pdu`` bytes (the peer's Maximum Length Received; 0: no limit).
    Values are views of ``command`` and ``data_set``: a large data set is not copied."""
    room = (max_pdu - 6) if max_pdu else 1 << 31  # PDV value room after its 6-byte header
    parts = [(command, 0x03, 0x01)]
    if data_set is not None:
        parts.append((data_set, 0x02, 0x00))
    for data, last, more in parts:
        view = memoryview(data).cast("B")
        offset = 0
        while True:
            chunk = view[offset:offset + room]
            offset += len(chunk)
            yield (last if offset >= len(view) else more), chunk
            if offset >= len(view):
                break


def message_pdus(context_id: int, command: bytes, data_set: bytes | memoryview | None,
                 max_pdu: int) -> Iterator[bytes | memoryview]:
    """The buffers of the P-DATA-TF PDUs carrying one message: each PDU's headers, then
    its value (a view, see :func:`message_fragments`)."""
    for control, chunk in message_fragments(command, data_set, max_pdu):
        yield _PDU.pack(P_DATA_TF, 0, len(chunk) + 6) + _PDV.pack(len(chunk) + 2,
                                                                 context_id, control)
        yield chunk


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, prefix and File Meta Information as pynetdicom's
    ``Event.encoded_dataset(include_meta=True)`` writes them (PS3.10 7.1)."""
    def element(elem: int, vr: bytes, value: bytes) -> bytes:
        if vr == b"OB":
            return struct.pack("<HH2s2xL", 2, elem, vr, len(value)) + value
        return struct.pack("<HH2sH", 2, elem, vr, len(value)) + value

    body = b"".join((
        element(0x0001, b"OB", b"\x00\x01"),
        element(0x0002, b"UI", ui(sop_class)),
        element(0x0003, b"UI", ui(sop_instance)),
        element(0x0010, b"UI", ui(transfer_syntax)),
        element(0x0012, b"UI", ui(PYNETDICOM_IMPLEMENTATION_UID)),
        element(0x0013, b"SH", _pad(PYNETDICOM_IMPLEMENTATION_VERSION.encode(), b" ")),
    ))
    return (b"\0" * 128 + b"DICM" + element(0x0000, b"UL", struct.pack("<L", len(body)))
            + body)


def data_set_offset(part10: bytes | memoryview) -> int:
    """Where the data set starts in a Part 10 file: after preamble, prefix and the
    File Meta Information group, whose (0002,0000) group length says how long it is."""
    view = memoryview(part10)
    if len(view) < 144 or bytes(view[128:132]) != b"DICM" or \
            bytes(view[132:138]) != b"\x02\x00\x00\x00UL" or \
            struct.unpack_from("<H", view, 138)[0] != 4:
        raise PDataError("not a Part 10 file with a File Meta Information group length")
    return 144 + struct.unpack_from("<L", view, 140)[0]


@dataclass(frozen=True)
class SizeLimit:
    """The largest data set one request may send, and how a larger one is answered:
    the status (0xA700 Refused: Out of Resources for a C-STORE, 0xC605 Insufficient
    memory in printer for an Image Box N-SET...), what the Error Comment calls it, and
    who sent it (for the log line)."""

    max_bytes: int
    status: int
    what: str  #: "C-STORE data set"
    peer: str = ""  #: "AE@host"


#: ``limit(command)`` -> the :class:`SizeLimit` of the request ``command``, or None.
Limits = Callable[[dict[int, bytes]], "SizeLimit | None"]
#: The limits of each node's AE, found by an association through ``assoc.ae``.
_LIMITS: weakref.WeakKeyDictionary[Any, Callable[[Any, dict[int, bytes]], SizeLimit | None]] \
    = weakref.WeakKeyDictionary()


def limit_data_sets(ae: Any, limit: Callable[[Any, dict[int, bytes]], SizeLimit | None]
                    ) -> None:
    """Give the associations of ``ae`` a data set size limit: ``limit(assoc, command)``
    is asked once per request, as soon as its command set is in."""
    _LIMITS[ae] = limit


def new_message(assoc: Any) -> MessageAssembler:
    """The assembler of the next message on ``assoc``, with its node's size limits."""
    limit = _LIMITS.get(getattr(assoc, "ae", None)) if assoc is not None else None
    if limit is None:
        return MessageAssembler()
    return MessageAssembler(limits=lambda command: limit(assoc, command))


def refusal(command: dict[int, bytes], status: int, comment: str = "",
            offending: tuple[int, ...] = ()) -> bytes:
    """The response command set refusing the request ``command`` with ``status``: its
    Command Field with bit 15 set, the Message ID it answers, and its SOP Class and
    Instance (Affected, or Requested for N-SET/N-ACTION/N-DELETE/N-GET) as Affected."""
    field_ = command_us(command, COMMAND_FIELD) or 0
    sop_class = command_text(command, AFFECTED_SOP_CLASS) or \
        command_text(command, REQUESTED_SOP_CLASS)
    instance = command_text(command, AFFECTED_SOP_INSTANCE) or \
        command_text(command, REQUESTED_SOP_INSTANCE)
    return response(field_ | 0x8000, command_us(command, MESSAGE_ID) or 0, sop_class, status,
                    comment, sop_instance=instance or None, offending=offending)


@dataclass
class MessageAssembler:
    """Collects one DIMSE message's fragments from successive P-DATA-TF PDUs.

    ``add`` returns True once the message is complete: the command's last fragment
    arrived and, when the command announces a data set, the data set's last too.
    Fragments are kept as views of the PDU buffers they arrived in (no copy).
    """

    context_id: int | None = None
    parts: list[tuple[int, memoryview]] = field(default_factory=list)
    command: dict[int, bytes] | None = None
    complete: bool = False
    #: What goes before the data set in the file it will be stored as (None: not
    #: decided yet, empty: no file); with it, the file's SHA-256 is taken as the data
    #: set's fragments arrive, between reads (hashlib releases the GIL).
    prefix: bytes | None = None
    hasher: Any = None
    #: The request's size limit (asked of ``limits`` once the command set is in).
    limits: Limits | None = None
    size_limit: SizeLimit | None = None
    #: Data set bytes received; past the limit they are counted and dropped.
    data_bytes: int = 0
    #: The response refusing the message, once a data set over its limit ended: the
    #: message is answered with it, never served.
    refused: bytes | None = None

    def start_file(self, prefix: bytes) -> None:
        """Hash the file ``prefix`` + data set from here on (data set not begun yet)."""
        self.prefix = prefix
        if prefix:
            self.hasher = hashlib.sha256(prefix)

    def add(self, context_id: int, control: int, fragment: memoryview) -> bool:
        if self.complete:
            raise PDataError("a PDV after the end of its message")
        if self.context_id is None:
            self.context_id = context_id
        elif context_id != self.context_id:
            raise PDataError(f"PDV for context {context_id} inside a message on "
                             f"context {self.context_id}")
        if control & 1:
            self.parts.append((control, fragment))
            if self.command is not None:
                raise PDataError("command fragment after the command set ended")
            if control & 2:
                self.command = parse_command(b"".join(f for c, f in self.parts if c & 1))
                if command_us(self.command, DATA_SET_TYPE) in (None, NO_DATA_SET):
                    self.complete = True
                elif self.limits is not None:
                    self.size_limit = self.limits(self.command)
        else:
            if self.command is None:
                raise PDataError("data set fragment before the command set ended")
            self.data_bytes += len(fragment)
            limit = self.size_limit
            if limit is not None and self.data_bytes > limit.max_bytes:
                if self.data_bytes - len(fragment) <= limit.max_bytes:
                    self._drop_data_set(limit)  # crossed it with this fragment
            else:
                self.parts.append((control, fragment))
                if self.hasher is not None:
                    self.hasher.update(fragment)
            if control & 2:
                self.complete = True
                if self.refused is None and limit is not None and \
                        self.data_bytes > limit.max_bytes:
                    self.refused = refusal(
                        self.command or {}, limit.status,
                        f"{limit.what} over {limit.max_bytes >> 20} MiB")
        return self.complete

    def _drop_data_set(self, limit: SizeLimit) -> None:
        """Past the limit: what was kept of the data set goes, and so does the rest as
        it comes (the peer may not be interrupted mid-message, PS3.8 9.3.5: it is
        answered once its last fragment is in)."""
        LOGGER.warning("%s from %s: %s over the %d MiB accepted ([limits]); the rest "
                       "is discarded and the request refused (0x%04X)",
                       command_name(command_us(self.command or {}, COMMAND_FIELD)),
                       limit.peer or "the peer", limit.what, limit.max_bytes >> 20,
                       limit.status, extra={"limit": limit.what, "status": limit.status})
        self.parts = [(c, f) for c, f in self.parts if c & 1]
        self.hasher = None

    def file_bytes(self) -> bytes:
        """:attr:`prefix` and the data set, in one buffer (one copy)."""
        return b"".join([self.prefix or b"", *(f for c, f in self.parts if not c & 1)])

    def data_set(self) -> bytes:
        return b"".join(f for c, f in self.parts if not c & 1)

    def data_set_stream(self) -> io.BytesIO:
        """The data set in a BytesIO of its own (one copy, sized once), as pynetdicom
        hands a request's data set to its handlers; the stream is the reader's to
        keep, and ``getbuffer()`` on it is writable and copies nothing."""
        fragments = [f for c, f in self.parts if not c & 1]
        stream = io.BytesIO()
        size = sum(len(f) for f in fragments)
        if size:
            stream.seek(size - 1)
            stream.write(b"\0")  # the buffer allocated once, at its size
            stream.seek(0)
            for fragment in fragments:
                stream.write(fragment)
            stream.seek(0)
        return stream

    def pdv_list(self) -> list[list[int | bytes]]:
        """The fragments as a P-DATA primitive's presentation data value list."""
        return [[self.context_id or 0, bytes((c,)) + bytes(f)] for c, f in self.parts]
