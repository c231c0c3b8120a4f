"""Query/Retrieve SCP (PS3.4 Annex C): Patient Root and Study Root FIND, MOVE and GET.

C-FIND and C-GET are served by :func:`serve_qr` on each association; the C-MOVE
handler is a pynetdicom generator bound with the archive and the node's config.
Queries are hierarchical: the unique keys of the levels above the query level must
be given (single value or UID list); matching follows PS3.4 C.2
(:mod:`printscp.query.matching`).

Statuses: 0xFF00 pending; 0x0000 done; 0xFE00 cancelled (C-CANCEL); 0xA900
identifier does not match the SOP class (missing or wrong Query/Retrieve Level,
missing unique key of a higher level; the Error Comment names it); 0xC000 unable to
process (undecodable identifier); 0xA801 move destination unknown (not in the AE
table); after sub-operations: 0xB000 when some failed or gave warnings (with the
Failed SOP Instance UID List), 0xA702 when all failed.
"""

from __future__ import annotations

import collections
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.dimse_primitives import C_FIND, C_GET
from pynetdicom.dsutils import decode, encode
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from printscp.archive.archive import Archive
from printscp.archive.index import ORDER, Level
from printscp.config import NodeConfig
from printscp.core import status
from printscp.core.errors import StatusError
from printscp.core.tls import tls_args
from printscp.net import channel, pdata
from printscp.net.channel import StoredFile
from printscp.services import audit_events
from printscp.services.dimse import status_dataset

LOGGER = logging.getLogger("printscp.qr")

PATIENT_ROOT = {str(PatientRootQueryRetrieveInformationModelFind),
                str(PatientRootQueryRetrieveInformationModelMove),
                str(PatientRootQueryRetrieveInformationModelGet)}
QR_CLASSES = [
    PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelGet,
]


#: The unique key of each level (PS3.4 C.6).
UNIQUE_KEYS = {Level.PATIENT: "PatientID", Level.STUDY: "StudyInstanceUID",
               Level.SERIES: "SeriesInstanceUID", Level.IMAGE: "SOPInstanceUID"}




def parse_request(identifier: Dataset, sop_class: str, retrieve: bool = False
                  ) -> tuple[Level, bool]:
    """(Query/Retrieve Level, patient root?) of a request; StatusError if invalid."""
    patient_root = sop_class in PATIENT_ROOT
    text = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    try:
        level = Level(text)
    except ValueError:
        raise StatusError(status.DOES_NOT_MATCH_SOP_CLASS,
                         f"QueryRetrieveLevel {text or '(missing)'} is not valid") from None
    if level is Level.PATIENT and not patient_root:
        raise StatusError(status.DOES_NOT_MATCH_SOP_CLASS,
                         "QueryRetrieveLevel PATIENT needs the Patient Root model")
    first = 0 if patient_root else 1
    for above in ORDER[first:ORDER.index(level)]:
        keyword = UNIQUE_KEYS[above]
        if not identifier.get(keyword):
            raise StatusError(status.DOES_NOT_MATCH_SOP_CLASS,
                             f"{keyword} is required at level {level.value}")
    if retrieve and not identifier.get(UNIQUE_KEYS[level]):
        raise StatusError(status.DOES_NOT_MATCH_SOP_CLASS,
                         f"{UNIQUE_KEYS[level]} is required to retrieve at {level.value}")
    return level, patient_root


def _identifier(event: Any) -> Dataset:
    try:
        return event.identifier
    except Exception as exc:
        raise StatusError(status.CANNOT_UNDERSTAND,
                          f"cannot decode the identifier: {exc}") from None


def handle_find(assoc: Any, req: Any, context: Any, archive: Archive,
                config: NodeConfig, poll: Any = None) -> None:
    """C-FIND: one pending response per match, return keys filled (empty if unknown),
    then the final status; C-CANCEL ends it with 0xFE00.  ``poll``, if given, is
    called before each match to take in a C-CANCEL (see :func:`claim_find`); when it
    returns True the peer has gone and the query stops."""
    respond = _Responder(assoc, req, context, _C_FIND_RSP)
    try:
        identifier = _decode_identifier(req, context)
        level, patient_root = parse_request(identifier, str(req.AffectedSOPClassUID))
    except StatusError as exc:
        LOGGER.warning("C-FIND refused (0x%04X): %s", exc.status, exc)
        respond.send(exc.status, comment=str(exc))
        audit_events.query(assoc, str(req.AffectedSOPClassUID), None, exc)
        return
    keys = _ReturnKeys(identifier, level, config.ae_title)
    audit_events.query(assoc, str(req.AffectedSOPClassUID), identifier)
    for record, _ in archive.index.query(level, identifier, patient_root=patient_root):
        if poll is not None and poll():
            return  # the peer aborted or closed: nobody to answer
        if not assoc.is_established:
            return
        if channel.is_cancelled(assoc, req.MessageID):
            respond.send(status.CANCEL)
            return
        # Each match goes at once: the requester decodes it while the next is built.
        respond.send(status.PENDING, encoded=_encoded_response(keys, record, context))
    if assoc.is_established:
        respond.send(status.SUCCESS)


