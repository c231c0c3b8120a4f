"""Modality Performed Procedure Step SCP (PS3.4 F.7, SOP Class 1.2.840.10008.3.1.2.3.3).

A modality N-CREATEs a step IN PROGRESS when it starts an examination, N-SETs it
while it goes, and finally N-SETs it COMPLETED or DISCONTINUED; from then on the
step is immutable (F.7.2.2.3).  The requirements are Table F.7.2-1's three columns:
what N-CREATE must carry (Type 1: :data:`CREATE_TYPE1`), what N-SET may not touch
(:data:`NOT_ALLOWED_IN_SET`), and what must be there once the step is final
(:data:`FINAL_TYPE1`).

Statuses, each with an Error Comment naming the attribute (and, on N-SET, its tag
in Attribute Identifier List, which PS3.7 lets N-SET-RSP carry but not
N-CREATE-RSP):

====== ================================================================
0x0106 N-CREATE whose PPS Status is not IN PROGRESS (F.7.2.1.3); N-SET to a
       status other than IN PROGRESS / COMPLETED / DISCONTINUED
0x0105 N-SET of an attribute Table F.7.2-1 marks "Not allowed" for N-SET:
       PS3.4 5.4.2.1 says the SCP does not support receiving it with the
       command, and "not supported for this operation" is 0105 No Such
       Attribute (the convention of :func:`printscp.services.dimse.dataset_values`)
0x0110 N-SET once COMPLETED/DISCONTINUED, with F.7.2.2.4's Error Comment and
       Error ID A710; also a final N-SET that leaves a Final State Type 1
       attribute missing (Error Comment lists them)
0x0111 N-CREATE for a SOP Instance UID that already is a step
0x0112 N-SET for an unknown SOP Instance UID
0x0120 N-CREATE without a Type 1 attribute
0x0121 N-CREATE with a Type 1 attribute present but empty (PS3.4 5.4.2.1)
====== ================================================================

Type 2 attributes are not enforced: a modality that leaves one out still
performed the procedure, and refusing the report would lose the record and leave
its worklist item IN PROGRESS forever.

The worklist link is optional: ``hooks.on_status(step, status)`` runs after the
N-CREATE and after the final N-SET have been committed; its failures are logged
and never change the DIMSE status (the modality would otherwise retry a step that
is already stored and get 0x0111 / 0x0110).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from printscp.core import status
from printscp.core.errors import StatusError
from printscp.mpps.steps import (
    COMPLETED,
    DISCONTINUED,
    FINAL_STATUSES,
    IN_PROGRESS,
    MPPS_SOP_CLASS,
    STATUSES,
    MppsStore,
    StepExists,
    StepFinal,
    StepNotFound,
    links_of,
)
from printscp.services.dimse import create_failure, guarded

LOGGER = logging.getLogger("printscp.mpps")

#: F.7.2.2.4 Table F.7.2-2: the N-SET failure for a step that is no longer IN PROGRESS.
NO_LONGER_UPDATABLE = "Performed Procedure Step Object may no longer be updated"
NO_LONGER_UPDATABLE_ID = 0xA710

#: Table F.7.2-1, N-CREATE 1/1 at the top level (the SCU shall send a value).
CREATE_TYPE1 = (
    "ScheduledStepAttributesSequence", "PerformedProcedureStepID", "PerformedStationAETitle",
    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "PerformedProcedureStepStatus", "Modality",
)
#: 1/1 inside items: (sequence, item attributes); checked wherever the sequence has items.
ITEM_TYPE1: dict[str, tuple[str, ...]] = {
    "ScheduledStepAttributesSequence": ("StudyInstanceUID",),
    "ReferencedStudySequence": ("ReferencedSOPClassUID", "ReferencedSOPInstanceUID"),
    "ReferencedPatientSequence": ("ReferencedSOPClassUID", "ReferencedSOPInstanceUID"),
    "PerformedSeriesSequence": ("SeriesInstanceUID", "ProtocolName"),
    "ReferencedImageSequence": ("ReferencedSOPClassUID", "ReferencedSOPInstanceUID"),
    "ReferencedNonImageCompositeSOPInstanceSequence": ("ReferencedSOPClassUID",
                                                       "ReferencedSOPInstanceUID"),
}
#: Table F.7.2-1 N-SET "Not allowed": scheduling, patient, who/where/when it started.
NOT_ALLOWED_IN_SET = frozenset({
    "ScheduledStepAttributesSequence", "PatientName", "PatientID", "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence", "OtherPatientIDsSequence", "TypeOfPatientID",
    "PatientBirthDate", "PatientSex", "ReferencedPatientSequence", "AdmissionID",
    "IssuerOfAdmissionIDSequence", "ServiceEpisodeID", "IssuerOfServiceEpisodeIDSequence",
    "ServiceEpisodeDescription", "PerformedProcedureStepID", "PerformedStationAETitle",
    "PerformedStationName", "PerformedLocation", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "Modality", "StudyID",
    "SOPClassUID", "SOPInstanceUID",
})
#: Table F.7.2-1 "Type Final State" 1: needed once the status is COMPLETED/DISCONTINUED.
FINAL_TYPE1 = ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime",
               "PerformedSeriesSequence")


class MppsHooks(Protocol):
    """What the node wants told about steps (the worklist marks its items with it)."""

    def on_status(self, step: Dataset, status: str) -> None:
        """``step`` (the whole step, SOP Instance UID included) is now ``status``."""


@dataclass
class StatusListeners:
    """:class:`MppsHooks` as a list of plain callables, each called in turn."""

    listeners: list[Callable[[Dataset, str], Any]] = field(default_factory=list)

    def on_status(self, step: Dataset, status: str) -> None:
        for listener in self.listeners:
            listener(step, status)


def worklist_marker(mark: Callable[..., Any]) -> Callable[[Dataset, str], None]:
    """A :class:`StatusListeners` listener that calls a worklist's ``mark`` per scheduled
    step the performed step names (``mark(status=..., sps_id=..., study_uid=...,
    accession=..., requested_procedure_id=...)``, empty keys left out).

    A Scheduled Step Attributes Sequence item without Scheduled Procedure Step ID is
    the "unscheduled" case (the modality made its own Study Instance UID): there is no
    worklist item to mark, and matching on the study alone could mark someone else's.
    """

    def listener(step: Dataset, pps_status: str) -> None:
        for link in links_of(step):
            if not link.sps_id:
                continue
            keys = {"sps_id": link.sps_id, "study_uid": link.study_uid,
                    "accession": link.accession_number,
                    "requested_procedure_id": link.requested_procedure_id}
            mark(status=pps_status, **{k: v for k, v in keys.items() if v})

    return listener


# -- validation -----------------------------------------------------------------------
def _names(prefix: str, keywords: list[str], paths: tuple[str, ...] | list[str] = ()) -> str:
    """``prefix`` and the attributes, by keyword and tag while that fits Error Comment's
    64 characters, else by tag alone (the tag is what an SCU's log can be searched for)."""
    long = [f"{kw} {Tag(tag_for_keyword(kw))}" for kw in keywords] + list(paths)
    text = prefix + ", ".join(long)
    if len(text) <= 64:
        return text
    return prefix + ", ".join([str(Tag(tag_for_keyword(kw))) for kw in keywords] + list(paths))


def _empty(ds: Dataset, keyword: str) -> bool:
    return bool(ds[keyword].is_empty)


def _check_items(ds: Dataset, path: str, missing: list[str], empty: list[str]) -> None:
    """1/1 attributes of the items of every sequence in ``ds`` (recursively)."""
    for elem in ds:
        if elem.VR != "SQ":
            continue
        required = ITEM_TYPE1.get(elem.keyword, ())
        for n, item in enumerate(elem.value, 1):
            where = f"{path}{elem.keyword}[{n}]."
            for keyword in required:
                if keyword not in item:
                    missing.append(where + keyword)
                elif _empty(item, keyword):
                    empty.append(where + keyword)
            _check_items(item, where, missing, empty)


def check_create(ds: Dataset) -> None:
    """Refuse an N-CREATE data set that Table F.7.2-1 / F.7.2.1.3 do not allow."""
    missing = [kw for kw in CREATE_TYPE1 if kw not in ds]
    empty = [kw for kw in CREATE_TYPE1 if kw in ds and _empty(ds, kw)]
    if missing:
        raise StatusError(status.MISSING_ATTRIBUTE, _names("missing ", missing),
                         [tag_for_keyword(kw) for kw in missing])
    if empty:
        raise StatusError(status.MISSING_ATTRIBUTE_VALUE, _names("empty ", empty),
                         [tag_for_keyword(kw) for kw in empty])
    pps_status = str(ds.PerformedProcedureStepStatus).strip()
    if pps_status != IN_PROGRESS:
        raise StatusError(status.INVALID_ATTRIBUTE_VALUE,
                         f"PerformedProcedureStepStatus (0040,0252) {pps_status!r}, "
                         "must be IN PROGRESS", [0x00400252])
    item_missing: list[str] = []
    item_empty: list[str] = []
    _check_items(ds, "", item_missing, item_empty)
    if item_missing:
        raise StatusError(status.MISSING_ATTRIBUTE, "missing " + ", ".join(item_missing))
    if item_empty:
        raise StatusError(status.MISSING_ATTRIBUTE_VALUE, "empty " + ", ".join(item_empty))


def check_set(modification: Dataset) -> str | None:
    """Refuse what N-SET may not change; the new PPS Status, if the request sets one."""
    refused = [elem.tag for elem in modification
               if elem.keyword in NOT_ALLOWED_IN_SET]
    if refused:
        names = ", ".join(f"{modification[t].keyword} {t}" for t in refused)
        raise StatusError(status.NO_SUCH_ATTRIBUTE, f"not allowed in N-SET: {names}", refused)
    if "PerformedProcedureStepStatus" not in modification:
        return None
    new_status = str(modification.PerformedProcedureStepStatus or "").strip()
    if not new_status:
        raise StatusError(status.MISSING_ATTRIBUTE_VALUE,
                         "empty PerformedProcedureStepStatus (0040,0252)", [0x00400252])
    if new_status not in STATUSES:
        raise StatusError(status.INVALID_ATTRIBUTE_VALUE,
                         f"PerformedProcedureStepStatus (0040,0252) {new_status!r}",
                         [0x00400252])
    return new_status


def check_final(step: Dataset, final_status: str) -> None:
    """Final State Type 1 of Table F.7.2-1, on the step as the N-SET would leave it.

    A DISCONTINUED step may have an empty Performed Series Sequence: the standard
    asks for one series item even then, but a modality that aborts before the first
    exposure has none to name, and refusing its DISCONTINUED would leave the step
    (and its worklist item) IN PROGRESS for good.
    """
    missing = [kw for kw in FINAL_TYPE1
               if (kw not in step or _empty(step, kw))
               and not (kw == "PerformedSeriesSequence" and final_status == DISCONTINUED)]
    item_missing: list[str] = []
    item_empty: list[str] = []
    series = Dataset()
    if "PerformedSeriesSequence" in step:
        series.PerformedSeriesSequence = step.PerformedSeriesSequence
    _check_items(series, "", item_missing, item_empty)
    if missing or item_missing or item_empty:
        raise StatusError(status.PROCESSING_FAILURE,
                         _names(f"{final_status} needs ", missing, item_missing + item_empty))


def merge(step: Dataset, modification: Dataset) -> Dataset:
    """The step with the N-SET's attributes replacing its own, whole (PS3.7 10.1.3).

    Sequences are replaced, not merged item by item; a zero-length value empties
    the attribute.  Text was decoded on receipt, so the stored step is Unicode and
    says so (PS3.4 F.7.2.2.3: the N-SET's Specific Character Set does not replace
    the step's, the SCP combines them).
    """
    out = Dataset()
    out.update(step)
    for elem in modification:
        if elem.tag.group == 0x0000 or elem.keyword == "SpecificCharacterSet":
            continue
        out[elem.tag] = elem
    out.SpecificCharacterSet = "ISO_IR 192"
    return out


# -- event handlers -------------------------------------------------------------------
def _decode(event: Any, name: str) -> Dataset:
    """The request's data set with every element (sequences too) decoded now.

    pydicom decodes lazily; a malformed element must fail this request here, not
    surface halfway through storing it.
    """
    try:
        ds = getattr(event, name)
        ds.walk(lambda _ds, elem: elem.value)
        return ds
    except Exception as exc:
        raise StatusError(status.PROCESSING_FAILURE,
                         f"cannot decode the data set: {exc}") from None


def _calling_ae(event: Any) -> str:
    try:
        return str(event.assoc.requestor.ae_title).strip()
    except AttributeError:
        return ""


def _notify(hooks: MppsHooks | None, step: Dataset, pps_status: str) -> None:
    if hooks is None:
        return
    try:
        hooks.on_status(step, pps_status)
    except Exception:  # the step is stored; a worklist problem is not the modality's
        LOGGER.exception("MPPS status hook failed for %s (%s)",
                         step.get("SOPInstanceUID", "?"), pps_status)


def handle_n_create(event: Any, store: MppsStore, hooks: MppsHooks | None = None
                    ) -> tuple[int, Dataset | None]:
    """N-CREATE: a new step IN PROGRESS; the SCP assigns the UID when the SCU does not."""
    req = event.request
    ds = _decode(event, "attribute_list")
    requested = str(req.AffectedSOPInstanceUID or "").strip()
    check_create(ds)
    uid = requested or generate_uid()
    step = merge(Dataset(), ds)
    step.SOPClassUID = MPPS_SOP_CLASS
    step.SOPInstanceUID = uid
    try:
        store.create(uid, step, _calling_ae(event))
    except StepExists:
        raise StatusError(status.DUPLICATE_SOP_INSTANCE,
                         f"SOP Instance {uid} already exists") from None
    LOGGER.info("MPPS %s IN PROGRESS from %s (%s %s)", uid, _calling_ae(event),
                step.get("Modality", ""), step.get("PerformedStationAETitle", ""))
    _notify(hooks, step, IN_PROGRESS)
    if requested:
        return status.SUCCESS, None
    # pynetdicom moves this into the response command (0000,1000), for 0x0000 only.
    out = Dataset()
    out.AffectedSOPInstanceUID = uid
    return status.SUCCESS, out


def handle_n_set(event: Any, store: MppsStore, hooks: MppsHooks | None = None
                 ) -> tuple[int, Dataset | None]:
    """N-SET: update an IN PROGRESS step; COMPLETED / DISCONTINUED makes it final."""
    req = event.request
    uid = str(req.RequestedSOPInstanceUID or "").strip()
    modification = _decode(event, "modification_list")
    new_status: list[str | None] = [None]

    def change(step: Dataset) -> Dataset:
        new_status[0] = check_set(modification)
        out = merge(step, modification)
        if new_status[0] in FINAL_STATUSES:
            check_final(out, str(new_status[0]))
        return out

    try:
        record = store.update(uid, change)
    except StepNotFound:
        raise StatusError(status.NO_SUCH_SOP_INSTANCE,
                         f"no Performed Procedure Step {uid}"[:64]) from None
    except StepFinal:
        raise _NoLongerUpdatable() from None
    final = new_status[0] if new_status[0] in FINAL_STATUSES else None
    LOGGER.info("MPPS %s N-SET from %s%s", uid, _calling_ae(event),
                f" -> {final}" if final else "")
    if final:
        _notify(hooks, record.dataset, final)
    return status.SUCCESS, None


class _NoLongerUpdatable(StatusError):
    def __init__(self) -> None:
        super().__init__(status.PROCESSING_FAILURE, NO_LONGER_UPDATABLE)


def _set_failure(result: Dataset) -> tuple[Dataset, None]:
    if result.get("ErrorComment") == NO_LONGER_UPDATABLE:
        result.ErrorID = NO_LONGER_UPDATABLE_ID
    return result, None


def is_mpps_request(event: Any) -> bool:
    """Whether an N-CREATE / N-SET event is for the MPPS SOP Class (node dispatch)."""
    req = event.request
    uid = getattr(req, "AffectedSOPClassUID", None) or getattr(req, "RequestedSOPClassUID",
                                                                None)
    return str(uid or "") == MPPS_SOP_CLASS


def create_handler(store: MppsStore, hooks: MppsHooks | None = None
                   ) -> Callable[[Any], tuple[Any, Dataset | None]]:
    """N-CREATE handler with failures turned into statuses, for a node's dispatcher."""
    fn = guarded(handle_n_create, create_failure)
    return lambda event: fn(event, store, hooks)


def set_handler(store: MppsStore, hooks: MppsHooks | None = None
                ) -> Callable[[Any], tuple[Any, Dataset | None]]:
    """N-SET handler with failures turned into statuses, for a node's dispatcher."""
    fn = guarded(handle_n_set, _set_failure)
    return lambda event: fn(event, store, hooks)


def event_handlers(store: MppsStore, hooks: MppsHooks | None = None
                   ) -> list[tuple[Any, Callable[..., Any], list[Any]]]:
    """pynetdicom ``evt_handlers`` for an AE whose only N-CREATE/N-SET service is MPPS.

    pynetdicom allows one handler per intervention event, so a node that also does
    Print Management must dispatch on :func:`is_mpps_request` instead.
    """
    from pynetdicom import evt

    return [(evt.EVT_N_CREATE, guarded(handle_n_create, create_failure), [store, hooks]),
            (evt.EVT_N_SET, guarded(handle_n_set, _set_failure), [store, hooks])]


__all__ = [
    "COMPLETED", "CREATE_TYPE1", "FINAL_TYPE1", "NOT_ALLOWED_IN_SET", "MppsHooks",
    "StatusListeners", "create_handler", "event_handlers", "handle_n_create",
    "handle_n_set", "is_mpps_request", "set_handler", "worklist_marker",
]
