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

from printscp.net import channel

LOGGER = logging.getLogger("printscp.events")

#: Event Type IDs of the Print Job SOP Class (PS3.4 H.4.5.1.1).
PRINT_JOB_EVENTS = {"PENDING": 1, "PRINTING": 2, "DONE": 3, "FAILURE": 4}

_message_ids = itertools.count(0x8000)


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
    deadline = time.monotonic() + timeout
    # Parked between messages, as pynetdicom's own senders park the reactor; not merely
    # paused inside a request's handler, whose response must go out first.
    with channel.parked(assoc, timeout=timeout, after_response=True) as ready:
        if not ready:
            return None
        assoc.dimse.send_msg(req, context_id)
        others = []
        status = None
        while time.monotonic() < deadline and not channel.peer_is_leaving(assoc):
            cx_id, msg = channel.next_message(assoc, 0.05)
            if msg is None:
                continue
            if (isinstance(msg, N_EVENT_REPORT)
                    and msg.MessageIDBeingRespondedTo == req.MessageID):
                status = msg.Status
                break
            others.append((cx_id, msg))  # a request of the peer: the reactor's, not ours
        channel.requeue_front(assoc, others)
        return status


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
