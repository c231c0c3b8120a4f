"""The DICOM node: one pynetdicom AE serving every configured service.

Builds the AE from :class:`~printscp.config.NodeConfig` (presentation contexts,
handlers, access rules), starts the spool worker and the association server,
and stops both cleanly.  Films are rendered in a separate process, so the
threads receiving images never wait on rendering.  Every accepted socket gets
TCP_NODELAY: DCMTK-based clients write a PDU header and its data separately, and
without it each message can wait ~40 ms on the peer's delayed ACK.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import multiprocessing
import socket
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt

from printscp.app import association_log
from printscp.app.live import LiveAssociations
from printscp.app.stopping import die_with_parent
from printscp.archive.archive import Archive, DuplicatePolicy
from printscp.config import NodeConfig
from printscp.core import audit, tls, uids
from printscp.core.background import IdleWatch
from printscp.jobs import render as job_render
from printscp.jobs.delivery import DeliveryError
from printscp.jobs.spool import Spool
from printscp.jobs.targets import ArchiveTarget, CupsTarget, DicomTarget, Target
from printscp.mpps.steps import MPPS_SOP_CLASS, MppsStore
from printscp.net import channel, server
from printscp.printing.profile import OutputProfile
from printscp.services import (
    access,
    commitment,
    dispatch,
    limits,
    mpps,
    print_management,
    query_retrieve,
    storage,
    verification,
    worklist,
)
from printscp.services.access import AccessPolicy
from printscp.worklist.items import WorklistStore

LOGGER = logging.getLogger("printscp.app.node")

#: Explicit VR Little Endian first: pynetdicom picks the first of the acceptor's
#: syntaxes that the requestor proposed.
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


SUPPORTED_CLASSES = [
    uids.VERIFICATION,
    uids.BASIC_GRAYSCALE_PRINT_META,
    uids.BASIC_COLOR_PRINT_META,
    uids.PRESENTATION_LUT,
    uids.BASIC_ANNOTATION_BOX,
    uids.PRINT_JOB,
    uids.PRINTER_CONFIGURATION_RETRIEVAL,
]


def _render_process() -> ProcessPoolExecutor:
    """One render process (spawned, not forked: the server has threads), started at
    once; it imports only light modules then (its initializer's and
    :mod:`printscp.jobs.render`).  :meth:`Node._warm_up` has it import the rendering
    stack later, so that the first film does not pay for the imports and the first
    requests do not lose a core to them."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent)
    pool.warmed = pool.submit(job_render.started)  # type: ignore[attr-defined]
    return pool