class _FindRequest:
    """What :func:`handle_find` reads of a C-FIND-RQ, from a hand-parsed message."""

    __slots__ = ("AffectedSOPClassUID", "Identifier", "MessageID")

    def __init__(self, message_id: int, sop_class: str, identifier: bytes) -> None:
        self.MessageID, self.AffectedSOPClassUID = message_id, sop_class
        self.Identifier = io.BytesIO(identifier)


def claim_find(assoc: Any, message: pdata.MessageAssembler, archive: Archive,
               config: NodeConfig) -> Callable[[], None] | None:
    """Serve a Q/R C-FIND-RQ on the DUL thread as soon as it is parsed: a callable that
    answers it, or None, having done nothing, for anything else (another class, a
    command missing a required field, a request while one is served), which pynetdicom
    then handles as usual.

    The same answer as through pynetdicom, without its message objects and the hand-
    over to the reactor thread: the first match goes out about half a millisecond
    sooner.  Between matches :func:`printscp.net.channel.read_pending` takes in a
    C-CANCEL.
    """
    context = channel.accepted_context(assoc, message.context_id)
    if (context is None or str(context.abstract_syntax) not in FIND_CLASSES
            or not context.as_scp or channel.is_serving(assoc)):
        return None
    command = message.command or {}
    message_id = pdata.command_us(command, pdata.MESSAGE_ID)
    sop_class = pdata.command_text(command, pdata.AFFECTED_SOP_CLASS)
    if message_id is None or not sop_class or \
            pdata.command_us(command, pdata.DATA_SET_TYPE) in (None, pdata.NO_DATA_SET):
        return None
    req = _FindRequest(message_id, sop_class, message.data_set())

    def serve() -> None:
        # Served as pynetdicom serves a request: event reports wait, C-CANCELs counted.
        with channel.serving_request(assoc, on_reactor=False):
            try:
                handle_find(assoc, req, context, archive, config,
                            poll=lambda: channel.read_pending(assoc))
            except Exception:
                LOGGER.exception("C-FIND failed")
                _Responder(assoc, req, context, _C_FIND_RSP).send(status.CANNOT_UNDERSTAND,
                                                                  "unable to process")

    return serve


def _decode_identifier(req: Any, context: Any) -> Dataset:
    syntax = context.transfer_syntax[0]
    try:
        return decode(req.Identifier, syntax.is_implicit_VR, syntax.is_little_endian,
                      syntax.is_deflated)
    except Exception as exc:
        raise StatusError(status.CANNOT_UNDERSTAND,
                         f"cannot decode the identifier: {exc}") from None


class _ReturnKeys:
    """A query's return keys, worked out once for all its matches: the tags taken from
    each record (with the empty element for a key a record lacks) and the fixed ones,
    level, Retrieve AE Title and, when asked, Instance Availability.  Building these
    elements for every match (pydicom checks each new one) was a third of a match's
    cost."""

    def __init__(self, identifier: Dataset, level: Level, ae_title: str) -> None:
        self.keys = [(int(elem.tag), DataElement(elem.tag, elem.VR, None))
                     for elem in identifier if elem.tag != 0x00080005]
        fixed = [(0x00080052, "CS", level.value), (0x00080054, "AE", ae_title)]
        if "InstanceAvailability" in identifier:
            fixed.append((0x00080056, "CS", "ONLINE"))
        self.fixed = {tag: DataElement(tag, vr, value) for tag, vr, value in fixed}

    def elements(self, record: Dataset) -> list[DataElement]:
        """A match's return keys in tag order: each key of the request with the record's
        value (empty if unknown), the fixed keys, and the record's Specific Character
        Set when a returned value needs it (PS3.4 C.4.1.1.3.2: when characters beyond
        the default repertoire may occur; a response of UIDs, numbers and plain-ASCII
        text carries none, one element less for the requester to decode)."""
        stored = record._dict
        elements: dict[int, DataElement] = {}
        for tag, empty in self.keys:
            elem = stored.get(tag)
            elements[tag] = empty if elem is None else \
                record[tag] if isinstance(elem, RawDataElement) else elem
        if _needs_character_set(elements.values()):
            # The record's own; a record indexed without one (before it was kept at
            # every level) answers in UTF-8, which holds any value.
            elements[0x00080005] = record[0x00080005] if 0x00080005 in record else \
                DataElement(0x00080005, "CS", "ISO_IR 192")
        elements.update(self.fixed)
        return [elements[tag] for tag in sorted(elements)]


