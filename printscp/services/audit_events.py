"""The audit trail's lines for the DICOM services (:mod:`printscp.core.audit`).

Each is a call after the decision it records, queued for the audit writer thread so
no answer waits on the disk: a C-FIND is a Query message with its keys; a C-MOVE or
C-GET a Begin Transferring DICOM Instances message per study, naming who asked and
who receives.  (What an association stores is counted by the storage service and
written when the association closes.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset

from printscp.archive.archive import Archive
from printscp.archive.index import Level
from printscp.core import audit
from printscp.core.audit import AuditEvent, EventActionCode, Outcome, RoleIDCode

#: Longest value of a query key kept in the trail.
MAX_KEY = 256


def _peer(assoc: Any) -> tuple[str, str]:
    requestor = assoc.requestor
    return str(requestor.ae_title).strip(), str(requestor.address)


def query_keys(identifier: Dataset | None) -> dict[str, Any]:
    """The keys of a query as ``{keyword: value}``: matching keys with their values,
    return keys (empty) by name only, sequences as lists of such dictionaries."""
    if identifier is None:
        return {}
    out: dict[str, Any] = {}
    try:
        for elem in identifier:
            name = elem.keyword or str(elem.tag)
            if elem.VR == "SQ":
                out[name] = [query_keys(item) for item in elem.value or []]
            elif elem.value in (None, "", b""):
                out[name] = ""
            elif isinstance(elem.value, bytes):
                out[name] = f"({len(elem.value)} bytes)"
            else:
                value = elem.value
                text = "\\".join(str(v) for v in value) if elem.VM > 1 else str(value)
                out[name] = text[:MAX_KEY]
    except Exception as exc:  # an identifier that cannot be read is audited as such
        out["(unreadable)"] = str(exc)[:MAX_KEY]
    return out


def query(assoc: Any, sop_class: str, identifier: Dataset | None,
          refusal: Exception | None = None) -> None:
    """Query (PS3.15 A.5.3.13): a C-FIND received, its keys, refused or served."""
    if audit.enabled():
        ae, host = _peer(assoc)
        audit.later(lambda: [_query_line(ae, host, sop_class, identifier, refusal)])


def _query_line(ae: str, host: str, sop_class: str, identifier: Dataset | None,
                refusal: Exception | None) -> dict[str, Any]:
    keys = query_keys(identifier)
    patient = keys.get("PatientID") if isinstance(keys.get("PatientID"), str) else ""
    study = keys.get("StudyInstanceUID") if isinstance(keys.get("StudyInstanceUID"),
                                                       str) else ""
    return audit.build(
        AuditEvent.QUERY, Outcome.MINOR_FAILURE if refusal else Outcome.SUCCESS,
        action=EventActionCode.EXECUTE, ae=ae, host=host, patient=patient or "",
        study=study or "", objects=[audit.query_object(sop_class, keys)],
        word="dicom.find", description=str(refusal) if refusal else "")


def retrieve(assoc: Any, archive: Archive, records: Iterable[Any], *, command: str,
             destination: str = "", destination_host: str = "",
             refusal: Exception | None = None) -> None:
    """Begin Transferring DICOM Instances (PS3.15 A.5.3.3), one line per study: a
    C-MOVE (to ``destination``) or a C-GET (to the requestor) begins its
    sub-operations; or the request was refused."""
    if audit.enabled():
        ae, host = _peer(assoc)
        records = list(records)
        audit.later(lambda: _retrieve_lines(ae, host, archive, records, command,
                                            destination, destination_host, refusal))


def _retrieve_lines(ae: str, host: str, archive: Archive, records: list[Any],
                    command: str, destination: str, destination_host: str,
                    refusal: Exception | None) -> list[dict[str, Any]]:
    by_study: dict[str, dict[str, int]] = {}
    for record in records:
        classes = by_study.setdefault(record.study_uid, {})
        classes[record.sop_class_uid] = classes.get(record.sop_class_uid, 0) + 1
    patients = patients_of(archive, list(by_study))
    to = destination or ae
    participants = [audit.participant(destination, requestor=False, host=destination_host,
                                      role=RoleIDCode.DESTINATION,
                                      id_type=audit.UserIDTypeCode.STATION_AE_TITLE)
                    ] if destination else []
    common: dict[str, Any] = {
        "ae": ae, "host": host, "action": EventActionCode.EXECUTE,
        "role": None if destination else RoleIDCode.DESTINATION,
        "local_role": RoleIDCode.SOURCE, "participants": participants,
        "word": f"dicom.{command.lower()}", "destination": to}
    if refusal is not None or not by_study:
        return [audit.build(AuditEvent.BEGIN_TRANSFERRING,
                            Outcome.MINOR_FAILURE if refusal else Outcome.SUCCESS,
                            description=str(refusal) if refusal else "no instances match",
                            instances=0, **common)]
    lines = []
    for study, classes in by_study.items():
        description = [{"SOPClass": uid, "NumberOfInstances": n}
                       for uid, n in sorted(classes.items())]
        lines.append(audit.build(
            AuditEvent.BEGIN_TRANSFERRING, Outcome.SUCCESS, patient=patients.get(study, ""),
            objects=[audit.study_object(study, ParticipantObjectDescription=description)],
            target=study, instances=sum(classes.values()), **common))
    return lines


def patients_of(archive: Archive, studies: list[str]) -> dict[str, str]:
    """The Patient ID of each of ``studies`` (one index query)."""
    if not studies:
        return {}
    identifier = Dataset()
    identifier.StudyInstanceUID = studies
    identifier.PatientID = ""
    try:
        return {str(ds.get("StudyInstanceUID", "")): str(ds.get("PatientID", "") or "")
                for ds, _ in archive.index.query(Level.STUDY, identifier)}
    except Exception:
        return {}
