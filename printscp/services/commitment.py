"""Storage Commitment Push Model SCP (PS3.4 Annex J), 1.2.840.10008.1.20.1.

N-ACTION (Request Storage Commitment, Action Type 1) is answered at once, after the
request is on disk; a background thread checks the instances and sends the result as
an N-EVENT-REPORT: on the requester's association if it is still open, otherwise on
a new association to the requester's address from the AE table (``[[remote]]``),
proposing the SCP role for us (SCP/SCU Role Selection), retried with back-off until
it is accepted.  Reports still owed are resumed after a restart.

N-ACTION statuses: 0x0000; 0x0112 no such SOP Instance (not the well-known instance
1.2.840.10008.1.20.1.1); 0x0123 no such action type; 0x0120 missing attribute
(Transaction UID, Referenced SOP Sequence); 0x0106 invalid attribute value (a reference
without its class or instance UID, a transaction UID already pending).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role

from printscp import net
from printscp.archive.archive import Archive
from printscp.archive.commitment import Commitment, CommitmentStore, check
from printscp.archive.files import valid_uid
from printscp.config import NodeConfig
from printscp.core import status
from printscp.core.tls import tls_args
from printscp.net.event_reports import send_event_report
from printscp.services.dimse import status_dataset

LOGGER = logging.getLogger("printscp.commitment")

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
#: Seconds a request received by another worker process is left to it.
ORIGIN_GRACE = 10.0


def _failure(code: int, comment: str) -> tuple[Dataset, None]:
    return status_dataset(code, comment), None


def report_dataset(c: Commitment, ae_title: str) -> Dataset:
    """Event Information of the N-EVENT-REPORT (PS3.4 Table J.3-2)."""
    info = Dataset()
    info.TransactionUID = c.transaction_uid
    info.RetrieveAETitle = ae_title
    if c.succeeded:
        items = []
        for sop_class, sop_uid in c.succeeded:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop_uid
            items.append(item)
        info.ReferencedSOPSequence = Sequence(items)
    if c.failed:
        items = []
        for sop_class, sop_uid, reason in c.failed:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop_uid
            item.FailureReason = reason
            items.append(item)
        info.FailedSOPSequence = Sequence(items)
    return info


def _accepted(code: int) -> bool:
    """Success or warning: the requester has the report (a failure: try again later)."""
    return code in (status.SUCCESS, 0x0001) or (code & 0xF000) == 0xB000


class CommitmentService:
    """Checks requests and delivers their reports, on one background thread."""

    def __init__(self, archive: Archive, config: NodeConfig, *, retry_initial: float = 5.0,
                 retry_max: float = 600.0) -> None:
        self.archive = archive
        self.config = config
        self.store = CommitmentStore(archive.data_dir)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        #: transaction UID -> (association, presentation context) it was requested on
        self._origins: dict[str, tuple[Any, Any]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- N-ACTION -------------------------------------------------------------------
    def handle_action(self, event: Any) -> tuple[Dataset | int, Dataset | None]:
        request = event.request
        if str(request.RequestedSOPInstanceUID) != STORAGE_COMMITMENT_INSTANCE:
            return _failure(status.NO_SUCH_SOP_INSTANCE,
                            f"the instance is {STORAGE_COMMITMENT_INSTANCE}")
        if int(request.ActionTypeID) != 1:
            return _failure(status.NO_SUCH_ACTION,
                            f"Action Type ID {request.ActionTypeID} is not 1")
        try:
            ds = event.action_information
        except Exception as exc:
            return _failure(status.PROCESSING_FAILURE, f"cannot decode the request: {exc}")
        if ds is None or not ds.get("TransactionUID"):
            return _failure(status.MISSING_ATTRIBUTE, "TransactionUID (0008,1195) missing")
        if not valid_uid(ds.TransactionUID):
            return _failure(status.INVALID_ATTRIBUTE_VALUE,
                            "TransactionUID (0008,1195) is not a UID")
        if not ds.get("ReferencedSOPSequence"):
            return _failure(status.MISSING_ATTRIBUTE, "ReferencedSOPSequence (0008,1199) missing")
        references = []
        for item in ds.ReferencedSOPSequence:
            sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
            sop_uid = str(item.get("ReferencedSOPInstanceUID", "") or "")
            if not sop_class or not sop_uid:
                return _failure(status.INVALID_ATTRIBUTE_VALUE,
                                "ReferencedSOPSequence item without class or UID")
            references.append((sop_class, sop_uid))
        uid = str(ds.TransactionUID)
        if self.store.exists(uid):
            return _failure(status.INVALID_ATTRIBUTE_VALUE,
                            f"TransactionUID {uid} is already pending")
        requester = event.assoc.requestor
        commitment = Commitment(uid, str(requester.ae_title).strip(),
                                f"{requester.address}:{requester.port}", references)
        self.store.save(commitment)  # on disk before the answer
        self._origins[uid] = (event.assoc, event.context)
        self._wake.set()
        LOGGER.info("storage commitment %s from %s: %d instance(s)", uid,
                    commitment.requester_ae, len(references))
        return status.SUCCESS, None

    # -- the worker -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="storage-commitment",
                                        daemon=True)
        self._thread.start()
        self._wake.set()  # reports owed from before a restart

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            now = time.time()
            for commitment in self.store.pending():
                if self._stop.is_set():
                    return
                if commitment.next_attempt > now:
                    continue
                # Another worker process's request: give it time to answer on its own
                # association first; only leftovers (its worker died, a restart) are ours.
                if commitment.transaction_uid not in self._origins \
                        and now - commitment.received < ORIGIN_GRACE:
                    continue
                with self.store.claim(commitment.transaction_uid) as mine:
                    if not mine:
                        continue
                    try:
                        self._process(commitment)
                    except Exception:  # never let one request stop the others
                        LOGGER.exception("storage commitment %s failed",
                                         commitment.transaction_uid)

    def _process(self, c: Commitment) -> None:
        if not c.checked:
            check(self.archive, c)
            self.store.save(c)
        info = report_dataset(c, self.config.ae_title)
        origin = self._origins.get(c.transaction_uid)
        if origin is not None and origin[0].is_established:
            assoc, context = origin
            syntax = context.transfer_syntax
            syntax = UID(syntax[0] if isinstance(syntax, list) else syntax)
            code = send_event_report(assoc, context.context_id, syntax, info, c.event_type,
                                       STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
            if code is not None and _accepted(code):
                self._delivered(c, "the requesting association", code)
                return
        error = self._send_new_association(c, info)
        if error is None:
            return
        c.attempts += 1
        c.last_error = error
        delay = min(self.retry_max, self.retry_initial * 2 ** (c.attempts - 1))
        c.next_attempt = time.time() + delay
        self.store.save(c)
        LOGGER.warning("storage commitment report %s: %s; retry %d in %.0f s",
                       c.transaction_uid, error, c.attempts, delay)
        timer = threading.Timer(delay, self._wake.set)
        timer.daemon = True
        timer.start()

    def _send_new_association(self, c: Commitment, info: Dataset) -> str | None:
        remote = self.config.remote_ae(c.requester_ae)
        if remote is None:
            return f"{c.requester_ae} is not in the AE table ([[remote]])"
        ae = AE(ae_title=self.config.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        ae.add_requested_context(STORAGE_COMMITMENT,
                                 [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = net.associate(ae, remote.host, remote.port, ae_title=remote.ae_title,
                              ext_neg=[build_role(STORAGE_COMMITMENT, scp_role=True)],
                              tls_args=tls_args(remote, self.config.tls))
        if not assoc.is_established:
            return f"association with {remote.ae_title}@{remote.host}:{remote.port} refused"
        try:
            rsp, _ = assoc.send_n_event_report(info, c.event_type, STORAGE_COMMITMENT,
                                                  STORAGE_COMMITMENT_INSTANCE)
        finally:
            if assoc.is_established:
                assoc.release()
        code = int(rsp.get("Status", -1)) if rsp else -1
        if code < 0:
            return "no answer to the N-EVENT-REPORT"
        if not _accepted(code):
            return f"{remote.ae_title} answered the N-EVENT-REPORT with 0x{code:04X}"
        self._delivered(c, f"a new association to {remote.ae_title}", code)
        return None

    def _delivered(self, c: Commitment, how: str, code: int) -> None:
        from printscp.archive.browse import record_delivered

        # Kept for the console's workflow page: which reports went out, how, when.
        record_delivered(self.store.folder.parent, c, how, code)
        self.store.done(c)
        self._origins.pop(c.transaction_uid, None)
        LOGGER.info("storage commitment %s reported on %s (%d committed, %d failed; "
                    "status 0x%04X)", c.transaction_uid, how, len(c.succeeded or []),
                    len(c.failed or []), code)


def event_handlers(service: CommitmentService) -> list[tuple[Any, Any, list[Any]]]:
    from pynetdicom import evt

    def handle(event: Any) -> Any:
        return service.handle_action(event)

    return [(evt.EVT_N_ACTION, handle, [])]