#: Value representations whose text the Specific Character Set governs (PS3.5 6.1.2.3).
_CHARACTER_SET_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})


def _needs_character_set(elements: Iterable[DataElement]) -> bool:
    """Whether any value may hold characters beyond the default repertoire (a
    sequence is assumed to)."""
    for elem in elements:
        if elem.VR == "SQ":
            return True
        if elem.VR in _CHARACTER_SET_VRS and elem.value is not None:
            values = elem.value if isinstance(elem.value, list | tuple | MultiValue) \
                else [elem.value]
            if not all(str(v).isascii() for v in values):
                return True
    return False


def _encoded_response(keys: _ReturnKeys, record: Dataset, context: Any) -> bytes:
    """A match's response identifier in the context's transfer syntax: text-only keys
    (nearly all) encoded by hand, anything else by pydicom."""
    syntax = context.transfer_syntax[0]
    elements = keys.elements(record)
    if syntax.is_little_endian and not syntax.is_deflated:
        data = pdata.encode_elements(elements, syntax.is_implicit_VR)
        if data is not None:
            return data
    rsp = Dataset()
    for elem in elements:
        rsp.add(elem)
    return encode(rsp, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)


def _records(event: Any, archive: Archive):
    identifier = _identifier(event)
    level, patient_root = parse_request(identifier, str(event.request.AffectedSOPClassUID),
                                        retrieve=True)
    return archive.index.instances_for(level, identifier, patient_root=patient_root)


def _contexts(records: list) -> list:
    """Presentation contexts for a C-MOVE sub-association: each stored (class, syntax),
    with the uncompressed syntaxes as fallbacks (at most 128 contexts)."""
    pairs: dict[str, list[str]] = {}
    for r in records:
        syntaxes = pairs.setdefault(r.sop_class_uid, [])
        if r.transfer_syntax not in syntaxes:
            syntaxes.append(r.transfer_syntax)
    contexts = []
    for sop_class, syntaxes in pairs.items():
        for extra in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if extra not in syntaxes:
                syntaxes.append(extra)
        contexts.append(build_context(sop_class, syntaxes))
    return contexts[:128]


def _no_delay(event: Any) -> None:
    """Our sockets never wait on the peer's delayed ACK (as the server's); stored
    files go out as they are."""
    channel.no_delay(event.assoc)
    channel.send_stored_files_as_is(event.assoc)


def _announce_move(event: Any, count: int) -> Any:
    """An EVT_CONN_OPEN handler for the C-MOVE sub-association: once its connection is
    open, a first Pending C-MOVE-RSP (``count`` remaining, none done) goes to the
    requester, before the sub-association is even requested.

    DCMTK's C-MOVE SCU (``DIMSE_moveUser``: movescu, and the many viewers built on
    DCMTK) looks for the sub-association only when a message on the C-MOVE
    association wakes it; until the first response it waits on that association
    alone, up to one second per poll.  Without this response every move to such a
    requester waited that second (a one-image move took 1.03 s from printscp, Orthanc
    and dcmqrscp alike).  PS3.4 C.4.2 lets a Pending response come at any time; this
    one also tells the requester at once how many instances to expect.
    """
    assoc, request, context_id = event.assoc, event.request, int(event.context.context_id)
    message_id, sop_class = int(request.MessageID), str(request.AffectedSOPClassUID)
    announced = threading.Event()

    def announce(_: Any) -> None:
        if announced.is_set() or not assoc.is_established:
            return
        announced.set()
        command = pdata.response(_C_MOVE_RSP, message_id, sop_class, status.PENDING,
                                 counts=[(pdata.REMAINING, count), (pdata.COMPLETED, 0),
                                         (pdata.FAILED, 0), (pdata.WARNING, 0)])
        channel.send_message(assoc, context_id, command)

    return announce


