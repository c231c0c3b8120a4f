"""The association server: one listening socket, many worker processes, no stalls.

pynetdicom's ``ThreadedAssociationServer`` as printscp needs it:

* a listening socket opened once and shared by the worker processes
  (:mod:`printscp.app.workers`), the least busy of which accepts each connection;
* every accepted socket with TCP_NODELAY (DCMTK-based clients write a PDU header and its
  data separately, and without it each message can wait ~40 ms on the peer's delayed
  ACK) and, for plain TCP, TCP_QUICKACK;
* the association set up on the accepting thread, the presentation contexts shared
  rather than deep-copied, and no full garbage collection in the accept loop
  (:data:`printscp.net.compat.WORKAROUNDS`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pynetdicom import AE, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom.transport import ThreadedAssociationServer

from printscp.net import reactors
from printscp.net.hooks import hooks_of


class QuickAckSocket:
    """A socket that acknowledges every read at once (Linux TCP_QUICKACK).

    Clients that leave Nagle on (DCMTK's do unless TCP_NODELAY=1 is set in their
    environment) hold each PDU's data until the header is acknowledged; with the
    kernel's delayed ACK that is ~40 ms per message.  Quick-ack mode lapses, so it
    is re-armed after every read.  Everything else is the wrapped socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self._sock.recv(bufsize, flags)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        read = self._sock.recv_into(buffer, nbytes, flags)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class SharedContexts(list):
    """The server's supported presentation contexts, shared by every association.

    pynetdicom gives every association a ``deepcopy`` of them; with the ~190 storage
    and Q/R classes in 13 transfer syntaxes that re-validated some 2,500 UIDs and took
    about 20 ms of every association (``findscu`` waited for it on each query); even
    a shallow copy of each context took a quarter of an association's set-up.  An
    association only reads them: ``negotiate_as_acceptor`` builds new context objects
    for its result and looks up the supported ones by abstract syntax (as does the
    unrestricted variant), and nothing here changes a context once the server runs.
    So each association gets a new list of the same objects.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return list(self)


class AssociationServer(ThreadedAssociationServer):
    #: Connections the kernel queues before one is accepted.  socketserver's default
    #: is 5, and ``server_activate`` listens again with it, also on a shared socket
    #: opened with more: a burst of 64 C-ECHOs had SYNs dropped and clients waiting
    #: 20 s for their retransmission.
    request_queue_size = 128
    #: A listening socket shared by worker processes (see :mod:`printscp.app.workers`).
    listen_socket: socket.socket | None = None
    #: This worker's share of the associations (a :class:`printscp.app.workers.SharedLoad`).
    load: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contexts = SharedContexts(self.contexts)

    def server_bind(self) -> None:
        if self.listen_socket is not None:  # already bound and listening
            self.socket.close()
            self.socket = self.listen_socket
            # Every worker wakes for a connection and one accepts it; the others must
            # not block in accept() (nor could they then be shut down).
            self.socket.setblocking(False)
            self.server_address = self.socket.getsockname()
            return
        super().server_bind()

    #: Associations at once, counting only those whose peer sent an A-ASSOCIATE-RQ
    #: (set by :func:`start_server` from ``ae.maximum_associations``); more are rejected
    #: (transient, local limit exceeded) by printscp.net.reactors._negotiate_as_acceptor.
    association_limit: int | None = None
    #: Associations at once from one peer address (0: no limit but the association
    #: limit); more are rejected like those over the association limit.
    per_host_limit: int = 0
    #: Called with (peer address, reason) when a TLS handshake fails (log, audit).
    tls_failed: Callable[[str, str], None] | None = None
    #: Connections at once that have not sent their A-ASSOCIATE-RQ yet: beyond it, the
    #: oldest of them is aborted to make room.  pynetdicom counted them against the
    #: association limit, so 33 silent connections locked every client out for 30 s.
    idle_limit: int = 16

    def process_request(self, request: Any, client_address: Any) -> None:
        """Set the association up on the accepting thread.

        pynetdicom's threaded server starts a thread per connection whose only work
        is to build the Association and start its own threads; building it here
        spares every association a thread start and two GIL hand-overs before its
        A-ASSOCIATE-RQ is read (``handle`` returns once the association runs).
        A client sends its A-ASSOCIATE-RQ at once: when too many connections are still
        silent, the oldest (an idle or hostile peer's) makes room for the new one."""
        idle = [a for a in self.ae.active_associations
                if a.is_acceptor and a.requestor.primitive is None and not a._kill]
        if len(idle) >= self.idle_limit:
            idle.sort(key=lambda a: hooks_of(a).started)
            for oldest in idle[:len(idle) - self.idle_limit + 1]:
                # abort() waits for the association's threads to end: not on this one
                threading.Thread(target=oldest.abort, name="printscp-evict",
                                 daemon=True).start()
        self.process_request_thread(request, client_address)

    def service_actions(self) -> None:
        """pynetdicom runs a full ``gc.collect()`` here every 60 accept-loop turns (for
        association threads it saw linger); that holds the GIL for 10-30 ms in a
        serving process, stalling every association of the worker.  Python's own
        generational collector frees those cycles without such a stop."""

    def get_request(self) -> tuple[Any, tuple[str, int]]:
        load = self.load
        if load is not None and load.busier_than_another():
            time.sleep(load.DEFER)  # a less busy worker, woken too, takes it meanwhile
        sock, address = self.socket.accept()  # BlockingIOError if another took it
        if load is not None:
            load.opened()  # closed() on EVT_CONN_CLOSE (start_server)
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # The handshake is not done here, on the one accepting thread (pynetdicom's
            # wrap_socket did it there: a peer that stalled it blocked every connection),
            # but on the association's own thread, bounded by the ACSE timeout
            # (printscp.net.reactors._first_pdu_over_tls).
            return self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False), address
        if hasattr(socket, "TCP_QUICKACK"):
            return QuickAckSocket(sock), address
        return sock, address


