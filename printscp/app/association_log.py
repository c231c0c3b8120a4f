"""One log line per association, as an administrator reads the node's log (``-v``).

Who (calling AE, peer address, called AE), what (the peer's requests served, by DIMSE
command, and the SOP classes they named), how long, and how it ended: released, aborted
by whom, rejected and why.  JSON log lines carry the same as fields
(:mod:`printscp.app.logs`).
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.uid import UID

from printscp.core import audit, metrics
from printscp.net import channel

LOGGER = logging.getLogger("printscp.associations")

#: A-ASSOCIATE-RJ reasons of the DICOM UL service-user (PS3.8 Table 9-21).
REJECT_REASONS = {1: "no reason given", 2: "application context name not supported",
                  3: "calling AE title not recognized",
                  7: "called AE title not recognized"}


def rejected(assoc: Any, verdict: tuple[int, int, int]) -> None:
    """Record why printscp rejects ``assoc`` (the line follows when it closes)."""
    reason = REJECT_REASONS.get(verdict[2], f"reason {verdict[2]}")
    channel.mark_ended(assoc, f"rejected: {reason}")


def on_rejected(event: Any) -> None:
    """pynetdicom rejected the association in its own negotiation (the association
    limit); printscp's own rejections (:func:`rejected`) do not fire this event."""
    channel.mark_ended(event.assoc, "rejected: local limit exceeded")


def on_closed(event: Any) -> None:
    """EVT_CONN_CLOSE: the association's line, and its count by calling AE and service
    (:func:`printscp.core.metrics.association_closed`); nothing for a connection that
    never sent an A-ASSOCIATE-RQ (that is at DEBUG, and not counted)."""
    assoc = event.assoc
    requestor = assoc.requestor
    primitive = getattr(requestor, "primitive", None)
    done = channel.summary(assoc)
    if primitive is None:
        LOGGER.debug("connection from %s closed before an A-ASSOCIATE-RQ (%.1f s)",
                     requestor.address, done.seconds)
        return
    calling = str(primitive.calling_ae_title).strip()
    called = str(primitive.called_ae_title).strip()
    operations = ", ".join(f"{name} x{count}" for name, count in
                           sorted(done.operations.items())) or "no operations"
    services = [UID(uid).name for uid in done.sop_classes]
    metrics.association_closed(calling, done.sop_classes, done.ended)
    level = logging.WARNING if done.ended.startswith("rejected") else logging.INFO
    LOGGER.log(level, "association %s: %s@%s -> %s: %s%s; %.2f s; %s", done.id, calling,
               requestor.address, called, operations,
               f" ({', '.join(services)})" if services else "", done.seconds, done.ended,
               extra={"association": done.id, "calling_ae": calling, "called_ae": called,
                      "peer": requestor.address, "operations": done.operations,
                      "services": services, "seconds": round(done.seconds, 3),
                      "ended": done.ended})
    audit.association(assoc, ae=calling, host=requestor.address, called=called,
                      association_id=done.id, ended=done.ended, operations=done.operations,
                      seconds=done.seconds)


def handlers() -> list[tuple[Any, Any]]:
    """The node's event handlers for these lines."""
    from pynetdicom import evt

    return [(evt.EVT_REJECTED, on_rejected), (evt.EVT_CONN_CLOSE, on_closed)]
