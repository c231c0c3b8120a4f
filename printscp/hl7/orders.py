"""Orders (ORM^O01, OMI^O23) into worklist items: IHE RAD-4 / RAD-13.

Each order group is an ORC followed by its OBR (and, in an OMI, its TQ1 and IPC
segments; a ZDS after the OBR in an ORM).  ORC-1 Order Control says what to do:

========  ==========================================================================
NW, XO    create or update the group's steps (a re-sent NW updates: items are keyed
          by Study Instance UID + Scheduled Procedure Step ID; an update keeps the
          step's status unless the message states one)
SC        status change: ORC-5 Order Status to the steps' Scheduled Procedure Step
          Status (SC SCHEDULED, IP STARTED, CM COMPLETED, DC DISCONTINUED, CA CANCELED)
CA        cancel: the steps are removed, if every one of them is still to do
DC        discontinue: the steps are marked DISCONTINUED, likewise
========  ==========================================================================

A cancel or discontinue of an order none of whose steps is known is an AE (204
Unknown key identifier), and one with a step already started or done is an AE (206
Application record locked) that changes nothing: the modality is working on it.

The mapping of fields to attributes (IHE RAD TF-2x Appendix B, defaults of
:class:`~printscp.hl7.settings.OrderMapping`):

==========================================  ===============================================
attribute                                   HL7
==========================================  ===============================================
Patient ID, Issuer of Patient ID            PID-3.1, PID-3.4 (the repetition whose
                                            assigning authority is ``patient_id_issuer``,
                                            else the first; the others: Other Patient IDs)
Patient's Name                              PID-5 (XPN family^given^middle^suffix^prefix
                                            → PN family^given^middle^prefix^suffix)
Patient's Birth Date, Sex                   PID-7 (date part), PID-8 (M, F, O; A → O)
Referring Physician's Name                  PV1-8 (XCN → PN)
Admission ID, Current Patient Location      PV1-19, PV1-3
Placer / Filler Order Number                ORC-2.1 / ORC-3.1 (else OBR-2.1 / OBR-3.1)
Requesting Physician                        ORC-12, else OBR-16
Accession Number                            OBR-18, else ORC-3.1 / OBR-3.1 (OMI: IPC-1)
Requested Procedure ID                      OBR-19, else the accession (OMI: IPC-2)
Study Instance UID                          ZDS-1 (OMI: IPC-3), else 2.25 UUID derived
                                            from accession + Requested Procedure ID
Requested Procedure Code Sequence,          OBR-44, else OBR-4 (code^meaning^scheme)
Requested Procedure Description
Reason for the Requested Procedure          OBR-31 (text, else code)
Requested Procedure Priority                TQ1-9 / OBR-27.6 / ORC-7.6: S STAT, A HIGH,
                                            R ROUTINE, T HIGH
> Scheduled Procedure Step ID               OBR-20, else the Requested Procedure ID
                                            (several OBR of one procedure: ``<id>-<OBR-1>``;
                                            OMI: IPC-4)
> Modality                                  OBR-24 (OMI: IPC-5)
> Scheduled Station AE Title                ``station_ae`` fields (OMI: IPC-9), else the
                                            modality's entry in ``station_aes``, else
                                            ``default_station_ae``
> Scheduled Station Name                    ``station_name`` fields (OMI: IPC-7)
> SPS Start Date/Time                       TQ1-7, else OBR-27.4, ORC-7.4, OBR-36, OBR-6,
                                            else MSH-7 (the order's time)
> Scheduled Performing Physician's Name     OBR-34 (technician)
> Scheduled Protocol Code Sequence,         OBR-4 (OMI: IPC-6)
> Scheduled Procedure Step Description
==========================================  ===============================================
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import hl7
from pydicom.dataset import Dataset

from printscp.hl7.messages import ErrorCode, Hl7Error, Location, Parsed
from printscp.hl7.settings import OrderMapping, parse_ref
from printscp.worklist.items import DONE_STATUSES, ItemRejected, WorklistStore

__all__ = ["ORDER_TYPES", "OrderControl", "apply_order", "order_items", "patient_dataset"]

#: Message types handled here: (MSH-9.1, MSH-9.2).
ORDER_TYPES = {("ORM", "O01"), ("OMI", "O23")}

#: A namespace for Study Instance UIDs derived from accession numbers (stable forever:
#: a re-sent order must find the item it made).
_UID_NAMESPACE = uuid.UUID("6f1c8a52-2d0e-4b8e-9a57-8b1f0e3c2a91")

#: A UID (PS3.5 9.1): digits in components without leading zeros.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

#: Steps that may still be cancelled or discontinued.
_TO_DO = {"SCHEDULED", "ARRIVED", "READY"}

#: ORC-5 Order Status (HL7 table 0038) -> Scheduled Procedure Step Status.
ORDER_STATUS = {"SC": "SCHEDULED", "IP": "STARTED", "CM": "COMPLETED",
                "DC": "DISCONTINUED", "CA": "CANCELED", "A": "STARTED", "HD": "SCHEDULED"}
#: Priority (TQ1-9 / TQ.6, HL7 table 0485) -> Requested Procedure Priority.
PRIORITY = {"S": "STAT", "A": "HIGH", "R": "ROUTINE", "T": "HIGH", "P": "MEDIUM"}


class OrderControl(StrEnum):
    """ORC-1 Order Control (HL7 table 0119), the values RAD-4/RAD-13 use."""

    NEW = "NW"
    CHANGE = "XO"
    CANCEL = "CA"
    DISCONTINUE = "DC"
    STATUS_CHANGE = "SC"


_CONTROLS = tuple(OrderControl)


@dataclass
class OrderGroup:
    orc: hl7.Segment
    orc_index: int
    obr: hl7.Segment | None = None
    obr_index: int = 0
    others: dict[str, list[tuple[int, hl7.Segment]]] = field(default_factory=dict)

    def segment(self, name: str) -> hl7.Segment | None:
        if name == "ORC":
            return self.orc
        if name == "OBR":
            return self.obr
        found = self.others.get(name)
        return found[0][1] if found else None


# -- helpers ------------------------------------------------------------------------
def _ref_value(msg: Parsed, group: OrderGroup | None, ref: str,
               ipc: hl7.Segment | None = None) -> str:
    seg_name, fld, comp, sub = parse_ref(ref)
    if seg_name == "IPC" and ipc is not None:
        seg = ipc
    elif group is not None:
        seg = group.segment(seg_name)
    else:
        seg = None
    if seg is None:
        seg = msg.first(seg_name)
    if seg is None:
        return ""
    return msg.value(seg, fld, comp or 1, sub or 1).strip()


def _first_of(msg: Parsed, group: OrderGroup | None, refs: tuple[str, ...],
              ipc: hl7.Segment | None = None) -> str:
    for ref in refs:
        value = _ref_value(msg, group, ref, ipc)
        if value:
            return value
    return ""


def _pn(parts: list[str]) -> str:
    """family, given, middle, prefix, suffix → a PN value without trailing ^."""
    return "^".join(parts).rstrip("^")


def xpn(msg: Parsed, seg: hl7.Segment, fld: int, rep: int = 1) -> str:
    """An XPN (family^given^middle^suffix^prefix) as a PN."""
    v = [msg.value(seg, fld, c, 1, rep).strip() for c in range(1, 6)]
    return _pn([v[0], v[1], v[2], v[4], v[3]])


def xcn(msg: Parsed, seg: hl7.Segment, fld: int, rep: int = 1) -> str:
    """An XCN (id^family^given^middle^suffix^prefix) as a PN; a CNN in subcomponents
    (OBR-34's NDL) likewise."""
    if msg.value(seg, fld, 1, 2, rep):  # NDL: id&family&given&middle&suffix&prefix
        v = [msg.value(seg, fld, 1, s, rep).strip() for s in range(2, 7)]
    else:
        v = [msg.value(seg, fld, c, 1, rep).strip() for c in range(2, 7)]
    return _pn([v[0], v[1], v[2], v[4], v[3]])


def _code(msg: Parsed, seg: hl7.Segment, fld: int) -> Dataset | None:
    value, meaning, scheme = (msg.value(seg, fld, c).strip() for c in (1, 2, 3))
    if not value:
        return None
    item = Dataset()
    item.CodeValue = value[:16]
    item.CodingSchemeDesignator = (scheme or "L")[:16]
    item.CodeMeaning = (meaning or value)[:64]
    return item


def _dtm(text: str) -> tuple[str, str]:
    """(DA, TM) of an HL7 DTM/TS (``YYYYMMDD[HHMM[SS[.S]]][+ZZZZ]``)."""
    text = text.strip()
    for sign in "+-":
        if sign in text[8:]:
            text = text[:8] + text[8:].split(sign)[0]
    date = text[:8] if len(text) >= 8 and text[:8].isdigit() else ""
    time = text[8:].split(".")[0] if date else ""
    if time and not time.isdigit():
        time = ""
    time = (time + "0000")[:6] if time and len(time) < 6 else time
    return date, time or ("000000" if date else "")


def _valid_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    if value not in (None, "", []):
        setattr(ds, keyword, value)


def patient_dataset(msg: Parsed, pid: hl7.Segment, mapping: OrderMapping,
                    pid_index: int = 0) -> Dataset:
    """The Patient module attributes of a PID segment."""
    ds = Dataset()
    reps = max(1, msg.repetitions(pid, 3))
    chosen = 1
    if mapping.patient_id_issuer:
        for r in range(1, reps + 1):
            if msg.value(pid, 3, 4, 1, r) == mapping.patient_id_issuer:
                chosen = r
                break
    patient_id = msg.value(pid, 3, 1, 1, chosen).strip()
    if not patient_id:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "PID-3 has no patient ID",
                       Location("PID", 3, 1, sequence=pid_index + 1 if pid_index else 1))
    ds.PatientID = patient_id[:64]
    _set(ds, "IssuerOfPatientID", msg.value(pid, 3, 4, 1, chosen).strip()[:64])
    others = []
    for r in range(1, reps + 1):
        other = msg.value(pid, 3, 1, 1, r).strip()
        if r == chosen or not other:
            continue
        item = Dataset()
        item.PatientID = other[:64]
        _set(item, "IssuerOfPatientID", msg.value(pid, 3, 4, 1, r).strip()[:64])
        item.TypeOfPatientID = "TEXT"
        others.append(item)
    if others:
        ds.OtherPatientIDsSequence = others
    reps = max(1, msg.repetitions(pid, 5))  # the legal name (XPN-7 "L") when several
    legal = next((r for r in range(1, reps + 1) if msg.value(pid, 5, 7, 1, r) == "L"), 1)
    name = xpn(msg, pid, 5, legal)
    if not name:
        raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "PID-5 has no patient name",
                       Location("PID", 5))
    ds.PatientName = name
    birth = _dtm(msg.value(pid, 7))[0]
    if birth and not _valid_date(birth):
        raise Hl7Error(ErrorCode.DATA_TYPE_ERROR, f"PID-7 {msg.value(pid, 7)!r} is no date",
                       Location("PID", 7))
    _set(ds, "PatientBirthDate", birth)
    sex = msg.value(pid, 8).strip().upper()
    _set(ds, "PatientSex", {"M": "M", "F": "F", "O": "O", "A": "O"}.get(sex, ""))
    return ds


