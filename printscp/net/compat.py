"""Which pynetdicom printscp runs on, and what of it printscp depends on.

:mod:`printscp.net.reactors` replaces pynetdicom's two polling loops with event-driven
copies and reads or wraps a few of its private methods.  Those copies are only right for
the release they were made from, so:

* :func:`check_version` (run when :mod:`printscp.net` is imported) refuses any
  pynetdicom outside :data:`SUPPORTED` with a message that says what to install;
* :data:`MIRRORED` fingerprints the source of every upstream function the loops mirror,
  wrap or call by a private name; ``tests/net/test_compat.py`` recomputes them, so an
  upgrade that changes one fails loudly and names what in printscp to re-read;
* :data:`WORKAROUNDS` links each workaround to the upstream issue it works around.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from importlib import metadata

from printscp.core.errors import UnsupportedPynetdicom

#: The pynetdicom release series printscp's loops mirror (``major.minor``).
SUPPORTED = "3.0"


def check_version(version: str | None = None) -> str:
    """Return the installed pynetdicom version, or raise :class:`UnsupportedPynetdicom`.

    ``version`` stands in for the installed one (tests).  The version is read from the
    package metadata, without importing pynetdicom.
    """
    if version is None:
        try:
            version = metadata.version("pynetdicom")
        except metadata.PackageNotFoundError:
            raise UnsupportedPynetdicom(
                f"printscp needs pynetdicom {SUPPORTED}.x, which is not installed: "
                f"pip install 'pynetdicom>={SUPPORTED},<{_next(SUPPORTED)}'") from None
    series = ".".join(version.split(".")[:2])
    if series != SUPPORTED:
        raise UnsupportedPynetdicom(
            f"printscp's network layer mirrors pynetdicom {SUPPORTED}.x and has not been "
            f"tested with pynetdicom {version}: install 'pynetdicom>={SUPPORTED},"
            f"<{_next(SUPPORTED)}' (see printscp/net/compat.py for what to re-read "
            "before supporting another release)")
    return version


def _next(series: str) -> str:
    major, minor = series.split(".")
    return f"{major}.{int(minor) + 1}"


@dataclass(frozen=True)
class Mirrored:
    """An upstream function printscp depends on, and its fingerprint for :data:`SUPPORTED`."""

    #: ``module:qualname`` of the upstream function.
    upstream: str
    #: SHA-256 (first 16 hex digits) of its source, dedented.
    fingerprint: str
    #: What in printscp mirrors, wraps or relies on it: re-read this when it changes.
    ours: str


def fingerprint_source(source: str) -> str:
    """The fingerprint of a function's source (dedented; nothing else normalised)."""
    return hashlib.sha256(textwrap.dedent(source).encode()).hexdigest()[:16]


def upstream_object(name: str) -> object:
    """The object named ``module:qualname``."""
    module_name, _, qualname = name.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def current_fingerprint(name: str) -> str:
    """The fingerprint of the installed pynetdicom's ``module:qualname``, as released
    (printscp's patches are looked through: the original is what is fingerprinted)."""
    from printscp.net import reactors

    obj = reactors.ORIGINALS.get(name) or upstream_object(name)
    return fingerprint_source(inspect.getsource(obj))  # type: ignore[arg-type]


