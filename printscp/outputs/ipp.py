"""A minimal IPP/1.1 client: Print-Job, Get-Job-Attributes, Get-Printer-Attributes.

Only the standard library (``http.client``): the server must print on any Linux box
with a CUPS queue without compiling pycups against libcups.  The message encoding is
RFC 8010 section 3 exactly (including collections, so any printer's answer decodes);
the operations and their attribute groups and ordering are RFC 8011 section 4; status
codes and enum values are the registered IANA ones.

Errors are one exception type, :class:`IppError`, with ``retriable`` telling the
caller whether trying again later can succeed: a spooler that is down, busy or not
accepting jobs will recover, a request the printer rejects as wrong will not.  A
Print-Job whose answer is lost (timeout after sending) is reported retriable too; the
printer may then have printed it, so a retry can duplicate a print.  Callers that
cannot accept that should check the queue (Get-Jobs) before retrying.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import ssl
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

log = logging.getLogger(__name__)

IPP_VERSION = (1, 1)
DEFAULT_PORT = 631

# Operation ids (RFC 8011 section 5.4.15).
PRINT_JOB = 0x0002
VALIDATE_JOB = 0x0004
CANCEL_JOB = 0x0008
GET_JOB_ATTRIBUTES = 0x0009
GET_PRINTER_ATTRIBUTES = 0x000B

# Delimiter tags (RFC 8010 section 3.5.1).
OPERATION_ATTRIBUTES = 0x01
JOB_ATTRIBUTES = 0x02
END_OF_ATTRIBUTES = 0x03
PRINTER_ATTRIBUTES = 0x04
UNSUPPORTED_ATTRIBUTES = 0x05

# Value tags (RFC 8010 section 3.5.2).
UNSUPPORTED = 0x10
UNKNOWN = 0x12
NO_VALUE = 0x13
INTEGER = 0x21
BOOLEAN = 0x22
ENUM = 0x23
OCTET_STRING = 0x30
DATETIME = 0x31
RESOLUTION = 0x32
RANGE_OF_INTEGER = 0x33
BEGIN_COLLECTION = 0x34
TEXT_WITH_LANGUAGE = 0x35
NAME_WITH_LANGUAGE = 0x36
END_COLLECTION = 0x37
TEXT = 0x41
NAME = 0x42
KEYWORD = 0x44
URI = 0x45
URI_SCHEME = 0x46
CHARSET = 0x47
NATURAL_LANGUAGE = 0x48
MIME_MEDIA_TYPE = 0x49
MEMBER_ATTR_NAME = 0x4A

#: Status codes (RFC 8011 section 5.4.15 / IANA) by value, for messages.
STATUS_NAMES: dict[int, str] = {
    0x0000: "successful-ok",
    0x0001: "successful-ok-ignored-or-substituted-attributes",
    0x0002: "successful-ok-conflicting-attributes",
    0x0400: "client-error-bad-request",
    0x0401: "client-error-forbidden",
    0x0402: "client-error-not-authenticated",
    0x0403: "client-error-not-authorized",
    0x0404: "client-error-not-possible",
    0x0405: "client-error-timeout",
    0x0406: "client-error-not-found",
    0x0407: "client-error-gone",
    0x0408: "client-error-request-entity-too-large",
    0x0409: "client-error-request-value-too-long",
    0x040A: "client-error-document-format-not-supported",
    0x040B: "client-error-attributes-or-values-not-supported",
    0x040C: "client-error-uri-scheme-not-supported",
    0x040D: "client-error-charset-not-supported",
    0x040E: "client-error-conflicting-attributes",
    0x040F: "client-error-compression-not-supported",
    0x0410: "client-error-compression-error",
    0x0411: "client-error-document-format-error",
    0x0412: "client-error-document-access-error",
    0x0500: "server-error-internal-error",
    0x0501: "server-error-operation-not-supported",
    0x0502: "server-error-service-unavailable",
    0x0503: "server-error-version-not-supported",
    0x0504: "server-error-device-error",
    0x0505: "server-error-temporary-error",
    0x0506: "server-error-not-accepting-jobs",
    0x0507: "server-error-busy",
    0x0508: "server-error-job-canceled",
    0x0509: "server-error-multiple-document-jobs-not-supported",
}

#: Server errors that no retry will cure: the endpoint does not speak this operation
#: or version at all.  Every other server-error-* is a state the printer leaves.
_PERMANENT_SERVER_ERRORS = frozenset({0x0501, 0x0503, 0x0509})

#: job-state enum (RFC 8011 section 5.3.7).
JOB_STATES: dict[int, str] = {
    3: "pending", 4: "pending-held", 5: "processing", 6: "processing-stopped",
    7: "canceled", 8: "aborted", 9: "completed",
}
#: Job states after which the job never changes again.
TERMINAL_JOB_STATES = frozenset({"canceled", "aborted", "completed"})
#: printer-state enum (RFC 8011 section 5.4.11).
PRINTER_STATES: dict[int, str] = {3: "idle", 4: "processing", 5: "stopped"}

#: Job Template attributes whose integer values are enums (orientation-requested,
#: print-quality, finishings); every other int is an ``integer``.
_ENUM_ATTRIBUTES = frozenset({"orientation-requested", "print-quality", "finishings"})
#: Job attributes whose strings are ``name`` (free text), not ``keyword``.
_NAME_ATTRIBUTES = frozenset({"job-name", "document-name", "job-sheets-message"})


class IppError(Exception):
    """An IPP request failed.

    ``status`` is the IPP status code when the printer answered (None for transport
    failures and HTTP errors); ``retriable`` is true when the same request may succeed
    later: connection errors, timeouts, HTTP 5xx, and server-error-* statuses such as
    busy, service-unavailable or not-accepting-jobs.  client-error-* never are.
    """

    def __init__(self, message: str, *, status: int | None = None,
                 retriable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retriable = retriable


def status_retriable(status: int) -> bool:
    """Whether an IPP status code names a condition a later retry can get past."""
    return 0x0500 <= status <= 0x05FF and status not in _PERMANENT_SERVER_ERRORS


def status_name(status: int) -> str:
    """The registered keyword of an IPP status code (hex when unregistered)."""
    return STATUS_NAMES.get(status, f"status-0x{status:04x}")


@dataclass
class Attribute:
    """One attribute: its name, value tag, and values (one per 1setOf member).

    Values by tag: int (integer, enum), bool, str (text, name, keyword, uri, ...),
    bytes (octetString, unknown tags), datetime, (x, y, units) resolution, (low, high)
    rangeOfInteger, (text, language) for the with-language forms, None for out-of-band
    values, and a list of member :class:`Attribute` for a collection.
    """

    name: str
    tag: int
    values: list[Any] = field(default_factory=list)


@dataclass
class Group:
    """An attribute group (operation, job, printer, unsupported attributes)."""

    tag: int
    attributes: list[Attribute] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Attributes by name; one value as itself, several as a list."""
        return {a.name: _plain(a) for a in self.attributes}


