"""DICOM upper layer by hand, for hostile peers: PDUs built byte by byte (so they can be
wrong), a raw client that reads the node's answer within a deadline, and the checks the
fuzz tests and the attack suite share (the node still answers C-ECHO, no traceback in
its log).

pynetdicom cannot send what these tests send (its encoders refuse malformed items), and
its requestor hides what the acceptor answered behind its own state machine; here every
byte on the wire is the test's, and :class:`Answer` says exactly what came back: an
A-ASSOCIATE-AC / -RJ with its result, source and reason, an A-ABORT with source and
reason, DIMSE messages, the connection closed, or nothing within the deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from printscp.net import pdata

HOST = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
GRAYSCALE_PRINT_META = "1.2.840.10008.5.1.1.9"

#: How long the node may take to answer a hostile request (loopback, a busy machine).
ANSWER_BOUND = 5.0

_PDU = struct.Struct(">BBL")
_ITEM = struct.Struct(">BBH")


# -- building PDUs ---------------------------------------------------------------------
def item(kind: int, payload: bytes, length: int | None = None) -> bytes:
    """A variable item: type, reserved, 2-byte length (``length`` overrides the true
    one, to make the item overrun or fall short of its payload), payload."""
    return _ITEM.pack(kind, 0, len(payload) if length is None else length) + payload


def pdu(kind: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU: type, reserved, 4-byte length (``length`` overrides the true one)."""
    return _PDU.pack(kind, 0, len(body) if length is None else length) + body


def context_item(context_id: int, abstract: str | bytes = VERIFICATION,
                 transfer_syntaxes: Sequence[str | bytes] = (IMPLICIT_LE,)) -> bytes:
    """A presentation context item (0x20) of an A-ASSOCIATE-RQ."""
    def raw(uid: str | bytes) -> bytes:
        return uid if isinstance(uid, bytes) else uid.encode()

    subs = item(0x30, raw(abstract)) + b"".join(item(0x40, raw(ts))
                                                for ts in transfer_syntaxes)
    return item(0x20, bytes([context_id & 0xFF, 0, 0, 0]) + subs)


def user_information(max_pdu: int = 16384,
                     implementation_uid: bytes = b"1.2.826.0.1.3680043.9.7433.1",
                     extra: bytes = b"") -> bytes:
    """A user information item (0x50): Maximum Length, Implementation Class UID."""
    return item(0x50, item(0x51, struct.pack(">L", max_pdu)) + item(0x52, implementation_uid)
                + extra)


def associate_rq(contexts: Iterable[bytes] | None = None, *, called: str = "PRINTSCP",
                 calling: str = "ATTACKER", max_pdu: int = 16384,
                 application_context: bytes = APPLICATION_CONTEXT.encode(),
                 user: bytes | None = None, version: int = 1) -> bytes:
    """An A-ASSOCIATE-RQ PDU (PS3.8 9.3.2); by default Verification, Implicit VR LE."""
    if contexts is None:
        contexts = [context_item(1)]
    body = (struct.pack(">HH", version, 0) + called.encode().ljust(16)[:16]
            + calling.encode().ljust(16)[:16] + bytes(32)
            + item(0x10, application_context) + b"".join(contexts)
            + (user_information(max_pdu) if user is None else user))
    return pdu(0x01, body)


def release_rq() -> bytes:
    return pdu(0x05, bytes(4))


def abort_rq(source: int = 0, reason: int = 0) -> bytes:
    return pdu(0x07, bytes([0, 0, source, reason]))


def pdv(context_id: int, control: int, value: bytes, length: int | None = None) -> bytes:
    """A presentation data value item: 4-byte length (context ID, control, value)."""
    true = len(value) + 2
    return struct.pack(">LBB", true if length is None else length, context_id, control) + value


def pdata_tf(pdvs: Iterable[bytes]) -> bytes:
    return pdu(0x04, b"".join(pdvs))


def message_stream(context_id: int, command: bytes, data_set: bytes | None = None,
                   cuts: Sequence[int] = (), data_cuts: Sequence[int] = (),
                   pdvs_per_pdu: int = 1) -> bytes:
    """The P-DATA-TF PDUs of one message, its command set cut at offsets ``cuts`` and
    its data set at ``data_cuts`` (each piece one PDV), ``pdvs_per_pdu`` PDVs a PDU."""
    def pieces(data: bytes, offsets: Sequence[int]) -> list[bytes]:
        bounds = sorted({o for o in offsets if 0 < o < len(data)})
        edges = [0, *bounds, len(data)]
        return [data[a:b] for a, b in itertools.pairwise(edges)] or [b""]

    values = []
    command_parts = pieces(command, cuts)
    for i, part in enumerate(command_parts):
        values.append(pdv(context_id, 0x03 if i == len(command_parts) - 1 else 0x01, part))
    if data_set is not None:
        data_parts = pieces(data_set, data_cuts)
        for i, part in enumerate(data_parts):
            values.append(pdv(context_id, 0x02 if i == len(data_parts) - 1 else 0x00, part))
    step = max(1, pdvs_per_pdu)
    return b"".join(pdata_tf(values[i:i + step]) for i in range(0, len(values), step))