def handle_move(event: Any, archive: Archive, config: NodeConfig) -> Iterator[Any]:
    """C-MOVE to a destination of the AE table; pending responses and final counts."""
    destination = event.move_destination
    name = destination.decode("ascii", "replace") if isinstance(destination, bytes) \
        else str(destination)
    remote = config.remote_ae(name)
    if remote is None:
        LOGGER.warning("C-MOVE to unknown destination %r", name.strip())
        audit_events.retrieve(event.assoc, archive, [], command="MOVE", destination=name.strip(),
                              refusal=ValueError("Move Destination unknown"))
        yield None, None  # pynetdicom answers 0xA801 (move destination unknown)
        return
    try:
        records = _records(event, archive)
    except StatusError as exc:
        audit_events.retrieve(event.assoc, archive, [], command="MOVE",
                              destination=remote.ae_title, refusal=exc)
        # pynetdicom takes a failure status only after a destination and a count.
        yield remote.host, remote.port, {"contexts": [build_context(ExplicitVRLittleEndian)]}
        yield 1
        yield status_dataset(exc.status, str(exc)), None
        return
    yield remote.host, remote.port, {
        "contexts": _contexts(records) or [build_context(ExplicitVRLittleEndian)],
        "tls_args": tls_args(remote, config.tls),  # None: plain TCP
        "evt_handlers": [(evt.EVT_CONN_OPEN, _no_delay),
                         (evt.EVT_CONN_OPEN, _announce_move(event, len(records)))]}
    audit_events.retrieve(event.assoc, archive, records, command="MOVE",
                          destination=remote.ae_title, destination_host=remote.host)
    yield len(records)
    for record in records:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, StoredFile(archive.path_of(record), record.sop_class_uid,
                                  record.sop_uid, record.transfer_syntax)


FIND_CLASSES = frozenset({str(PatientRootQueryRetrieveInformationModelFind),
                          str(StudyRootQueryRetrieveInformationModelFind)})
GET_CLASSES = frozenset({str(PatientRootQueryRetrieveInformationModelGet),
                         str(StudyRootQueryRetrieveInformationModelGet)})
_C_FIND_RSP = 0x8020
_C_GET_RSP = 0x8010
_C_MOVE_RSP = 0x8021


def serve_qr(assoc: Any, archive: Archive, config: NodeConfig) -> None:
    """Serve Q/R C-FIND and C-GET on ``assoc`` here instead of in pynetdicom.

    pynetdicom builds, validates and encodes several objects for every response and
    sub-operation: about 1 ms each, more than the archive's own work for a C-FIND
    match.  Here a response is a command set encoded by hand (:mod:`printscp.net.pdata`)
    with the identifier encoded once, and a C-GET sub-operation a stored file sent
    as it is (:func:`printscp.net.channel.send_c_store_file`).  C-MOVE stays with
    pynetdicom (:func:`handle_move`), whose sub-associations send files the same way.
    """
    def serve(msg: Any, context_id: int) -> bool:
        context = channel.accepted_context(assoc, context_id)
        syntax = str(context.abstract_syntax) if context is not None else ""
        if isinstance(msg, C_FIND) and msg.is_valid_request and syntax in FIND_CLASSES:
            _serving(assoc, handle_find, msg, context, archive, config)
        elif isinstance(msg, C_GET) and msg.is_valid_request and syntax in GET_CLASSES:
            _serving(assoc, handle_get, msg, context, archive)
        else:
            return False
        return True

    channel.serve_requests(assoc, serve)


def _serving(assoc: Any, handler: Any, *args: Any) -> None:
    with channel.serving_request(assoc):  # as pynetdicom serves a request
        try:
            handler(assoc, *args)
        except Exception:
            LOGGER.exception("Q/R request failed; aborting the association")
            assoc.abort()


