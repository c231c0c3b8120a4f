"""N-EVENT-REPORT from the printer to the SCU on the SCU's own association.

PS3.4 H.4 lets the Print SCP report Print Job (PENDING, PRINTING, DONE, FAILURE) and
Printer (NORMAL, WARNING, FAILURE) events to an SCU that negotiated those SOP classes,
while its association is open.  pynetdicom's ``Association.send_n_event_report``
takes the next DIMSE message as the answer; a modality that sends its next request
(an N-DELETE, say) meanwhile would have that request swallowed.  This sender matches
the answer by Message ID Being Responded To and hands every other message back to the
association's reactor, in order.  Events are sent from one background thread, after
the handler that caused them has answered (the reactor only pauses between
messages), so a client always sees the N-ACTION response first.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.dimse_primitives import N_EVENT_REPORT
from pynetdicom.dsutils import encode

LOGGER = logging.getLogger("printscp.events")

#: Event Type IDs of the Print Job SOP Class (PS3.4 H.4.5.1.1).
PRINT_JOB_EVENTS = {"PENDING": 1, "PRINTING": 2, "DONE": 3, "FAILURE": 4}

_message_ids = itertools.count(0x8000)


def _ending(assoc: Any) -> bool:
    """True once the peer asked to release or abort: stop waiting for answers then."""
    return not assoc.is_established or assoc.dul.to_user_queue.qsize() > 0


def send_event_report(assoc: Any, context_id: int, transfer_syntax: Any, info: Dataset | None,
                      event_type: int, sop_class: str, sop_instance: str,
                      timeout: float = 10.0) -> int | None:
    """Send one N-EVENT-REPORT and return the peer's status (None: no answer).

    Waiting stops as soon as the peer releases or aborts the association.
    """
    req = N_EVENT_REPORT()
    req.MessageID = next(_message_ids) & 0xFFFF
    req.AffectedSOPClassUID = sop_class
    req.AffectedSOPInstanceUID = sop_instance
    req.EventTypeID = event_type
    if info is not None:
        req.EventInformation = BytesIO(encode(info, transfer_syntax.is_implicit_VR,
                                              transfer_syntax.is_little_endian,
                                              transfer_syntax.is_deflated))
    if not assoc.is_established:
        return None
    # Pause the association's reactor between messages, as pynetdicom's own senders do.
    assoc._reactor_checkpoint.clear()
    try:
        deadline = time.monotonic() + timeout
        # Parked between messages: not merely paused inside a request's handler, whose
        # response must go out first (printscp.net.workarounds.track_serving).
        while not assoc._is_paused or getattr(assoc, "_printscp_serving", False):
            if _ending(assoc) or time.monotonic() > deadline:
                return None
            time.sleep(0.0005)
        assoc.dimse.send_msg(req, context_id)
        others = []
        status = None
        while time.monotonic() < deadline and not _ending(assoc):
            try:
                cx_id, msg = assoc.dimse.msg_queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if (isinstance(msg, N_EVENT_REPORT)
                    and msg.MessageIDBeingRespondedTo == req.MessageID):
                status = msg.Status
                break
            others.append((cx_id, msg))  # a request of the peer: the reactor's, not ours
        with assoc.dimse.msg_queue.mutex:
            assoc.dimse.msg_queue.queue.extendleft(reversed(others))
        return status
    finally:
        assoc._reactor_checkpoint.set()


class EventReporter:
    """Queue of event reports, sent one at a time from a background thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        #: associations that left an event unanswered: they get no more
        self._deaf: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="event-reports", daemon=True)
        self._thread.start()

    def report(self, assoc: Any, context: Any, info: Dataset | None, event_type: int,
               sop_class: str, sop_instance: str) -> None:
        self._queue.put((assoc, context, info, event_type, sop_class, sop_instance))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            assoc, context, info, event_type, sop_class, sop_instance = item
            if id(assoc) in self._deaf or not assoc.is_established:
                continue
            try:
                result = send_event_report(assoc, context.context_id,
                                           context.transfer_syntax[0], info, event_type,
                                           sop_class, sop_instance)
                if result is None and assoc.is_established:
                    self._deaf.add(id(assoc))
                LOGGER.info("N-EVENT-REPORT %s type %d to %s: %s", sop_instance, event_type,
                            str(assoc.requestor.ae_title).strip(),
                            "no answer" if result is None else f"0x{result:04X}")
            except Exception:  # an event must never take the server down
                LOGGER.exception("N-EVENT-REPORT failed")
