r"""HL7 v2 messages: parsing (with the ``hl7`` library), field access, acknowledgements.

Parsing honours the encoding characters the message declares in MSH-1/2 (``hl7``
splits by them), so a RIS using ``#`` as its field separator is read as well as one
using ``|``; segment separators ``\r``, ``\r\n`` and ``\n`` are all accepted (files and
some interface engines use the latter two), and MLLP framing bytes left on a message are
dropped.  Values are unescaped (``\F\ \S\ \T\ \R\ \E\``, ``\Xhh\``) after splitting, as
HL7 v2.5.1 2.7 says.  The text is decoded per MSH-18 (``UNICODE UTF-8``, ``8859/1``...),
else as UTF-8, else as Latin-1.

Acknowledgements follow HL7 v2.5.1 chapter 2 (original mode): MSH with the sending and
receiving application/facility swapped, MSH-9 ``ACK^<trigger>^ACK``, MSA-1 AA/AE/AR,
MSA-2 the message's control id, and one ERR per problem with ERR-2 (location: segment,
sequence, field, repetition, component), ERR-3 (table 0357 code), ERR-4 (severity) and
ERR-8 (the text for a person); ERR-1 carries the v2.3-style location and code too, for
receivers of older versions.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum

import hl7

__all__ = [
    "CHARSETS",
    "AckCode",
    "ErrorCode",
    "Header",
    "Hl7Error",
    "Location",
    "Parsed",
    "build_ack",
    "parse",
]


class AckCode(StrEnum):
    """MSA-1 Acknowledgment Code (HL7 table 0008, original mode)."""

    ACCEPT = "AA"  #: applied
    ERROR = "AE"  #: application error: understood but not applied
    REJECT = "AR"  #: rejected: unparseable, or a type/version not supported


class ErrorCode(IntEnum):
    """HL7 table 0357, Message error condition codes."""

    ACCEPTED = 0
    SEGMENT_SEQUENCE_ERROR = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT_CODE = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION_ID = 203
    UNKNOWN_KEY_IDENTIFIER = 204
    DUPLICATE_KEY_IDENTIFIER = 205
    APPLICATION_RECORD_LOCKED = 206
    APPLICATION_INTERNAL_ERROR = 207

    @property
    def text(self) -> str:
        """The table's own wording (ERR-3.2)."""
        return _ERROR_TEXTS[self]


_ERROR_TEXTS = {
    ErrorCode.ACCEPTED: "Message accepted", ErrorCode.SEGMENT_SEQUENCE_ERROR:
    "Segment sequence error", ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE_ERROR: "Data type error", ErrorCode.TABLE_VALUE_NOT_FOUND:
    "Table value not found", ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


@dataclass(frozen=True)
class Location:
    """ERR-2 Error Location (ERL): segment, its sequence (1 = first), field, ..."""

    segment: str
    field: int = 0
    component: int = 0
    sequence: int = 1
    repetition: int = 0

    def __str__(self) -> str:
        text = f"{self.segment}-{self.field}" if self.field else self.segment
        return f"{text}.{self.component}" if self.component else text


@dataclass
class Hl7Error(Exception):
    """A reason not to apply a message, as one ERR segment."""

    code: ErrorCode
    message: str
    location: Location | None = None
    severity: str = "E"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message} ({int(self.code)} {self.code.text})"

    @property
    def reject(self) -> bool:
        """AR rather than AE: the message itself is not acceptable (table 0357 2xx
        codes on the header, parse errors)."""
        return self.code in (ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
                             ErrorCode.UNSUPPORTED_EVENT_CODE,
                             ErrorCode.UNSUPPORTED_PROCESSING_ID,
                             ErrorCode.UNSUPPORTED_VERSION_ID) or (
            self.location is not None and self.location.segment == "MSH")


