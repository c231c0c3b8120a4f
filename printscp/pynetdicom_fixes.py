"""Workarounds for pynetdicom 3.0 requestor races, applied to an established association.

Every association printscp requests (the Print SCU, forwarding, the tests' clients)
goes through :func:`guard_requestor`; the server side has its own care in
:mod:`printscp.services.events`.
"""

from __future__ import annotations

from typing import Any


def guard_requestor(assoc: Any) -> None:
    """Work around two races of pynetdicom's requestor (3.0) that lose a response.

    * Its reactor can pass its checkpoint just as a ``send_*`` call clears it, see the
      stale ``_is_paused`` flag and then take the answer off the queue itself (logged as
      "Received unexpected ... service message"); the sender then waits for the DIMSE
      timeout.  A fast peer on loopback with TCP_NODELAY hits this.  Such a response is
      put back at the head of the queue, where the waiting sender finds it.
    * A peer's N-EVENT-REPORT is served on a thread of its own, which clears
      ``_is_paused`` when done; a ``send_*`` call waiting for the reactor to park then
      waits forever.  After each such report, a parked reactor is marked paused again.
    """
    serve = assoc._serve_request
    queue_ = assoc.dimse.msg_queue

    def guarded(msg: Any, context_id: int) -> None:
        if not msg.is_valid_request and msg.is_valid_response:
            with queue_.not_empty:
                queue_.queue.appendleft((context_id, msg))
                queue_.unfinished_tasks += 1
                queue_.not_empty.notify()
            return
        serve(msg, context_id)
        if not assoc._reactor_checkpoint.is_set():
            assoc._is_paused = True

    assoc._serve_request = guarded