# -- command sets ------------------------------------------------------------------------
def ui(uid: str | bytes) -> bytes:
    raw = uid if isinstance(uid, bytes) else uid.encode()
    return raw + b"\0" if len(raw) % 2 else raw


def us(value: int) -> bytes:
    return struct.pack("<H", value & 0xFFFF)


def command(elements: dict[int, bytes]) -> bytes:
    """A command set (group 0000, Implicit VR LE) of ``elements`` in tag order."""
    return pdata.encode_command(sorted(elements.items()))


def echo_rq(message_id: int = 1) -> bytes:
    return command({0x0002: ui(VERIFICATION), 0x0100: us(0x0030), 0x0110: us(message_id),
                    0x0800: us(0x0101)})


def store_rq(sop_class: str, sop_instance: str | bytes, message_id: int = 1) -> bytes:
    return command({0x0002: ui(sop_class), 0x0100: us(0x0001), 0x0110: us(message_id),
                    0x0700: us(2), 0x0800: us(0x0001), 0x1000: ui(sop_instance)})


def n_create_rq(sop_class: str, message_id: int = 1, instance: str | None = None,
                with_data: bool = True) -> bytes:
    elements = {0x0002: ui(sop_class), 0x0100: us(0x0140), 0x0110: us(message_id),
                0x0800: us(0x0001 if with_data else 0x0101)}
    if instance:
        elements[0x1000] = ui(instance)
    return command(elements)


def n_set_rq(sop_class: str, instance: str, message_id: int = 1) -> bytes:
    return command({0x0003: ui(sop_class), 0x0100: us(0x0120), 0x0110: us(message_id),
                    0x0800: us(0x0001), 0x1001: ui(instance)})


# -- reading the answer ----------------------------------------------------------------
PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
             5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT"}


@dataclass
class Answer:
    """What the node did: ``kind`` is a PDU name (A-ASSOCIATE-AC...), ``"closed"`` (the
    connection ended with no PDU) or ``"timeout"`` (nothing within the deadline)."""

    kind: str
    body: bytes = b""
    seconds: float = 0.0
    #: DIMSE messages read after it (P-DATA): (command elements, data set bytes).
    messages: list[tuple[dict[int, bytes], bytes]] = field(default_factory=list)

    @property
    def abort(self) -> tuple[int, int] | None:
        """(source, reason/diag.) of an A-ABORT (PS3.8 9.3.8)."""
        return (self.body[2], self.body[3]) if self.kind == "A-ABORT" else None

    @property
    def reject(self) -> tuple[int, int, int] | None:
        """(result, source, reason/diag.) of an A-ASSOCIATE-RJ (PS3.8 9.3.4)."""
        return tuple(self.body[1:4]) if self.kind == "A-ASSOCIATE-RJ" else None  # type: ignore[return-value]

    @property
    def contexts(self) -> dict[int, tuple[int, str]]:
        """Presentation context results of an A-ASSOCIATE-AC: ID -> (result, TS)."""
        out: dict[int, tuple[int, str]] = {}
        if self.kind != "A-ASSOCIATE-AC":
            return out
        for kind, payload in items(self.body[68:]):
            if kind == 0x21:
                syntax = next((p for k, p in items(payload[4:]) if k == 0x40), b"")
                out[payload[0]] = (payload[2], syntax.rstrip(b"\0 ").decode(errors="replace"))
        return out

    @property
    def context_items(self) -> int:
        """How many presentation context items an A-ASSOCIATE-AC holds."""
        return sum(1 for kind, _ in items(self.body[68:]) if kind == 0x21)

    @property
    def status(self) -> int | None:
        """The Status of the first DIMSE response read."""
        return pdata.command_us(self.messages[0][0], pdata.STATUS) if self.messages else None

    @property
    def answered(self) -> bool:
        """A PDU came back (not mere closing, not silence)."""
        return self.kind not in ("closed", "timeout")


