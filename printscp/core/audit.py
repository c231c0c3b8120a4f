"""The node's audit trail: who did what to which object, from where, and how it ended.

One JSON object a line in ``DATA_DIR/audit/audit.jsonl``, in the vocabulary of the DICOM
audit messages (PS3.15 A.5: Event Identification, Active Participants, Participant
Objects; the codes of PS3.16 CID 400-404), so that a security reviewer or an audit
repository reads it as it reads dcm4chee's or any ATNA node's messages::

    {"time": "2025-05-01T09:30:00.123+00:00",
     "action": "dicom.find", "target": "", "user": "FINDSCU", "source": "127.0.0.1",
     "outcome": "success",
     "EventID": {"code": "110112", "scheme": "DCM", "meaning": "Query"},
     "EventActionCode": "E", "EventOutcomeIndicator": 0,
     "EventOutcomeDescription": "Success",
     "ActiveParticipant": [...], "ParticipantObjectIdentification": [...], ...}

``action``/``target``/``user``/``source``/``outcome`` are printscp's own words, which
the console and the command line have always written and read; the capitalised keys
are the standard's element names.

Why this shape of writing:

- **Durable before it is reported**: each line is one ``write`` on an ``O_APPEND``
  descriptor followed by ``fsync``, so an acknowledged deletion is on record and two
  processes (the worker processes of ``printscp serve``, its console, a command run
  beside it) appending at once never interleave or split a line.
- **Never in the caller's way**: :func:`emit` and :func:`record` never raise; a write
  that fails (disk full, permissions) is logged once until writing works again.
- **Whole files rotate**: past ``[audit] rotate_mb`` the file is renamed
  ``audit-YYYYmmddTHHMMSS.jsonl`` (UTC) and a new one begun, under an exclusive
  ``flock`` of ``audit/.lock`` that every writer holds shared while it writes, so no
  line lands in a file being renamed; closed files older than ``keep_days`` go.
- **Cheap on the DICOM paths**: instances received on an association are counted in
  memory (:func:`received`) and written as one line per study when the association
  closes, as PS3.15's DICOM Instances Transferred message describes a transfer of a
  study's instances, not each instance.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import getpass
import json
import logging
import os
import queue
import re
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("printscp.audit")

AUDIT_DIR = Path("audit")
AUDIT_FILE = AUDIT_DIR / "audit.jsonl"
LOCK_FILE = AUDIT_DIR / ".lock"
#: A closed file: ``audit-20250501T093000.jsonl`` (UTC), ``...T093000.2.jsonl`` when a
#: second rotation falls in the same second.
CLOSED_FILE = re.compile(r"^audit-(\d{8}T\d{6})(?:\.(\d+))?\.jsonl$")


# -- the vocabulary (PS3.15 A.5.1, PS3.16 CID 400-404, RFC 3881) -----------------------
class Code(tuple[str, str, str]):
    """A coded value (Code Value, Coding Scheme Designator, Code Meaning)."""

    __slots__ = ()

    def __new__(cls, value: str, meaning: str, scheme: str = "DCM") -> Code:
        return super().__new__(cls, (value, scheme, meaning))

    def as_json(self) -> dict[str, str]:
        return {"code": self[0], "scheme": self[1], "meaning": self[2]}


class AuditEvent(Enum):
    """Audit Event ID (PS3.16 CID 400), the message types of PS3.15 A.5.3."""

    #: Application Activity: an application started or stopped (A.5.3.1).
    APPLICATION_ACTIVITY = Code("110100", "Application Activity")
    #: Audit Log Used: the audit trail was read (A.5.3.2).
    AUDIT_LOG_USED = Code("110101", "Audit Log Used")
    #: Begin Transferring DICOM Instances: a system begins sending instances (A.5.3.3).
    BEGIN_TRANSFERRING = Code("110102", "Begin Transferring DICOM Instances")
    #: DICOM Instances Accessed: instances created, read, updated or deleted (A.5.3.4).
    INSTANCES_ACCESSED = Code("110103", "DICOM Instances Accessed")
    #: DICOM Instances Transferred: the completion of a transfer between AEs (A.5.3.5).
    INSTANCES_TRANSFERRED = Code("110104", "DICOM Instances Transferred")
    #: DICOM Study Deleted: all instances of a study deleted (A.5.3.6).
    STUDY_DELETED = Code("110105", "DICOM Study Deleted")
    #: Data Export: data leaves the security domain: printed to paper or film,
    #: written to removable media, sent out (A.5.3.7).
    EXPORT = Code("110106", "Export")
    #: Data Import: data enters the security domain, e.g. read from media (A.5.3.8).
    IMPORT = Code("110107", "Import")
    #: Network Entry: a system attached to or detached from the network (A.5.3.9).
    NETWORK_ENTRY = Code("110108", "Network Entry")
    #: Order Record: an order created, read, updated or deleted (A.5.3.10).
    ORDER_RECORD = Code("110109", "Order Record")
    #: Patient Record: a patient record created, read, updated or deleted (A.5.3.11).
    PATIENT_RECORD = Code("110110", "Patient Record")
    #: Procedure Record: a procedure record created, read, updated or deleted (A.5.3.12).
    PROCEDURE_RECORD = Code("110111", "Procedure Record")
    #: Query: a query (C-FIND) was received (A.5.3.13).
    QUERY = Code("110112", "Query")
    #: Security Alert: a security-relevant event: an authentication failure, a
    #: change of users or security settings (A.5.3.14).
    SECURITY_ALERT = Code("110113", "Security Alert")
    #: User Authentication: a user signed in or out, or failed to (A.5.3.15).
    USER_AUTHENTICATION = Code("110114", "User Authentication")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def meaning(self) -> str:
        return self.value[2]


#: The name in :class:`~printscp.config.model.AuditConfig`'s contract.
EventID = AuditEvent


class EventTypeCode(Enum):
    """Audit Event Type Code (PS3.16 CID 401): what kind of Application Activity,
    Security Alert, User Authentication or Network Entry."""

    APPLICATION_START = Code("110120", "Application Start")
    APPLICATION_STOP = Code("110121", "Application Stop")
    LOGIN = Code("110122", "Login")
    LOGOUT = Code("110123", "Logout")
    ATTACH = Code("110124", "Attach")
    DETACH = Code("110125", "Detach")
    NODE_AUTHENTICATION = Code("110126", "Node Authentication")
    EMERGENCY_OVERRIDE_STARTED = Code("110127", "Emergency Override Started")
    NETWORK_CONFIGURATION = Code("110128", "Network Configuration")
    SECURITY_CONFIGURATION = Code("110129", "Security Configuration")
    HARDWARE_CONFIGURATION = Code("110130", "Hardware Configuration")
    SOFTWARE_CONFIGURATION = Code("110131", "Software Configuration")
    USE_OF_RESTRICTED_FUNCTION = Code("110132", "Use of Restricted Function")
    AUDIT_RECORDING_STOPPED = Code("110133", "Audit Recording Stopped")
    AUDIT_RECORDING_STARTED = Code("110134", "Audit Recording Started")
    OBJECT_SECURITY_ATTRIBUTES_CHANGED = Code("110135", "Object Security Attributes Changed")
    SECURITY_ROLES_CHANGED = Code("110136", "Security Roles Changed")
    USER_SECURITY_ATTRIBUTES_CHANGED = Code("110137", "User security Attributes Changed")


class EventActionCode(StrEnum):
    """Event Action Code (PS3.15 A.5.1): what the event did to its objects."""

    CREATE = "C"  #: Create
    READ = "R"  #: Read (also view, print, query)
    UPDATE = "U"  #: Update
    DELETE = "D"  #: Delete
    EXECUTE = "E"  #: Execute (an application action, a query, a sign-in)


class EventOutcomeIndicator(IntEnum):
    """Event Outcome Indicator (PS3.15 A.5.1, RFC 3881)."""

    SUCCESS = 0  #: Success
    MINOR_FAILURE = 4  #: Minor failure (the action was refused or ended, no harm done)
    SERIOUS_FAILURE = 8  #: Serious failure (the action failed)
    MAJOR_FAILURE = 12  #: Major failure; action made unavailable

    @property
    def text(self) -> str:
        return _OUTCOME_TEXT[self]


_OUTCOME_TEXT = {EventOutcomeIndicator.SUCCESS: "Success",
                 EventOutcomeIndicator.MINOR_FAILURE: "Minor failure",
                 EventOutcomeIndicator.SERIOUS_FAILURE: "Serious failure",
                 EventOutcomeIndicator.MAJOR_FAILURE: "Major failure; action made unavailable"}

#: The short name (for ``Outcome`` arguments and printscp's ``outcome`` word).
Outcome = EventOutcomeIndicator


class RoleIDCode(Enum):
    """Audit Active Participant Role ID Code (PS3.16 CID 402)."""

    APPLICATION = Code("110150", "Application")
    APPLICATION_LAUNCHER = Code("110151", "Application Launcher")
    DESTINATION = Code("110152", "Destination Role ID")
    SOURCE = Code("110153", "Source Role ID")
    DESTINATION_MEDIA = Code("110154", "Destination Media")
    SOURCE_MEDIA = Code("110155", "Source Media")


class UserIDTypeCode(Enum):
    """How an Active Participant's UserID is to be read (DCM and RFC 3881 codes)."""

    STATION_AE_TITLE = Code("110119", "Station AE Title")
    NODE_ID = Code("110182", "Node ID")
    PERSON_ID = Code("113871", "Person ID")
    URI = Code("12", "URI", "RFC-3881")