class Node:
    """A running printscp node; ``start()`` then ``stop()`` (or use as a context).

    ``listen_socket`` is a listening socket several worker processes accept on (see
    :mod:`printscp.app.workers`), ``load`` their shared count of associations; ``recover``
    is false in all but one of them.
    """

    def __init__(self, config: NodeConfig, *, listen_socket: socket.socket | None = None,
                 recover: bool = True, load: Any = None,
                 tls_socket: socket.socket | None = None) -> None:
        self.config = config
        self.listen_socket = listen_socket
        self.tls_socket = tls_socket
        #: The DICOM TLS listener's context (checked now: a bad certificate or key is a
        #: ConfigError naming its key before anything listens).
        self.ssl_context = tls.server_context(config.tls) if config.tls.enabled else None
        self.recover = recover
        self.load = load
        data = config.data_path
        data.mkdir(parents=True, exist_ok=True)
        audit.configure(data, config.audit, ae_title=config.ae_title)
        #: This process's open associations, published for the console.
        self.live = LiveAssociations(data)
        for printer in (config.printer, *config.printers.values()):
            if printer.output_profile:  # refuse a bad profile at start-up
                OutputProfile.from_file(printer.output_profile)
        profile_path = config.printer.output_profile
        if profile_path:
            profile_path = str(Path(profile_path).resolve())
        renderer = functools.partial(job_render.render_job, profile_path=profile_path,
                                     dpi=config.printer.dpi or None)
        self.spool = Spool(data, renderer, max_queued=config.max_queued_jobs,
                           executor_factory=_render_process, deliver=self._deliver,
                           history_days=config.job_history_days,
                           max_queued_per_ae=config.limits.pending_jobs_per_ae)
        self.print_service = print_management.PrintService(config, self.spool)
        self.worklist: WorklistStore | None = None
        if config.worklist.enabled:
            self.worklist = WorklistStore.for_data_dir(data)
        self.mpps_store = MppsStore(data)
        #: Called when a performed step starts, completes or is discontinued: the
        #: worklist item it names follows (IN PROGRESS -> STARTED, then COMPLETED...).
        self.mpps_hooks = mpps.StatusListeners(
            [mpps.worklist_marker(self.worklist.mark)] if self.worklist is not None else [])
        self.archive: Archive | None = None
        self.commitment: commitment.CommitmentService | None = None
        if config.archive.enabled:
            self.archive = Archive(data, DuplicatePolicy(config.archive.duplicates),
                                   limits.archive_limits(config))
            self.commitment = commitment.CommitmentService(self.archive, config)
        self.access = AccessPolicy.from_config(config)
        self.ae = self._build_ae()
        limits.install(self.ae, config)  # data set sizes, while messages are assembled
        self.server: server.AssociationServer | None = None
        self.tls_server: server.AssociationServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def _deliver(self, target: Target, folder: Path, index: int) -> dict[str, Any]:
        """Send a rendered job to one of its network targets (spool delivery threads)."""
        if isinstance(target, CupsTarget):
            from printscp.jobs.delivery import load_delivery
            from printscp.outputs import hardcopy

            delivery = load_delivery(folder)
            pages = delivery.rendered.get("paper_pages", {}).get(str(index), 1) if delivery \
                else 1
            return hardcopy.submit(target, folder, job_render.prepared_file(folder, index),
                                   pages)
        if isinstance(target, DicomTarget):
            from printscp.outputs import forward

            called = target.destination.partition("@")[0]
            return forward.forward(target, folder, self.config.ae_title,
                                   remote=self.config.remote_ae(called), tls=self.config.tls)
        if isinstance(target, ArchiveTarget):
            if self.archive is None:
                raise DeliveryError("the archive is disabled ([archive] enabled = false)",
                                    retriable=False)
            from printscp.archive.films import store_film

            return store_film(self.archive, folder, job_render.prepared_file(folder, index),
                              self.worklist)
        raise ValueError(f"{target.label}: not a network target")

    def _build_ae(self) -> AE:
        c = self.config
        server.configure_logging()
        ae = AE(ae_title=c.ae_title)
        ae.implementation_version_name = uids.IMPLEMENTATION_VERSION_NAME
        for uid in SUPPORTED_CLASSES:
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        ae.add_supported_context(MPPS_SOP_CLASS, TRANSFER_SYNTAXES)
        if self.worklist is not None:
            for uid in worklist.WORKLIST_CLASSES:
                ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        if self.archive is not None:
            ae.add_supported_context(commitment.STORAGE_COMMITMENT, TRANSFER_SYNTAXES)
            for uid in query_retrieve.QR_CLASSES:
                ae.add_supported_context(uid, TRANSFER_SYNTAXES)
            # Both roles: a C-GET requester takes the SCP role for the storage classes.
            for uid in storage.STORAGE_CLASSES:
                ae.add_supported_context(uid, storage.STORAGE_TRANSFER_SYNTAXES,
                                         scu_role=True, scp_role=True)
        ae.maximum_pdu_size = c.max_pdu
        ae.maximum_associations = c.max_associations
        ae.network_timeout = c.network_timeout
        ae.acse_timeout = c.acse_timeout
        ae.dimse_timeout = c.dimse_timeout
        return ae

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        rq = assoc.requestor
        primitive = rq.primitive
        calling = str(primitive.calling_ae_title)
        called = str(primitive.called_ae_title)
        # [access] per service: what this peer may use (per-request checks read it).
        grants = self.access.grants(calling, str(rq.address))
        access.remember(assoc, grants)
        if self.archive is not None:
            # Q/R C-FIND and C-GET served by printscp rather than pynetdicom, and C-STORE
            # and C-FIND served on the DUL thread as soon as they are parsed (a C-STORE
            # the peer may not send goes to pynetdicom, whose guarded handler refuses it).
            query_retrieve.serve_qr(assoc, self.archive, self.config)
            may_store = grants.allows("store")
            channel.attach_fast_paths(
                assoc,
                store=functools.partial(storage.claim_store, archive=self.archive)
                if may_store else None,
                store_prefix=storage.store_prefix if may_store else None,
                find=functools.partial(query_retrieve.claim_find, archive=self.archive,
                                       config=self.config))
        verdict = self.access.check(calling, called, str(rq.address))
        if verdict is not None:
            association_log.rejected(assoc, verdict)
            assoc.acse.send_reject(*verdict)
            # As pynetdicom does for its own rejections: wait until the DUL has sent
            # the A-ASSOCIATE-RJ before the socket is closed.
            assoc.kill()
            return
        access.refuse_services(assoc, grants)

    def handlers(self) -> list[tuple[Any, ...]]:
        return access.guard_handlers([
            *association_log.handlers(),
            *self.live.handlers(),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, verification.handle_echo),
            *dispatch.combine(print_management.event_handlers(self.print_service),
                              self._services_by_class()),
            *self._find_move_get(),
        ], self.access, self._remote_host)

    def _remote_host(self, ae_title: str) -> str | None:
        """The host of ``ae_title`` in the AE table (C-MOVE destinations)."""
        remote = self.config.remote_ae(ae_title)
        return remote.host if remote is not None else None

    def _find_move_get(self) -> list[tuple[Any, ...]]:
        """Storage and C-MOVE handlers, and the worklist's C-FIND (Q/R C-FIND and C-GET
        are served by :func:`query_retrieve.serve_qr`, bound per association)."""
        qr = (query_retrieve.event_handlers(self.archive, self.config)
              if self.archive is not None else [])
        if self.worklist is not None:
            return [*qr, *worklist.event_handlers(self.worklist, self.config)]
        return qr

    def _services_by_class(self) -> dict[str, list[tuple[Any, ...]]]:
        """DIMSE-N services other than Print Management, by SOP Class."""
        out: dict[str, list[tuple[Any, ...]]] = {
            MPPS_SOP_CLASS: mpps.event_handlers(self.mpps_store, self.mpps_hooks)}
        if self.commitment is not None:
            out[commitment.STORAGE_COMMITMENT] = commitment.event_handlers(self.commitment)
        return out

    @property
    def port(self) -> int:
        """The plain DICOM port (the TLS one when the node listens only with TLS)."""
        listener = self.server or self.tls_server
        assert listener is not None
        return int(listener.server_address[1])

    @property
    def tls_port(self) -> int | None:
        """The DICOM TLS port, None without TLS."""
        if self.tls_server is None:
            return None
        return int(self.tls_server.server_address[1])

    def _tls_failed(self, address: str, reason: str) -> None:
        """A TLS handshake failed: in the log (by the net layer) and the audit trail."""
        audit.node_authentication_failed(address, f"TLS handshake failed: {reason}")

    def start(self, accept: bool = True) -> Node:
        """Start the services and make the association servers (the port is then known);
        with ``accept`` false, connections wait in the listening socket's queue until
        :meth:`accept` (``printscp serve`` accepts once the node is ready)."""
        self.spool.start(recover=self.recover)
        if self.commitment is not None:
            self.commitment.start()
        self.print_service.start_monitor()
        c = self.config
        limits = {"association_limit": c.max_associations,
                  "per_host_limit": c.limits.associations_per_host}
        if not (c.tls.enabled and not c.tls.plain):
            self.server = server.start_server(
                self.ae, (c.bind, c.port), self.handlers(),
                listen_socket=self.listen_socket, load=self.load, **limits)
        if self.ssl_context is not None:
            self.tls_server = server.start_server(
                self.ae, (c.bind, c.tls.port), self.handlers(),
                listen_socket=self.tls_socket, load=self.load, ssl_context=self.ssl_context,
                tls_failed=self._tls_failed, **limits)
        self.live.start()
        if self.recover:  # one Application Start line a node, not one a worker
            audit.application_activity(True, ae_title=self.config.ae_title)
        if accept:
            self.accept()
        return self

    def accept(self) -> None:
        """Accept associations from now on (once; :meth:`start` made the servers), and
        warm up the render process once the node is idle (:meth:`_warm_up`)."""
        if self._threads:
            return
        threading.Thread(target=self._warm_up, name="printscp-warm-up", daemon=True).start()
        c = self.config
        if self.server is not None:
            self._serve(self.server, "printscp-acceptor")
            LOGGER.info("listening on %s:%d as %s", c.bind, self.port, c.ae_title)
        if self.tls_server is not None:
            self._serve(self.tls_server, "printscp-tls-acceptor")
            LOGGER.info("listening with TLS on %s:%d as %s", c.bind, self.tls_port,
                        c.ae_title)

    def _serve(self, listener: server.AssociationServer, name: str) -> None:
        thread = threading.Thread(target=listener.serve_forever, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def idle(self) -> bool:
        """No association open, in this process or (with workers) in any worker."""
        if self.load is not None:
            return bool(self.load.idle())
        return not self.ae.active_associations

    def _warm_up(self) -> None:
        """Have the render process import the rendering stack (0.5 s of CPU, at the
        lowest priority) once no association has been open for a moment
        (:class:`~printscp.core.background.IdleWatch`): a burst sent as soon as the node
        answers does not share the cores with it.  On a node busy from its start, the
        first job imports what it needs itself (measured: a warm-up started by a 5 s
        deadline during a store burst still took 0.4 s of CPU from it, loaded machine)."""
        watch = IdleWatch(self.idle)
        while not watch.due():
            if self._stopping.wait(0.1):
                return
        executor = self.spool.executor
        if executor is not None:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                executor.submit(job_render.warm_up)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the node can serve at full speed: its render process has started
        (it imports the rendering stack later, see :meth:`_warm_up`) and the objects made
        at start are out of the garbage collector's way.

        ``printscp serve`` accepts only then: otherwise the first second of traffic
        shared the cores with that start-up (each worker has a render process), and
        stores and retrieves sent at once ran at half speed.
        """
        warmed = getattr(self.spool.executor, "warmed", None)
        if warmed is not None:
            try:
                warmed.result(timeout)
            except Exception as exc:  # the spool starts a new render process per job
                LOGGER.warning("render process did not warm up: %s", exc)
        gc.collect()
        gc.freeze()  # start-up objects: never scanned again by full collections

    def stop(self) -> None:
        """Stop accepting, end open associations, let the spool finish its current job."""
        self._stopping.set()
        for listener in (self.server, self.tls_server):
            if listener is not None:
                listener.shutdown()  # also closes the socket
        self.server = self.tls_server = None
        for assoc in list(self.ae.active_associations):
            assoc.abort()
        self.print_service.stop_monitor()
        if self.commitment is not None:
            self.commitment.stop()
        self.spool.stop()
        self.live.stop()
        if self.recover:
            audit.application_activity(False, ae_title=self.config.ae_title)

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