#: Every upstream function the network layer mirrors line by line, replaces, wraps or
#: calls by a private name, with its fingerprint in pynetdicom 3.0.4.
MIRRORED: tuple[Mirrored, ...] = (
    Mirrored("pynetdicom.dul:DULServiceProvider.__init__", "6ba6c0a89a5ab52a",
             "reactors._wrap_init: its queues gain wake-ups"),
    Mirrored("pynetdicom.dul:DULServiceProvider.run_reactor", "780cd7ed323ef3bb",
             "reactors._dul_run_reactor / _dul_loop: the loop, line by line"),
    Mirrored("pynetdicom.dul:DULServiceProvider._is_transport_event", "6868c3eee650bc3f",
             "reactors._transport_event: reads PDUs itself in Sta6"),
    Mirrored("pynetdicom.dul:DULServiceProvider._decode_pdu", "1c1f241500de9aaf",
             "reactors._transport_event calls it for PDUs other than P-DATA-TF"),
    Mirrored("pynetdicom.dul:DULServiceProvider._process_recv_primitive", "be1c4202c189e6ac",
             "reactors._dul_loop calls it"),
    Mirrored("pynetdicom.dul:DULServiceProvider.kill_dul", "81a5917503d167bf",
             "reactors._kill_dul"),
    Mirrored("pynetdicom.dul:DULServiceProvider.stop_dul", "2d3c60aed053f592",
             "reactors._stop_dul"),
    Mirrored("pynetdicom.association:Association._run_reactor", "cbf8d3c3eb37093a",
             "reactors._assoc_run_reactor: the loop, line by line"),
    Mirrored("pynetdicom.association:Association._serve_request", "b9dad50a37d68ef7",
             "reactors._serve_request wraps it; channel.serving_request mirrors its "
             "pause and C-CANCEL bookkeeping"),
    Mirrored("pynetdicom.association:Association.send_c_store", "08367449c5d46b17",
             "channel.send_c_store_file mirrors its park-send-wait"),
    Mirrored("pynetdicom.association:Association.send_n_event_report", "a15155dd15f901b5",
             "event_reports.send_event_report mirrors its park-send-wait"),
    Mirrored("pynetdicom.association:Association._get_valid_context", "2cdaaffc845829b7",
             "channel._context_as_stored is it without conversion and without logging"),
    Mirrored("pynetdicom.association:Association._check_received_status", "0806617812ab9a7c",
             "channel.send_c_store_file calls it"),
    Mirrored("pynetdicom.association:Association._handle_no_response", "7904e056b44f9e1e",
             "channel.send_c_store_file calls it"),
    Mirrored("pynetdicom.transport:AssociationSocket.recv", "0c5fbc85ac69f1b2",
             "reactors._socket_recv replaces it"),
    Mirrored("pynetdicom.transport:AssociationSocket.send", "e792469c953273eb",
             "reactors._socket_send wraps it"),
    Mirrored("pynetdicom.acse:ACSE._negotiate_as_acceptor", "317caea98a1e6be0",
             "reactors._negotiate_as_acceptor wraps it: an exception becomes an A-ABORT"),
    Mirrored("pynetdicom.transport:AssociationSocket.ready", "245230e31ef3ad51",
             "reactors._socket_ready: the same with poll (no FD_SETSIZE limit)"),
    Mirrored("pynetdicom.transport:ThreadedAssociationServer.process_request",
             "f9ef495557ee7003", "server.AssociationServer.process_request"),
    Mirrored("pynetdicom.transport:AssociationServer.get_request", "94f13a70081c5322",
             "server.AssociationServer.get_request"),
    Mirrored("pynetdicom.transport:AssociationServer.service_actions", "32e767c375e99fcb",
             "server.AssociationServer.service_actions (no full gc.collect)"),
    Mirrored("pynetdicom.transport:AssociationServer.server_bind", "27172ba06211dd06",
             "server.AssociationServer.server_bind (a shared listening socket)"),
    Mirrored("pynetdicom.ae:ApplicationEntity.start_server", "245c1c33156e4860",
             "server.start_server registers its server as this does"),
    Mirrored("pynetdicom.dimse:DIMSEServiceProvider.send_msg", "b285f58a41affc09",
             "reactors._send_msg: the same message, framed by printscp.net.pdata"),
    Mirrored("pynetdicom.dimse:DIMSEServiceProvider.receive_primitive", "4307baf82f143a89",
             "reactors._indicate feeds it; observe.received fires its EVT_DIMSE_RECV"),
    Mirrored("pynetdicom.dsutils:encode", "0d29ffd5d358c45a",
             "reactors._fast_command_encoding replaces dimse_messages.encode for "
             "command sets (printscp.net.pdata.encode_command_set)"),
    Mirrored("pynetdicom.utils:set_uid", "f917a8035170f792",
             "reactors._cached_uid_checks keeps its result per distinct UID"),
    Mirrored("pynetdicom.presentation:negotiate_as_acceptor", "d5413f08f0ac7b32",
             "access_hook wraps it: contexts the access rules refused become 0x01"),
    Mirrored("pynetdicom.association:Association.run_reactor", "3b2745eed4988ef7",
             "reactors._dul_run_reactor ends the acceptor's wait for the A-ASSOCIATE "
             "indication with None (its timeout's value) when the DUL ends"),
    Mirrored("pynetdicom.dul:DULServiceProvider._read_pdu_data", "4679cb00a659ff5f",
             "reactors._peer_fault_traceback strips the traceback it logs by funcName"),
    Mirrored("pynetdicom.association:Association.request", "18bd50628288974d",
             "reactors._request_then_settle: a rejection taken for a failed connection"),
    Mirrored("pynetdicom.acse:ACSE._negotiate_as_requestor", "7567749d1b3d40dd",
             "reactors._request_then_settle reads the RJ its race leaves on the queue"),
    Mirrored("pynetdicom.utils:decode_bytes", "d684af5eae3231d6",
             "reactors._peer_fault_traceback strips the traceback it logs by funcName"),
    Mirrored("pynetdicom.fsm:StateMachine.do_action", "4afe2ea8fc2a8725",
             "reactors._peer_fault_traceback strips the traceback it logs by funcName"),
)