def configure_logging() -> None:
    """Have pynetdicom format identifiers, PDUs and messages for its log only when that
    log is on: it does so for every message otherwise, whether or not anything shows it.
    (The fast paths log through the same handlers: :mod:`printscp.net.observe`.)"""
    log = logging.getLogger("pynetdicom")
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = log.isEnabledFor(logging.INFO)
    pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = log.isEnabledFor(logging.DEBUG)
    pynetdicom_config.LOG_HANDLER_LEVEL = \
        "standard" if log.isEnabledFor(logging.INFO) else "none"


def start_server(ae: AE, address: tuple[str, int], handlers: list[tuple[Any, ...]], *,
                 listen_socket: socket.socket | None = None, load: Any = None,
                 ssl_context: Any = None, association_limit: int | None = None,
                 per_host_limit: int = 0,
                 tls_failed: Callable[[str, str], None] | None = None
                 ) -> AssociationServer:
    """Make ``ae``'s association server on ``address`` (or on ``listen_socket``, already
    listening), registered with ``ae`` as ``AE.start_server`` registers its own, so that
    ``ae.shutdown()`` finds it; the caller runs its ``serve_forever``.

    ``load`` is this worker's share of the associations (a
    :class:`printscp.app.workers.SharedLoad`): counted when accepted, and released when
    the connection closes.  ``ssl_context``: a DICOM TLS listener.
    ``association_limit``: associations at once over every server of ``ae`` (default:
    ``ae.maximum_associations`` as first set), ``per_host_limit`` from one address.
    """
    reactors.install()
    if load is not None:
        handlers = [(evt.EVT_CONN_CLOSE, _closed(load)), *handlers]
    server = ae.make_server(
        address, evt_handlers=handlers,
        ssl_context=ssl_context,
        server_class=type("Server", (AssociationServer,),
                          {"listen_socket": listen_socket, "load": load}))
    # printscp counts the associations whose peer has asked (see AssociationServer);
    # pynetdicom's own count, of every connection, gets room for the silent ones.
    limit = association_limit or ae.maximum_associations
    server.association_limit = limit
    server.per_host_limit = per_host_limit
    server.tls_failed = tls_failed
    server.idle_limit = max(AssociationServer.idle_limit, limit)
    ae.maximum_associations = limit + 2 * server.idle_limit * (len(ae._servers) + 1)
    ae._servers.append(server)
    return server


def _closed(load: Any) -> Callable[[Any], None]:
    def closed(_: Any) -> None:
        load.closed()

    return closed