class ParticipantObjectTypeCode(IntEnum):
    """Participant Object Type Code (RFC 3881 5.5.1)."""

    PERSON = 1
    SYSTEM_OBJECT = 2
    ORGANIZATION = 3
    OTHER = 4


class ParticipantObjectTypeCodeRole(IntEnum):
    """Participant Object Type Code Role (RFC 3881 5.5.2)."""

    PATIENT = 1
    LOCATION = 2
    REPORT = 3
    RESOURCE = 4
    MASTER_FILE = 5
    USER = 6
    LIST = 7
    DOCTOR = 8
    SUBSCRIBER = 9
    GUARANTOR = 10
    SECURITY_USER_ENTITY = 11
    SECURITY_USER_GROUP = 12
    SECURITY_RESOURCE = 13
    SECURITY_GRANULARITY_DEFINITION = 14
    PROVIDER = 15
    DATA_DESTINATION = 16
    DATA_REPOSITORY = 17
    SCHEDULE = 18
    CUSTOMER = 19
    JOB = 20
    JOB_STREAM = 21
    TABLE = 22
    ROUTING_CRITERIA = 23
    QUERY = 24


class ParticipantObjectIDTypeCode(Enum):
    """Participant Object ID Type Code (RFC 3881 5.5.4, PS3.16 CID 404)."""

    MEDICAL_RECORD_NUMBER = Code("1", "Medical Record Number", "RFC-3881")
    PATIENT_NUMBER = Code("2", "Patient Number", "RFC-3881")
    REPORT_NUMBER = Code("9", "Report Number", "RFC-3881")
    SEARCH_CRITERIA = Code("10", "Search Criteria", "RFC-3881")
    USER_IDENTIFIER = Code("11", "User Identifier", "RFC-3881")
    URI = Code("12", "URI", "RFC-3881")
    STUDY_INSTANCE_UID = Code("110180", "Study Instance UID")
    SOP_CLASS_UID = Code("110181", "SOP Class UID")
    NODE_ID = Code("110182", "Node ID")


