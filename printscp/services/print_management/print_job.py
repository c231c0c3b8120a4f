"""Print Job SOP Class (1.2.840.10008.5.1.1.14), PS3.4 H.4.7.

Every print N-ACTION (Film Session or Film Box) spools a job
(:meth:`.service.PrintService.spool_films`) whose Print Job UID is made from the job's id,
so any later association, in any worker process, finds it on disk.  When the Print Job
SOP Class was negotiated the N-ACTION response references it (:func:`action_response`).

DIMSE operations:

- **N-GET** of :data:`PRINT_JOB_ATTRIBUTES` (all, or those requested), from the job's
  files, so the console's actions show here too: a held job is PENDING with Execution
  Status Info ``JOB HELD``, a cancelled one FAILURE with ``JOB CANCELED`` (the term of
  PS3.2's example Print SCP conformance statement; PS3.3 C.13.8 and C.13.9.1 define none
  for either), a deleted one no such instance;
- **N-EVENT-REPORT** to the association that printed, while it stays open (sent by the
  service's job watchers): Event Type ID 1 PENDING (right after the N-ACTION response),
  2 PRINTING, 3 DONE, 4 FAILURE, with :func:`event_information`.

Statuses:

======  ==================================================================
0x0000  Success
0x0112  No such SOP Instance: no job of this node has that UID
======  ==================================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from printscp.config import PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.jobs.spool import (
    DONE,
    FAILURE,
    PENDING,
    PRINTING,
    PrintJob,
    find_job,
    job_id_from_uid,
)
from printscp.services.print_management.state import AssociationState, Service

#: Print Job attributes returned by N-GET (PS3.3 C.13.8).
PRINT_JOB_ATTRIBUTES = (
    "ExecutionStatus", "ExecutionStatusInfo", "PrintPriority", "CreationDate",
    "CreationTime", "PrinterName", "Originator",
)
#: Execution Status Info (2100,0030) per Execution Status when the job's record has none
#: (PS3.3 C.13.9.1 defined terms); the spool's records carry the term that applies
#: (QUEUED, JOB HELD, PRINTER OFFLINE, JOB CANCELED...).
EXECUTION_STATUS_INFO = {PENDING: "QUEUED", PRINTING: "NORMAL", DONE: "NORMAL",
                         FAILURE: "INVALID PAGE DES"}


def n_get(service: Service, st: AssociationState, uid: str) -> Dataset:
    return dataset(service, uid, st.printer)


def dataset(service: Service, uid: str, printer: PrinterConfig) -> Dataset:
    """Print Job attributes (PS3.3 C.13.8) of any job of this node, from disk, so a
    later association (or another worker process) sees the same state."""
    job_id = job_id_from_uid(uid, uids.UID_ROOT)
    job = None
    if job_id:
        known = service.spool.index.get(job_id)  # its file's name: no listing of films/
        job = find_job(service.config.data_path, job_id, known["stem"] if known else "")
    if job is None:
        raise StatusError(status.NO_SUCH_SOP_INSTANCE, f"no Print Job {uid}")
    execution = job.get("status", PENDING)
    created = datetime.fromisoformat(job["created"]).astimezone()
    ds = Dataset()
    ds.ExecutionStatus = execution
    ds.ExecutionStatusInfo = job.get("status_info") or EXECUTION_STATUS_INFO[execution]
    ds.PrintPriority = str(job.get("session", {}).get("print_priority") or "MED")
    ds.CreationDate = created.strftime("%Y%m%d")
    ds.CreationTime = created.strftime("%H%M%S")
    ds.PrinterName = str(job.get("printer") or printer.name)[:16]
    ds.Originator = str(job.get("calling_ae", ""))[:16]
    return ds


def event_information(execution: str, label: str, printer: str, status_info: str = ""
                      ) -> Dataset:
    """Event Information of a Print Job N-EVENT-REPORT (PS3.4 H.4.7.1.1)."""
    info = Dataset()
    info.ExecutionStatusInfo = status_info or EXECUTION_STATUS_INFO[execution]
    info.FilmSessionLabel = label
    info.PrinterName = printer[:16]
    return info


def events_context(assoc: Any, with_print_job: bool) -> Any:
    """The association's Print Job presentation context, over which the job's
    N-EVENT-REPORTs go; None without the Print Job SOP Class."""
    if not with_print_job:
        return None
    return next((cx for cx in assoc.accepted_contexts
                 if str(cx.abstract_syntax) == uids.PRINT_JOB), None)


def action_response(code: int, job: PrintJob, with_print_job: bool
                    ) -> tuple[int, Dataset | None]:
    """The print N-ACTION response: with the Print Job SOP Class negotiated it carries
    Referenced Print Job Sequence (2100,0500); otherwise it has no data set."""
    if not with_print_job:
        return code, None
    ref = Dataset()
    ref.ReferencedSOPClassUID = uids.PRINT_JOB
    ref.ReferencedSOPInstanceUID = job.extra["print_job_uid"]
    out = Dataset()
    # (2100,0500): pydicom's keyword for it is ...PullStoredPrint; the tag is what counts.
    out.add_new(0x21000500, "SQ", Sequence([ref]))
    return code, out
