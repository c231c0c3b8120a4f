"""The Print Management service of a node: association states, printer monitor, job
watchers and spooling.

:class:`PrintService` keeps one :class:`~.state.AssociationState` per association
(dropped when it ends), watches the printers' condition (disk space, output targets)
and reports changes as Printer N-EVENT-REPORTs, spools printed films durably before
the N-ACTION response goes out, and reports each job's progress as Print Job
N-EVENT-REPORTs to the association that printed it.  The DIMSE operations themselves
are in the module of each SOP Class, chosen by :mod:`.dispatch`.
"""

from __future__ import annotations

import logging
import shutil
import threading
from typing import Any

from printscp.config import NodeConfig, PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.core.printer_state import PRINTER_EVENTS, printer_condition
from printscp.jobs import staging
from printscp.jobs.delivery import OFFLINE_INFO, unhealthy_targets
from printscp.jobs.spool import (
    DONE,
    FAILURE,
    PENDING,
    PRINTING,
    PrintJob,
    Spool,
    SpoolFull,
    new_job_id,
    now_iso,
    print_job_uid,
)
from printscp.net.event_reports import PRINT_JOB_EVENTS, EventReporter
from printscp.printing.records import film_box_record, session_record
from printscp.services.print_management import print_job
from printscp.services.print_management import printer as printer_sop
from printscp.services.print_management.state import AssociationState, FilmBoxEntry

LOGGER = logging.getLogger("printscp.print")