@dataclass(frozen=True)
class Header:
    """What the MSH says, unescaped."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    time: str = ""
    message_type: str = ""  #: MSH-9.1, e.g. ORM
    trigger: str = ""  #: MSH-9.2, e.g. O01
    control_id: str = ""  #: MSH-10
    processing_id: str = ""  #: MSH-11
    version: str = ""  #: MSH-12
    charset: str = ""  #: MSH-18

    @property
    def type(self) -> str:
        return f"{self.message_type}^{self.trigger}" if self.trigger else self.message_type


@dataclass
class Parsed:
    """A parsed message: its header, its segments, and the text it came as."""

    text: str
    message: hl7.Message
    header: Header
    segments: list[hl7.Segment] = field(default_factory=list)

    def value(self, segment: hl7.Segment, fld: int, component: int = 1,
              subcomponent: int = 1, repetition: int = 1) -> str:
        """One value, unescaped; "" when absent (missing optional fields are fine).
        ``component``/``subcomponent`` 0: the whole field / component, still escaped
        apart from what is below it."""
        return self.unescape(raw_value(segment, fld, component, subcomponent, repetition))

    def repetitions(self, segment: hl7.Segment, fld: int) -> int:
        if fld >= len(segment):
            return 0
        f = segment[fld]
        if isinstance(f, hl7.Field) and f and isinstance(f[0], hl7.Repetition):
            return len(f)
        return 1 if str(f) else 0

    def unescape(self, text: str) -> str:
        if not text or self.message.esc not in text:
            return text
        try:
            return self.message.unescape(text)
        except Exception:  # a malformed escape: the text as sent
            return text

    def first(self, name: str) -> hl7.Segment | None:
        return next((s for s in self.segments if str(s[0]) == name), None)

    def all(self, name: str) -> list[hl7.Segment]:
        return [s for s in self.segments if str(s[0]) == name]


def raw_value(segment: hl7.Segment, fld: int, component: int = 1, subcomponent: int = 1,
              repetition: int = 1) -> str:
    """The value at a position, escaped as sent; "" when absent."""
    if fld >= len(segment):
        return ""
    node: object = segment[fld]
    if isinstance(node, str):
        return node if (component <= 1 and subcomponent <= 1) else ""
    # Field -> Repetition -> Component -> subcomponents (the hl7 library's nesting,
    # present only as deep as the value has separators).
    if isinstance(node, hl7.Field) and node and isinstance(node[0], hl7.Repetition):
        if repetition > len(node):
            return ""
        node = node[repetition - 1]
    elif repetition > 1:
        return ""
    if component == 0:
        return str(node)
    for index in (component, subcomponent):
        if isinstance(node, str):
            return node if index <= 1 else ""
        seq = list(node)  # type: ignore[call-overload]
        if not seq:
            return ""
        if not isinstance(seq[0], hl7.containers.Sequence) and len(seq) == 1 \
                and isinstance(seq[0], str):
            node = seq[0]
            if index > 1:
                return ""
            continue
        if index == 0:
            return str(node)
        if index > len(seq):
            return ""
        node = seq[index - 1]
    while not isinstance(node, str):
        seq = list(node)  # type: ignore[call-overload]
        if not seq:
            return ""
        node = seq[0]
    return node


#: MSH-18 Character Set (HL7 table 0211) -> Python codec.
CHARSETS = {"UNICODE UTF-8": "utf-8", "UNICODE": "utf-8", "UTF-8": "utf-8",
             "8859/1": "latin-1", "8859/15": "iso8859-15", "ASCII": "ascii",
             "8859/2": "iso8859-2", "8859/5": "iso8859-5", "8859/7": "iso8859-7",
             "8859/9": "iso8859-9", "ISO IR100": "latin-1", "ISO IR192": "utf-8"}
_FRAMING = b"\x0b\x1c"


def _decode(raw: bytes) -> str:
    raw = raw.strip(_FRAMING + b"\r\n\x00 ")
    first = raw.split(b"\r", 1)[0].split(b"\n", 1)[0]
    charset = ""
    if len(first) > 4:
        fields = first.split(first[3:4])
        if len(fields) > 17:
            charset = fields[17].split(first[4:5] or b"^")[0].decode("ascii", "replace")
    codec = CHARSETS.get(charset.strip().upper())
    if codec:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


def parse(raw: bytes | str) -> Parsed:
    """Parse one message; :class:`Hl7Error` (for an AR) when it is no HL7 v2 message."""
    text = raw if isinstance(raw, str) else _decode(raw)
    text = text.strip("\x0b\x1c\r\n\x00 ")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    lines = [line for line in text.split("\r") if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                       "the message does not begin with an MSH segment", Location("MSH"))
    msh = lines[0]
    separator, encoding = msh[3], msh[4:8]
    if separator.isalnum() or separator in "\r\n ":
        raise Hl7Error(ErrorCode.DATA_TYPE_ERROR,
                       f"MSH-1 field separator {separator!r} is not a delimiter",
                       Location("MSH", 1))
    declared = msh[4:].split(separator, 1)[0]
    if len(declared) < 4 or len(set(declared[:4])) < 4 or separator in declared \
            or any(c.isalnum() or c.isspace() for c in declared[:4]):
        raise Hl7Error(ErrorCode.DATA_TYPE_ERROR,
                       f"MSH-2 encoding characters {declared!r} are not four distinct "
                       "delimiters (component, repetition, escape, subcomponent)",
                       Location("MSH", 2))
    encoding = declared[:4]
    for n, line in enumerate(lines[1:], 2):
        name = line.split(separator, 1)[0]
        if not _SEGMENT_NAME.match(name):
            raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR,
                           f"segment {n} has no valid segment ID ({name[:10]!r})",
                           Location(name[:3] or "?", 0, sequence=n))
    del encoding
    try:
        message = hl7.parse("\r".join(lines))
    except Exception as exc:
        raise Hl7Error(ErrorCode.DATA_TYPE_ERROR, f"not parseable as HL7 v2: {exc}",
                       Location("MSH")) from None
    segments = list(message)
    parsed = Parsed("\r".join(lines), message, Header(), segments)
    m = segments[0]

    def v(fld: int, comp: int = 1) -> str:
        return parsed.value(m, fld, comp)

    parsed.header = Header(
        sending_application=v(3), sending_facility=v(4), receiving_application=v(5),
        receiving_facility=v(6), time=v(7), message_type=v(9, 1), trigger=v(9, 2),
        control_id=v(10), processing_id=v(11), version=v(12, 1), charset=v(18))
    if not parsed.header.message_type:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9 message type is empty",
                       Location("MSH", 9))
    if not parsed.header.control_id:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                       "MSH-10 message control ID is empty", Location("MSH", 10))
    return parsed


def header_guess(raw: bytes | str) -> Header:
    """What can be read of the MSH of a message :func:`parse` rejected (for its AR)."""
    text = raw if isinstance(raw, str) else _decode(raw)
    text = text.strip("\x0b\x1c\r\n\x00 ").replace("\n", "\r")
    first = text.split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 4:
        return Header()
    fields = first.split(first[3])
    comp = first[4] if len(first) > 4 and not first[4].isalnum() else "^"

    def f(n: int, c: int = 0) -> str:
        value = fields[n - 1] if 0 < n - 1 < len(fields) else ""  # MSH-n = fields[n-1]
        return value.split(comp)[c] if c < len(value.split(comp)) else ""

    return Header(f(3), f(4), f(5), f(6), "", f(9, 0), f(9, 1), f(10), f(11), f(12))


# -- acknowledgements ---------------------------------------------------------------
_control_ids = itertools.count(1)


def _escape(text: str) -> str:
    """Escape text for an ACK that uses the standard ``|^~\\&`` delimiters."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    out = out.replace("&", "\\T\\").replace("~", "\\R\\")
    return out.replace("\r", " ").replace("\n", " ")


