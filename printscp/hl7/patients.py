"""Patient updates (ADT^A08, A31) and merges (ADT^A40): the worklist and the archive follow.

* A08 Update Patient Information, A31 Update Person Information: the patient's
  attributes from PID (name, birth date, sex, issuer, other IDs) replace those of every
  worklist item with that Patient ID; for A08 the archive's patient level too.
* A40 Merge Patient - Patient Identifier List: each PID/MRG pair moves what MRG-1 (the
  prior ID) has to PID-3 (the surviving patient): worklist items take the surviving
  patient's attributes, and the archive's studies of the prior patient move to it.

Every change keeps what it replaced (the item's stored attributes; the archive
patient row's attributes and the studies moved), which the HL7 log stores with the
message: :func:`undo` puts it back (``Inbox.unmerge``).  Only the index of the archive
changes (the stored files keep the attributes they were sent with), as dcm4chee-arc's
patient updates do (:meth:`Index.update_patient`, :meth:`Index.move_studies`); with
``update_archive = false`` only the worklist follows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset

from printscp.archive.index import Index
from printscp.hl7.messages import ErrorCode, Hl7Error, Location, Parsed
from printscp.hl7.orders import patient_dataset
from printscp.hl7.settings import OrderMapping
from printscp.worklist.items import WorklistStore

__all__ = ["ADT_TYPES", "PATIENT_KEYWORDS", "apply_adt", "undo"]

#: (MSH-9.1, MSH-9.2) handled here.
ADT_TYPES = {("ADT", "A08"), ("ADT", "A31"), ("ADT", "A40")}
#: The patient attributes an update replaces (Patient ID too, for a merge).
PATIENT_KEYWORDS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                    "PatientSex", "OtherPatientIDsSequence")


def _items_of(store: WorklistStore, patient_id: str, issuer: str
              ) -> Iterator[tuple[int, Dataset]]:
    query = Dataset()
    query.PatientID = patient_id
    for pk, item in store.query(query, include_done=True):
        stored_issuer = str(item.get("IssuerOfPatientID", "") or "")
        if issuer and stored_issuer and stored_issuer != issuer:
            continue
        yield pk, item


def _with_patient(item: Dataset, patient: Dataset, keep_id: bool) -> Dataset:
    new = Dataset()
    new.update(item)  # a shallow copy is enough: top-level patient elements replaced
    for keyword in PATIENT_KEYWORDS:
        if keep_id and keyword in ("PatientID", "IssuerOfPatientID"):
            continue
        if keyword in patient:  # an empty HL7 field means "unchanged", not "delete"
            new[keyword] = patient[keyword]
    return new


def _update_items(store: WorklistStore, patient_id: str, issuer: str, patient: Dataset,
                  keep_id: bool) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    updated: list[Dataset] = []
    for _pk, item in list(_items_of(store, patient_id, issuer)):
        changes.append({"action": "updated", "study_uid": str(item.StudyInstanceUID),
                        "sps_id": str(item.ScheduledProcedureStepSequence[0]
                                      .ScheduledProcedureStepID),
                        "before": json.dumps(item.to_json_dict())})
        updated.append(_with_patient(item, patient, keep_id))
    if updated:
        store.add_many(updated, source="hl7")
    return changes


def apply_adt(msg: Parsed, mapping: OrderMapping, store: WorklistStore,
              index: Index | None) -> dict[str, Any]:
    """Apply an A08/A31/A40; the record of what changed (JSON-able, for :func:`undo`)."""
    trigger = msg.header.trigger.upper()
    record: dict[str, Any] = {"items": [], "archive": [], "notes": []}
    pids = [(i, s) for i, s in enumerate(msg.segments) if str(s[0]) == "PID"]
    if not pids:
        raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "no PID segment", Location("PID"))
    if trigger in ("A08", "A31"):
        patient = patient_dataset(msg, pids[0][1], mapping)
        pid_value = str(patient.PatientID)
        issuer = str(patient.get("IssuerOfPatientID", "") or "")
        record["patients"] = [pid_value]
        record["items"] = _update_items(store, pid_value, issuer, patient, keep_id=True)
        if trigger == "A08" and index is not None:
            _archive_update(index, pid_value, issuer, patient, record)
        return record
    # A40: PID, [PD1], MRG, [PV1] per patient.
    mrgs = [(i, s) for i, s in enumerate(msg.segments) if str(s[0]) == "MRG"]
    if not mrgs:
        raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "A40 without MRG segment",
                       Location("MRG"))
    record["merges"] = []
    for n, (pid_index, pid) in enumerate(pids, 1):
        mrg = next((s for i, s in mrgs if i > pid_index and
                    all(not (pid_index < j < i) for j, _ in pids)), None)
        if mrg is None:
            raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR,
                           f"PID {n} of the A40 has no MRG after it", Location("PID", sequence=n))
        patient = patient_dataset(msg, pid, mapping)
        prior = msg.value(mrg, 1, 1).strip()
        prior_issuer = msg.value(mrg, 1, 4).strip()
        if not prior:
            raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                           "MRG-1 has no prior patient identifier", Location("MRG", 1,
                                                                             sequence=n))
        record["merges"].append({"prior": prior, "prior_issuer": prior_issuer,
                                 "into": str(patient.PatientID),
                                 "into_issuer": str(patient.get("IssuerOfPatientID", "")
                                                    or "")})
        record["items"] += _update_items(store, prior, prior_issuer, patient, keep_id=False)
        if index is not None:
            _archive_merge(index, prior, prior_issuer, patient, record)
    return record


def _archive_update(index: Index, patient_id: str, issuer: str, patient: Dataset,
                    record: dict[str, Any]) -> None:
    attrs = Dataset()
    for keyword in PATIENT_KEYWORDS:
        if keyword in patient and keyword not in ("PatientID", "IssuerOfPatientID"):
            attrs[keyword] = patient[keyword]
    changed = index.update_patient(patient_id, attrs, issuer or None)
    if not changed and issuer:  # instances often carry no Issuer of Patient ID
        changed = index.update_patient(patient_id, attrs, "")
    for key, before in changed:
        record["archive"].append({"action": "updated", "patient_key": key,
                                  "before": before})


def _archive_merge(index: Index, prior: str, prior_issuer: str, patient: Dataset,
                   record: dict[str, Any]) -> None:
    # Instances often carry no Issuer of Patient ID where HL7 has one: the archive's
    # rows without an issuer stand for the same patients when none has the issuer.
    into = str(patient.PatientID)
    into_issuer = str(patient.get("IssuerOfPatientID", "") or "")
    to_key = f"{into}\\{into_issuer}"
    existing = index.patient_by_id(into)
    if into_issuer and existing is not None and not existing.get("IssuerOfPatientID"):
        to_key = f"{into}\\"
    before = index.patient_by_id(prior)
    from_key = f"{prior}\\{prior_issuer}"
    moved = index.move_studies(from_key, to_key, patient)
    if not moved and prior_issuer:
        from_key = f"{prior}\\"
        moved = index.move_studies(from_key, to_key, patient)
    record["archive"].append({"action": "merged", "from_key": from_key, "to_key": to_key,
                              "studies": list(moved),
                              "before": json.dumps(before.to_json_dict())
                              if before is not None else None})


def undo(record: dict[str, Any], store: WorklistStore, index: Index | None) -> dict[str, int]:
    """Put back what a record says was changed: items as they were (keeping a status
    they reached since), archive patient rows and moved studies.  Counts restored."""
    restored = {"items": 0, "archive": 0}
    items: list[Dataset] = []
    for change in record.get("items", []):
        before = change.get("before")
        if not before:
            continue
        old = Dataset.from_json(before)
        pk = store.find_item(study_uid=change["study_uid"], sps_id=change["sps_id"])
        current = store.get(pk) if pk is not None else None
        if current is not None:
            status = current.ScheduledProcedureStepSequence[0].get(
                "ScheduledProcedureStepStatus")
            if status:
                old.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus = status
        items.append(old)
    if items:
        store.add_many(items, source="hl7-undo")
        restored["items"] = len(items)
    if index is None:
        return restored
    for change in reversed(record.get("archive", [])):
        if change["action"] == "merged":
            before = Dataset.from_json(change["before"]) if change.get("before") else None
            index.move_studies(change["to_key"], change["from_key"], before,
                               change["studies"])
            restored["archive"] += 1
        elif change["action"] == "updated":
            before = Dataset.from_json(change["before"])
            patient_id, _, issuer = change["patient_key"].partition("\\")
            index.update_patient(patient_id, before, issuer)
            restored["archive"] += 1
    return restored