def handle_get(assoc: Any, req: Any, context: Any, archive: Archive) -> None:
    """C-GET: C-STOREs on the requester's association, a pending response after each,
    then the final status (PS3.4 C.4.3).  An instance whose stored syntax the
    requester did not accept is converted to an uncompressed syntax it did accept
    when decoding is possible."""
    respond = _GetResponder(assoc, req, context, _C_GET_RSP)
    try:
        identifier = _decode_identifier(req, context)
        level, patient_root = parse_request(identifier, str(req.AffectedSOPClassUID),
                                            retrieve=True)
        records = archive.index.instances_for(level, identifier, patient_root=patient_root)
    except StatusError as exc:
        LOGGER.warning("C-GET refused (0x%04X): %s", exc.status, exc)
        respond.final(exc.status, str(exc))
        audit_events.retrieve(assoc, archive, [], command="GET", refusal=exc)
        return
    audit_events.retrieve(assoc, archive, records, command="GET")
    accepted: dict[str, set[str]] = {}
    for cx in assoc.accepted_contexts:
        accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
    respond.remaining = len(records)
    if channel.runs_our_loop(assoc) and all(
            r.transfer_syntax in accepted.get(r.sop_class_uid, ()) for r in records):
        _GetPipeline(assoc, req, archive, records, respond).run()
        return
    for i, record in enumerate(records):
        if not assoc.is_established:
            return
        if channel.is_cancelled(assoc, req.MessageID):
            respond.final(status.CANCEL)
            return
        sub_id = (int(req.MessageID) + i) % 65535 + 1
        code = _send_instance(assoc, archive, record, accepted, sub_id)
        respond.count(code, record.sop_uid)
        respond.pending()
    if assoc.is_established:
        respond.final()


class _GetPipeline:
    """C-GET sub-operations driven from the DUL thread: each C-STORE-RSP, as it is
    parsed, is counted and answered with the next C-STORE-RQ and the pending
    C-GET-RSP, with no hand-off to the reactor thread and back (about a third of
    each sub-operation's time).  For instances sent as stored (the requester took
    every stored syntax); the reactor thread starts it and waits for the end.

    A requester that negotiated no asynchronous operations window has one
    sub-operation outstanding at a time, so each costs a round trip.  The next file
    is therefore read and framed while the requester works on the current one, and
    goes out the moment its response arrives, ahead of that response's Pending
    report (PS3.4 C.4.3.1.4 leaves their order free; the report's counts are the same).
    """

    def __init__(self, assoc: Any, req: Any, archive: Archive, records: list[Any],
                 respond: _GetResponder) -> None:
        self.assoc, self.req, self.archive, self.respond = assoc, req, archive, respond
        self.records = collections.deque(enumerate(records))
        self.waiting: tuple[int, Any] | None = None  #: (message ID, record) sent
        self.prepared: tuple[int, Any, tuple[int, bytes, memoryview]] | None = None
        self.finished = threading.Event()
        self.lock = threading.Lock()
        self.last_progress = time.monotonic()

    def run(self) -> None:
        assoc = self.assoc
        with channel.expecting_store_responses(assoc, self.claim_response):
            with self.lock:
                self.prepared = self._prepare()
                if not self._send_prepared():
                    self._finish()
            timeout = assoc.dimse_timeout
            while not self.finished.wait(channel.TICK):
                if not channel.is_running(assoc):
                    return
                if timeout and time.monotonic() - self.last_progress > timeout:
                    LOGGER.error("C-GET: no C-STORE response in %s s; aborting", timeout)
                    assoc.abort()
                    return

    def claim_response(self, message_id: int | None,
                       code: int | None) -> Callable[[], None] | None:
        """A C-STORE-RSP parsed on the DUL thread: a callable that takes it, or None
        if it is not the awaited one."""
        with self.lock:
            if self.waiting is None or message_id != self.waiting[0]:
                return None
        return lambda: self._on_response(message_id, code)

    def _on_response(self, message_id: int | None, code: int | None) -> None:
        with self.lock:
            if self.waiting is None or message_id != self.waiting[0]:
                return
            record = self.waiting[1]
            self.waiting = None
            self.last_progress = time.monotonic()
            self.respond.count(code, record.sop_uid)
            sent = self._send_prepared()
            self.respond.pending()
            if not sent:
                self._finish()

    def _send_prepared(self) -> bool:
        """Send the prepared sub-operation and prepare the one after it; False when
        none is left (or the requester cancelled)."""
        if self.prepared is None or channel.is_cancelled(self.assoc, self.req.MessageID):
            return False
        sub_id, record, framed = self.prepared
        self.waiting = (sub_id, record)
        channel.send_message(self.assoc, *framed)
        self.prepared = self._prepare()
        return True

    def _prepare(self) -> tuple[int, Any, tuple[int, bytes, memoryview]] | None:
        """The next instance read and framed (one that cannot be is counted failed)."""
        respond, req = self.respond, self.req
        while self.records:
            i, record = self.records.popleft()
            sub_id = (int(req.MessageID) + i) % 65535 + 1
            try:
                framed = channel.frame_stored_file(
                    self.assoc, self.archive.path_of(record), record.sop_class_uid,
                    record.sop_uid, record.transfer_syntax, sub_id)
                if framed is None:
                    raise ValueError("no accepted presentation context")
            except Exception as exc:
                LOGGER.warning("C-GET sub-operation %s failed: %s", record.sop_uid, exc)
                respond.count(None, record.sop_uid)
                continue
            return sub_id, record, framed
        return None

    def _finish(self) -> None:
        cancelled = channel.is_cancelled(self.assoc, self.req.MessageID)
        self.respond.final(status.CANCEL if cancelled else None)
        self.finished.set()