def _now() -> str:
    return datetime.now().astimezone().strftime("%Y%m%d%H%M%S%z")


def build_ack(header: Header, code: AckCode, errors: list[Hl7Error] = (),  # type: ignore[assignment]
              text: str = "", *, application: str = "PRINTSCP", facility: str = "") -> str:
    """The ACK (original mode) for a message with ``header``."""
    e = _escape
    control = f"ACK{os.getpid()}{next(_control_ids):08d}{datetime.now():%H%M%S}"[:20]
    msh = "|".join([
        "MSH", "^~\\&", e(header.receiving_application or application),
        e(header.receiving_facility or facility), e(header.sending_application),
        e(header.sending_facility), _now(), "",
        f"ACK^{e(header.trigger)}^ACK" if header.trigger else "ACK",
        control, e(header.processing_id or "P"), e(header.version or "2.5.1")])
    if header.charset:
        msh += "|" * 6 + e(header.charset)
    summary = text or (errors[0].message if errors else "")
    lines = [msh, "|".join(["MSA", str(code), e(header.control_id), e(summary)[:80]])]
    for err in errors:
        loc = err.location
        erl = ""
        eld = ""
        if loc is not None:
            erl = "^".join([loc.segment, str(loc.sequence), str(loc.field or ""),
                            str(loc.repetition or (1 if loc.field else "")),
                            str(loc.component or "")]).rstrip("^")
            eld = "^".join([loc.segment, str(loc.sequence), str(loc.field or "")])
        cwe = f"{int(err.code)}^{e(err.code.text)}^HL70357"
        eld = f"{eld}^{int(err.code)}&{e(err.code.text)}&HL70357" if eld else \
            f"^^^{int(err.code)}&{e(err.code.text)}&HL70357"
        lines.append("|".join(["ERR", eld, erl, cwe, err.severity, "", "", "",
                               e(err.message)]))
    return "\r".join(lines) + "\r"
