"""The small interface the services use to talk on an association.

Services never touch pynetdicom's private attributes: they send a message, park the
association's reactor while they wait for an answer, ask whether the peer cancelled a
request, and attach the fast paths the node serves on the DUL thread, all through the
functions here.  The one exception is the public API of pynetdicom (``AE``, ``evt``,
``Association.send_*``, ``accepted_contexts``), which services use as any user would.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from printscp.net import pdata, reactors
from printscp.net.hooks import Claim, hooks_of

#: Longest wait of a loop that polls the association (kill flags, timeouts).
TICK = reactors.TICK


class AssociationClosed(RuntimeError):
    """The association ended before a message could be sent on it."""


# -- what an association did ------------------------------------------------------------
@dataclass(frozen=True)
class AssociationSummary:
    """What an association did, for its log line: the number the DIMSE log lines carry,
    how long it lasted, the peer's requests served by DIMSE command, how it ended, and
    the bytes read from and written to its socket."""

    id: str
    seconds: float
    operations: dict[str, int]
    sop_classes: tuple[str, ...]
    ended: str
    bytes_received: int = 0
    bytes_sent: int = 0


def summary(assoc: Any) -> AssociationSummary:
    """What ``assoc`` did so far, and how it ended ("open" while it runs)."""
    hooks = hooks_of(assoc)
    ended = hooks.ended
    if ended is None:
        if assoc.is_aborted:
            ended = "aborted by printscp"
        elif assoc.is_released:
            ended = "released"
        elif assoc.is_rejected:
            ended = "rejected"
        else:
            ended = "closed" if not assoc.is_established else "open"
    return AssociationSummary(hooks.id, time.monotonic() - hooks.started,
                              dict(hooks.operations), tuple(sorted(hooks.sop_classes)), ended,
                              hooks.bytes_received, hooks.bytes_sent)


def mark_ended(assoc: Any, how: str) -> None:
    """Say how ``assoc`` ends (a rejection and its reason), for :func:`summary`."""
    hooks_of(assoc).ended = how


# -- fast paths and requests served by the node ---------------------------------------
def attach_fast_paths(assoc: Any, *, store: Claim | None = None,
                      store_prefix: Callable[[Any, pdata.MessageAssembler], bytes] | None
                      = None, find: Claim | None = None) -> None:
    """Serve C-STORE-RQs (``store``, whose data sets are stored behind the prefix
    ``store_prefix`` returns) and C-FIND-RQs (``find``) on the DUL thread as soon as
    they are parsed (:mod:`printscp.net.reactors`).  Each is a claim: given the whole
    message it returns a callable that serves it, or None to leave it to pynetdicom."""
    hooks = hooks_of(assoc)
    hooks.store, hooks.store_prefix, hooks.find = store, store_prefix, find


def serve_dimse_n(assoc: Any, claim: Claim | None) -> None:
    """Serve DIMSE-N requests (N-GET, N-SET, N-ACTION, N-CREATE, N-DELETE) on the DUL
    thread as soon as they are parsed, as C-STORE and C-FIND are: ``claim(assoc,
    message)`` returns a callable that serves the whole message, or None to leave it to
    pynetdicom.  A claim must take every request of the SOP classes it serves (one left
    to pynetdicom would be answered after a later one served here)."""
    hooks_of(assoc).dimse_n = claim


def serve_requests(assoc: Any, serve: Callable[[Any, int], bool]) -> None:
    """Offer every request pynetdicom decodes on ``assoc`` to ``serve(msg, context_id)``
    first, on the association's reactor thread; it returns True when it served it."""
    hooks_of(assoc).requests = serve


@contextlib.contextmanager
def serving_request(assoc: Any, *, on_reactor: bool = True) -> Iterator[None]:
    """Serve a request outside pynetdicom's service classes, as its ``_serve_request``
    does: C-CANCELs received before it and not acted on after it are forgotten, and
    event reports from other threads wait until it is done (:func:`is_serving`).

    ``on_reactor``: the request is served on the association's reactor thread, which is
    then marked paused, so that pynetdicom's ``send_*`` calls made while serving it may
    go ahead.  A fast path on the DUL thread leaves the flag to the reactor, which runs
    beside it (and sends nothing through ``send_*``)."""
    hooks = hooks_of(assoc)
    previous = hooks.serving
    hooks.serving = True
    assoc.dimse.cancel_req = {}
    if on_reactor:
        assoc._is_paused = True
    try:
        yield
    finally:
        if on_reactor:
            assoc._is_paused = False
        assoc.dimse.cancel_req = {}
        hooks.serving = previous


def is_serving(assoc: Any) -> bool:
    """True while a request of the peer is served (its response not yet out)."""
    return hooks_of(assoc).serving


def is_cancelled(assoc: Any, message_id: int) -> bool:
    """Whether the peer sent a C-CANCEL for its request ``message_id``."""
    return message_id in assoc.dimse.cancel_req


