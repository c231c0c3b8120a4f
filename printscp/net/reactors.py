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
is offered to the association's ``_printscp_fast_store`` hook, if the node set one
(the archive's C-STORE, answered on this thread), a C-STORE-RSP to its
``_printscp_store_response`` hook (a C-GET in progress); anything else is handed
to pynetdicom's DIMSE provider exactly as its own P-DATA indication would have been.
Outgoing, ``send_msg`` frames each message whole (:func:`send_raw`) instead of one
P-DATA primitive per PDV, and command sets are encoded by hand.

An association whose DUL thread started before :func:`install` keeps pynetdicom's
loop; :func:`runs_our_loop` tells, and sending falls back to P-DATA primitives.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import select
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pynetdicom
from pydicom.dataset import Dataset
from pynetdicom import _config
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

from printscp.net import pdata

#: Longest wait without a wake-up: bounds how late a timer or kill flag is seen.
TICK = 0.02

_ORIGINAL_SEND_MSG = DIMSEServiceProvider.send_msg

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Patch pynetdicom's classes once per process (idempotent).

    Only pynetdicom 3.0.x is patched: the loops below mirror its code line by line.
    """
    global _installed
    with _install_lock:
        if _installed or not pynetdicom.__version__.startswith("3.0."):
            return
        _wrap_init()
        DULServiceProvider.run_reactor = _dul_run_reactor
        DULServiceProvider.kill_dul = _kill_dul
        DULServiceProvider.stop_dul = _stop_dul
        Association._run_reactor = _assoc_run_reactor
        AssociationSocket.recv = _socket_recv
        AssociationSocket.send = _socket_send
        _fast_command_encoding()
        _cached_uid_checks()
        DIMSEServiceProvider.send_msg = _send_msg
        _installed = True


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


def _send_msg(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> None:
    """pynetdicom's ``DIMSEServiceProvider.send_msg``, framed by :mod:`printscp.net.pdata`.

    pynetdicom turns each PDV into a P-DATA primitive that its state machine then
    turns into a PDU object and encodes, one per DUL loop; here the message is framed
    once and queued whole (:func:`send_raw`).  A data set sent from a file
    (pynetdicom's chunked mode) still goes pynetdicom's way.
    """
    from pynetdicom import evt
    from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE

    if primitive.MessageIDBeingRespondedTo is None:
        message = _RQ_TO_MESSAGE[primitive.__class__]()
    else:
        message = _RSP_TO_MESSAGE[primitive.__class__]()
    message.primitive_to_message(primitive)
    message.context_id = context_id
    if (message._data_set_path is not None or not self.assoc.is_established
            or not runs_our_loop(self.dul)):
        _ORIGINAL_SEND_MSG(self, primitive, context_id)
        return
    evt.trigger(self.assoc, evt.EVT_DIMSE_SENT, {"message": message})
    from pynetdicom import dimse_messages

    command = dimse_messages.encode(message.command_set, True, True)  # by hand
    data = message.data_set.getvalue() if message.data_set is not None else b""
    send_raw(self.assoc, context_id, command, data or None)


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
    original = DULServiceProvider.__init__

    def __init__(self: DULServiceProvider, assoc: Any) -> None:
        original(self, assoc)
        self._printscp_pipe = None
        #: The socket was readable when :func:`_wait_for_io` last looked (not TLS).
        self._printscp_readable = False
        #: Held while bytes go to the socket, by whichever thread writes them (and by
        #: the DUL thread from taking a queued message until it is written).
        self._printscp_write_lock = threading.RLock()
        #: pynetdicom P-DATA primitives queued and not yet written as PDUs: while any
        #: is, a message of pynetdicom's is part-way out and nothing may go directly.
        self._printscp_pdata = _Counter()
        for q in (self.to_provider_queue, self.event_queue):
            q.put = _waking(q.put, lambda dul=self: _wake_dul(dul))
        put = self.to_provider_queue.put

        def counting_put(item: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(item, P_DATA):
                self._printscp_pdata.add(1)
            put(item, *args, **kwargs)

        self.to_provider_queue.put = counting_put

    DULServiceProvider.__init__ = __init__


class _Counter:
    """A thread-safe count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


def runs_our_loop(dul: DULServiceProvider) -> bool:
    """Whether ``dul`` runs :func:`_dul_run_reactor` (it started after install())."""
    return getattr(dul, "_printscp_pipe", None) is not None


def _wake_dul(dul: DULServiceProvider) -> None:
    pipe = getattr(dul, "_printscp_pipe", None)  # None before install() or after the loop
    if pipe is not None:
        pipe.wake()


def _kill_dul(self: DULServiceProvider) -> None:
    self._kill_thread = True
    _wake_dul(self)


def _stop_dul(self: DULServiceProvider) -> bool:
    """pynetdicom's ``stop_dul``: in Sta1 stop the thread and wait for it to end."""
    if self.state_machine.current_state != "Sta1":
        return False
    self._kill_thread = True
    while self.is_alive() and threading.current_thread() is not self:
        _wake_dul(self)
        self.join(TICK)
    return True


def _assoc_event(assoc: Association) -> threading.Event:
    """The event the association reactor waits on, set when it has something to do."""
    event = assoc.__dict__.get("_printscp_wake")
    if event is None:
        event = threading.Event()
        for q in (assoc.dimse.msg_queue, assoc.dul.to_user_queue):
            q.put = _waking(q.put, event.set)
        assoc._printscp_wake = event
    return event


# -- the DUL thread -------------------------------------------------------------------
def _wait_for_io(dul: DULServiceProvider, pipe: _Pipe) -> None:
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
        readable, _, _ = select.select(fds, [], [], TICK)
    except (OSError, ValueError):  # the socket closed under us: the loop will see it
        time.sleep(dul._run_loop_delay)
        pipe.drain()
        return
    # Only what select saw is read: every syscall of this thread lets the GIL go, and
    # a store on another association's thread may then hold it for a while.
    if pipe.read_fd in readable:
        pipe.drain()
    dul._printscp_readable = len(fds) > 1 and fds[1] in readable


def _dul_run_reactor(self: DULServiceProvider) -> None:
    """pynetdicom's DUL loop, waiting in select instead of sleeping between polls."""
    pipe = _Pipe()
    self._printscp_pipe = pipe
    try:
        _dul_loop(self, pipe)
    finally:
        self._printscp_pipe = None
        pipe.close()
        event = self.assoc.__dict__.get("_printscp_wake")
        if event is not None:
            event.set()  # the association reactor notices the DUL is gone


def _dul_loop(self: DULServiceProvider, pipe: _Pipe) -> None:
    from pynetdicom.dul import LOGGER
    self._idle_timer.start()
    idle = False
    while True:
        if not self.assoc._dul_ready.is_set():
            self.assoc._dul_ready.set()
            idle = True
        if idle:
            _wait_for_io(self, pipe)
        if self._kill_thread:
            break
        if self.artim_timer.expired:
            self.event_queue.put("Evt18")
        try:
            if _send_queued_raw(self) or self._process_recv_primitive():
                pass
            elif _transport_event(self):
                self._idle_timer.restart()
        except Exception as exc:
            LOGGER.error("Exception in DUL.run(), aborting association")
            LOGGER.exception(exc)
            abort_pdu = A_ABORT_RQ()
            abort_pdu.source = 0x02
            abort_pdu.reason_diagnostic = 0x00
            self.socket.send(abort_pdu.encode())
            self.assoc.is_aborted = True
            self.assoc.is_established = False
            self.assoc._kill = True
            self._kill_thread = True
            return
        try:
            event = self.event_queue.get(block=False)
        except queue.Empty:
            idle = True
            continue
        self.state_machine.do_action(event)
        idle = False


# -- the association reactor ----------------------------------------------------------
def _assoc_run_reactor(self: Association) -> None:
    """pynetdicom's acceptor/requestor reactor, waiting on an event instead of 1 ms sleeps."""
    from pynetdicom import evt
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
            LOGGER.info("Association Released")
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return

        if self.acse.is_aborted():
            log_msg = "Association Aborted"
            if self.acse.is_aborted("a-p-abort"):
                log_msg += " (A-P-ABORT)"
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


def _socket_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """Read ``nr_bytes`` (fewer only if the peer closed), straight into one buffer,
    which grows by at most :data:`RECV_CHUNK` ahead of what has arrived."""
    buffer = bytearray(min(nr_bytes, RECV_CHUNK))
    view = memoryview(buffer)
    read = 0
    while read < nr_bytes:
        if read == len(buffer):
            view.release()
            buffer.extend(bytes(min(nr_bytes - read, len(buffer))))  # doubles at most
            view = memoryview(buffer)
        got = self.socket.recv_into(view[read:], len(buffer) - read)
        if not got:
            view.release()
            del buffer[read:]
            return buffer
        read += got
    return buffer


_ORIGINAL_SOCKET_SEND = AssociationSocket.send


def _socket_send(self: AssociationSocket, bytestream: bytes) -> None:
    """pynetdicom's PDU send, under the association's write lock: a message that
    :func:`send_raw` writes from another thread never lands inside a PDU."""
    dul = getattr(self.assoc, "dul", None)
    lock = getattr(dul, "_printscp_write_lock", None)
    if lock is None:
        _ORIGINAL_SOCKET_SEND(self, bytestream)
        return
    with lock:
        _ORIGINAL_SOCKET_SEND(self, bytestream)
        if bytestream[:1] == b"\x04":  # a P-DATA-TF PDU of a queued primitive is out
            dul._printscp_pdata.add(-1)


# -- P-DATA on an established association -------------------------------------------------
_PDU_HEADER = struct.Struct(">BBL")


def _transport_event(dul: DULServiceProvider) -> bool:
    """Read one PDU if the peer sent one; P-DATA-TF in Sta6 goes to the assembler."""
    # A socket select has just found readable needs no second select (transport.ready).
    readable, dul._printscp_readable = dul._printscp_readable, False
    if dul.state_machine.current_state != "Sta6" or _config.STORE_RECV_CHUNKED_DATASET:
        _flush_partial(dul)
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
        LOGGER.error(f"The received PDU is shorter than expected ({len(body) + 6} of "
                     f"{length + 6} bytes received)")
        dul.event_queue.put("Evt17")
        return True
    if pdu_type != pdata.P_DATA_TF:
        try:
            pdu, event = dul._decode_pdu(header + body)
        except Exception as exc:
            LOGGER.error("Unable to decode the received PDU data")
            LOGGER.exception(exc)
            dul.event_queue.put("Evt19")
            return True
        dul.event_queue.put(event)
        dul._recv_pdu.put(pdu)
        return True
    _receive_pdata(dul, memoryview(body))
    return True


def _receive_limit(assoc: Association) -> int:
    """The Maximum Length Received we announced (0: none)."""
    local = assoc.acceptor if assoc.is_acceptor else assoc.requestor
    return int(local.maximum_length or 0)


def _receive_pdata(dul: DULServiceProvider, body: memoryview) -> None:
    for context_id, control, fragment in pdata.pdvs(body):
        assembler = dul.__dict__.get("_printscp_message")
        if assembler is None:
            assembler = dul._printscp_message = pdata.MessageAssembler()
        done = assembler.add(context_id, control, fragment)
        if assembler.prefix is None and assembler.command is not None:
            # The command is in: a C-STORE the node stores gets its file's prefix.
            hook = dul.assoc.__dict__.get("_printscp_store_prefix")
            assembler.start_file(hook(dul.assoc, assembler) if hook is not None else b"")
        if done:
            dul._printscp_message = None
            _deliver(dul.assoc, assembler)


def _flush_partial(dul: DULServiceProvider) -> None:
    """Leaving Sta6 mid-message: give pynetdicom what has arrived, for it to finish."""
    assembler = dul.__dict__.get("_printscp_message")
    if assembler is not None:
        dul._printscp_message = None
        _indicate(dul.assoc, assembler)


def _deliver(assoc: Association, message: pdata.MessageAssembler) -> None:
    command = message.command
    field = pdata.command_us(command, pdata.COMMAND_FIELD) if command is not None else None
    if field == pdata.C_STORE_RQ:
        hook = assoc.__dict__.get("_printscp_fast_store")
        if hook is not None and hook(assoc, message):
            return
    elif field == pdata.C_STORE_RSP:
        # A C-GET sub-operation's answer, awaited by the DUL-driven C-GET (if any).
        hook = assoc.__dict__.get("_printscp_store_response")
        if hook is not None and hook(pdata.command_us(command, pdata.MESSAGE_ID_RESPONDED),
                                     pdata.command_us(command, pdata.STATUS)):
            return
    elif field == pdata.C_FIND_RQ:
        hook = assoc.__dict__.get("_printscp_fast_find")
        if hook is not None and hook(assoc, message):
            return
    _indicate(assoc, message)


def read_pending(assoc: Association) -> bool:
    """On the DUL thread, while it serves a request itself: take in, without waiting,
    what the peer sent meanwhile, so that a C-CANCEL is seen (pynetdicom files it in
    ``dimse.cancel_req``).  Anything else that is not P-DATA (a release, an abort, the
    connection closing) is left queued for the state machine, after the request.

    Returns True when the request should stop: such an event waits (the peer aborted
    or went away), so the rest of the answer would go nowhere.
    """
    dul = assoc.dul
    sock = getattr(dul.socket, "socket", None)
    if sock is None or dul.event_queue.qsize():
        return True
    for _ in range(8):  # a few PDUs at most: the request goes on
        pending = getattr(sock, "pending", None)
        if not (pending is not None and pending()):
            try:
                if not select.select([sock], [], [], 0)[0]:
                    return False
            except (OSError, ValueError):
                return True
        if not _transport_event(dul) or dul.event_queue.qsize():
            return bool(dul.event_queue.qsize())
    return False


def _indicate(assoc: Association, message: pdata.MessageAssembler) -> None:
    """Hand a message to pynetdicom's DIMSE provider as one P-DATA indication."""
    primitive = P_DATA()
    primitive.presentation_data_value_list = message.pdv_list()
    assoc.dimse.receive_primitive(primitive)


class RawMessage:
    """A whole DIMSE message framed by :mod:`printscp.net.pdata`, queued for the DUL thread.

    It travels in the DUL's outgoing queue like pynetdicom's P-DATA primitives, so it
    keeps its place among them, and the DUL thread writes it to the socket in one go:
    fragments of two messages never interleave (PS3.7 6.3.1).
    """

    __slots__ = ("buffers",)

    def __init__(self, buffers: list[Any]) -> None:
        self.buffers = buffers


def send_raw(assoc: Association, context_id: int, command: bytes,
             data_set: bytes | memoryview | None = None) -> None:
    """Send one message framed by hand: at once, from the calling thread, when nothing
    waits to go out; else queued for the DUL thread behind what waits.

    Takes the send lock of :func:`printscp.net.workarounds.serialize_sends`, so no
    message is half queued by another thread meanwhile, and writes under the
    association's write lock, which every PDU pynetdicom sends takes too: with the
    queue empty no message is part-way out, so the bytes of two never interleave.
    Writing from the calling thread spares each message a wake-up of the DUL thread
    and a hand-over of the GIL to it and back (a C-FIND's matches were each paying
    them: 100 matches, about 4 ms).
    """
    from printscp.net.workarounds import serialize_sends

    serialize_sends(assoc)
    dul = assoc.dul
    max_pdu = assoc.dimse.maximum_pdu_size  # the peer's Maximum Length Received
    if not runs_our_loop(dul):  # an association opened before install(): pynetdicom's way
        with assoc._printscp_send_lock:
            for control, chunk in pdata.message_fragments(command, data_set, max_pdu or 0):
                primitive = P_DATA()
                primitive.presentation_data_value_list = [
                    [context_id, bytes((control,)) + bytes(chunk)]]
                dul.send_pdu(primitive)
        return
    message = RawMessage(list(pdata.message_pdus(context_id, command, data_set,
                                                 max_pdu or 0)))
    with assoc._printscp_send_lock:
        if not dul.to_provider_queue.qsize() and dul._printscp_pdata.value <= 0:
            _write(dul, message)
        else:
            dul.to_provider_queue.put(message)


def frame_stored_file(assoc: Association, path: Path, sop_class: str, sop_instance: str,
                      transfer_syntax: str, msg_id: int, priority: int = 2,
                      originator: tuple[str, int] | None = None
                      ) -> tuple[int, bytes, memoryview] | None:
    """(context ID, C-STORE-RQ command, data set bytes) sending a stored Part 10 file as
    it is, or None when no accepted context takes its class in its transfer syntax."""
    try:
        context = assoc._get_valid_context(sop_class, transfer_syntax, "scu",
                                           allow_conversion=False)
    except ValueError:
        return None
    data = Path(path).read_bytes()
    offset = pdata.data_set_offset(data)
    command = pdata.store_request(msg_id, sop_class, sop_instance, priority, originator)
    return int(context.context_id), command, memoryview(data)[offset:]


def send_c_store_file(assoc: Association, path: Path, sop_class: str, sop_instance: str,
                      transfer_syntax: str, msg_id: int = 1, priority: int = 2,
                      originator_aet: str | None = None,
                      originator_id: int | None = None) -> Dataset | None:
    """``assoc.send_c_store`` for a stored Part 10 file sent as it is.

    pynetdicom reads and re-encodes a file given to ``send_c_store`` and frames it
    through its state machine, several milliseconds per image; this sends the file's
    data set bytes, framed by :mod:`printscp.net.pdata`, then waits for the response as
    pynetdicom does.  Returns None, having sent nothing, when no accepted context
    takes the file's SOP class in its transfer syntax (pynetdicom may then convert).
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
    closed = RuntimeError("the association closed before the C-STORE could be sent")
    if not assoc.is_established:  # the peer aborted or closed it after the last one
        raise closed
    # As pynetdicom's send_*(): park the reactor so the response comes to us; a
    # reactor that has ended never parks (the peer aborted or closed meanwhile).
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        if assoc._kill or not assoc.is_established:
            assoc._reactor_checkpoint.set()
            raise closed
        time.sleep(0.0001)
    try:
        send_raw(assoc, *framed)
        _, rsp = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    if rsp is None:
        assoc._handle_no_response()
        return Dataset()
    return assoc._check_received_status(rsp)


def _write(dul: DULServiceProvider, message: RawMessage) -> None:
    with dul._printscp_write_lock:
        sock = getattr(dul.socket, "socket", None)
        if sock is None or dul.state_machine.current_state != "Sta6":
            return  # the association is going: the message goes with it, as a PDU would
        try:
            for i in range(0, len(message.buffers), 64):
                _send_all(sock, message.buffers[i:i + 64])
        except OSError:
            dul.event_queue.put("Evt17")


def _send_queued_raw(dul: DULServiceProvider) -> bool:
    """Write a :class:`RawMessage` at the head of the outgoing queue, if one is there.

    Only the DUL thread takes from that queue, so what it peeks stays at the head.
    """
    queue_ = dul.to_provider_queue
    with dul._printscp_write_lock:  # no direct send between taking it and writing it
        try:
            head = queue_.queue[0]
        except IndexError:
            return False
        if not isinstance(head, RawMessage):
            return False
        queue_.get_nowait()
        _write(dul, head)
    return True


def _send_all(sock: Any, buffers: list[Any]) -> None:
    """``sendmsg`` until every buffer is gone (a partial send resumes mid-buffer)."""
    views = [memoryview(b).cast("B") for b in buffers]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]