def _plain(attr: Attribute) -> Any:
    values = [{m.name: _plain(m) for m in v} if attr.tag == BEGIN_COLLECTION else v
              for v in attr.values]
    return values[0] if len(values) == 1 else values


@dataclass
class Message:
    """An IPP request or response (RFC 8010 section 3.1).

    ``code`` is the operation-id of a request or the status-code of a response: the
    two share the same two octets.
    """

    version: tuple[int, int]
    code: int
    request_id: int
    groups: list[Group] = field(default_factory=list)
    data: bytes = b""

    def group(self, tag: int) -> Group | None:
        """The first group with delimiter ``tag``, if any."""
        return next((g for g in self.groups if g.tag == tag), None)

    def header(self) -> bytes:
        """Everything but the data: version, code, request id, groups, end tag."""
        out = bytearray(struct.pack(">BBHi", *self.version, self.code, self.request_id))
        for group in self.groups:
            out.append(group.tag)
            for attr in group.attributes:
                _encode_attribute(out, attr)
        out.append(END_OF_ATTRIBUTES)
        return bytes(out)

    def encode(self) -> bytes:
        """The whole message as sent on the wire."""
        return self.header() + self.data

    @classmethod
    def decode(cls, raw: bytes) -> Message:
        """Parse a message; :class:`IppError` (not retriable) if it is malformed."""
        return _Reader(raw).message()


# --- encoding ----------------------------------------------------------------------

def _encode_attribute(out: bytearray, attr: Attribute) -> None:
    values = attr.values or [None]
    for i, value in enumerate(values):
        name = attr.name.encode() if i == 0 else b""
        out += struct.pack(">BH", attr.tag, len(name)) + name
        _encode_value(out, attr.tag, value)