class PrintService:
    """Print Management state of a node: association hierarchies, printer, spool."""

    def __init__(self, config: NodeConfig, spool: Spool) -> None:
        self.config = config
        self.spool = spool
        self._states: dict[int, AssociationState] = {}
        self._lock = threading.Lock()
        #: job id -> (association, Print Job presentation context) awaiting events
        self._watchers: dict[str, tuple[Any, Any]] = {}
        self._events_lock = threading.Lock()  # keeps PENDING ahead of PRINTING
        self.events = EventReporter()
        spool.listeners.append(self._job_changed)
        self._monitor_stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._disk_condition = ("NORMAL", "NORMAL")
        #: Printer name -> (Printer Status, Printer Status Info) last reported.
        self._conditions: dict[str, tuple[str, str]] = {}

    # -- printer state --------------------------------------------------------------
    def printer_condition(self, printer: PrinterConfig) -> tuple[str, str]:
        """(Printer Status, Printer Status Info) of ``printer``: its supply (disk space),
        then its output targets: one waiting to retry makes it WARNING / PRINTER OFFLINE
        (films are still accepted and kept; the hardcopy follows when it is back)."""
        status_now, info_now = self._disk_condition
        if status_now == "FAILURE":
            return status_now, info_now
        if unhealthy_targets(self.config.data_path, printer.name):
            return "WARNING", OFFLINE_INFO
        return status_now, info_now

    def reported_condition(self, printer: PrinterConfig) -> tuple[str, str]:
        """(Printer Status, Printer Status Info) of ``printer`` as last checked."""
        return self._conditions[printer.name]

    def check_printer(self) -> tuple[str, str]:
        """Recompute the printers' status; report a change to every open association
        (the node's default printer's condition is returned)."""
        free = shutil.disk_usage(self.config.data_path).free
        self._disk_condition = printer_condition(free, self.config.disk_warning_mb << 20,
                                                 self.config.disk_failure_mb << 20)
        changed: dict[str, tuple[str, str]] = {}
        for p in (self.config.printer, *self.config.printers.values()):
            condition = self.printer_condition(p)
            if self._conditions.get(p.name, ("NORMAL", "NORMAL")) != condition:
                LOGGER.warning("printer %s status %s (%s): %d MiB free", p.name, *condition,
                               free >> 20)
                changed[p.name] = condition
            self._conditions[p.name] = condition
        if changed:
            with self._lock:
                states = list(self._states.values())
            for st in states:
                condition = changed.get(st.printer.name)
                context = next((cx for cx in st.assoc.accepted_contexts if str(
                    cx.abstract_syntax) in printer_sop.META_CLASSES), None) if st.assoc else None
                if condition is None or context is None or not st.assoc.is_established:
                    continue
                info = printer_sop.event_information(st.printer, condition[1])
                self.events.report(st.assoc, context, info, PRINTER_EVENTS[condition[0]],
                                   uids.PRINTER, uids.PRINTER_INSTANCE)
        return self._conditions[self.config.printer.name]

    def start_monitor(self, interval: float = 5.0) -> None:
        def run() -> None:
            while not self._monitor_stop.wait(interval):
                try:
                    self.check_printer()
                except OSError:
                    LOGGER.exception("cannot check the printer's state")

        self.check_printer()
        staging.warm_up()  # the pixel writers, ready before the first film
        self._monitor = threading.Thread(target=run, name="printer-monitor", daemon=True)
        self._monitor.start()

    def stop_monitor(self) -> None:
        self._monitor_stop.set()
        self.events.stop()

    # -- association bookkeeping ------------------------------------------------------
    def state(self, assoc: Any) -> AssociationState:
        with self._lock:
            st = self._states.get(id(assoc))
            if st is None:
                request = assoc.requestor.primitive
                called = str(request.called_ae_title if request is not None
                             else assoc.acceptor.ae_title).strip()
                st = AssociationState(
                    calling_ae=str(assoc.requestor.ae_title).strip(),
                    called_ae=called,
                    peer=f"{assoc.requestor.address}:{assoc.requestor.port}",
                    printer=self.config.printer_for(called),
                    assoc=assoc,
                    limits=self.config.limits,
                    stage_dir=self.spool.spool_dir,
                )
                self._states[id(assoc)] = st
            return st

    def forget(self, assoc: Any) -> None:
        """Drop an ended association's unprinted objects (and its event subscriptions)."""
        with self._lock:
            st = self._states.pop(id(assoc), None)
        with self._events_lock:
            for job_id in [j for j, (a, _) in self._watchers.items() if a is assoc]:
                del self._watchers[job_id]
        if st is not None:
            for entry in st.film_boxes.values():
                entry.drop_stage()
            unprinted = sum(not e.printed for e in st.film_boxes.values())
            if unprinted:
                LOGGER.info("%s: association ended, %d unprinted film box(es) discarded",
                            st.calling_ae, unprinted)

    # -- print jobs: spooling and the job watchers ------------------------------------
    def _job_changed(self, job: PrintJob) -> None:
        """Spool listener: report PRINTING, DONE and FAILURE to a watching SCU."""
        with self._events_lock:
            watcher = self._watchers.get(job.job_id)
            if watcher is not None and job.status in (DONE, FAILURE):
                del self._watchers[job.job_id]
            if watcher is not None:
                assoc, context = watcher
                self._report(assoc, context, job.job_id, job.status,
                             str(job.session.get("film_session_label") or ""),
                             str(job.extra.get("printer") or ""),
                             str(job.extra.get("status_info") or ""))
        if job.status != PRINTING:  # a target may have failed or come back
            try:
                self.check_printer()
            except OSError:
                LOGGER.exception("cannot check the printer's state")

    def _report(self, assoc: Any, context: Any, job_id: str, execution: str, label: str,
                printer: str, status_info: str = "") -> None:
        info = print_job.event_information(execution, label, printer, status_info)
        self.events.report(assoc, context, info, PRINT_JOB_EVENTS[execution], uids.PRINT_JOB,
                           print_job_uid(job_id, uids.UID_ROOT))

    def spool_films(self, st: AssociationState, entries: list[FilmBoxEntry],
                    assoc: Any = None, events_context: Any = None) -> PrintJob:
        """Spool ``entries`` as one job, durably, and mark them printed; with
        ``events_context`` (the Print Job context of ``assoc``) the SCU gets the job's
        N-EVENT-REPORTs, PENDING first.  A full queue is 0xC602, a spool that cannot be
        written 0x0213."""
        assert st.session is not None
        arrays: dict = {}
        job_id = new_job_id()
        # One film whose images are all staged: its stage becomes the job's pixel file
        # (most of it on disk already); otherwise the pixels are written now.
        staged = entries[0].staged_names() if len(entries) == 1 else None
        job = PrintJob(
            job_id=job_id, created=now_iso(), calling_ae=st.calling_ae,
            called_ae=st.called_ae, peer=st.peer, session=session_record(st.session),
            films=[film_box_record(e.film_box, arrays, f"film{i}", staged)
                   for i, e in enumerate(entries, start=1)],
            extra={"print_job_uid": print_job_uid(job_id, uids.UID_ROOT),
                   **self.config.job_printing(st.printer)},
        )
        stage = entries[0].stage if staged is not None else None
        try:
            with self._events_lock:
                if events_context is not None:
                    self._watchers[job.job_id] = (assoc, events_context)
                try:
                    try:
                        self.spool.submit(job, arrays, stage=stage,
                                          staged=list(staged.values()) if staged else ())
                    except OSError:
                        if not _broke_before_commit(stage):
                            raise
                        # A write on the stage's thread failed after the images were
                        # answered: nothing of the job is on disk yet, and its pixels are
                        # in memory, so they are written now, as without a stage.
                        entries[0].drop_stage()
                        stage, staged, arrays = None, None, {}
                        job.films = [film_box_record(e.film_box, arrays, f"film{i}")
                                     for i, e in enumerate(entries, start=1)]
                        self.spool.submit(job, arrays)
                except BaseException:
                    self._watchers.pop(job.job_id, None)
                    if stage is not None and not stage.usable:
                        entries[0].drop_stage()  # broken: a retry writes the pixels anew
                    raise
                if events_context is not None:
                    self._report(assoc, events_context, job.job_id, PENDING,
                                 st.session.film_session_label, st.printer.name)
        except SpoolFull as exc:
            raise StatusError(status.PRINT_QUEUE_FULL, f"print queue is full ({exc})") from None
        except OSError as exc:
            raise StatusError(status.RESOURCE_LIMITATION,
                             f"cannot spool the job: {exc.strerror or exc}"[:64]) from None
        for e in entries:
            e.printed = True
            e.drop_stage()  # used by this job (now its spool folder), or of no more use
        LOGGER.info("%s: print job %s spooled (%d film(s))", st.calling_ae, job.job_id,
                    len(entries))
        return job


def _broke_before_commit(stage: Any) -> bool:
    """Whether ``stage`` failed before committing anything (a pixel write on its
    thread), so that the job may still be written from memory; a failure while it was
    being committed is the spool's (0x0213), as for any job."""
    return stage is not None and not stage.usable and \
        not str(stage.broken or "").startswith("cannot commit")