def read_pending(assoc: Any) -> bool:
    """Take in what the peer sent while the DUL thread serves a request (a C-CANCEL);
    True when the request should stop (the peer aborted or went away)."""
    return reactors.read_pending(assoc)


@contextlib.contextmanager
def expecting_store_responses(
        assoc: Any, claim: Callable[[int | None, int | None], Callable[[], None] | None]
) -> Iterator[None]:
    """While in the block, C-STORE-RSPs parsed on the DUL thread are offered to
    ``claim(message_id_responded_to, status)`` (a C-GET's sub-operations)."""
    hooks = hooks_of(assoc)
    hooks.store_response = claim
    try:
        yield
    finally:
        hooks.store_response = None


# -- sending ----------------------------------------------------------------------------
@contextlib.contextmanager
def handler_running(assoc: Any) -> Iterator[None]:
    """Around a user handler called off pynetdicom's own dispatch (a fast path): its
    ``assoc.abort()`` must not wait for the reactor that is running the handler, so it
    is pynetdicom's non-blocking abort meanwhile, as pynetdicom arranges around the
    handlers it calls itself."""
    assoc.abort = assoc._abort_nonblocking
    try:
        yield
    finally:
        assoc.abort = assoc._abort_blocking


def send_message(assoc: Any, context_id: int, command: bytes,
                 data_set: bytes | memoryview | None = None) -> None:
    """Send one DIMSE message whose command set (and data set) are already encoded,
    whole, never interleaved with another message on the association; pynetdicom's
    ``EVT_DIMSE_SENT`` (and PDU events) fire as for its own messages."""
    reactors.send_raw(assoc, context_id, command, data_set)


def runs_our_loop(assoc: Any) -> bool:
    """Whether ``assoc`` runs printscp's event-driven loops (it started after
    :func:`printscp.net.reactors.install`)."""
    return reactors.runs_our_loop(assoc.dul)


def accepted_context(assoc: Any, context_id: int | None) -> Any:
    """The accepted presentation context ``context_id`` of ``assoc``, or None."""
    return assoc._accepted_cx.get(context_id)


def no_delay(assoc: Any) -> None:
    """TCP_NODELAY on a requested association's socket, as on the server's: a message
    never waits for the peer's delayed ACK."""
    with contextlib.suppress(OSError, AttributeError):
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _gone(assoc: Any) -> bool:
    """The peer aborted, closed or asked to release the association, even if its reactor,
    parked by the last send, has not yet marked it: a C-MOVE's sub-association whose
    destination aborted while a C-STORE was out still read "established" when the next
    C-STORE went; pynetdicom's send_c_store then waited the whole DIMSE timeout for an
    answer (the abort's empty message had ended the previous wait)."""
    return bool(assoc._kill or peer_is_leaving(assoc) or not assoc.dul.is_alive())


def is_running(assoc: Any) -> bool:
    """The association is established and its DUL thread alive."""
    return bool(assoc.is_established and assoc.dul.is_alive())


def peer_is_leaving(assoc: Any) -> bool:
    """True once the association ended or the peer asked to release or abort it."""
    return not assoc.is_established or assoc.dul.to_user_queue.qsize() > 0


# -- waiting for an answer ----------------------------------------------------------------
@contextlib.contextmanager
def parked(assoc: Any, *, timeout: float | None = None,
           after_response: bool = False) -> Iterator[bool]:
    """Park the association's reactor between messages, as pynetdicom's ``send_*``
    methods do, so that the answer to what is sent in the block comes here
    (:func:`next_message`) and not to the reactor.

    Yields True once parked; False when the association ended (or, with ``timeout``,
    the time ran out) first.  ``after_response``: also wait until no request of the
    peer is being served, so that its response goes out before what is sent here
    (an event report after the N-ACTION response that caused it), and give up as soon
    as the peer asks to release or abort.
    """
    assoc._reactor_checkpoint.clear()
    hooks = hooks_of(assoc)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not assoc._is_paused or (after_response and hooks.serving):
            if (assoc._kill or not assoc.is_established
                    or (after_response and peer_is_leaving(assoc))
                    or (deadline is not None and time.monotonic() > deadline)):
                yield False
                return
            time.sleep(0.0001 if deadline is None else 0.0005)
        yield True
    finally:
        assoc._reactor_checkpoint.set()


def next_message(assoc: Any, timeout: float) -> tuple[int | None, Any]:
    """The next decoded message while the reactor is parked; (None, None) after
    ``timeout`` seconds."""
    try:
        return assoc.dimse.msg_queue.get(timeout=timeout)
    except queue.Empty:
        return None, None


def requeue_front(assoc: Any, items: list[tuple[int, Any]]) -> None:
    """Hand messages taken by :func:`next_message` back to the reactor, in order."""
    reactors.requeue_front(assoc, items)