@dataclass(frozen=True)
class Workaround:
    """A pynetdicom behaviour printscp works around, and where."""

    what: str
    upstream: str
    where: str


#: What printscp works around, each with the upstream issue that describes it.
WORKAROUNDS: tuple[Workaround, ...] = (
    Workaround(
        "The DUL thread and the association reactor poll with 1 ms sleeps: on loopback "
        "every message paid one to three of them (stores capped near 100/s)",
        "https://github.com/pydicom/pynetdicom/issues/650 (also #120, PR #651)",
        "reactors: _dul_loop waits in select on the socket and a wake-up pipe; "
        "_assoc_run_reactor waits on an event"),
    Workaround(
        "A send_*() can read a stale 'paused' while the reactor passes its checkpoint; "
        "the reactor then takes the response ('Received unexpected ... service message') "
        "and the sender waits for the DIMSE timeout",
        "https://github.com/pydicom/pynetdicom/issues/875 (also #435, PR #351)",
        "reactors._assoc_run_reactor reads the queue only with the checkpoint open; "
        "reactors._serve_request puts a response back for a parked sender"),
    Workaround(
        "A peer's N-EVENT-REPORT is served on a thread of its own that clears "
        "'paused' when it ends; a send_*() waiting for the reactor to park then waits "
        "for ever",
        "https://github.com/pydicom/pynetdicom/issues/820 (the thread: PR #379)",
        "reactors._assoc_run_reactor and _serve_request mark a parked reactor paused "
        "again"),
    Workaround(
        "Two threads sending on one association interleave the P-DATA fragments of two "
        "messages (an event report beside a response); the peer aborts",
        "https://github.com/pydicom/pynetdicom/issues/469 (Print SCP event reports)",
        "reactors._send_msg and channel.send_message hold the association's send lock"),
    Workaround(
        "send_n_event_report() takes the next DIMSE message as its answer, swallowing a "
        "request the peer sent meanwhile",
        "https://github.com/pydicom/pynetdicom/issues/469",
        "event_reports.send_event_report matches the answer by Message ID Being "
        "Responded To and hands every other message back to the reactor"),
    Workaround(
        "Every association deep-copies the server's presentation contexts "
        "(re-validating ~2,500 UIDs, ~20 ms), and the accept loop runs a full "
        "gc.collect() every 60 turns (a 10-30 ms stop)",
        "https://github.com/pydicom/pynetdicom/issues/59 (association set-up cost)",
        "server.AssociationServer"),
)