# -- configuration ------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    """The parts of ``[audit]`` the writer uses (duck-typed from AuditConfig: core is
    below config)."""

    enabled: bool = True
    rotate_bytes: int = 64 << 20
    keep_days: int = 0
    associations: bool = True

    @classmethod
    def of(cls, config: Any) -> _Settings:
        if config is None:
            return cls()
        return cls(bool(config.enabled), int(config.rotate_mb) << 20, int(config.keep_days),
                   bool(getattr(config, "associations", True)))


@dataclass
class _Node:
    """This process's trail: where it writes and who "we" are in its lines."""

    data_dir: Path
    settings: _Settings
    ae_title: str = ""
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


_lock = threading.Lock()  #: one writer at a time in this process (flock is per process)
_node: _Node | None = None
_failing = False  #: a failure was logged and no write has worked since


def configure(data_dir: str | Path, config: Any = None, *, ae_title: str = "") -> None:
    """Set where this process's :func:`emit` writes, and how (an
    :class:`~printscp.config.model.AuditConfig`; None for the defaults).  Called at the
    start of each process of a node (each worker, the console); closed files older
    than ``keep_days`` are removed now and at each rotation."""
    global _node
    settings = _Settings.of(config)
    with _lock:
        _node = _Node(Path(data_dir).resolve(), settings, ae_title)
    if settings.enabled and settings.keep_days:
        with contextlib.suppress(OSError):
            _prune(Path(data_dir), settings.keep_days)


def configured() -> bool:
    """Whether :func:`configure` was called in this process."""
    return _node is not None


def _settings_for(data_dir: Path) -> _Settings:
    node = _node
    if node is not None and node.data_dir == data_dir.resolve():
        return node.settings
    return _Settings()


# -- writing -----------------------------------------------------------------------
def _write(data_dir: Path, lines: list[dict[str, Any]], settings: _Settings) -> bool:
    """Append ``lines`` durably (one ``write``); False, logged once, if that failed."""
    global _failing
    if not settings.enabled or not lines:
        return True
    data = "".join(json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))
                   + "\n" for line in lines).encode("utf-8")
    folder = data_dir / AUDIT_DIR
    try:
        with _lock:
            size = _append(folder, data)
            if size >= settings.rotate_bytes:
                _rotate(folder, settings)
        if _failing:
            _failing = False
            LOGGER.warning("audit trail: writing to %s works again", folder)
        return True
    except Exception as exc:
        if not _failing:
            _failing = True
            LOGGER.error("audit trail: cannot write to %s: %s (lines are lost until it "
                         "works again; this is logged once)", folder, exc)
        else:
            LOGGER.debug("audit trail: still cannot write: %s", exc)
        return False