# -- stored files sent as they are ----------------------------------------------------------
def frame_stored_file(assoc: Any, path: Path, sop_class: str, sop_instance: str,
                      transfer_syntax: str, msg_id: int, priority: int = 2,
                      originator: tuple[str, int] | None = None
                      ) -> tuple[int, bytes, memoryview] | None:
    """(context ID, C-STORE-RQ command, data set bytes) sending a stored Part 10 file as
    it is, or None when no accepted context takes its class in its transfer syntax."""
    context = _context_as_stored(assoc, sop_class, transfer_syntax)
    if context is None:
        return None
    data = Path(path).read_bytes()
    offset = pdata.data_set_offset(data)
    command = pdata.store_request(msg_id, sop_class, sop_instance, priority, originator)
    return int(context.context_id), command, memoryview(data)[offset:]


def _context_as_stored(assoc: Any, sop_class: str, transfer_syntax: str) -> Any:
    """The accepted context in which we may send ``sop_class`` as SCU in exactly
    ``transfer_syntax`` (pynetdicom's ``_get_valid_context`` without conversion, but
    without its ERROR log line when there is none: the caller then converts, which is
    no error)."""
    for context in assoc.accepted_contexts:
        if (context.abstract_syntax == sop_class and context.as_scu
                and context.transfer_syntax[0] == transfer_syntax):
            return context
    return None


def send_c_store_file(assoc: Any, path: Path, sop_class: str, sop_instance: str,
                      transfer_syntax: str, msg_id: int = 1, priority: int = 2,
                      originator_aet: str | bytes | None = None,
                      originator_id: int | None = None) -> Dataset | None:
    """``assoc.send_c_store`` for a stored Part 10 file sent as it is.

    pynetdicom reads and re-encodes a file given to ``send_c_store`` and frames it
    through its state machine, several milliseconds per image; this sends the file's
    data set bytes, framed by :mod:`printscp.net.pdata`, then waits for the response as
    pynetdicom does.  Returns None, having sent nothing, when no accepted context
    takes the file's SOP class in its transfer syntax (pynetdicom may then convert).
    Raises :class:`AssociationClosed` when the peer aborted or closed the association
    (a reactor that has ended never parks).
    """
    originator = None
    if originator_aet is not None and originator_id is not None:
        aet = originator_aet.decode("ascii") if isinstance(originator_aet, bytes) \
            else str(originator_aet)
        originator = (aet.strip(), int(originator_id))
    framed = frame_stored_file(assoc, path, sop_class, sop_instance, transfer_syntax, msg_id,
                               priority, originator)
    if framed is None:
        return None
    closed = AssociationClosed("the association closed before the C-STORE could be sent")
    if _gone(assoc):  # the peer aborted or closed it after the last one
        raise closed
    with parked(assoc) as ready:
        if not ready:
            raise closed
        send_message(assoc, *framed)
        _, rsp = assoc.dimse.get_msg(block=True)
    if rsp is None:
        assoc._handle_no_response()
        return Dataset()
    return assoc._check_received_status(rsp)


class StoredFile(Dataset):
    """A stored instance handed to pynetdicom's C-MOVE service by reference.

    pynetdicom only takes Datasets from a C-MOVE handler and re-encodes them; an
    association set up with :func:`send_stored_files_as_is` sends these from their
    files instead, which is several times faster for large images.
    """

    def __init__(self, path: Path, sop_class: str, sop_uid: str, syntax: str) -> None:
        from pydicom.dataset import FileMetaDataset

        super().__init__()
        self.SOPClassUID = sop_class
        self.SOPInstanceUID = sop_uid
        self.file_meta = FileMetaDataset()
        self.file_meta.TransferSyntaxUID = syntax
        object.__setattr__(self, "stored_path", path)


def send_stored_files_as_is(assoc: Any) -> None:
    """Have ``assoc.send_c_store`` send :class:`StoredFile` references from their files
    as they are (:func:`send_c_store_file`); anything else goes pynetdicom's way."""
    hooks = hooks_of(assoc)
    if hooks.sends_files_as_stored:
        return
    send = assoc.send_c_store

    def send_c_store(dataset: Any, msg_id: int = 1, priority: int = 2,
                     originator_aet: Any = None, originator_id: int | None = None) -> Any:
        if _gone(assoc):  # before pynetdicom's send_c_store too (see _gone)
            raise AssociationClosed("the association closed before the C-STORE could be "
                                    "sent")
        path = getattr(dataset, "stored_path", None)
        if path is not None:
            meta = dataset.file_meta
            status = send_c_store_file(
                assoc, path, str(dataset.SOPClassUID), str(dataset.SOPInstanceUID),
                str(meta.TransferSyntaxUID), msg_id, priority, originator_aet, originator_id)
            if status is not None:
                return status
        return send(path if path is not None else dataset, msg_id, priority,
                    originator_aet, originator_id)

    assoc.send_c_store = send_c_store
    hooks.sends_files_as_stored = True