def _encode_value(out: bytearray, tag: int, value: Any) -> None:
    if tag == BEGIN_COLLECTION:
        out += b"\x00\x00"
        for member in value:
            name = member.name.encode()
            out += struct.pack(">BHH", MEMBER_ATTR_NAME, 0, len(name)) + name
            for v in member.values or [None]:
                out += struct.pack(">BH", member.tag, 0)
                _encode_value(out, member.tag, v)
        out += struct.pack(">BHH", END_COLLECTION, 0, 0)
        return
    raw = _value_bytes(tag, value)
    if len(raw) > 0xFFFF:
        raise ValueError(f"IPP value longer than 65535 octets (tag 0x{tag:02x})")
    out += struct.pack(">H", len(raw)) + raw


def _value_bytes(tag: int, value: Any) -> bytes:
    if value is None or UNSUPPORTED <= tag <= 0x1F:
        return b""
    if tag in (INTEGER, ENUM):
        return struct.pack(">i", value)
    if tag == BOOLEAN:
        return b"\x01" if value else b"\x00"
    if tag == DATETIME:
        offset = value.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign = b"+" if minutes >= 0 else b"-"
        return struct.pack(">HBBBBBB", value.year, value.month, value.day, value.hour,
                           value.minute, value.second, value.microsecond // 100_000
                           ) + sign + bytes(divmod(abs(minutes), 60))
    if tag == RESOLUTION:
        return struct.pack(">iib", *value)
    if tag == RANGE_OF_INTEGER:
        return struct.pack(">ii", *value)
    if tag in (TEXT_WITH_LANGUAGE, NAME_WITH_LANGUAGE):
        text, language = (s.encode() for s in value)
        return struct.pack(">H", len(language)) + language + struct.pack(">H", len(text)) + text
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


# --- decoding ----------------------------------------------------------------------

class _Reader:
    """A cursor over a received message; every overrun is a malformed message."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.raw):
            raise IppError(f"truncated IPP message ({len(self.raw)} octets)")
        chunk = self.raw[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def message(self) -> Message:
        major, minor, code, request_id = struct.unpack(">BBHi", self.take(8))
        groups: list[Group] = []
        while True:
            tag = self.u8()
            if tag == END_OF_ATTRIBUTES:
                break
            if tag < 0x10:
                groups.append(Group(tag))
                continue
            name = self.take(self.u16()).decode("utf-8", "replace")
            value = self.value(tag)
            if not groups:
                raise IppError("IPP attribute outside any attribute group")
            attrs = groups[-1].attributes
            if name:
                attrs.append(Attribute(name, tag, [value]))
            elif attrs:
                attrs[-1].values.append(value)  # additional value of a 1setOf
            else:
                raise IppError("IPP additional value without an attribute")
        return Message((major, minor), code, request_id, groups, self.raw[self.pos:])

    def value(self, tag: int) -> Any:
        raw = self.take(self.u16())
        if tag == BEGIN_COLLECTION:
            return self.collection()
        return _decode_value(tag, raw)

    def collection(self) -> list[Attribute]:
        members: list[Attribute] = []
        while True:
            tag = self.u8()
            self.take(self.u16())  # member values carry no name
            if tag == END_COLLECTION:
                self.take(self.u16())
                return members
            if tag == MEMBER_ATTR_NAME:
                members.append(Attribute(self.take(self.u16()).decode("utf-8", "replace"), 0))
                continue
            if not members:
                raise IppError("IPP collection value without a member name")
            member = members[-1]
            if not member.tag:
                member.tag = tag
            member.values.append(self.value(tag))


def _decode_value(tag: int, raw: bytes) -> Any:
    try:
        if UNSUPPORTED <= tag <= 0x1F:
            return None
        if tag in (INTEGER, ENUM):
            return struct.unpack(">i", raw)[0]
        if tag == BOOLEAN:
            return raw != b"\x00"
        if tag == DATETIME:
            year, month, day, hour, minute, second, deci = struct.unpack(">HBBBBBB", raw[:8])
            offset = timedelta(hours=raw[9], minutes=raw[10])
            tz = timezone(offset if raw[8:9] == b"+" else -offset)
            return datetime(year, month, day, hour, minute, second, deci * 100_000, tz)
        if tag == RESOLUTION:
            return struct.unpack(">iib", raw)
        if tag == RANGE_OF_INTEGER:
            return struct.unpack(">ii", raw)
        if tag in (TEXT_WITH_LANGUAGE, NAME_WITH_LANGUAGE):
            n = struct.unpack(">H", raw[:2])[0]
            language = raw[2:2 + n].decode()
            m = struct.unpack(">H", raw[2 + n:4 + n])[0]
            return (raw[4 + n:4 + n + m].decode("utf-8", "replace"), language)
        if 0x40 <= tag <= 0x5F:
            return raw.decode("utf-8", "replace")
    except (struct.error, ValueError, IndexError) as exc:
        raise IppError(f"malformed IPP value (tag 0x{tag:02x}): {exc}") from exc
    return raw


# --- transport ---------------------------------------------------------------------

_request_ids = itertools.count(1)


def printer_uri(server: str, queue: str) -> str:
    """``ipp://host:port/printers/QUEUE`` for a CUPS server ``host[:port]`` (port 631)."""
    server = server.strip()
    if server.startswith("["):  # [v6 address]:port
        host, _, rest = server[1:].partition("]")
        port = rest.lstrip(":") or str(DEFAULT_PORT)
        host = f"[{host}]"
    elif server.count(":") == 1:
        host, port = server.split(":")
    elif ":" in server:  # a bare IPv6 address
        host, port = f"[{server}]", str(DEFAULT_PORT)
    else:
        host, port = server, str(DEFAULT_PORT)
    if not host or not port.isdigit():
        raise ValueError(f"bad CUPS server {server!r}: expected host[:port]")
    return f"ipp://{host}:{int(port)}/printers/{quote(queue, safe='')}"