@contextlib.contextmanager
def _flocked(folder: Path, mode: int) -> Iterator[None]:
    fd = os.open(folder / LOCK_FILE.name, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # releases the lock


def _append(folder: Path, data: bytes) -> int:
    """One ``write`` of ``data`` to the current file, fsynced; the file's size after."""
    try:
        return _append_in(folder, data)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        return _append_in(folder, data)


def _append_in(folder: Path, data: bytes) -> int:
    with _flocked(folder, fcntl.LOCK_SH):  # no rotation renames the file meanwhile
        fd = os.open(folder / AUDIT_FILE.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                     0o640)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a full disk: never leave half a line
                raise OSError(f"short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)


def _rotate(folder: Path, settings: _Settings) -> None:
    """Close the current file (renamed with the UTC time) if it is still past the
    size once this process holds the lock alone; remove closed files past keep_days."""
    with _flocked(folder, fcntl.LOCK_EX):
        current = folder / AUDIT_FILE.name
        try:
            if current.stat().st_size < settings.rotate_bytes:
                return  # another process rotated it first
        except FileNotFoundError:
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = folder / f"audit-{stamp}.jsonl"
        n = 1
        while target.exists():
            n += 1
            target = folder / f"audit-{stamp}.{n}.jsonl"
        os.rename(current, target)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename survives a crash
        finally:
            os.close(dir_fd)
        LOGGER.info("audit trail: %s closed as %s", current.name, target.name)
        if settings.keep_days:
            _prune(folder.parent, settings.keep_days)


def _prune(data_dir: Path, keep_days: int) -> None:
    """Remove closed files whose rotation time is more than ``keep_days`` ago."""
    limit = datetime.now(UTC) - timedelta(days=keep_days)
    for path, closed in closed_files(data_dir):
        if closed < limit:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                LOGGER.info("audit trail: %s removed (older than %d days)", path.name,
                            keep_days)


# -- the lines ---------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _as_outcome(outcome: EventOutcomeIndicator | int | str | bool
                ) -> tuple[EventOutcomeIndicator, str]:
    """(indicator, printscp's outcome word) of an outcome given as an indicator, a
    bool (success or minor failure) or printscp's word ("success", "refused"...)."""
    if isinstance(outcome, bool):
        indicator = Outcome.SUCCESS if outcome else Outcome.MINOR_FAILURE
    elif isinstance(outcome, str):
        word = outcome or "success"
        return (Outcome.SUCCESS if word == "success" else Outcome.MINOR_FAILURE), word
    else:
        indicator = EventOutcomeIndicator(int(outcome))
    return indicator, "success" if indicator is Outcome.SUCCESS else "failure"


def _many(value: str | Iterable[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v]


def participant(user_id: str, *, requestor: bool, host: str = "",
                role: RoleIDCode | None = None, id_type: UserIDTypeCode | None = None,
                alternative: str = "", name: str = "") -> dict[str, Any]:
    """An Active Participant (PS3.15 A.5.2.2)."""
    out: dict[str, Any] = {"UserID": user_id, "UserIsRequestor": requestor}
    if alternative:
        out["AlternativeUserID"] = alternative
    if name:
        out["UserName"] = name
    if id_type is not None:
        out["UserIDTypeCode"] = id_type.value.as_json()
    if role is not None:
        out["RoleIDCode"] = role.value.as_json()
    if host:
        out["NetworkAccessPointID"] = host
        out["NetworkAccessPointTypeCode"] = 2 if _is_address(host) else 1
    return out


@functools.lru_cache(maxsize=1024)
def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def participant_object(object_id: str, type_code: ParticipantObjectTypeCode,
                       role: ParticipantObjectTypeCodeRole,
                       id_type: ParticipantObjectIDTypeCode | Code, **extra: Any
                       ) -> dict[str, Any]:
    """A Participant Object Identification (PS3.15 A.5.2.5); ``extra``: its
    ParticipantObjectName, ParticipantObjectQuery, ParticipantObjectDescription..."""
    code = id_type.value if isinstance(id_type, ParticipantObjectIDTypeCode) else id_type
    return {"ParticipantObjectID": object_id, "ParticipantObjectTypeCode": int(type_code),
            "ParticipantObjectTypeCodeRole": int(role),
            "ParticipantObjectIDTypeCode": code.as_json(), **extra}


def patient_object(patient_id: str, name: str = "") -> dict[str, Any]:
    extra = {"ParticipantObjectName": name} if name else {}
    return participant_object(patient_id, ParticipantObjectTypeCode.PERSON,
                              ParticipantObjectTypeCodeRole.PATIENT,
                              ParticipantObjectIDTypeCode.PATIENT_NUMBER, **extra)


def study_object(study_uid: str, **extra: Any) -> dict[str, Any]:
    return participant_object(study_uid, ParticipantObjectTypeCode.SYSTEM_OBJECT,
                              ParticipantObjectTypeCodeRole.REPORT,
                              ParticipantObjectIDTypeCode.STUDY_INSTANCE_UID, **extra)


def job_object(job_id: str, **extra: Any) -> dict[str, Any]:
    """A print job (role Job; its ID printscp's job id)."""
    return participant_object(job_id, ParticipantObjectTypeCode.SYSTEM_OBJECT,
                              ParticipantObjectTypeCodeRole.JOB,
                              Code("job", "printscp print job id", "printscp"), **extra)


def query_object(sop_class: str, keys: dict[str, Any]) -> dict[str, Any]:
    """A C-FIND's query (role Query, ID the SOP Class UID, PS3.15 A.5.3.13): its keys
    as DICOM JSON-like ``{keyword: value}`` rather than base64 of the data set."""
    return participant_object(sop_class, ParticipantObjectTypeCode.SYSTEM_OBJECT,
                              ParticipantObjectTypeCodeRole.QUERY,
                              ParticipantObjectIDTypeCode.SOP_CLASS_UID,
                              ParticipantObjectQuery=keys)


def _local(node: _Node | None, role: RoleIDCode | None) -> dict[str, Any]:
    """printscp itself as an Active Participant."""
    ae = node.ae_title if node is not None else ""
    return participant(ae or "printscp", requestor=False,
                       host=node.host if node is not None else socket.gethostname(),
                       role=role, id_type=UserIDTypeCode.STATION_AE_TITLE if ae else None,
                       alternative=str(node.pid if node is not None else os.getpid()))


def build(event: AuditEvent, outcome: EventOutcomeIndicator | int | str | bool
          = EventOutcomeIndicator.SUCCESS, *, action: EventActionCode | None = None,
          type: EventTypeCode | None = None, ae: str = "", host: str = "", user: str = "",
          requestor: bool = True, role: RoleIDCode | None = None,
          local_role: RoleIDCode | None = None,
          participants: Iterable[dict[str, Any]] = (), patient: str | Iterable[str] = "",
          study: str | Iterable[str] = "", job: str = "",
          objects: Iterable[dict[str, Any]] = (), word: str = "", target: str = "",
          description: str = "", extra: dict[str, Any] | None = None, **details: Any
          ) -> dict[str, Any]:
    """One line (see :func:`emit`), not written; ``extra`` and ``details`` are kept as
    printscp's own fields (``extra`` for names that are parameters here)."""
    indicator, outcome_word = _as_outcome(outcome)
    who = user or ae
    line: dict[str, Any] = {
        "time": _now(), "action": word or event.name.lower().replace("_", "."),
        "target": target or job or next(iter(_many(study)), "")
        or next(iter(_many(patient)), ""),
        "user": who, "source": host or str(details.pop("source", "") or ""),
        "outcome": outcome_word,
        "EventID": event.value.as_json(),
        "EventActionCode": str(action or _DEFAULT_ACTION.get(event, EventActionCode.EXECUTE)),
        "EventOutcomeIndicator": int(indicator),
        "EventOutcomeDescription": description or str(
            details.get("reason") or details.get("error") or indicator.text),
    }
    if type is not None:
        line["EventTypeCode"] = type.value.as_json()
    people: list[dict[str, Any]] = []
    if who or host:
        people.append(participant(
            who or host, requestor=requestor, host=host, role=role,
            id_type=(UserIDTypeCode.PERSON_ID if user and user != "cli" else
                     UserIDTypeCode.STATION_AE_TITLE if ae else
                     None if user else UserIDTypeCode.NODE_ID),
            name=ae if user and ae else ""))
    people.extend(participants)
    people.append(_local(_node, local_role))
    line["ActiveParticipant"] = people
    things = [patient_object(p) for p in _many(patient)]
    things += [study_object(s) for s in _many(study)]
    if job:
        things.append(job_object(job))
    things.extend(objects)
    if things:
        line["ParticipantObjectIdentification"] = things
    for key, value in {**(extra or {}), **details}.items():
        if key not in line and value is not None:
            line[key] = value
    return line


#: The action each message takes when the caller names none (PS3.15 A.5.3).
_DEFAULT_ACTION = {
    AuditEvent.AUDIT_LOG_USED: EventActionCode.READ,
    AuditEvent.INSTANCES_TRANSFERRED: EventActionCode.READ,
    AuditEvent.STUDY_DELETED: EventActionCode.DELETE,
    AuditEvent.EXPORT: EventActionCode.READ,
    AuditEvent.IMPORT: EventActionCode.CREATE,
    AuditEvent.INSTANCES_ACCESSED: EventActionCode.READ,
}


# -- the background writer (DICOM traffic) ---------------------------------------------
_Lines = list[dict[str, Any]]
_queue: queue.SimpleQueue[tuple[_Node, _Lines | Callable[[], _Lines]]] = queue.SimpleQueue()
_writer: threading.Thread | None = None
_progress = threading.Condition()
_queued = 0  #: batches put in the queue (under _progress)
_done = 0  #: batches the writer has written (or failed to)


def _later(lines: _Lines | Callable[[], _Lines]) -> None:
    """Queue ``lines`` (or a function that makes them) for the writer thread, which
    appends whatever is queued in one write and one fsync (a query or a retrieve does
    not wait on the disk)."""
    global _writer, _queued
    node = _node
    if node is None:
        return
    with _progress:
        _queued += 1
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_write_queued, name="printscp-audit",
                                       daemon=True)
            _writer.start()
            atexit.register(flush)
    _queue.put((node, lines))  # the trail configured now, not at writing time


def _write_queued() -> None:
    global _done
    while True:
        items = [_queue.get()]
        with contextlib.suppress(queue.Empty):
            while len(items) < 1000:
                items.append(_queue.get_nowait())
        taken = len(items)
        batches: dict[int, tuple[_Node, _Lines]] = {}
        for node, item in items:
            batches.setdefault(id(node), (node, []))[1].extend(_made(item))
        for node, batch in batches.values():
            if batch:
                _write(node.data_dir, batch, node.settings)
        with _progress:
            _done += taken
            _progress.notify_all()


def _made(item: _Lines | Callable[[], _Lines]) -> _Lines:
    if not callable(item):
        return list(item)
    try:
        return list(item())
    except Exception:
        LOGGER.exception("audit trail: cannot make a line")
        return []


def later(make: Callable[[], _Lines]) -> None:
    """Have the writer thread call ``make`` and write the lines it returns: the caller
    (a C-FIND on its way to its first match) pays about a microsecond, not the
    building of the line.  Nothing when the trail is off; never raises."""
    node = _node
    if node is None or not node.settings.enabled:
        return
    try:
        _later(make)
    except Exception:
        LOGGER.exception("audit trail: cannot queue a line")


def flush(timeout: float = 5.0) -> bool:
    """Wait until the lines queued so far are written (a node's stop, exit, tests)."""
    with _progress:
        target = _queued
        return _progress.wait_for(lambda: _done >= target, timeout)


def emit(event: AuditEvent, outcome: EventOutcomeIndicator | int | str | bool
         = EventOutcomeIndicator.SUCCESS, *, ae: str = "", host: str = "", user: str = "",
         patient: str | Iterable[str] = "", study: str | Iterable[str] = "", job: str = "",
         wait: bool = True, **details: Any) -> dict[str, Any] | None:
    """Write one line to this process's trail (:func:`configure`); never raises.

    ``event`` is the message type, ``outcome`` an :class:`EventOutcomeIndicator` (or
    True/False, or printscp's outcome word).  Who: ``ae`` (a calling AE title),
    ``host`` (its address), ``user`` (a console user, ``cli``), the requestor unless
    ``requestor=False``, in ``role``.  What: ``patient``, ``study`` (one or several),
    ``job``, and ``objects`` (:func:`participant_object`...).  Keywords of
    :func:`build` (``action``, ``type``, ``description``, ``word``, ``target``,
    ``participants``, ``local_role``) shape the line; any other keyword is kept as a
    field of printscp's own.  Returns the line, or None if nothing was written
    (not configured, ``[audit] enabled = false``, or the write failed).

    With ``wait=False`` the line is queued for a writer thread (written and fsynced
    within milliseconds, with whatever else is queued): for the DICOM paths, whose
    answers must not wait on the disk.  Actions a user asked for (a deletion) wait.
    """
    node = _node
    if node is None or not node.settings.enabled:
        return None
    try:
        line = build(event, outcome, ae=ae, host=host, user=user, patient=patient,
                     study=study, job=job, **details)
    except Exception:
        LOGGER.exception("audit trail: cannot build a %s line", event)
        return None
    if not wait:
        _later([line])
        return line
    return line if _write(node.data_dir, [line], node.settings) else None


def emit_lines(lines: list[dict[str, Any]], *, wait: bool = True) -> bool:
    """Write lines made by :func:`build` together (one write, one fsync)."""
    node = _node
    if node is None or not node.settings.enabled or not lines:
        return False
    if not wait:
        _later(lines)
        return True
    return _write(node.data_dir, lines, node.settings)


def enabled() -> bool:
    """Whether :func:`emit` writes in this process (worth gathering a line's facts)."""
    node = _node
    return node is not None and node.settings.enabled


# -- printscp's action words (the console and the command line) -----------------------
#: printscp's word -> (message, action, event type, what ``target`` names).
WORDS: dict[str, tuple[AuditEvent, EventActionCode, EventTypeCode | None, str]] = {
    "study.delete": (AuditEvent.STUDY_DELETED, EventActionCode.DELETE, None, "study"),
    "user.login": (AuditEvent.USER_AUTHENTICATION, EventActionCode.EXECUTE,
                   EventTypeCode.LOGIN, "user"),
    "user.logout": (AuditEvent.USER_AUTHENTICATION, EventActionCode.EXECUTE,
                    EventTypeCode.LOGOUT, "user"),
    "user.add": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                 EventTypeCode.USER_SECURITY_ATTRIBUTES_CHANGED, "user"),
    "user.password": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                      EventTypeCode.USER_SECURITY_ATTRIBUTES_CHANGED, "user"),
    "user.remove": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                    EventTypeCode.USER_SECURITY_ATTRIBUTES_CHANGED, "user"),
    "user.token": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                   EventTypeCode.USER_SECURITY_ATTRIBUTES_CHANGED, "user"),
    "user.revoke-token": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                          EventTypeCode.USER_SECURITY_ATTRIBUTES_CHANGED, "user"),
    "user.role": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                  EventTypeCode.SECURITY_ROLES_CHANGED, "user"),
    "job.cancel": (AuditEvent.ORDER_RECORD, EventActionCode.UPDATE, None, "job"),
    "job.hold": (AuditEvent.ORDER_RECORD, EventActionCode.UPDATE, None, "job"),
    "job.release": (AuditEvent.ORDER_RECORD, EventActionCode.UPDATE, None, "job"),
    "job.delete": (AuditEvent.ORDER_RECORD, EventActionCode.DELETE, None, "job"),
    "job.reprint": (AuditEvent.ORDER_RECORD, EventActionCode.CREATE, None, "job"),
    "worklist.add": (AuditEvent.PROCEDURE_RECORD, EventActionCode.CREATE, None, "item"),
    "worklist.import": (AuditEvent.PROCEDURE_RECORD, EventActionCode.CREATE, None, "item"),
    "worklist.remove": (AuditEvent.PROCEDURE_RECORD, EventActionCode.DELETE, None, "item"),
    "audit.read": (AuditEvent.AUDIT_LOG_USED, EventActionCode.READ, None, ""),
    "printer.test": (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                     EventTypeCode.USE_OF_RESTRICTED_FUNCTION, "printer"),
}