def items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of the variable items in ``data``; stops at a malformed one."""
    offset = 0
    while offset + 4 <= len(data):
        kind, _, length = _ITEM.unpack_from(data, offset)
        yield kind, data[offset + 4:offset + 4 + length]
        offset += 4 + length


class Peer:
    """One TCP connection to the node, speaking whatever the test makes it speak."""

    def __init__(self, port: int, host: str = HOST, timeout: float = ANSWER_BOUND) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buffer = b""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send ``data``; False when the node has closed the connection meanwhile."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def finish(self) -> None:
        """Half-close: the node sees the end of what we send (an incomplete PDU can then
        not hold it waiting for bytes that never come)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, need: int, deadline: float) -> bool:
        while len(self._buffer) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError from None
            except OSError:  # reset by the node: it closed
                return False
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def read_pdu(self, timeout: float | None = None) -> Answer:
        """The next PDU, ``"closed"``, or ``"timeout"`` after ``timeout`` seconds."""
        started = time.monotonic()
        deadline = started + (self.timeout if timeout is None else timeout)
        try:
            if not self._fill(6, deadline):
                return Answer("closed", seconds=time.monotonic() - started)
            kind, _, length = _PDU.unpack_from(self._buffer)
            if not self._fill(6 + length, deadline):
                return Answer("closed", seconds=time.monotonic() - started)
        except TimeoutError:
            return Answer("timeout", seconds=time.monotonic() - started)
        body, self._buffer = self._buffer[6:6 + length], self._buffer[6 + length:]
        return Answer(PDU_NAMES.get(kind, f"0x{kind:02X}"), body, time.monotonic() - started)

    def associate(self, contexts: Iterable[bytes] | None = None, **kwargs: object) -> Answer:
        """Send an A-ASSOCIATE-RQ and read the answer."""
        self.send(associate_rq(contexts, **kwargs))  # type: ignore[arg-type]
        return self.read_pdu()

    def read_message(self, timeout: float | None = None) -> Answer:
        """Read P-DATA-TF PDUs up to one whole DIMSE message (or another answer)."""
        started = time.monotonic()
        deadline = started + (self.timeout if timeout is None else timeout)
        assembler = pdata.MessageAssembler()
        while True:
            answer = self.read_pdu(max(0.0, deadline - time.monotonic()))
            if answer.kind != "P-DATA-TF":
                answer.seconds = time.monotonic() - started
                return answer
            for context_id, control, fragment in pdata.pdvs(memoryview(answer.body)):
                if assembler.add(context_id, control, fragment):
                    answer.messages.append((assembler.command or {}, assembler.data_set()))
                    answer.seconds = time.monotonic() - started
                    return answer

    def release(self) -> Answer:
        self.send(release_rq())
        return self.read_pdu()

    def drain(self, timeout: float = ANSWER_BOUND) -> Answer:
        """Read until the node aborts, closes, or ``timeout``: the last non-P-DATA answer
        (``"closed"`` if it closed without one)."""
        deadline = time.monotonic() + timeout
        last = Answer("timeout")
        while True:
            answer = self.read_pdu(max(0.0, deadline - time.monotonic()))
            if answer.kind in ("closed", "timeout"):
                return last if last.kind != "timeout" and answer.kind == "closed" else answer
            if answer.kind != "P-DATA-TF":
                last = answer


# -- the node stays up ---------------------------------------------------------------------
def echo_status(port: int, calling: str = "ECHOSCU") -> int | None:
    """C-ECHO over a fresh pynetdicom association: its Status, None if refused."""
    from helpers.clients import associate

    assoc = associate(port, VERIFICATION, calling=calling)
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def raw_echo(port: int) -> int | None:
    """C-ECHO with the raw client (no pynetdicom on our side): its Status."""
    with Peer(port) as peer:
        answer = peer.associate([context_item(1)])
        if answer.kind != "A-ASSOCIATE-AC":
            return None
        peer.send(message_stream(1, echo_rq()))
        reply = peer.read_message()
        peer.release()
        return reply.status


def dcmtk_echo(port: int) -> int:
    """DCMTK's echoscu against the node: its exit code (0: the echo succeeded)."""
    import subprocess

    from helpers.dcmtk import tool

    done = subprocess.run([tool("echoscu"), "-aec", "PRINTSCP", "-to", "10", HOST, str(port)],
                          capture_output=True, text=True, timeout=30)
    return done.returncode


#: Tracebacks hostile input still causes, each an open entry of
#: /work/shared/wave17/BUGS.md: kind -> (logger, the message logged just before it on the
#: same thread).  Delete an entry once its bug is fixed: the fuzz tests then fail on it.
KNOWN_TRACEBACKS: dict[str, Callable[[logging.LogRecord, str], bool]] = {
    # Each entry was a bug of BUGS.md (B2, B5-B8), logged as a traceback; all are fixed
    # and the fuzz tests now fail on any traceback.  A new known kind goes here only
    # with its bug report, and leaves with its fix.
}


class Tracebacks(logging.Handler):
    """Collects log records that carry a traceback (``exc_info``, or "Traceback" in the
    message): hostile input must be answered, not logged as a crash."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        #: Tracebacks of the kinds :data:`KNOWN_TRACEBACKS` lists, by kind: counted, not
        #: failed on, until the bug they stand for is fixed.
        self.known: dict[str, int] = {}
        self._last: dict[int | None, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        previous = self._last.get(record.thread, "")
        self._last[record.thread] = str(record.msg)
        if record.exc_info or "Traceback (most recent call last)" in str(record.msg):
            for kind, known in KNOWN_TRACEBACKS.items():
                if known(record, previous):
                    self.known[kind] = self.known.get(kind, 0) + 1
                    return
            self.records.append(record)

    def take(self) -> list[str]:
        """The records collected since the last call, each as ``logger: message: exc``."""
        out = []
        for r in self.records:
            exc = r.exc_info[1] if r.exc_info else None
            out.append(f"{r.name}: {r.getMessage()[:200]}"
                       + (f": {type(exc).__name__}: {exc}" if exc else ""))
        self.records.clear()
        return out

    def __enter__(self) -> Tracebacks:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