def _connection(uri: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("ipp", "ipps", "http", "https") or not parts.hostname:
        raise IppError(f"not an IPP printer URI: {uri!r}")
    default = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT)
    port = parts.port or default
    path = parts.path or "/"
    if scheme in ("ipps", "https"):
        return http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                           context=ssl.create_default_context()), path
    return http.client.HTTPConnection(parts.hostname, port, timeout=timeout), path


def _request(uri: str, operation: int, groups: list[Group], *, data: bytes = b"",
             timeout: float) -> Message:
    """Send one request, return the response; IppError on any failure status."""
    request_id = next(_request_ids) & 0x7FFFFFFF or 1
    header = Message(IPP_VERSION, operation, request_id, groups).header()
    conn, path = _connection(uri, timeout)
    try:
        # An iterable body with Content-Length: the document is not copied into one
        # buffer with the header, and http.client does not switch to chunked encoding.
        conn.request("POST", path, body=iter((header, data)), headers={
            "Content-Type": "application/ipp",
            "Content-Length": str(len(header) + len(data)),
            "Accept": "application/ipp",
        })
        response = conn.getresponse()
        raw = response.read()
    except TimeoutError as exc:
        raise IppError(f"{uri}: timed out after {timeout:g} s", retriable=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise IppError(f"{uri}: {exc.__class__.__name__}: {exc}", retriable=True) from exc
    finally:
        conn.close()
    if response.status != 200:
        raise IppError(f"{uri}: HTTP {response.status} {response.reason}",
                       retriable=response.status >= 500 or response.status in (408, 429))
    reply = Message.decode(raw)
    if reply.request_id != request_id:
        raise IppError(f"{uri}: response to request {reply.request_id}, sent {request_id}")
    if reply.code >= 0x0400:
        ops = reply.group(OPERATION_ATTRIBUTES)
        detail = ops.as_dict().get("status-message") if ops else None
        raise IppError(f"{uri}: {status_name(reply.code)}" + (f": {detail}" if detail else ""),
                       status=reply.code, retriable=status_retriable(reply.code))
    if reply.code != 0x0000:
        unsupported = reply.group(UNSUPPORTED_ATTRIBUTES)
        names = [a.name for a in unsupported.attributes] if unsupported else []
        log.info("%s: %s %s", uri, status_name(reply.code), ", ".join(names))
    return reply


def _operation_group(uri: str, *more: Attribute) -> Group:
    # attributes-charset and attributes-natural-language first, in this order, then
    # the target (RFC 8011 section 4.1.4).
    return Group(OPERATION_ATTRIBUTES, [
        Attribute("attributes-charset", CHARSET, ["utf-8"]),
        Attribute("attributes-natural-language", NATURAL_LANGUAGE, ["en"]),
        Attribute("printer-uri", URI, [uri]),
        *more,
    ])


def job_attribute(name: str, value: str | int | bool) -> Attribute:
    """A Job Template attribute with the value tag IPP expects for ``value``.

    bool is ``boolean``; int is ``enum`` for the enum-valued attributes and ``integer``
    otherwise; str is ``keyword`` except for the few ``name`` attributes.
    """
    if isinstance(value, bool):
        return Attribute(name, BOOLEAN, [value])
    if isinstance(value, int):
        return Attribute(name, ENUM if name in _ENUM_ATTRIBUTES else INTEGER, [value])
    return Attribute(name, NAME if name in _NAME_ATTRIBUTES else KEYWORD, [value])


def print_job(uri: str, document: bytes, *, job_name: str, user: str = "printscp",
              document_format: str = "application/pdf", copies: int = 1,
              media: str | None = None,
              job_attributes: dict[str, str | int | bool] | None = None,
              timeout: float = 30.0) -> int:
    """Submit ``document`` as one job (Print-Job); return the job-id the printer assigned.

    ``media`` is a PWG 5101.1 media name (``iso_a4_210x297mm``); ``job_attributes``
    are further Job Template attributes, e.g. ``{"print-scaling": "none"}`` so CUPS
    prints true-size pages unscaled.  ipp-attribute-fidelity is left false: a printer
    that lacks an attribute substitutes rather than refusing the film (it is logged).
    """
    if copies < 1:
        raise ValueError("copies must be at least 1")
    ops = _operation_group(
        uri,
        Attribute("requesting-user-name", NAME, [user]),
        Attribute("job-name", NAME, [job_name]),
        Attribute("document-format", MIME_MEDIA_TYPE, [document_format]),
    )
    template = [Attribute("copies", INTEGER, [copies])]
    if media:
        template.append(Attribute("media", KEYWORD, [media]))
    template += [job_attribute(k, v) for k, v in (job_attributes or {}).items()]
    reply = _request(uri, PRINT_JOB, [ops, Group(JOB_ATTRIBUTES, template)],
                     data=document, timeout=timeout)
    job = reply.group(JOB_ATTRIBUTES)
    job_id = job.as_dict().get("job-id") if job else None
    if not isinstance(job_id, int):
        raise IppError(f"{uri}: Print-Job answered without a job-id")
    return job_id


def get_job_attributes(uri: str, job_id: int, timeout: float = 10.0) -> dict[str, object]:
    """The job's attributes; ``job-state`` as its keyword ("pending", "completed", ...)
    and ``job-state-reasons`` always a list."""
    ops = _operation_group(uri, Attribute("job-id", INTEGER, [job_id]),
                           Attribute("requesting-user-name", NAME, ["printscp"]))
    reply = _request(uri, GET_JOB_ATTRIBUTES, [ops], timeout=timeout)
    attrs = _merged(reply, JOB_ATTRIBUTES)
    state = attrs.get("job-state")
    if isinstance(state, int):
        attrs["job-state"] = JOB_STATES.get(state, str(state))
    attrs["job-state-reasons"] = _as_list(attrs.get("job-state-reasons"))
    return attrs


def get_printer_attributes(uri: str, timeout: float = 10.0) -> dict[str, object]:
    """The printer's attributes; ``printer-state`` as its keyword ("idle", "processing",
    "stopped") and ``printer-state-reasons`` always a list."""
    reply = _request(uri, GET_PRINTER_ATTRIBUTES, [_operation_group(uri)], timeout=timeout)
    attrs = _merged(reply, PRINTER_ATTRIBUTES)
    state = attrs.get("printer-state")
    if isinstance(state, int):
        attrs["printer-state"] = PRINTER_STATES.get(state, str(state))
    attrs["printer-state-reasons"] = _as_list(attrs.get("printer-state-reasons"))
    return attrs


def cancel_job(uri: str, job_id: int, timeout: float = 10.0) -> None:
    """Cancel a job (Cancel-Job); for giving up on a job that stays pending."""
    ops = _operation_group(uri, Attribute("job-id", INTEGER, [job_id]),
                           Attribute("requesting-user-name", NAME, ["printscp"]))
    _request(uri, CANCEL_JOB, [ops], timeout=timeout)


def _merged(reply: Message, tag: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in reply.groups:
        if group.tag == tag:
            out.update(group.as_dict())
    return out


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
