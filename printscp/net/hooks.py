"""Everything printscp keeps about one association, in one object beside it.

pynetdicom's ``Association`` and ``DULServiceProvider`` are not ours to decorate: earlier
printscp pinned some fourteen ``_printscp_*`` attributes on them.  Now each association
has one :class:`AssociationHooks`, found with :func:`hooks_of`; it holds the state of the
event-driven loops (:mod:`printscp.net.reactors`) and the fast paths the node attached
(:func:`printscp.net.channel.attach_fast_paths`).  It lives exactly as long as the
association (a weak key), so nothing outlives a closed connection.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from printscp.net.pdata import MessageAssembler

#: ``claim(assoc, message)`` -> a callable that serves the message, or None to leave it
#: to pynetdicom.  Claiming has no side effect, so pynetdicom's events for the message
#: can be fired before it is served (:mod:`printscp.net.observe`).
Claim = Callable[[Any, "MessageAssembler"], Callable[[], None] | None]


class SharedCount:
    """A count several threads change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


_ids = itertools.count(1)


@dataclass(eq=False)
class AssociationHooks:
    """printscp's state for one association (see the module docstring)."""

    # -- what the association did, for its log line (printscp.net.channel.summary) -----
    #: This association's name in the log, unique in the node: "PROCESS-N".
    id: str = field(default_factory=lambda: f"{os.getpid()}-{next(_ids)}")
    #: When its connection was set up (time.monotonic()).
    started: float = field(default_factory=time.monotonic)
    #: The peer's requests served, by DIMSE command ("C-STORE": 300).
    operations: Counter[str] = field(default_factory=Counter)
    #: The SOP classes those requests named (Affected or Requested SOP Class UID).
    sop_classes: set[str] = field(default_factory=set)
    #: How it ended, when the loops saw it: "released", "aborted by the peer"...
    ended: str | None = None
    #: Bytes read from and written to the socket (PDUs, headers included).  Read by
    #: the node's list of live associations; written under the read and write paths'
    #: own serialisation (the DUL thread reads, writers hold ``write_lock``).
    bytes_received: int = 0
    bytes_sent: int = 0
    #: Requests handed to pynetdicom and not yet served, by Message ID:
    #: (DIMSE command, SOP class UID, time.perf_counter() when the message was whole),
    #: so that their latency counts from their last fragment (reactors._serve_request).
    arrived: dict[int, tuple[str, str, float]] = field(default_factory=dict)

    # -- the DUL thread's loop (printscp.net.reactors) ---------------------------------
    #: The wake-up pipe the DUL thread selects on while it runs our loop (else None).
    pipe: Any = None
    #: The socket was readable when the DUL thread last looked (not TLS).
    readable: bool = False
    #: Held while bytes go to the socket, by whichever thread writes them (and by the
    #: DUL thread from taking a queued message until it is written).
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    #: pynetdicom P-DATA primitives queued and not yet written as PDUs: while any is, a
    #: message of pynetdicom's is part-way out and nothing may be written directly.
    pdata_queued: SharedCount = field(default_factory=SharedCount)
    #: The DIMSE message being assembled from P-DATA-TF PDUs.
    message: MessageAssembler | None = None
    # -- the association reactor -------------------------------------------------------
    #: Set whenever something is queued for the association reactor.
    wake: threading.Event | None = None
    #: One DIMSE message at a time on the association (see reactors._send_msg).
    send_lock: threading.RLock = field(default_factory=threading.RLock)
    #: True while a request of the peer is being served (its response not yet sent).
    serving: bool = False
    # -- fast paths the node attached (printscp.net.channel) ---------------------------
    #: A complete C-STORE-RQ served on the DUL thread.
    store: Claim | None = None
    #: The File Meta Information a C-STORE-RQ's data set is stored behind, asked for
    #: as soon as its command set is in (empty: not stored by ``store``).
    store_prefix: Callable[[Any, MessageAssembler], bytes] | None = None
    #: A C-FIND-RQ served on the DUL thread.
    find: Claim | None = None
    #: A DIMSE-N request (N-GET, N-SET, N-ACTION, N-CREATE, N-DELETE) served on the DUL
    #: thread (printscp.services.print_management serves its classes so).
    dimse_n: Claim | None = None
    #: A C-STORE-RSP awaited by a C-GET in progress: ``(message_id, status)`` -> a
    #: callable that takes it, or None when it is not the awaited one.
    store_response: Callable[[int | None, int | None], Callable[[], None] | None] | None \
        = None
    #: Requests served here rather than by pynetdicom: ``(msg, context_id)`` -> True
    #: when served (printscp.services.query_retrieve serves C-FIND and C-GET so).
    requests: Callable[[Any, int], bool] | None = None
    #: ``send_c_store`` sends stored files as they are (C-MOVE sub-associations).
    sends_files_as_stored: bool = False


_HOOKS: weakref.WeakKeyDictionary[Any, AssociationHooks] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def hooks_of(assoc: Any) -> AssociationHooks:
    """The hooks of ``assoc``, made on first use."""
    hooks = _HOOKS.get(assoc)
    if hooks is None:
        with _LOCK:
            hooks = _HOOKS.get(assoc)
            if hooks is None:
                hooks = _HOOKS[assoc] = AssociationHooks()
    return hooks


def release_hooks(assoc: Any) -> None:
    """Drop what ``assoc``'s hooks hold once its thread has ended: the services' claims
    and request handlers are closures over the association, and a value of a
    WeakKeyDictionary that refers to its key keeps both alive for good (every
    association ever served stayed in memory, about 50 KB each, 150 MiB a minute in
    the soak).  The counts stay for whoever reads them at close."""
    hooks = _HOOKS.get(assoc)
    if hooks is not None:
        hooks.store = hooks.store_prefix = hooks.find = hooks.dimse_n = None
        hooks.store_response = hooks.requests = None


def existing_hooks(assoc: Any) -> AssociationHooks | None:
    """The hooks of ``assoc`` if it has any yet (no new object is made)."""
    return _HOOKS.get(assoc)