def _groups(msg: Parsed) -> list[OrderGroup]:
    groups: list[OrderGroup] = []
    for index, seg in enumerate(msg.segments):
        name = str(seg[0])
        if name == "ORC":
            groups.append(OrderGroup(seg, index))
        elif name == "OBR":
            if not groups:
                raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR,
                               "OBR before any ORC", Location("OBR", sequence=1))
            if groups[-1].obr is not None:  # ORM: a second OBR under one ORC
                groups.append(OrderGroup(groups[-1].orc, groups[-1].orc_index))
            groups[-1].obr, groups[-1].obr_index = seg, index
        elif groups and name in ("TQ1", "IPC", "ZDS", "OBX", "NTE"):
            groups[-1].others.setdefault(name, []).append((index, seg))
    if not groups:
        raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "no ORC segment (order group)",
                       Location("ORC"))
    return groups


def _seq(msg: Parsed, seg: hl7.Segment) -> int:
    """The segment's sequence among those of its name (ERR-2.2)."""
    name = str(seg[0])
    same = [s for s in msg.segments if str(s[0]) == name]
    return next((i for i, s in enumerate(same, 1) if s is seg), 1)


def derived_study_uid(accession: str, procedure_id: str) -> str:
    """A Study Instance UID that the same accession and procedure always give."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, accession + chr(92) + procedure_id).int}"


def order_items(msg: Parsed, mapping: OrderMapping) -> list[tuple[str, OrderGroup, Dataset]]:
    """(order control, group, item) for every procedure step the message orders."""
    pid = msg.first("PID")
    if pid is None:
        raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "no PID segment", Location("PID"))
    patient = patient_dataset(msg, pid, mapping)
    pv1 = msg.first("PV1")
    out: list[tuple[str, OrderGroup, Dataset]] = []
    groups = _groups(msg)
    obr_count: dict[tuple[str, str], int] = {}
    plans = []
    for group in groups:
        control = msg.value(group.orc, 1).strip().upper()
        orc_loc = Location("ORC", 1, sequence=_seq(msg, group.orc))
        if control not in _CONTROLS:
            raise Hl7Error(ErrorCode.TABLE_VALUE_NOT_FOUND,
                           f"order control {control or '(empty)'!r} is not one of "
                           f"{', '.join(_CONTROLS)}", orc_loc)
        if group.obr is None:
            raise Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR,
                           "order group without OBR", Location("ORC", sequence=orc_loc.sequence))
        ipcs = [s for _, s in group.others.get("IPC", [])] or [None]
        for ipc in ipcs:
            plans.append((control, group, ipc))
            if ipc is None:
                key = (_first_of(msg, group, mapping.accession),
                       _first_of(msg, group, mapping.requested_procedure_id))
                obr_count[key] = obr_count.get(key, 0) + 1
    for control, group, ipc in plans:
        assert group.obr is not None
        obr = group.obr
        obr_seq = _seq(msg, obr)
        ds = Dataset()
        ds.update(patient)
        if pv1 is not None:
            _set(ds, "ReferringPhysicianName", xcn(msg, pv1, 8))
            _set(ds, "AdmissionID", msg.value(pv1, 19).strip()[:64])
            location = "^".join(msg.value(pv1, 3, c).strip() for c in (1, 2, 3)).strip("^")
            _set(ds, "CurrentPatientLocation", location[:64])
        accession = (msg.value(ipc, 1) if ipc is not None else "") or \
            _first_of(msg, group, mapping.accession)
        if not accession:
            raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                           f"no accession number in {', '.join(mapping.accession)}",
                           Location("OBR", 18, sequence=obr_seq))
        if len(accession) > 16:
            raise Hl7Error(ErrorCode.DATA_TYPE_ERROR,
                           f"accession number {accession!r} is longer than 16 characters",
                           Location("OBR", 18, sequence=obr_seq))
        ds.AccessionNumber = accession
        procedure_id = (msg.value(ipc, 2) if ipc is not None else "") or \
            _first_of(msg, group, mapping.requested_procedure_id) or accession
        ds.RequestedProcedureID = procedure_id[:16]
        sps_id = (msg.value(ipc, 4) if ipc is not None else "") or \
            _first_of(msg, group, mapping.sps_id)
        if not sps_id:
            several = obr_count.get((accession, _first_of(
                msg, group, mapping.requested_procedure_id)), 1) > 1
            set_id = msg.value(obr, 1).strip() or str(obr_seq)
            sps_id = f"{procedure_id}-{set_id}" if several else procedure_id
        study_uid = (msg.value(ipc, 3) if ipc is not None else "") or \
            _first_of(msg, group, mapping.study_uid) or \
            derived_study_uid(accession, procedure_id)
        if not _UID.match(study_uid) or len(study_uid) > 64:
            ref = "IPC-3" if ipc is not None and msg.value(ipc, 3) else \
                next((r for r in mapping.study_uid if _ref_value(msg, group, r)), "ZDS-1")
            seg_name, fld, _, _ = parse_ref(ref)
            raise Hl7Error(ErrorCode.DATA_TYPE_ERROR,
                           f"Study Instance UID {study_uid[:70]!r} is not a UID",
                           Location(seg_name, fld))
        ds.StudyInstanceUID = study_uid
        placer = msg.value(group.orc, 2).strip() or msg.value(obr, 2).strip()
        filler = msg.value(group.orc, 3).strip() or msg.value(obr, 3).strip()
        _set(ds, "PlacerOrderNumberImagingServiceRequest", placer[:64])
        _set(ds, "FillerOrderNumberImagingServiceRequest", filler[:64])
        _set(ds, "RequestingPhysician", xcn(msg, group.orc, 12) or xcn(msg, obr, 16))
        procedure = _code(msg, obr, 44) or _code(msg, obr, 4)
        if procedure is not None:
            ds.RequestedProcedureCodeSequence = [procedure]
            ds.RequestedProcedureDescription = procedure.CodeMeaning
        reason = msg.value(obr, 31, 2).strip() or msg.value(obr, 31, 1).strip()
        _set(ds, "ReasonForTheRequestedProcedure", reason[:64])
        tq1 = group.segment("TQ1")
        priority = (msg.value(tq1, 9) if tq1 is not None else "") or \
            msg.value(obr, 27, 6) or msg.value(group.orc, 7, 6)
        _set(ds, "RequestedProcedurePriority", PRIORITY.get(priority.strip().upper(), ""))
        step = Dataset()
        step.ScheduledProcedureStepID = sps_id[:16]
        modality = (msg.value(ipc, 5) if ipc is not None else "") or \
            _first_of(msg, group, mapping.modality)
        modality = modality.strip().upper()
        if not modality:
            raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                           f"no modality in {', '.join(mapping.modality) or 'IPC-5'}",
                           Location("OBR", 24, sequence=obr_seq))
        step.Modality = modality
        station = (msg.value(ipc, 9) if ipc is not None else "") or \
            _first_of(msg, group, mapping.station_ae) or \
            mapping.station_aes.get(modality, "") or mapping.default_station_ae
        if not station:
            raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                           f"no Scheduled Station AE for modality {modality}: the message "
                           "names none and [hl7.stations] has no entry for it",
                           Location("OBR", 24, sequence=obr_seq))
        step.ScheduledStationAETitle = station
        _set(step, "ScheduledStationName", ((msg.value(ipc, 7) if ipc is not None else "")
                                            or _first_of(msg, group, mapping.station_name))[:16])
        start = (msg.value(tq1, 7) if tq1 is not None else "") or msg.value(obr, 27, 4) \
            or msg.value(group.orc, 7, 4) or msg.value(obr, 36) or msg.value(obr, 6) \
            or msg.header.time
        if not start.strip():
            raise Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING,
                           "no start date/time (TQ1-7, OBR-27.4, ORC-7.4, OBR-36, OBR-6, MSH-7)",
                           Location("OBR", 27, 4, sequence=obr_seq))
        start_date, start_time = _dtm(start)
        if not _valid_date(start_date) or int(start_time[:2] or 0) > 23 or \
                int(start_time[2:4] or 0) > 59 or int(start_time[4:6] or 0) > 60:
            raise Hl7Error(ErrorCode.DATA_TYPE_ERROR,
                           f"start date/time {start!r} is no date and time",
                           Location("TQ1" if tq1 is not None else "OBR",
                                    7 if tq1 is not None else 27, 0 if tq1 is not None else 4,
                                    sequence=obr_seq))
        step.ScheduledProcedureStepStartDate = start_date
        step.ScheduledProcedureStepStartTime = start_time
        _set(step, "ScheduledPerformingPhysicianName", xcn(msg, obr, 34))
        protocol = _code(msg, ipc, 6) if ipc is not None else None
        protocol = protocol or _code(msg, obr, 4)
        if protocol is not None:
            step.ScheduledProtocolCodeSequence = [protocol]
            step.ScheduledProcedureStepDescription = protocol.CodeMeaning
        if control == OrderControl.STATUS_CHANGE:
            status = msg.value(group.orc, 5).strip().upper()
            if status not in ORDER_STATUS:
                raise Hl7Error(ErrorCode.TABLE_VALUE_NOT_FOUND,
                               f"order status {status or '(empty)'!r} is not one of "
                               f"{', '.join(ORDER_STATUS)}",
                               Location("ORC", 5, sequence=_seq(msg, group.orc)))
            step.ScheduledProcedureStepStatus = ORDER_STATUS[status]
        ds.ScheduledProcedureStepSequence = [step]
        out.append((control, group, ds))
    return out


#: Where an attribute the worklist's validation names came from (the ERR's location).
_FIELD_OF = {
    "PatientBirthDate": Location("PID", 7), "PatientName": Location("PID", 5),
    "PatientID": Location("PID", 3), "PatientSex": Location("PID", 8),
    "ReferringPhysicianName": Location("PV1", 8), "RequestingPhysician": Location("ORC", 12),
    "ScheduledProcedureStepStartDate": Location("OBR", 27, 4),
    "ScheduledProcedureStepStartTime": Location("OBR", 27, 4),
    "ScheduledPerformingPhysicianName": Location("OBR", 34),
    "ScheduledStationAETitle": Location("OBR", 24), "Modality": Location("OBR", 24),
    "RequestedProcedureID": Location("OBR", 19),
    "ScheduledProcedureStepID": Location("OBR", 20),
}


@dataclass
class Change:
    """One item changed: its key and its stored attributes before (None: it was new),
    so the log can say what happened and undo it."""

    action: str  #: created, updated, removed, marked
    study_uid: str
    sps_id: str
    before: str | None = None
    status: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _stored(store: WorklistStore, study_uid: str, sps_id: str) -> tuple[int, Dataset] | None:
    pk = store.find_item(study_uid=study_uid, sps_id=sps_id)
    if pk is None:
        return None
    ds = store.get(pk)
    return (pk, ds) if ds is not None else None


def _status(ds: Dataset) -> str:
    steps = ds.get("ScheduledProcedureStepSequence") or [Dataset()]
    return str(steps[0].get("ScheduledProcedureStepStatus", "") or "SCHEDULED")


def apply_order(msg: Parsed, mapping: OrderMapping, store: WorklistStore,
                source: str = "hl7") -> list[Change]:
    """Apply an ORM/OMI; the changes made.  Raises :class:`Hl7Error` (nothing changed
    for an error found before writing; the worklist writes are one transaction)."""
    items = order_items(msg, mapping)
    changes: list[Change] = []
    upserts: list[Dataset] = []
    removals: list[int] = []
    marks: list[int] = []
    for control, group, ds in items:
        study_uid = str(ds.StudyInstanceUID)
        sps_id = str(ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID)
        found = _stored(store, study_uid, sps_id)
        orc_loc = Location("ORC", 1, sequence=_seq(msg, group.orc))
        if control in (OrderControl.CANCEL, OrderControl.DISCONTINUE):
            if found is None:
                raise Hl7Error(ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                               f"no worklist item for accession {ds.AccessionNumber}, step "
                               f"{sps_id} (study {study_uid}) to "
                               f"{'cancel' if control == 'CA' else 'discontinue'}", orc_loc)
            pk, old = found
            status = _status(old)
            if status not in _TO_DO:
                raise Hl7Error(ErrorCode.APPLICATION_RECORD_LOCKED,
                               f"step {sps_id} of accession {ds.AccessionNumber} is "
                               f"{status}{' already' if status in DONE_STATUSES else ''}: "
                               "not " + ("cancelled" if control == "CA" else "discontinued"),
                               orc_loc)
            before = json.dumps(old.to_json_dict())
            if control == OrderControl.CANCEL:
                removals.append(pk)
                changes.append(Change("removed", study_uid, sps_id, before, status))
            else:
                marks.append(pk)
                changes.append(Change("marked", study_uid, sps_id, before, "DISCONTINUED"))
            continue
        before = json.dumps(found[1].to_json_dict()) if found else None
        if control == OrderControl.STATUS_CHANGE and found is None:
            raise Hl7Error(ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                           f"no worklist item for accession {ds.AccessionNumber}, step "
                           f"{sps_id} to change the status of", orc_loc)
        upserts.append(ds)
        changes.append(Change("updated" if found else "created", study_uid, sps_id, before,
                              str(ds.ScheduledProcedureStepSequence[0].get(
                                  "ScheduledProcedureStepStatus", "") or
                                  (_status(found[1]) if found else "SCHEDULED"))))
    if upserts:
        try:
            store.add_many(upserts, source=source)
        except ItemRejected as exc:
            text = str(exc)
            where = next((loc for keyword, loc in _FIELD_OF.items() if keyword in text),
                         Location("OBR"))
            raise Hl7Error(ErrorCode.DATA_TYPE_ERROR, f"not a valid worklist item: {text}",
                           where) from None
    if removals:
        store.remove(item_ids=removals)
    for pk in marks:
        store.mark(pk, status="DISCONTINUED")
    return changes
