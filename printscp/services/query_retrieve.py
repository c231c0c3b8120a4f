"""Query/Retrieve SCP (PS3.4 Annex C): Patient Root and Study Root FIND, MOVE and GET.

Handlers are pynetdicom generators bound with the archive and the node's config.
Queries are hierarchical: the unique keys of the levels above the query level must
be given (single value or UID list); matching follows PS3.4 C.2
(:mod:`printscp.archive.matching`).

Statuses: 0xFF00 pending; 0x0000 done; 0xFE00 cancelled (C-CANCEL); 0xA900
identifier does not match the SOP class (missing or wrong Query/Retrieve Level,
missing unique key of a higher level; the Error Comment names it); 0xC000 unable to
process (undecodable identifier); 0xA801 move destination unknown (not in the AE
table); sub-operation counts and, for a partial failure, 0xB000 come from pynetdicom.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from printscp import reactors, status
from printscp.archive.archive import Archive
from printscp.archive.index import ORDER, Level
from printscp.config import NodeConfig
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


class QueryError(Exception):
    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status



def parse_request(identifier: Dataset, sop_class: str, retrieve: bool = False
                  ) -> tuple[Level, bool]:
    """(Query/Retrieve Level, patient root?) of a request; QueryError if invalid."""
    patient_root = sop_class in PATIENT_ROOT
    text = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    try:
        level = Level(text)
    except ValueError:
        raise QueryError(status.DOES_NOT_MATCH_SOP_CLASS,
                         f"QueryRetrieveLevel {text or '(missing)'} is not valid") from None
    if level is Level.PATIENT and not patient_root:
        raise QueryError(status.DOES_NOT_MATCH_SOP_CLASS,
                         "QueryRetrieveLevel PATIENT needs the Patient Root model")
    first = 0 if patient_root else 1
    for above in ORDER[first:ORDER.index(level)]:
        keyword = UNIQUE_KEYS[above]
        if not identifier.get(keyword):
            raise QueryError(status.DOES_NOT_MATCH_SOP_CLASS,
                             f"{keyword} is required at level {level.value}")
    if retrieve and not identifier.get(UNIQUE_KEYS[level]):
        raise QueryError(status.DOES_NOT_MATCH_SOP_CLASS,
                         f"{UNIQUE_KEYS[level]} is required to retrieve at {level.value}")
    return level, patient_root


def _identifier(event: Any) -> Dataset:
    try:
        return event.identifier
    except Exception as exc:
        raise QueryError(status.CANNOT_UNDERSTAND, f"cannot decode the identifier: {exc}") from None


def handle_find(event: Any, archive: Archive, config: NodeConfig) -> Iterator[tuple[Any, Any]]:
    """C-FIND: one pending response per match, return keys filled (empty if unknown)."""
    try:
        identifier = _identifier(event)
        level, patient_root = parse_request(identifier, str(event.request.AffectedSOPClassUID))
    except QueryError as exc:
        yield status_dataset(exc.status, str(exc)), None
        return
    for record, _ in archive.index.query(level, identifier, patient_root=patient_root):
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, _response(identifier, record, level, config.ae_title)


def _response(identifier: Dataset, record: Dataset, level: Level, ae_title: str) -> Dataset:
    rsp = Dataset()
    if "SpecificCharacterSet" in record:
        rsp.SpecificCharacterSet = record.SpecificCharacterSet
    for elem in identifier:
        if elem.tag in (0x00080005,):
            continue
        if elem.tag in record:
            rsp.add(record[elem.tag])
        else:
            rsp.add_new(elem.tag, elem.VR, None)
    rsp.QueryRetrieveLevel = level.value
    rsp.RetrieveAETitle = ae_title
    if "InstanceAvailability" in identifier:
        rsp.InstanceAvailability = "ONLINE"
    return rsp


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


class StoredFile(Dataset):
    """A stored instance yielded to pynetdicom's C-GET/C-MOVE service by reference.

    pynetdicom only takes Datasets from these handlers and re-encodes them; its
    ``send_c_store`` can also send a file as it is (the data set bytes after the File
    Meta Information, undecoded).  :func:`send_files_raw` makes the association do so
    for these references, which is several times faster for large images.
    """

    def __init__(self, path: Path, sop_class: str, sop_uid: str, syntax: str) -> None:
        super().__init__()
        self.SOPClassUID = sop_class
        self.SOPInstanceUID = sop_uid
        self.file_meta = FileMetaDataset()
        self.file_meta.TransferSyntaxUID = syntax
        object.__setattr__(self, "stored_path", path)


def send_files_raw(assoc: Any) -> None:
    """Have ``assoc.send_c_store`` send :class:`StoredFile` references from their files
    as they are (:func:`printscp.reactors.send_c_store_file`)."""
    if getattr(assoc, "_printscp_raw", False):
        return
    send = assoc.send_c_store

    def send_c_store(dataset: Any, msg_id: int = 1, priority: int = 2,
                     originator_aet: Any = None, originator_id: int | None = None) -> Any:
        path = getattr(dataset, "stored_path", None)
        if path is not None:
            meta = dataset.file_meta
            status = reactors.send_c_store_file(
                assoc, path, str(dataset.SOPClassUID), str(dataset.SOPInstanceUID),
                str(meta.TransferSyntaxUID), msg_id, priority, originator_aet, originator_id)
            if status is not None:
                return status
        return send(path if path is not None else dataset, msg_id, priority,
                    originator_aet, originator_id)

    assoc.send_c_store = send_c_store
    assoc._printscp_raw = True


def _no_delay(event: Any) -> None:
    """Our sockets never wait on the peer's delayed ACK (as the server's); stored
    files go out as they are."""
    with contextlib.suppress(OSError, AttributeError):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send_files_raw(event.assoc)


def handle_move(event: Any, archive: Archive, config: NodeConfig) -> Iterator[Any]:
    """C-MOVE to a destination of the AE table; pending responses and final counts."""
    destination = event.move_destination
    name = destination.decode("ascii", "replace") if isinstance(destination, bytes) \
        else str(destination)
    remote = config.remote_ae(name)
    if remote is None:
        LOGGER.warning("C-MOVE to unknown destination %r", name.strip())
        yield None, None  # pynetdicom answers 0xA801 (move destination unknown)
        return
    try:
        records = _records(event, archive)
    except QueryError as exc:
        # pynetdicom takes a failure status only after a destination and a count.
        yield remote.host, remote.port, {"contexts": [build_context(ExplicitVRLittleEndian)]}
        yield 1
        yield status_dataset(exc.status, str(exc)), None
        return
    yield remote.host, remote.port, {
        "contexts": _contexts(records) or [build_context(ExplicitVRLittleEndian)],
        "evt_handlers": [(evt.EVT_CONN_OPEN, _no_delay)]}
    yield len(records)
    for record in records:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, StoredFile(archive.path_of(record), record.sop_class_uid,
                                  record.sop_uid, record.transfer_syntax)


def handle_get(event: Any, archive: Archive, config: NodeConfig) -> Iterator[Any]:
    """C-GET: C-STOREs on the requester's association; converted to an uncompressed
    syntax it accepted when it did not accept the stored one and decoding is possible."""
    try:
        records = _records(event, archive)
    except QueryError as exc:
        yield 1  # pynetdicom takes a failure status only after a count
        yield status_dataset(exc.status, str(exc)), None
        return
    accepted: dict[str, set[str]] = {}
    for cx in event.assoc.accepted_contexts:
        accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
    send_files_raw(event.assoc)
    yield len(records)
    for record in records:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        if record.transfer_syntax in accepted.get(record.sop_class_uid, set()):
            # The requester takes the stored syntax: sent from the file as it is.
            yield status.PENDING, StoredFile(archive.path_of(record), record.sop_class_uid,
                                      record.sop_uid, record.transfer_syntax)
            continue
        ds = archive.read(record)  # pynetdicom converts between uncompressed syntaxes
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            try:
                ds.decompress()  # to Explicit VR Little Endian
            except Exception as exc:
                LOGGER.warning("cannot convert %s from %s: %s", record.sop_uid,
                               record.transfer_syntax, exc)
        yield status.PENDING, ds


def event_handlers(archive: Archive, config: NodeConfig) -> list[tuple[Any, Any, list[Any]]]:
    from printscp.services.storage import handle_store

    return [(evt.EVT_C_STORE, handle_store, [archive]),
            (evt.EVT_C_FIND, handle_find, [archive, config]),
            (evt.EVT_C_MOVE, handle_move, [archive, config]),
            (evt.EVT_C_GET, handle_get, [archive, config])]
