"""Workarounds for pynetdicom 3.0 races, applied to an association.

Every association printscp requests (the Print SCU, forwarding, the tests' clients)
goes through :func:`guard_requestor`; every association it accepts gets
:func:`serialize_sends` (and :mod:`printscp.net.event_reports` for its own reports).
"""

from __future__ import annotations

import threading
from typing import Any

from printscp.net import reactors


def serialize_sends(assoc: Any) -> None:
    """One DIMSE message at a time on ``assoc``.

    pynetdicom splits a message into P-DATA PDUs and queues them one by one; two threads
    sending at once (a reply to the peer's N-EVENT-REPORT beside a request, or an event
    report beside the response of the request that caused it) interleave fragments of
    two messages, which the peer cannot decode and answers with an abort.
    """
    if getattr(assoc, "_printscp_serialized", False):
        return
    lock = threading.RLock()  # send_msg -> printscp.net.reactors.send_raw takes it again
    send = assoc.dimse.send_msg

    def send_msg(primitive: Any, context_id: int) -> None:
        with lock:
            send(primitive, context_id)

    assoc.dimse.send_msg = send_msg
    assoc._printscp_send_lock = lock  # printscp.net.reactors.send_raw takes it too
    assoc._printscp_serialized = True


def _put_back(assoc: Any, msg: Any, context_id: int) -> None:
    """Return a response the reactor took to the head of the queue, for its waiter.

    A sender waiting for a response holds the reactor's checkpoint cleared; with none
    waiting (a late answer after a timeout) the response is dropped, as pynetdicom
    does, so it cannot stay at the head of the queue in front of the next request.
    """
    if assoc._reactor_checkpoint.is_set():
        return
    queue_ = assoc.dimse.msg_queue
    with queue_.not_empty:
        queue_.queue.appendleft((context_id, msg))
        queue_.unfinished_tasks += 1
        queue_.not_empty.notify()


def track_serving(assoc: Any) -> None:
    """Mark ``assoc._printscp_serving`` while its reactor serves a request.

    pynetdicom raises ``_is_paused`` during a request's handler too, so a sender from
    another thread that waits for "paused" could go out before the response; it waits
    for ``not _printscp_serving`` as well (see :mod:`printscp.net.event_reports`).
    """
    serve = assoc._serve_request

    def serving(msg: Any, context_id: int) -> None:
        if not msg.is_valid_request and msg.is_valid_response:
            _put_back(assoc, msg, context_id)  # the answer to one of our event reports
            return
        assoc._printscp_serving = True
        try:
            serve(msg, context_id)
        finally:
            assoc._printscp_serving = False

    assoc._printscp_serving = False
    assoc._serve_request = serving


def guard_requestor(assoc: Any) -> None:
    """Work around two races of pynetdicom's requestor (3.0) that lose a response.

    * Its reactor can pass its checkpoint just as a ``send_*`` call clears it, see the
      stale ``_is_paused`` flag and then take the answer off the queue itself (logged as
      "Received unexpected ... service message"); the sender then waits for the DIMSE
      timeout.  A fast peer on loopback with TCP_NODELAY hits this.  Such a response is
      put back at the head of the queue, where the waiting sender finds it.  (The loop
      of :mod:`printscp.net.reactors` no longer reads the queue past a cleared checkpoint;
      this stays for an association that runs pynetdicom's own loop.)
    * A peer's N-EVENT-REPORT is served on a thread of its own, which clears
      ``_is_paused`` when done; a ``send_*`` call waiting for the reactor to park then
      waits forever.  After each such report, a parked reactor is marked paused again.
    """
    reactors.install()  # for the associations that follow
    serialize_sends(assoc)
    serve = assoc._serve_request

    def guarded(msg: Any, context_id: int) -> None:
        if not msg.is_valid_request and msg.is_valid_response:
            _put_back(assoc, msg, context_id)
            return
        serve(msg, context_id)
        if not assoc._reactor_checkpoint.is_set():
            assoc._is_paused = True

    assoc._serve_request = guarded