def _send_instance(assoc: Any, archive: Archive, record: Any,
                   accepted: dict[str, set[str]], msg_id: int) -> int | None:
    """One C-STORE sub-operation; its status, None when it could not be sent."""
    try:
        if record.transfer_syntax in accepted.get(record.sop_class_uid, set()):
            result = channel.send_c_store_file(
                assoc, archive.path_of(record), record.sop_class_uid, record.sop_uid,
                record.transfer_syntax, msg_id)
            if result is not None:
                return int(result.Status) if "Status" in result else None
        ds = archive.read(record)  # pynetdicom converts between uncompressed syntaxes
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()  # to Explicit VR Little Endian
        result = assoc.send_c_store(ds, msg_id=msg_id)
        return int(result.Status) if "Status" in result else None
    except Exception as exc:
        LOGGER.warning("C-GET sub-operation %s (%s) failed: %s", record.sop_uid,
                       record.transfer_syntax, exc)
        return None


class _Responder:
    """Sends the responses to one request: command sets encoded by hand, identifiers
    in the request's transfer syntax."""

    def __init__(self, assoc: Any, req: Any, context: Any, command_field: int) -> None:
        self.assoc, self.context, self.command_field = assoc, context, command_field
        self.message_id = int(req.MessageID)
        self.sop_class = str(req.AffectedSOPClassUID)

    def send(self, code: int, comment: str = "", identifier: Dataset | None = None,
             counts: list[tuple[int, int]] = (), encoded: bytes | None = None) -> None:
        """One response; its identifier as a Dataset, or ``encoded`` already."""
        data = encoded
        if identifier is not None:
            syntax = self.context.transfer_syntax[0]
            if syntax.is_little_endian and not syntax.is_deflated:
                data = pdata.encode_identifier(identifier, syntax.is_implicit_VR)
            if data is None:
                data = encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian,
                              syntax.is_deflated)
        command = pdata.response(self.command_field, self.message_id, self.sop_class, code,
                                 comment, data_set=data is not None, counts=counts)
        channel.send_message(self.assoc, int(self.context.context_id), command, data)


class _GetResponder(_Responder):
    """Counts C-GET sub-operations and reports them (PS3.4 C.4.3.1.4)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.remaining = self.completed = self.failed = self.warning = 0
        self.failed_uids: list[str] = []

    def count(self, code: int | None, sop_uid: str) -> None:
        self.remaining -= 1
        if code == status.SUCCESS:
            self.completed += 1
        elif code is not None and code & 0xF000 == 0xB000:  # storage warnings
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(sop_uid)

    def pending(self) -> None:
        self._report(status.PENDING, with_remaining=True)

    def final(self, code: int | None = None, comment: str = "") -> None:
        identifier = None
        if code is None:
            if not self.failed and not self.warning:
                code = status.SUCCESS
            elif self.failed and not (self.completed or self.warning):
                code = status.SUB_OPERATIONS_IMPOSSIBLE
            else:
                code = status.SUB_OPERATIONS_FAILED
            if code != status.SUCCESS:
                identifier = Dataset()
                identifier.FailedSOPInstanceUIDList = self.failed_uids
        elif code == status.CANCEL and self.failed_uids:
            identifier = Dataset()
            identifier.FailedSOPInstanceUIDList = self.failed_uids
        self._report(code, comment, identifier, with_remaining=code == status.CANCEL)

    def _report(self, code: int, comment: str = "", identifier: Dataset | None = None,
                with_remaining: bool = False) -> None:
        counts = [(pdata.REMAINING, max(self.remaining, 0))] if with_remaining else []
        counts += [(pdata.COMPLETED, self.completed), (pdata.FAILED, self.failed),
                   (pdata.WARNING, self.warning)]
        self.send(code, comment, identifier, counts)


def event_handlers(archive: Archive, config: NodeConfig) -> list[tuple[Any, Any, list[Any]]]:
    from printscp.services.storage import handle_store

    return [(evt.EVT_C_STORE, handle_store, [archive]),
            (evt.EVT_C_MOVE, handle_move, [archive, config])]