def record(data_dir: str | Path, action: str, target: str, *, user: str,
           source: str = "", outcome: str = "success", **details: Any) -> dict[str, Any]:
    """Append one line for printscp's ``action`` (``study.delete``, ``job.reprint``...)
    on ``target`` (a UID, a job id) by ``user`` from ``source`` (an address, ``cli``),
    with the DICOM message :data:`WORDS` gives it.  Written to ``data_dir``'s trail
    whether or not this process was configured (honouring ``[audit]`` when it was for
    the same folder); never raises.  Returns the line."""
    event, code, type_code, kind = WORDS.get(
        action, (AuditEvent.SECURITY_ALERT, EventActionCode.EXECUTE,
                 EventTypeCode.USE_OF_RESTRICTED_FUNCTION, ""))
    objects: list[dict[str, Any]] = []
    patient = str(details.get("patient_id") or "")
    study = str(details.get("study_uid") or "")
    job = ""
    if kind == "study":
        study = target
    elif kind == "job":
        job = target
    elif kind == "user":
        objects.append(participant_object(
            target, ParticipantObjectTypeCode.PERSON,
            ParticipantObjectTypeCodeRole.SECURITY_USER_ENTITY,
            ParticipantObjectIDTypeCode.USER_IDENTIFIER))
    elif kind == "item":
        objects.append(participant_object(
            target, ParticipantObjectTypeCode.SYSTEM_OBJECT,
            ParticipantObjectTypeCodeRole.SCHEDULE,
            Code("worklist-item", "printscp worklist item", "printscp")))
    elif target:
        objects.append(participant_object(
            target, ParticipantObjectTypeCode.SYSTEM_OBJECT,
            ParticipantObjectTypeCodeRole.RESOURCE,
            Code("name", "printscp name", "printscp")))
    error = details.get("error") or details.get("reason") or ""
    try:
        line = build(event, outcome, action=code, type=type_code, user=user,
                     host="" if source == "cli" else source, patient=patient, study=study,
                     job=job, objects=objects, word=action, target=target,
                     description=f"{outcome}: {error}" if error else
                     "" if outcome == "success" else outcome, extra=details)
        line["source"] = source
    except Exception:
        LOGGER.exception("audit trail: cannot build a %s line", action)
        line = {"time": _now(), "action": action, "target": target, "user": user,
                "source": source, "outcome": outcome, **details}
    path = Path(data_dir)
    _write(path, [line], _settings_for(path))
    return line


