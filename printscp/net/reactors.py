"""Event-driven reactors for pynetdicom 3.0: no message waits on a polling sleep.

pynetdicom runs two loops per association.  Its DUL thread polls the socket and its
outgoing queue, sleeping 1 ms whenever both are empty; its association reactor
sleeps 1 ms before every look at the decoded-message queue.  On loopback with
TCP_NODELAY a whole C-STORE, C-FIND response or C-GET sub-operation takes about
that long, so every message paid one to three polling sleeps: the store rate was
capped near 100 instances/s and C-GET near 150 whatever the archive did.

:func:`install` replaces both waits, keeping each loop's body as pynetdicom wrote it:

* the DUL thread blocks in ``select`` on its socket and on a wake-up pipe written
  whenever something is put on one of its queues (outgoing primitives, state-machine
  events, transport events);
* the association reactor blocks on an event set whenever a decoded message or an
  ACSE primitive (release, abort) is queued for it, or its DUL thread ends.

Both still wake at least every :data:`TICK` seconds, so timers (ARTIM, network
timeout) and kill flags are honoured as before.  The socket reads whole PDUs with
``recv_into`` instead of 4 KiB ``recv`` calls.

On an established association the DUL thread also parses P-DATA-TF PDUs itself
(:mod:`printscp.net.pdata`) and assembles whole DIMSE messages.  A complete C-STORE-RQ
or C-FIND-RQ is offered to the fast path the node attached to the association (its
:class:`~printscp.net.hooks.AssociationHooks`: the archive's C-STORE and C-FIND, served
on this thread), a C-STORE-RSP to a C-GET in progress; a message a fast path claims
fires pynetdicom's ``EVT_DIMSE_RECV`` first (:mod:`printscp.net.observe`), as its own
path does.  Anything else is handed to pynetdicom's DIMSE provider exactly as its own
P-DATA indication would have been.
Outgoing, ``send_msg`` frames each message whole (:func:`send_raw`) instead of one
P-DATA primitive per PDV, and command sets are encoded by hand.

Every request served, on either path, is timed from its last fragment to its response
(:func:`printscp.core.metrics.dimse`), and the bytes each association reads and writes
are counted (:class:`~printscp.net.hooks.AssociationHooks`).

An association whose DUL thread started before :func:`install` keeps pynetdicom's
loop; :func:`runs_our_loop` tells, and sending falls back to P-DATA primitives.

Every upstream function mirrored or wrapped here is fingerprinted in
:mod:`printscp.net.compat`; :data:`ORIGINALS` keeps the ones replaced.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import select
import socket
import ssl
import struct
import threading
import time
from typing import Any

from pynetdicom import _config, evt
from pynetdicom.acse import ACSE
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

from printscp.core import metrics
from printscp.core.tls import peer_subject
from printscp.net import observe, pdata
from printscp.net.hooks import AssociationHooks, existing_hooks, hooks_of, release_hooks

#: Longest wait without a wake-up: bounds how late a timer or kill flag is seen.
TICK = 0.02

#: One line per DIMSE message received or sent, at DEBUG (``printscp serve -d``), on every
#: path: the fast ones, and pynetdicom's (whose messages printscp frames and parses too).
DIMSE_LOG = logging.getLogger("printscp.dimse")

#: The upstream functions :func:`install` replaces, by ``module:qualname`` (as
#: :data:`printscp.net.compat.MIRRORED` names them), as released.
ORIGINALS: dict[str, Any] = {
    "pynetdicom.dul:DULServiceProvider.__init__": DULServiceProvider.__init__,
    "pynetdicom.dul:DULServiceProvider.run_reactor": DULServiceProvider.run_reactor,
    "pynetdicom.dul:DULServiceProvider.kill_dul": DULServiceProvider.kill_dul,
    "pynetdicom.dul:DULServiceProvider.stop_dul": DULServiceProvider.stop_dul,
    "pynetdicom.association:Association._run_reactor": Association._run_reactor,
    "pynetdicom.association:Association._serve_request": Association._serve_request,
    "pynetdicom.transport:AssociationSocket.recv": AssociationSocket.recv,
    "pynetdicom.transport:AssociationSocket.send": AssociationSocket.send,
    "pynetdicom.dimse:DIMSEServiceProvider.send_msg": DIMSEServiceProvider.send_msg,
    "pynetdicom.transport:AssociationSocket.ready": AssociationSocket.ready.fget,
    "pynetdicom.acse:ACSE._negotiate_as_acceptor": ACSE._negotiate_as_acceptor,
    "pynetdicom.association:Association.run_reactor": Association.run_reactor,
    "pynetdicom.association:Association.request": Association.request,
}


def _over_the_limit(assoc: Association) -> bool:
    """Whether ``assoc`` would exceed its server's association limit, counting only the
    associations whose peer sent an A-ASSOCIATE-RQ (silent connections are the
    server's business: :class:`printscp.net.server.AssociationServer`)."""
    server = assoc._server
    limit = getattr(server, "association_limit", None)
    if limit is None:
        return False
    asked = [a for a in assoc.ae.active_associations
             if a.is_acceptor and a.requestor.primitive is not None]
    if len(asked) > limit:
        return True
    per_host = getattr(server, "per_host_limit", 0)
    if per_host:
        host = assoc.requestor.address
        if sum(1 for a in asked if a.requestor.address == host) > per_host:
            from pynetdicom.acse import LOGGER

            LOGGER.warning(f"{host} has {per_host} associations open already "
                           "([limits] associations_per_host)")
            return True
    return False


def _negotiate_as_acceptor(self: ACSE) -> None:
    """pynetdicom's negotiation as acceptor; a request it cannot digest (a presentation
    context with an empty transfer syntax raised IndexError) is answered by an A-ABORT
    at once.  The exception killed the association's thread before: the peer got no
    answer, and socket and threads lingered until the timeouts."""
    contexts = self.requestor.primitive.presentation_context_definition_list
    ids = [cx.context_id for cx in contexts]
    if len(set(ids)) != len(ids) or len(ids) > 128:
        from pynetdicom.acse import LOGGER

        # PS3.8 9.3.2.2: each Presentation Context ID is unique (odd, 1-255), so at
        # most 128; pynetdicom accepted 200 items as 128.  DCMTK rejects too.
        LOGGER.error(f"A-ASSOCIATE-RQ with {len(ids)} presentation contexts, "
                     f"{len(ids) - len(set(ids))} of them with a repeated ID: rejected")
        self.send_reject(0x01, 0x02, 0x01)  # permanent, ACSE, no reason given
        evt.trigger(self.assoc, evt.EVT_REJECTED, {})
        self.assoc.kill()
        return
    if _over_the_limit(self.assoc):
        from pynetdicom.acse import LOGGER

        LOGGER.info("Rejecting Association")  # as pynetdicom rejects over its limit
        self.send_reject(0x02, 0x03, 0x02)  # transient, local limit exceeded
        evt.trigger(self.assoc, evt.EVT_REJECTED, {})
        self.assoc.kill()
        return
    try:
        ORIGINALS["pynetdicom.acse:ACSE._negotiate_as_acceptor"](self)
    except Exception as exc:
        from pynetdicom.acse import LOGGER

        LOGGER.error(f"A-ASSOCIATE-RQ refused with an A-ABORT: {type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            self.send_abort(0x02)  # the service provider: the request was invalid
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc.kill()


def readable(fds: list[Any], timeout: float) -> set[Any]:
    """Which of ``fds`` (file descriptors or objects with ``fileno()``) have data, or
    were closed by the peer, within ``timeout`` seconds.

    ``poll`` rather than ``select``: select refuses descriptors numbered 1024 or more
    (FD_SETSIZE), so a process holding that many files and sockets (a busy node, or a
    long test run) saw every new association fail as soon as its socket's number
    passed 1023.  A closed descriptor raises ValueError or OSError, as select did."""
    poller = select.poll()
    by_fd = {}
    for item in fds:
        fd = item if isinstance(item, int) else item.fileno()
        if fd < 0:
            raise ValueError("file descriptor cannot be a negative integer")
        by_fd[fd] = item
        poller.register(fd, select.POLLIN | select.POLLPRI)
    ready = poller.poll(max(0, int(timeout * 1000)))
    return {by_fd[fd] for fd, _ in ready if fd in by_fd}


def _socket_ready(self: AssociationSocket) -> bool:
    """AssociationSocket.ready (pynetdicom 3.0) with :func:`readable` for select."""
    if self.socket is None or self._is_connected is False:
        return False
    try:
        ready = readable([self.socket], 0)
    except (OSError, TimeoutError, ValueError):
        # Evt17: Transport connection closed
        self.event_queue.put("Evt17")
        return False
    # An SSLSocket may have buffered data available that poll is unaware of
    if isinstance(self.socket, ssl.SSLSocket):
        return bool(ready) or bool(self.socket.pending())
    return bool(ready)

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Patch pynetdicom's classes once per process (idempotent).

    The loops below mirror pynetdicom 3.0's line by line; importing
    :mod:`printscp.net` has already refused any other release
    (:func:`printscp.net.compat.check_version`).
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        _wrap_init()
        DULServiceProvider.run_reactor = _dul_run_reactor
        DULServiceProvider.kill_dul = _kill_dul
        DULServiceProvider.stop_dul = _stop_dul
        Association._run_reactor = _assoc_run_reactor
        Association.run_reactor = _run_then_release
        Association.request = _request_then_settle
        Association._serve_request = _serve_request
        AssociationSocket.recv = _socket_recv
        AssociationSocket.send = _socket_send
        AssociationSocket.ready = property(_socket_ready)  # type: ignore[assignment]
        ACSE._negotiate_as_acceptor = _negotiate_as_acceptor
        _fast_command_encoding()
        _cached_uid_checks()
        DIMSEServiceProvider.send_msg = _send_msg
        for name in ("pynetdicom.dimse", "pynetdicom.dul", "pynetdicom.utils",
                     "pynetdicom.fsm", "pynetdicom.association"):
            logging.getLogger(name).addFilter(_peer_fault_traceback)
        _installed = True


#: pynetdicom functions whose logged exceptions are a peer's malformed input (a command
#: set or a PDU that does not decode), not a fault of ours.
#: ``_serve_request``: a service class that cannot serve what it was sent (a C-GET-RQ on
#: the Verification context) raises; pynetdicom logs it and aborts the association.
_PEER_INPUT = frozenset({"receive_primitive", "_read_pdu_data", "decode_bytes",
                         "do_action", "_serve_request"})


def _peer_fault_traceback(record: logging.LogRecord) -> bool:
    """A log filter: pynetdicom logs a traceback for every command set or PDU a peer
    sends that does not decode (and then aborts, rightly); a hostile peer filled the
    log with them.  The exception's own text stays, on one line."""
    if record.exc_info and record.funcName in _PEER_INPUT:
        record.exc_info = None
        record.exc_text = None
        record.msg = " ".join(str(record.msg).split())
    return True


def _cached_uid_checks() -> None:
    """Check each distinct UID of a PDU once per process, not every time it arrives.

    pynetdicom turns every UID it decodes or sets into a pydicom UID and checks it
    with regular expressions (three of them); storescu proposes every storage class
    in three transfer syntaxes, some 500 UIDs, checked again while negotiating: about
    10 ms of every storescu association (against Orthanc, a one-image storescu ran
    25 ms; against printscp 36 ms).  Associations bring the same few hundred UIDs
    over and over, so the result for each is kept.  An invalid UID still raises
    every time (a raised call is not cached), and a non-conformant one is logged once.
    """
    from pynetdicom import ae, dimse_primitives, pdu_items, pdu_primitives, presentation, utils

    original = utils.set_uid
    ORIGINALS["pynetdicom.utils:set_uid"] = original

    @functools.lru_cache(maxsize=16384)
    def checked(value: str, name: str, allow_empty: bool, allow_none: bool,
                validate: bool) -> Any:
        return original(value, name, allow_empty, allow_none, validate)

    def set_uid(value: Any, name: str, allow_empty: bool = True, allow_none: bool = True,
                validate: bool = True) -> Any:
        if isinstance(value, bytes):
            value = utils.decode_bytes(value)
        if isinstance(value, str):
            return checked(str(value), name, allow_empty, allow_none, validate)
        return original(value, name, allow_empty, allow_none, validate)

    for module in (utils, ae, dimse_primitives, pdu_items, pdu_primitives, presentation):
        module.set_uid = set_uid


def _fast_command_encoding() -> None:
    """pynetdicom encodes command sets (only them) with ``dimse_messages.encode``."""
    from pynetdicom import dimse_messages

    original = dimse_messages.encode

    def encode(ds: Any, is_implicit_vr: bool, is_little_endian: bool,
               deflated: bool = False) -> bytes | None:
        if is_implicit_vr and is_little_endian and not deflated:
            data = pdata.encode_command_set(ds)
            if data is not None:
                return data
        return original(ds, is_implicit_vr, is_little_endian, deflated)

    dimse_messages.encode = encode


def message_for(primitive: Any) -> Any:
    """pynetdicom's DIMSE message object for a DIMSE primitive (request or response)."""
    from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE

    if primitive.MessageIDBeingRespondedTo is None:
        return _RQ_TO_MESSAGE[primitive.__class__]()
    return _RSP_TO_MESSAGE[primitive.__class__]()


def _send_msg(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> None:
    """pynetdicom's ``DIMSEServiceProvider.send_msg``, one message at a time per
    association, framed by :mod:`printscp.net.pdata`.

    pynetdicom splits a message into P-DATA primitives and queues them one by one; two
    threads sending at once (a reply to the peer's N-EVENT-REPORT beside a request, or
    an event report beside the response of the request that caused it) interleaved
    fragments of two messages, which the peer cannot decode and answers with an abort.
    So every message is sent under the association's send lock.  On our loop the
    message is framed once and queued whole (:func:`send_raw`) instead of one P-DATA
    primitive per PDV, each turned into a PDU object and encoded in one DUL loop.  A
    data set sent from a file (pynetdicom's chunked mode) still goes pynetdicom's way.
    """
    assoc = self.assoc
    with hooks_of(assoc).send_lock:
        message = message_for(primitive)
        message.primitive_to_message(primitive)
        message.context_id = context_id
        if (message._data_set_path is not None or not assoc.is_established
                or not runs_our_loop(self.dul)):
            ORIGINALS["pynetdicom.dimse:DIMSEServiceProvider.send_msg"](
                self, primitive, context_id)
            return
        evt.trigger(assoc, evt.EVT_DIMSE_SENT, {"message": message})
        from pynetdicom import dimse_messages

        command = dimse_messages.encode(message.command_set, True, True)  # by hand
        data = message.data_set.getvalue() if message.data_set is not None else b""
        send_raw(assoc, context_id, command, data or None, observed=True)


# -- serving the peer's requests ------------------------------------------------------
def _serve_request(self: Association, msg: Any, context_id: int) -> None:
    """pynetdicom's ``_serve_request``, with what printscp adds around it.

    * A response nobody took off the queue is not a request: it belongs to a sender
      parked on this association (see :func:`_put_back`).
    * ``hooks.serving`` is set while the request is served, so that an event report
      from another thread waits until its response is out (:mod:`.event_reports`).
    * Requests the node serves itself (``hooks.requests``: Q/R C-FIND and C-GET) go
      there; the rest to pynetdicom.
    * A requestor's reactor that a sender has parked is marked paused again: a peer's
      N-EVENT-REPORT is served on a thread of its own, which clears the flag when done
      (pynetdicom #820), and the sender would wait for it for ever.
    """
    if not msg.is_valid_request and msg.is_valid_response:
        _put_back(self, msg, context_id)  # the answer to one of our requests or reports
        return
    hooks = hooks_of(self)
    hooks.serving = True
    started = time.perf_counter()
    try:
        requests = hooks.requests
        if requests is None or not requests(msg, context_id):
            _serve_or_abort(self, msg, context_id)
    finally:
        hooks.serving = False
        _served(hooks, msg, started)
    if self.is_requestor and not self._reactor_checkpoint.is_set():
        self._is_paused = True


def _serve_or_abort(assoc: Association, msg: Any, context_id: int) -> None:
    """pynetdicom's ``_serve_request``; a request it cannot even refuse (a C-GET-RQ on
    the Verification context raised AttributeError while it built the refusal, and the
    peer waited for an answer until its timeout) aborts the association, in one line."""
    try:
        ORIGINALS["pynetdicom.association:Association._serve_request"](assoc, msg, context_id)
    except (AttributeError, KeyError, ValueError, TypeError) as exc:
        from pynetdicom.association import LOGGER

        name = type(msg).__name__.replace("_", "-")
        LOGGER.error(f"{name} request on presentation context {context_id} cannot be "
                     f"answered ({type(exc).__name__}: {exc}): association aborted")
        LOGGER.debug("where it was found", exc_info=exc)
        assoc.abort()


def _served(hooks: AssociationHooks, primitive: Any, started: float) -> None:
    """Count a request pynetdicom (or ``hooks.requests``) served: from when its last
    fragment arrived (:func:`_deliver` noted it) or, for a message our loop did not
    parse, from when it was taken off the queue.  ``primitive``: pynetdicom's DIMSE
    primitive for it (``C_ECHO``, ``N_ACTION``...)."""
    arrived = hooks.arrived.pop(getattr(primitive, "MessageID", None), None)
    if arrived is not None:
        command, sop_class, started = arrived
    else:
        command = type(primitive).__name__.replace("_", "-")
        sop_class = str(getattr(primitive, "AffectedSOPClassUID", None)
                        or getattr(primitive, "RequestedSOPClassUID", None) or "")
    metrics.dimse(command, sop_class, time.perf_counter() - started)


def _put_back(assoc: Association, msg: Any, context_id: int) -> None:
    """Return a response the reactor took to the head of the queue, for its waiter.

    A sender waiting for a response holds the reactor's checkpoint cleared (pynetdicom
    #875: its reactor can pass the checkpoint just as a ``send_*`` call clears it, read
    a stale "paused" and take the answer; the sender then waits for the DIMSE timeout).
    With none waiting (a late answer after a timeout) the response is dropped, as
    pynetdicom does, so it cannot stay at the head of the queue before the next request.
    """
    if assoc._reactor_checkpoint.is_set():
        return
    requeue_front(assoc, [(context_id, msg)])


def requeue_front(assoc: Association, items: list[tuple[int, Any]]) -> None:
    """Put decoded messages back at the head of the association's queue, in order."""
    if not items:
        return
    queue_ = assoc.dimse.msg_queue
    with queue_.not_empty:
        queue_.queue.extendleft(reversed(items))
        queue_.unfinished_tasks += len(items)
        queue_.not_empty.notify()
    wake = hooks_of(assoc).wake
    if wake is not None:
        wake.set()


# -- wake-ups ------------------------------------------------------------------------
def _waking(put: Any, wake: Any) -> Any:
    def put_and_wake(item: Any, *args: Any, **kwargs: Any) -> None:
        put(item, *args, **kwargs)
        wake()

    return put_and_wake


class _Pipe:
    """A self-pipe the DUL thread selects on; written by any thread that queues work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)

    def wake(self) -> None:
        with self._lock:
            if self._write_fd >= 0:
                with contextlib.suppress(BlockingIOError):  # full: it is awake anyway
                    os.write(self._write_fd, b"\0")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.read_fd, 4096):
                pass

    def close(self) -> None:
        with self._lock:
            os.close(self.read_fd)
            os.close(self._write_fd)
            self.read_fd = self._write_fd = -1


def _wrap_init() -> None:
    original = ORIGINALS["pynetdicom.dul:DULServiceProvider.__init__"]

    def __init__(self: DULServiceProvider, assoc: Any) -> None:
        original(self, assoc)
        hooks = hooks_of(assoc)
        for q in (self.to_provider_queue, self.event_queue):
            q.put = _waking(q.put, lambda h=hooks: _wake_dul(h))
        put = self.to_provider_queue.put

        def counting_put(item: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(item, P_DATA):
                hooks.pdata_queued.add(1)
            put(item, *args, **kwargs)

        self.to_provider_queue.put = counting_put

    DULServiceProvider.__init__ = __init__


def runs_our_loop(dul: DULServiceProvider) -> bool:
    """Whether ``dul`` runs :func:`_dul_run_reactor` (it started after install())."""
    hooks = existing_hooks(dul.assoc)
    return hooks is not None and hooks.pipe is not None


def _wake_dul(hooks: AssociationHooks) -> None:
    pipe = hooks.pipe  # None before the loop starts or after it ended
    if pipe is not None:
        pipe.wake()


def _kill_dul(self: DULServiceProvider) -> None:
    self._kill_thread = True
    _wake_dul(hooks_of(self.assoc))


def _stop_dul(self: DULServiceProvider) -> bool:
    """pynetdicom's ``stop_dul``: in Sta1 stop the thread and wait for it to end."""
    if self.state_machine.current_state != "Sta1":
        return False
    self._kill_thread = True
    hooks = hooks_of(self.assoc)
    while self.is_alive() and threading.current_thread() is not self:
        _wake_dul(hooks)
        self.join(TICK)
    return True


def _assoc_event(assoc: Association) -> threading.Event:
    """The event the association reactor waits on, set when it has something to do."""
    hooks = hooks_of(assoc)
    if hooks.wake is None:
        event = threading.Event()
        for q in (assoc.dimse.msg_queue, assoc.dul.to_user_queue):
            q.put = _waking(q.put, event.set)
        hooks.wake = event
    return hooks.wake


# -- the DUL thread -------------------------------------------------------------------
def _wait_for_io(dul: DULServiceProvider, hooks: AssociationHooks, pipe: _Pipe) -> None:
    """Block until the peer sends, something is queued, or TICK passes."""
    if (dul.to_provider_queue.qsize() or dul.event_queue.qsize()
            or dul._kill_thread):
        return
    fds: list[Any] = [pipe.read_fd]
    transport = dul.socket
    sock = getattr(transport, "socket", None)
    if sock is not None and getattr(transport, "_is_connected", False):
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return  # TLS: decrypted bytes wait that select cannot see
        fds.append(sock)
    try:
        ready = readable(fds, TICK)
    except (OSError, ValueError):  # the socket closed under us: the loop will see it
        time.sleep(dul._run_loop_delay)
        pipe.drain()
        return
    # Only what select saw is read: every syscall of this thread lets the GIL go, and
    # a store on another association's thread may then hold it for a while.
    if pipe.read_fd in ready:
        pipe.drain()
    hooks.readable = len(fds) > 1 and fds[1] in ready


def _dul_run_reactor(self: DULServiceProvider) -> None:
    """pynetdicom's DUL loop, waiting in select instead of sleeping between polls."""
    hooks = hooks_of(self.assoc)
    pipe = _Pipe()
    hooks.pipe = pipe
    try:
        _dul_loop(self, hooks, pipe)
    finally:
        hooks.pipe = None
        pipe.close()
        if hooks.wake is not None:
            hooks.wake.set()  # the association reactor notices the DUL is gone
        assoc = self.assoc
        if assoc.is_acceptor and assoc.requestor.primitive is None \
                and self.to_user_queue.empty():
            # The acceptor still waits (up to the ACSE timeout) for an A-ASSOCIATE-RQ
            # that will never come: the request did not decode and the connection is
            # gone.  None is what that wait returns on its timeout: it ends now, with
            # its thread, instead of holding the association for 30 s (a stream of
            # garbage connections had filled the association table).
            self.to_user_queue.put(None)


class PeerFault(Exception):
    """What the peer sent cannot be served (a P-DATA the DUL cannot digest, a state
    machine event its PDUs made impossible): one log line and an A-ABORT, no
    traceback (a hostile peer would fill the log with them)."""

    def __init__(self, message: str, reason: int = 0x06) -> None:
        super().__init__(message)
        self.reason = reason


def _abort_dul(self: DULServiceProvider, exc: Exception) -> None:
    """pynetdicom's handling of an exception in its DUL loop: A-ABORT, end the thread;
    also used when the state machine's action raised (a malformed request).  A
    :class:`PeerFault` is one line and A-ABORT reason 6 (invalid PDU parameter value,
    PS3.8 Table 9-26); anything else is a fault of ours, logged with its traceback."""
    from pynetdicom.dul import LOGGER

    if isinstance(exc, PeerFault):
        LOGGER.error(f"Association aborted: {exc}")
        LOGGER.debug("where it was found", exc_info=exc.__cause__)
    else:
        LOGGER.error("Exception in DUL.run(), aborting association")
        LOGGER.exception(exc)
    abort_pdu = A_ABORT_RQ()
    abort_pdu.source = 0x02
    abort_pdu.reason_diagnostic = exc.reason if isinstance(exc, PeerFault) else 0x00
    with contextlib.suppress(OSError, AttributeError):
        self.socket.send(abort_pdu.encode())
        self.socket.close()
    self.assoc.is_aborted = True
    self.assoc.is_established = False
    self.assoc._kill = True
    self._kill_thread = True


def _dul_loop(self: DULServiceProvider, hooks: AssociationHooks, pipe: _Pipe) -> None:
    self._idle_timer.start()
    idle = False
    while True:
        if not self.assoc._dul_ready.is_set():
            self.assoc._dul_ready.set()
            idle = True
        if idle:
            _wait_for_io(self, hooks, pipe)
        if self._kill_thread:
            break
        if self.artim_timer.expired:
            self.event_queue.put("Evt18")
        try:
            if _send_queued_raw(self, hooks) or self._process_recv_primitive():
                pass
            elif _transport_event(self, hooks):
                self._idle_timer.restart()
        except Exception as exc:
            _abort_dul(self, exc)
            return
        try:
            event = self.event_queue.get(block=False)
        except queue.Empty:
            idle = True
            continue
        try:
            self.state_machine.do_action(event)
        except Exception as exc:  # e.g. an A-ASSOCIATE-RQ with an even context ID
            # (ValueError) killed the thread; the peer waited.  An A-ABORT with a
            # Source pynetdicom refuses, or our own release answer racing the peer's
            # invalid PDU, are the peer's doing: one line.
            state = self.state_machine.current_state
            _abort_dul(self, PeerFault(f"{event} in {state}: {type(exc).__name__}: {exc}",
                                       0x00))
            return
        idle = False


# -- the association reactor ----------------------------------------------------------
def _assoc_run_reactor(self: Association) -> None:
    """pynetdicom's acceptor/requestor reactor, waiting on an event instead of 1 ms sleeps."""
    from pynetdicom.association import LOGGER

    wake = _assoc_event(self)
    self._is_paused = False
    while not self._kill:
        # Paused while waiting: a send_*() from another thread may go ahead at once.
        self._is_paused = True
        wake.clear()
        if not self.dimse.msg_queue.qsize() and not self.dul.to_user_queue.qsize():
            wake.wait(TICK)
        # Parked by a send_*() or release(): stay marked paused.  Another thread can
        # clear the flag meanwhile (pynetdicom's N-EVENT-REPORT thread does when it
        # ends), which would leave the parker waiting for it forever.
        while not self._reactor_checkpoint.wait(TICK):
            self._is_paused = True
        self._is_paused = False
        # A send_*() may have cleared the checkpoint just after we passed it, read the
        # "paused" of a moment ago and sent: its response is for it, not for us.  So
        # the queue is only read with the checkpoint still open; a sender that clears it
        # from here on reads "not paused" and waits until we are back at the top.
        # (A C-MOVE's sub-association, idle between its C-STOREs, had its reactor take
        # the C-STORE-RSP meant for the sender: the move hung, in 1 of 10 moves of 300
        # instances with the cores busy.)
        if not self._reactor_checkpoint.is_set():
            continue

        context_id, msg = self.dimse.get_msg(block=False)
        if msg:
            self._serve_request(msg, context_id)

        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            hooks_of(self).ended = "released by the peer"
            LOGGER.info("Association Released")
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return

        if self.acse.is_aborted():
            log_msg = "Association Aborted"
            hooks_of(self).ended = "aborted by the peer"
            if self.acse.is_aborted("a-p-abort"):
                log_msg += " (A-P-ABORT)"
                hooks_of(self).ended = "aborted (A-P-ABORT: connection lost or protocol error)"
            LOGGER.info(log_msg)
            self.dul.receive_pdu(wait=False)
            self.is_aborted = True
            self.is_established = False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return

        if not self.dul.is_alive():
            self.kill()
            return

        if self.dul.idle_timer_expired():
            LOGGER.error("Network timeout reached")
            hooks_of(self).ended = f"network timeout ({self.network_timeout_response})"
            if self.network_timeout_response == "A-RELEASE":
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return


# -- the socket ----------------------------------------------------------------------
#: Largest buffer allocated before its bytes have arrived: a PDU header is the peer's
#: word for its length, and a forged one must not reserve gigabytes.
RECV_CHUNK = 1 << 20


def _request_then_settle(self: Association) -> None:
    """pynetdicom's ``Association.request``; a rejection it took for a failed connection
    is a rejection.  Its requestor checks that the socket is connected only after
    sending the A-ASSOCIATE-RQ: when the A-ASSOCIATE-RJ came back (and the DUL closed
    the connection, as AE-4 does) before that check ran, it aborted and left the RJ
    unread, so a rejected association looked like an unreachable peer (seen under load,
    once in a few hundred)."""
    ORIGINALS["pynetdicom.association:Association.request"](self)
    if self.is_established or self.is_rejected or self.acceptor.primitive is not None:
        return
    from pynetdicom.pdu_primitives import A_ASSOCIATE

    for primitive in list(self.dul.to_user_queue.queue):
        if isinstance(primitive, A_ASSOCIATE) and primitive.result in (0x01, 0x02):
            from pynetdicom.acse import LOGGER

            self.acceptor.primitive = primitive
            self.is_aborted = False
            self.is_rejected = True
            LOGGER.error("Association Rejected")
            LOGGER.error(f"Result: {primitive.result_str}, Source: {primitive.source_str}")
            LOGGER.error(f"Reason: {primitive.reason_str}")
            return


def _run_then_release(self: Association) -> None:
    """pynetdicom's association thread, then its hooks' closures dropped
    (:func:`printscp.net.hooks.release_hooks`): they kept every ended association."""
    try:
        ORIGINALS["pynetdicom.association:Association.run_reactor"](self)
    finally:
        release_hooks(self)


def _socket_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """Read ``nr_bytes`` (fewer only if the peer closed), straight into one buffer,
    which grows by at most :data:`RECV_CHUNK` ahead of what has arrived."""
    buffer = bytearray(min(nr_bytes, RECV_CHUNK))
    view = memoryview(buffer)
    read = 0
    tls = isinstance(self.socket, ssl.SSLSocket)
    try:
        while read < nr_bytes:
            if read == len(buffer):
                view.release()
                buffer.extend(bytes(min(nr_bytes - read, len(buffer))))  # doubles at most
                view = memoryview(buffer)
            got = self.socket.recv_into(view[read:], len(buffer) - read)
            if tls and 0 < got < TLS_RECORD:
                # A short record ends a write of the client, which may then wait for our
                # ACK; full records mean more is coming (46 setsockopt calls per 512 KiB
                # instance became about 10).
                _quick_ack(self.socket)
            if not got:
                view.release()
                del buffer[read:]
                return buffer
            read += got
        return buffer
    finally:
        _count_received(self, read)


#: The largest TLS plaintext record (RFC 8446 5.1).
TLS_RECORD = 16384


def _quick_ack(sock: ssl.SSLSocket) -> None:
    """Re-arm TCP_QUICKACK under TLS, where :class:`printscp.net.server.QuickAckSocket`
    cannot wrap the socket (OpenSSL reads the descriptor itself): clients that write a
    PDU header and its data as separate records wait ~40 ms on each delayed ACK."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _count_received(transport: AssociationSocket, count: int) -> None:
    """Add ``count`` bytes read to the association's (only its DUL thread reads)."""
    assoc = getattr(transport, "assoc", None)
    hooks = existing_hooks(assoc) if assoc is not None else None
    if hooks is not None:
        hooks.bytes_received += count


def _socket_send(self: AssociationSocket, bytestream: bytes) -> None:
    """pynetdicom's PDU send, under the association's write lock: a message that
    :func:`send_raw` writes from another thread never lands inside a PDU."""
    assoc = getattr(self, "assoc", None)
    hooks = existing_hooks(assoc) if assoc is not None else None
    original = ORIGINALS["pynetdicom.transport:AssociationSocket.send"]
    if hooks is None:
        original(self, bytestream)
        return
    with hooks.write_lock:
        original(self, bytestream)
        hooks.bytes_sent += len(bytestream)
        if bytestream[:1] == b"\x04":  # a P-DATA-TF PDU of a queued primitive is out
            hooks.pdata_queued.add(-1)


# -- P-DATA on an established association -------------------------------------------------
_PDU_HEADER = struct.Struct(">BBL")


#: Largest A-ASSOCIATE-RQ PDU read (bytes).  128 presentation contexts of a dozen transfer
#: syntaxes each, with every sub-item, stay far below it; a header announcing more (up
#: to 4 GiB) had the DUL wait for bytes that never come, a socket and a thread held.
MAX_ASSOCIATE_RQ = 1 << 20


def _first_pdu(dul: DULServiceProvider, readable: bool) -> bool:
    """Sta2 (or Sta1 with Evt5 queued), the acceptor awaiting the A-ASSOCIATE-RQ: over
    TLS, complete the handshake first; then read the first PDU here and judge it by its
    header alone.  Anything but an A-ASSOCIATE-RQ of a sane length, or an A-ABORT, is a
    protocol error (PS3.8 9.3, state table: AA-1): A-ABORT at once rather than after
    reading what it announces.  An acceptable PDU is decoded for pynetdicom's state
    machine (a PDU that does not decode is one log line and an A-ABORT)."""
    transport = dul.socket
    sock = getattr(transport, "socket", None)
    if sock is None or not (readable or transport.ready):
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.version() is None:
        return _handshake(dul, sock)
    try:
        header = bytes(transport.recv(6))
    except (OSError, TimeoutError, ValueError):
        header = b""
    if len(header) < 6:
        dul.event_queue.put("Evt17")  # closed before a whole header
        return True
    if not _acceptable_first(header):
        _refuse_first(transport, header)
        return True
    _, _, length = _PDU_HEADER.unpack(header)
    try:
        body = bytes(transport.recv(length))
    except (OSError, TimeoutError, ValueError):
        body = b""
    if len(body) != length:
        from pynetdicom.dul import LOGGER

        LOGGER.error(f"A-ASSOCIATE-RQ cut short ({len(body) + 6} of {length + 6} bytes)")
        dul.event_queue.put("Evt17")
        return True
    _decode_and_queue(dul, header, body)
    return True


@contextlib.contextmanager
def _deadline(dul: DULServiceProvider) -> Any:
    """Reads before the association is established are bounded by the ACSE timeout: a
    peer that sends part of its A-ASSOCIATE-RQ (or of a TLS handshake) and stops held
    this thread, and its socket, until the network timeout or for ever."""
    sock = getattr(dul.socket, "socket", None)
    if sock is None:
        yield
        return
    previous = sock.gettimeout()
    with contextlib.suppress(OSError):
        sock.settimeout(dul.assoc.acse_timeout or HANDSHAKE_TIMEOUT)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError):
            if dul.socket is not None and dul.socket.socket is sock:
                sock.settimeout(previous)


def _acceptable_first(header: bytes) -> bool:
    """Whether a PDU header may start an association: an A-ASSOCIATE-RQ of a sane
    length, or an A-ABORT."""
    pdu_type, _, length = _PDU_HEADER.unpack(header)
    return (pdu_type == 0x01 and 68 <= length <= MAX_ASSOCIATE_RQ) or (
        pdu_type == 0x07 and length == 4)


def _refuse_first(transport: AssociationSocket, header: bytes) -> None:
    """A-ABORT a connection whose first PDU ``header`` is unacceptable, and close it."""
    pdu_type, _, length = _PDU_HEADER.unpack(header)
    from pynetdicom.dul import LOGGER

    LOGGER.error(f"PDU type 0x{pdu_type:02X} of {length} bytes before the association: "
                 "aborted")
    # A-ABORT from the service provider, then the connection closed at once, as DCMTK
    # does (AA-1 would wait in Sta13 for the peer to close, up to the ARTIM timeout):
    # reason 6, invalid PDU parameter value (an A-ASSOCIATE-RQ too long or too short),
    # or 2, unexpected PDU (PS3.8 Table 9-26).
    abort = A_ABORT_RQ()
    abort.source = 0x02
    abort.reason_diagnostic = 0x06 if pdu_type == 0x01 else 0x02
    with contextlib.suppress(OSError, ValueError):
        transport.send(abort.encode())  # what the header announces is never read
    transport.close()  # Evt17: the association ends (AA-5 from Sta2)


#: Longest a TLS handshake may take when the server's ACSE timeout is not set (s).
HANDSHAKE_TIMEOUT = 30.0


def _decode_and_queue(dul: DULServiceProvider, header: bytes, body: bytes) -> None:
    """Decode a non-P-DATA PDU for pynetdicom's state machine; one that does not decode
    is an invalid PDU (Evt19: A-ABORT), logged in one line (pynetdicom logged a
    traceback for each: a hostile peer filled the log with them)."""
    try:
        pdu, event = dul._decode_pdu(header + body)
    except Exception as exc:
        from pynetdicom.dul import LOGGER

        peer = dul.assoc.requestor.address if dul.assoc.is_acceptor else "the peer"
        LOGGER.error(f"Undecodable PDU type 0x{header[0]:02X} of {len(body)} bytes from "
                     f"{peer}: {type(exc).__name__}: {exc}")
        dul.event_queue.put("Evt19")
        return
    dul.event_queue.put(event)
    dul._recv_pdu.put(pdu)


def _handshake(dul: DULServiceProvider, sock: ssl.SSLSocket) -> bool:
    """The server side of the TLS handshake; a failure (no or an untrusted client
    certificate, a plain DICOM client, a stalled peer) closes the connection and is
    reported to the server's ``tls_failed`` (the node's log and audit trail)."""
    from pynetdicom.dul import LOGGER

    assoc = dul.assoc
    timeout = assoc.acse_timeout or HANDSHAKE_TIMEOUT  # set by _deadline
    try:
        # Below the TLS layer (no handshake yet): a connection closed before its first
        # byte (a health probe, a port scan) is no failed authentication.
        if not socket.socket.recv(sock, 1, socket.MSG_PEEK):
            dul.socket.close()  # Evt17
            return True
    except OSError:
        dul.socket.close()
        return True
    try:
        sock.do_handshake()
    except (OSError, ValueError) as exc:  # ssl.SSLError and TimeoutError included
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no handshake within {timeout:g} s"
        address = assoc.requestor.address
        LOGGER.error(f"TLS handshake with {address} failed: {reason}")
        notify = getattr(assoc._server, "tls_failed", None)
        if notify is not None:
            with contextlib.suppress(Exception):
                notify(address, str(reason))
        dul.socket.close()  # Evt17
        return True
    cipher = sock.cipher()
    LOGGER.info(f"TLS {sock.version()} {cipher[0] if cipher else ''} with "
                f"{assoc.requestor.address}: peer {peer_subject(sock.getpeercert()) or '-'}")
    return True


def _transport_event(dul: DULServiceProvider, hooks: AssociationHooks) -> bool:
    """Read one PDU if the peer sent one; P-DATA-TF in Sta6 goes to the assembler."""
    # A socket select has just found readable needs no second select (transport.ready).
    readable, hooks.readable = hooks.readable, False
    state = dul.state_machine.current_state
    # Sta1 too: the acceptor's Evt5 (connection open) may still wait in the queue when
    # the first bytes are already there.
    if state in ("Sta1", "Sta2") and dul.assoc.is_acceptor:
        with _deadline(dul):
            return _first_pdu(dul, readable)
    if state != "Sta6" or _config.STORE_RECV_CHUNKED_DATASET:
        _flush_partial(dul, hooks)
        return dul._is_transport_event()
    transport = dul.socket
    if not (transport and (readable or transport.ready)):
        return False
    from pynetdicom.dul import LOGGER
    try:
        header = transport.recv(6)
        if len(header) < 6:
            dul.event_queue.put("Evt17")  # closed before a whole header
            return True
        pdu_type, _, length = _PDU_HEADER.unpack(header)
        if pdu_type not in range(1, 8):
            LOGGER.error(f"Unknown PDU type received '0x{pdu_type:02X}'")
            dul.event_queue.put("Evt19")
            return True
        if pdu_type == pdata.P_DATA_TF and length < 6:
            # PS3.8 9.3.5: one PDV item at least, 6 bytes with its header (DCMTK aborts).
            LOGGER.error(f"P-DATA-TF PDU of {length} bytes holds no PDV item")
            dul.event_queue.put("Evt19")
            return True
        if pdu_type in (0x01, 0x02, 0x03) or (pdu_type in (0x05, 0x06, 0x07) and length != 4):
            # An A-ASSOCIATE PDU on an established association, or a release or abort
            # PDU of another length than 4 (PS3.8 9.3.6-9.3.8): invalid whatever follows,
            # so what the header announces (up to 4 GiB) is never waited for.
            LOGGER.error(f"PDU type 0x{pdu_type:02X} of {length} bytes on an established "
                         "association: aborted")
            dul.event_queue.put("Evt19")
            return True
        limit = _receive_limit(dul.assoc)
        if pdu_type == pdata.P_DATA_TF and limit and length > limit:
            # PS3.8 9.3.5: a P-DATA-TF PDU never exceeds the receiver's Maximum Length.
            LOGGER.error(f"P-DATA-TF PDU of {length} bytes exceeds the {limit} negotiated")
            dul.event_queue.put("Evt19")  # invalid PDU: A-ABORT, this association only
            return True
        body = transport.recv(length)
    except (OSError, TimeoutError) as exc:
        LOGGER.error("Connection closed before the entire PDU was received")
        LOGGER.exception(exc)
        dul.event_queue.put("Evt17")
        return True
    if len(body) != length:
        # The peer closed (or aborted) in the middle of a PDU: its doing, not ours.
        LOGGER.warning(f"Connection closed in the middle of a PDU ({len(body) + 6} of "
                       f"{length + 6} bytes received)")
        dul.event_queue.put("Evt17")
        return True
    if pdu_type != pdata.P_DATA_TF:
        _decode_and_queue(dul, header, bytes(body))
        return True
    observe.pdu_received(dul.assoc, header, body)
    try:
        _receive_pdata(dul, hooks, memoryview(body))
    except Exception as exc:
        # A fragment before the command set, an element overrunning the command, a
        # command without Command Field, a UID that is not ASCII, a command element of
        # the wrong length (pydicom's BytesLengthException)...  The services answer
        # what they serve with a status themselves: what reaches here is the message.
        raise PeerFault(f"P-DATA-TF that cannot be decoded: {type(exc).__name__}: {exc}"
                        ) from exc
    return True


def _receive_limit(assoc: Association) -> int:
    """The Maximum Length Received we announced (0: none)."""
    local = assoc.acceptor if assoc.is_acceptor else assoc.requestor
    return int(local.maximum_length or 0)


def _receive_pdata(dul: DULServiceProvider, hooks: AssociationHooks, body: memoryview) -> None:
    for context_id, control, fragment in pdata.pdvs(body):
        assembler = hooks.message
        if assembler is None:
            assembler = hooks.message = pdata.new_message(dul.assoc)  # with size limits
        done = assembler.add(context_id, control, fragment)
        if assembler.prefix is None and assembler.command is not None:
            # The command is in: a C-STORE the node stores gets its file's prefix.
            prefix = hooks.store_prefix
            assembler.start_file(prefix(dul.assoc, assembler) if prefix is not None else b"")
        if done:
            hooks.message = None
            _deliver(dul.assoc, hooks, assembler)


def _flush_partial(dul: DULServiceProvider, hooks: AssociationHooks) -> None:
    """Leaving Sta6 mid-message: give pynetdicom what has arrived, for it to finish."""
    assembler = hooks.message
    if assembler is not None:
        hooks.message = None
        _indicate(dul.assoc, assembler)


def _deliver(assoc: Association, hooks: AssociationHooks,
             message: pdata.MessageAssembler) -> None:
    """A whole message: served by the fast path that claims it, else by pynetdicom.

    A request's time is taken from here to its response (:func:`_served` for those
    pynetdicom serves)."""
    whole = time.perf_counter()
    command = message.command
    if message.refused is not None:  # a data set over its size limit (pdata), dropped
        send_raw(assoc, message.context_id or 0, message.refused, None)
        return
    field = pdata.command_us(command, pdata.COMMAND_FIELD) if command is not None else None
    name = sop_class = ""
    if field is not None and not field & 0x8000:
        name = pdata.COMMAND_NAMES.get(field, f"0x{field:04X}")
        hooks.operations[name] += 1
        sop_class = pdata.command_text(command, pdata.AFFECTED_SOP_CLASS) or \
            pdata.command_text(command, pdata.REQUESTED_SOP_CLASS)
        if sop_class:
            hooks.sop_classes.add(sop_class)
    if command is not None and DIMSE_LOG.isEnabledFor(logging.DEBUG):
        _log_dimse(hooks, "received", pdata.command_fields(command, message.context_id))
    serve = None
    if field == pdata.C_STORE_RQ:
        if hooks.store is not None:
            serve = hooks.store(assoc, message)
    elif field == pdata.C_STORE_RSP:
        # A C-GET sub-operation's answer, awaited by the DUL-driven C-GET (if any).
        if hooks.store_response is not None:
            serve = hooks.store_response(pdata.command_us(command, pdata.MESSAGE_ID_RESPONDED),
                                         pdata.command_us(command, pdata.STATUS))
    elif field == pdata.C_FIND_RQ and hooks.find is not None:
        serve = hooks.find(assoc, message)
    elif field in pdata.DIMSE_N_REQUESTS and hooks.dimse_n is not None:
        serve = hooks.dimse_n(assoc, message)
    if serve is None:
        if name and field != _C_CANCEL_RQ:  # a C-CANCEL gets no response
            _note_arrival(hooks, command, name, sop_class, whole)
        _indicate(assoc, message)
        return
    observe.message_received(assoc, message)  # as pynetdicom's receive_primitive does
    serve()
    if name:  # a request (not a C-GET's C-STORE-RSP)
        metrics.dimse(name, sop_class, time.perf_counter() - whole)


#: C-CANCEL-RQ's Command Field: a request that has no response of its own.
_C_CANCEL_RQ = 0x0FFF


def _note_arrival(hooks: AssociationHooks, command: dict[int, bytes] | None, name: str,
                  sop_class: str, whole: float) -> None:
    """Remember when a request handed to pynetdicom was whole, for :func:`_served`."""
    message_id = pdata.command_us(command or {}, pdata.MESSAGE_ID)
    if message_id is None:
        return
    arrived = hooks.arrived
    if len(arrived) >= 64:  # requests pynetdicom never served (refused, aborted)
        arrived.clear()
    arrived[message_id] = (name, sop_class, whole)


def _log_dimse(hooks: AssociationHooks, direction: str, fields: dict[str, Any]) -> None:
    DIMSE_LOG.debug("association %s %s %s", hooks.id, direction,
                    pdata.describe_command(fields),
                    extra={"association": hooks.id, "direction": direction, **fields})


def read_pending(assoc: Association) -> bool:
    """On the DUL thread, while it serves a request itself: take in, without waiting,
    what the peer sent meanwhile, so that a C-CANCEL is seen (pynetdicom files it in
    ``dimse.cancel_req``).  Anything else that is not P-DATA (a release, an abort, the
    connection closing) is left queued for the state machine, after the request.

    Returns True when the request should stop: such an event waits (the peer aborted
    or went away), so the rest of the answer would go nowhere.
    """
    dul = assoc.dul
    hooks = hooks_of(assoc)
    sock = getattr(dul.socket, "socket", None)
    if sock is None or dul.event_queue.qsize():
        return True
    for _ in range(8):  # a few PDUs at most: the request goes on
        pending = getattr(sock, "pending", None)
        if not (pending is not None and pending()):
            try:
                if not readable([sock], 0):
                    return False
            except (OSError, ValueError):
                return True
        if not _transport_event(dul, hooks) or dul.event_queue.qsize():
            return bool(dul.event_queue.qsize())
    return False


def _indicate(assoc: Association, message: pdata.MessageAssembler) -> None:
    """Hand a message to pynetdicom's DIMSE provider as one P-DATA indication."""
    primitive = P_DATA()
    primitive.presentation_data_value_list = message.pdv_list()
    assoc.dimse.receive_primitive(primitive)


class RawMessage:
    """A whole DIMSE message framed by :mod:`printscp.net.pdata`, queued for the DUL
    thread.

    It travels in the DUL's outgoing queue like pynetdicom's P-DATA primitives, so it
    keeps its place among them, and the DUL thread writes it to the socket in one go:
    fragments of two messages never interleave (PS3.7 6.3.1).
    """

    __slots__ = ("buffers",)

    def __init__(self, buffers: list[Any]) -> None:
        self.buffers = buffers


def send_raw(assoc: Association, context_id: int, command: bytes,
             data_set: bytes | memoryview | None = None, *, observed: bool = False) -> None:
    """Send one message framed by hand: at once, from the calling thread, when nothing
    waits to go out; else queued for the DUL thread behind what waits.

    Takes the association's send lock (:func:`_send_msg` takes it too), so no message
    is half queued by another thread meanwhile, and writes under the association's
    write lock, which every PDU pynetdicom sends takes too: with the queue empty no
    message is part-way out, so the bytes of two never interleave.  Writing from the
    calling thread spares each message a wake-up of the DUL thread and a hand-over of
    the GIL to it and back (a C-FIND's matches were each paying them: 100 matches,
    about 4 ms).

    pynetdicom's events for the message fire first (:mod:`printscp.net.observe`);
    ``observed``: its ``EVT_DIMSE_SENT`` has fired already (:func:`_send_msg`).
    """
    hooks = hooks_of(assoc)
    if DIMSE_LOG.isEnabledFor(logging.DEBUG):
        _log_dimse(hooks, "sent", pdata.command_fields(pdata.parse_command(command),
                                                        context_id))
    dul = assoc.dul
    max_pdu = assoc.dimse.maximum_pdu_size  # the peer's Maximum Length Received
    if not runs_our_loop(dul):  # an association opened before install(): pynetdicom's way
        with hooks.send_lock:
            if not observed:
                observe.message_sent(assoc, context_id, command, data_set, [])
            for control, chunk in pdata.message_fragments(command, data_set, max_pdu or 0):
                primitive = P_DATA()
                primitive.presentation_data_value_list = [
                    [context_id, bytes((control,)) + bytes(chunk)]]
                dul.send_pdu(primitive)
        return
    message = RawMessage(list(pdata.message_pdus(context_id, command, data_set,
                                                 max_pdu or 0)))
    with hooks.send_lock:
        if observed:
            observe.pdus_sent(assoc, _joined_pdus(message.buffers))
        else:
            observe.message_sent(assoc, context_id, command, data_set, message.buffers)
        if not dul.to_provider_queue.qsize() and hooks.pdata_queued.value <= 0:
            _write(dul, hooks, message)
        else:
            dul.to_provider_queue.put(message)


def _joined_pdus(buffers: list[Any]) -> Any:
    """Each PDU of a :class:`RawMessage` as one bytes object (header, then value)."""
    return (bytes(buffers[i]) + bytes(buffers[i + 1]) for i in range(0, len(buffers), 2))


def _write(dul: DULServiceProvider, hooks: AssociationHooks, message: RawMessage) -> None:
    with hooks.write_lock:
        sock = getattr(dul.socket, "socket", None)
        if sock is None or dul.state_machine.current_state != "Sta6":
            return  # the association is going: the message goes with it, as a PDU would
        try:
            for i in range(0, len(message.buffers), 64):
                hooks.bytes_sent += _send_all(sock, message.buffers[i:i + 64])
        except OSError:
            dul.event_queue.put("Evt17")


def _send_queued_raw(dul: DULServiceProvider, hooks: AssociationHooks) -> bool:
    """Write a :class:`RawMessage` at the head of the outgoing queue, if one is there.

    Only the DUL thread takes from that queue, so what it peeks stays at the head.
    """
    queue_ = dul.to_provider_queue
    with hooks.write_lock:  # no direct send between taking it and writing it
        try:
            head = queue_.queue[0]
        except IndexError:
            return False
        if not isinstance(head, RawMessage):
            return False
        queue_.get_nowait()
        _write(dul, hooks, head)
    return True


def _send_all(sock: Any, buffers: list[Any]) -> int:
    """``sendmsg`` until every buffer is gone (a partial send resumes mid-buffer);
    returns the number of bytes sent."""
    if isinstance(sock, ssl.SSLSocket):  # no sendmsg over TLS: records of <= 256 KiB
        return _send_all_tls(sock, buffers)
    views = [memoryview(b).cast("B") for b in buffers]
    total = 0
    while views:
        sent = sock.sendmsg(views)
        total += sent
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]
    return total


#: Bytes joined into one ``sendall`` over TLS: few enough copies, few enough syscalls.
TLS_SEND_CHUNK = 256 * 1024


def _send_all_tls(sock: ssl.SSLSocket, buffers: list[Any]) -> int:
    """``sendall`` of ``buffers`` over TLS, small buffers (PDU headers) joined with the
    data after them so that each PDU leaves in as few TLS records as it needs."""
    total = 0
    pending: list[Any] = []
    size = 0
    for buffer in buffers:
        view = memoryview(buffer).cast("B")
        if size and size + len(view) > TLS_SEND_CHUNK:
            sock.sendall(b"".join(pending))
            pending, size = [], 0
        if len(view) >= TLS_SEND_CHUNK:
            sock.sendall(view)
        else:
            pending.append(view)
            size += len(view)
        total += len(view)
    if pending:
        sock.sendall(b"".join(pending))
    return total