# -- instances received on an association: one line per study at its end --------------
@dataclass
class _Study:
    patient: str = ""
    stored: int = 0
    replaced: int = 0
    kept: int = 0
    refused: int = 0
    sop_classes: dict[str, int] = field(default_factory=dict)
    problem: str = ""


_received: weakref.WeakKeyDictionary[Any, dict[str, _Study]] = weakref.WeakKeyDictionary()
_tally_lock = threading.Lock()  #: not _lock, which a write holds through its fsync


def received(key: Any, patient: str, study: str, sop_class: str, result: str,
             problem: str = "") -> None:
    """Count one C-STORE on the association ``key``: ``result`` is ``stored``,
    ``replaced``, ``kept`` or ``refused`` (``problem`` says why).  About a microsecond:
    the line is written by :func:`transfers` when the association closes."""
    if _node is None or not _node.settings.enabled or key is None:
        return
    try:
        _count(key, patient, study, sop_class, result, problem)
    except Exception:  # never in the way of a C-STORE
        LOGGER.debug("audit trail: cannot count a received instance", exc_info=True)


def _count(key: Any, patient: str, study: str, sop_class: str, result: str,
           problem: str) -> None:
    studies = _received.get(key)
    if studies is None:
        with _tally_lock:  # WeakKeyDictionary: other associations' threads add, remove
            studies = _received.setdefault(key, {})
    tally = studies.get(study)
    if tally is None:
        tally = studies[study] = _Study(patient)
    if result == "stored":
        tally.stored += 1
    elif result == "replaced":
        tally.replaced += 1
    elif result == "kept":
        tally.kept += 1
    else:
        tally.refused += 1
        tally.problem = tally.problem or problem
    tally.sop_classes[sop_class] = tally.sop_classes.get(sop_class, 0) + 1


def transfers(key: Any, *, ae: str, host: str, association: str = "") -> list[dict[str, Any]]:
    """The DICOM Instances Transferred lines of what association ``key`` stored (one a
    study), forgetting them; the caller writes them (:func:`emit_lines`)."""
    with _tally_lock:
        studies = _received.pop(key, None)
    lines = []
    for study, t in (studies or {}).items():
        done = t.stored + t.replaced + t.kept
        if t.refused == 0:
            outcome, text = Outcome.SUCCESS, ""
        else:
            outcome = Outcome.MINOR_FAILURE if done else Outcome.SERIOUS_FAILURE
            text = f"{t.refused} of {done + t.refused} refused: {t.problem}"
        # C when it created instances, U when it only replaced (PS3.15 A.5.3.5), R when
        # every one was a duplicate the archive kept.
        action = (EventActionCode.CREATE if t.stored else EventActionCode.UPDATE
                  if t.replaced else EventActionCode.READ)
        description = [{"SOPClass": uid, "NumberOfInstances": n}
                       for uid, n in sorted(t.sop_classes.items())]
        lines.append(build(
            AuditEvent.INSTANCES_TRANSFERRED, outcome, action=action, ae=ae, host=host,
            role=RoleIDCode.SOURCE, local_role=RoleIDCode.DESTINATION, patient=t.patient,
            objects=[study_object(study, ParticipantObjectDescription=description)]
            if study else [], word="dicom.store", target=study, description=text,
            association=association or None, instances=done + t.refused,
            stored=t.stored, replaced=t.replaced or None, kept=t.kept or None,
            refused=t.refused or None))
    return lines


def association(key: Any, *, ae: str, host: str, called: str, association_id: str,
                ended: str, operations: dict[str, int], seconds: float) -> None:
    """An association's lines when it closes, in one write: a Security Alert (Node
    Authentication) when printscp rejected it, else a Network Entry (Attach) naming what
    it did (``[audit] associations``), and the DICOM Instances Transferred of the
    studies it stored (:func:`received`).  Never raises."""
    node = _node
    if node is None or not node.settings.enabled:
        return
    try:
        out = transfers(key, ae=ae, host=host, association=association_id)
        common = {"ae": ae, "host": host, "association": association_id,
                  "called_ae": called, "seconds": round(seconds, 3)}
        if ended.startswith("rejected"):
            reason = ended.partition(": ")[2] or ended
            # A refusal by the limit on associations is not an authentication failure.
            kind = None if "limit" in reason else EventTypeCode.NODE_AUTHENTICATION
            out.insert(0, build(
                AuditEvent.SECURITY_ALERT, Outcome.MINOR_FAILURE, type=kind,
                word="association.reject", description=f"association rejected: {reason}",
                objects=[participant_object(host, ParticipantObjectTypeCode.SYSTEM_OBJECT,
                                            ParticipantObjectTypeCodeRole.SECURITY_RESOURCE,
                                            ParticipantObjectIDTypeCode.NODE_ID)],
                **common))
        elif node.settings.associations:
            failed = ended.startswith("aborted")
            out.insert(0, build(
                AuditEvent.NETWORK_ENTRY, Outcome.MINOR_FAILURE if failed else Outcome.SUCCESS,
                type=EventTypeCode.ATTACH, word="association", description=ended,
                operations=operations or None, **common))
        if out:
            _later(out)
    except Exception:
        LOGGER.exception("audit trail: cannot record association %s", association_id)


# -- reading -----------------------------------------------------------------------
def closed_files(data_dir: str | Path) -> list[tuple[Path, datetime]]:
    """The closed (rotated) files, oldest first, with their rotation time."""
    folder = Path(data_dir) / AUDIT_DIR
    out = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for name in names:
        match = CLOSED_FILE.match(name)
        if match:
            when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            out.append((folder / name, when, int(match.group(2) or 1)))
    out.sort(key=lambda x: (x[1], x[2]))
    return [(path, when) for path, when, _ in out]


def files(data_dir: str | Path) -> list[Path]:
    """Every file of the trail, oldest first (the current one last)."""
    return [p for p, _ in closed_files(data_dir)] + [Path(data_dir) / AUDIT_FILE]


def _reversed_lines(path: Path, block: int = 1 << 16) -> Iterator[bytes]:
    """The lines of ``path``, last first, read from the end (the console shows the
    newest 50 of a 64 MiB file)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        rest = b""
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start) + rest
            end = start
            lines = chunk.split(b"\n")
            rest = lines.pop(0)
            for line in reversed(lines):
                if line:
                    yield line
        if rest:
            yield rest


def lines(data_dir: str | Path, *, newest_first: bool = True) -> Iterator[dict[str, Any]]:
    """Every line of every file of the trail, decoded (unreadable lines skipped)."""
    paths = files(data_dir)
    if newest_first:
        raw: Iterator[bytes] = (line for p in reversed(paths) for line in _reversed_lines(p))
    else:
        raw = (line for p in paths for line in _forward_lines(p))
    for text in raw:
        try:
            item = json.loads(text)
        except ValueError:
            continue
        if isinstance(item, dict):
            yield item


def _forward_lines(path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if line:
                    yield line
    except FileNotFoundError:
        return


def read(data_dir: str | Path, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` lines, newest first (across rotated files)."""
    out = []
    for item in lines(data_dir):
        out.append(item)
        if len(out) >= limit:
            break
    return out


def print_job(job: Any, *, spooled: bool) -> None:
    """A print job (a :class:`~printscp.jobs.state.PrintJob`) spooled or finished.

    Spooled: DICOM Instances Transferred (Create): the print session's Film Box and
    Image Box SOP Instances came from the calling AE and are kept in the spool.
    Finished: Data Export (Read), the standard's message for data "printed to paper,
    recorded on film" (PS3.15 A.5.3.7): to its printer or outputs (Destination Media),
    outcome Success, or Serious failure with the error.  Print sessions carry no
    patient identifiers; the Film Session Label is kept.  Queued, never raises."""
    if not enabled():
        return
    try:
        extra = dict(job.extra)
        printer = str(extra.get("printer") or job.called_ae)
        common: dict[str, Any] = {
            "ae": job.calling_ae, "host": job.peer, "job": job.job_id,
            "films": len(job.films), "printer": printer,
            "label": str(job.session.get("film_session_label") or "") or None}
        if spooled:
            line = build(AuditEvent.INSTANCES_TRANSFERRED, Outcome.SUCCESS,
                         action=EventActionCode.CREATE, role=RoleIDCode.SOURCE,
                         local_role=RoleIDCode.DESTINATION, word="job.spool", **common)
        else:
            error = str(extra.get("error") or "")
            outputs = [str(o) for o in extra.get("outputs") or
                       ([extra["output"]] if extra.get("output") else [])]
            media = [participant(printer, requestor=False,
                                 role=RoleIDCode.DESTINATION_MEDIA)]
            ok = job.status == "DONE"
            line = build(AuditEvent.EXPORT, Outcome.SUCCESS if ok else
                         Outcome.SERIOUS_FAILURE, action=EventActionCode.READ,
                         participants=media, local_role=RoleIDCode.SOURCE, word="job.print",
                         description=error if not ok else "", state=job.status,
                         outputs=outputs or None, **common)
        _later([line])
    except Exception:
        LOGGER.exception("audit trail: cannot record print job %s", getattr(job, "job_id", "?"))


def node_authentication_failed(host: str, reason: str, *, ae: str = "") -> None:
    """Security Alert (Node Authentication, minor failure): a peer at ``host`` failed to
    authenticate (a TLS handshake refused: no, an untrusted or an expired
    certificate)."""
    emit(AuditEvent.SECURITY_ALERT, Outcome.MINOR_FAILURE, type=EventTypeCode.NODE_AUTHENTICATION,
         ae=ae, host=host, word="tls.failure", description=reason,
         objects=[participant_object(host, ParticipantObjectTypeCode.SYSTEM_OBJECT,
                                     ParticipantObjectTypeCodeRole.SECURITY_RESOURCE,
                                     ParticipantObjectIDTypeCode.NODE_ID)] if host else [])


# -- the node's own events -----------------------------------------------------------
def application_activity(started: bool, *, ae_title: str, detail: str = "") -> None:
    """Application Activity: the node started or stopped (launched by this OS user)."""
    if not started:
        flush()  # the DICOM lines queued before the stop come before it
    try:
        launcher = getpass.getuser()
    except Exception:
        launcher = str(os.getuid())
    emit(AuditEvent.APPLICATION_ACTIVITY, Outcome.SUCCESS, action=EventActionCode.EXECUTE,
         type=EventTypeCode.APPLICATION_START if started else EventTypeCode.APPLICATION_STOP,
         participants=[participant(launcher, requestor=True,
                                   role=RoleIDCode.APPLICATION_LAUNCHER,
                                   id_type=UserIDTypeCode.PERSON_ID)],
         local_role=RoleIDCode.APPLICATION, word="node.start" if started else "node.stop",
         target=ae_title, description=detail)
