"""Job control: the one domain call behind the console and ``printscp jobs ACTION``.

Every action goes through the spool's state machine and its markers (see
:mod:`printscp.jobs.spool`): the job's lock is taken, its state read from the files,
the action refused (:class:`JobStateError`) unless it fits, and the change made
durably on disk before the lock is released, so a spool worker in another process
never acts on the same job at once.  Each state change takes the spool's notify path
(:func:`~printscp.jobs.spool.record_state`): the ``-v`` log line, the metrics and
the job index see it.  Print Job N-GET reads the same files, so a cancelled job is
FAILURE (JOB CANCELED) and a deleted one no such instance for DICOM too.

==========  =====================================================================
cancel      PENDING (queued, held, or waiting for a delivery retry) -> FAILURE,
            Execution Status Info ``JOB CANCELED``; PRINTING is refused
hold        PENDING, not yet rendering -> held (PENDING, ``JOB HELD``): no worker
            renders it; it stays in ``spool/`` across restarts
release     held -> PENDING (``QUEUED``), queued again through ``enqueue``
delete      a finished (or cancelled) job: sidecar, film files, kept source,
            previews and index rows removed
reprint     any job whose source is kept: a new job with the same films and
            pixels, to the same printer or another printer profile or target
==========  =====================================================================
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from printscp.core.files import atomic_write, fsync_dir
from printscp.core.uids import UID_ROOT
from printscp.jobs.delivery import JobBusy, job_lock
from printscp.jobs.index import JobIndex
from printscp.jobs.spool import (
    CANCEL_MARK,
    DONE,
    HELD_INFO,
    HELD_MARK,
    HISTORY,
    PENDING,
    PIXELS,
    PRINTING,
    QUEUED_INFO,
    PrintJob,
    find_job,
    finish_cancelled,
    job_source,
    new_job_id,
    now_iso,
    print_job_uid,
    record_state,
    request_enqueue,
    sidecar_path,
    spooled_state,
    write_job,
)

LOGGER = logging.getLogger("printscp.jobs.control")

#: Folder of the data directory holding cached film previews, one folder per job.
PREVIEWS = "previews"

#: ``resolve_targets(printer, target) -> (printer_name, targets)``: the printer profile
#: a reprint goes to (None: the job's own) and its targets (``target``: only the one
#: with that label), as :meth:`Target.to_json` dicts or Target objects; raises
#: ValueError naming a printer or target that does not exist.  A third item, a dict,
#: may add job fields of that printer (``output_profile``, ``dpi``).
ResolveTargets = Callable[[str | None, str | None], tuple[Any, ...]]


class JobNotFound(LookupError):
    """No job of this node has that id (never had, or it was deleted)."""

    def __init__(self, job_id: str, message: str = "") -> None:
        super().__init__(message or f"no print job {job_id}")
        self.job_id = job_id


class JobStateError(Exception):
    """The action does not fit the job's state (cancel a PRINTING job, delete a
    PENDING one...); the message says why."""


class JobControl:
    """Control actions on the jobs of ``data_dir``.

    ``index`` (default: the data directory's) is recorded into; ``enqueue(job_id)``
    queues a spooled job in some spool worker (default: a request file any worker
    process of the node claims, :func:`~printscp.jobs.spool.request_enqueue`);
    ``resolve_targets`` (see :data:`ResolveTargets`) is needed to reprint to another
    printer or target.  ``lock_timeout``: seconds to wait for a job whose delivery is
    in progress before the action is refused as PRINTING.
    """

    def __init__(self, data_dir: Path, index: JobIndex | None = None,
                 enqueue: Callable[[str], None] | None = None,
                 resolve_targets: ResolveTargets | None = None, *,
                 lock_timeout: float = 2.0, who: str = "") -> None:
        self.data_dir = Path(data_dir)
        self.spool_dir = self.data_dir / "spool"
        self.index = index if index is not None else JobIndex(self.data_dir)
        self.enqueue = enqueue or (lambda job_id: request_enqueue(self.data_dir, job_id))
        self.resolve_targets = resolve_targets
        self.lock_timeout = lock_timeout
        self.who = who

    # -- reading -----------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any] | None:
        """Everything about one job, None if unknown: its state, the Film Session,
        Film Box and Image Box attributes as spooled (``session``, ``films``: one
        record per film with ``index`` and its ``image_boxes``), the film files
        (``outputs``), each target's delivery (label, kind, state, attempts,
        last_error, cups_job_id), the Print Job events, whether its source is kept
        (``reprintable``) and which actions fit now (``actions``)."""
        record = find_job(self.data_dir, job_id)
        if record is None:
            return None
        state = str(record.get("status") or PENDING)
        info = str(record.get("status_info") or "")
        held = info == HELD_INFO
        spooled = (self.spool_dir / job_id / "job.json").is_file()
        source = job_source(self.data_dir, job_id)
        outputs = list(record.get("outputs") or
                       ([record["output"]] if record.get("output") else []))
        deliveries = []
        for d in record.get("deliveries") or []:
            result = d.get("result") or {}
            deliveries.append({
                "label": d.get("label", ""), "kind": d.get("kind", ""),
                "state": d.get("state", ""), "attempts": d.get("attempts", 0),
                "last_error": d.get("last_error", ""), "info": d.get("info", ""),
                "next_attempt": d.get("next_attempt") or None,
                "cups_job_id": result.get("cups_job_id"), "result": result})
        films = [{"index": i, **film} for i, film in enumerate(record.get("films") or [])]
        session = dict(record.get("session") or {})
        waiting_retry = spooled and state == PENDING and not held and \
            info not in ("", QUEUED_INFO)
        actions = {
            "cancel": spooled and (state == PENDING),
            "hold": spooled and state == PENDING and info == QUEUED_INFO,
            "release": held,
            "delete": not spooled,
            "reprint": source is not None,
        }
        return {
            "job_id": job_id, "state": state, "status_info": info, "held": held,
            "waiting_retry": waiting_retry,
            "created": record.get("created"), "finished": record.get("finished"),
            "calling_ae": record.get("calling_ae", ""), "called_ae": record.get("called_ae", ""),
            "peer": record.get("peer", ""),
            "printer": record.get("printer") or record.get("called_ae", ""),
            "print_job_uid": record.get("print_job_uid", ""),
            "film_session_label": session.get("film_session_label") or "",
            "session": session, "films": films, "film_count": len(films),
            "pages": record.get("pages"), "copies": record.get("copies"),
            "outputs": outputs, "output": outputs[0] if outputs else "",
            "deliveries": deliveries, "error": record.get("error") or "",
            "reprint_of": record.get("reprint_of") or "",
            "events": self.index.events(job_id),
            "reprintable": source is not None, "location": "spool" if spooled else "films",
            "actions": actions,
        }

    # -- actions -----------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a PENDING job (queued, held, or waiting for a delivery retry): it
        finishes as FAILURE with Execution Status Info JOB CANCELED, its sidecar
        written like any finished job's.  A PRINTING job is refused."""
        folder = self._spooled(job_id, "cancel")
        with self._locked(job_id, folder):
            state, _ = spooled_state(folder)
            if state != PENDING:
                raise JobStateError(f"job {job_id} is {state}: only a PENDING or held job "
                                    "can be cancelled")
            atomic_write(folder / CANCEL_MARK, now_iso().encode())
            job = finish_cancelled(self.data_dir, job_id, self.who)
        record_state(job, self.index, f"cancelled{f' by {self.who}' if self.who else ''}")
        return self._summary(job)

    def hold(self, job_id: str) -> dict[str, Any]:
        """Hold a PENDING job that has not started rendering: no worker renders it
        until :meth:`release`; it reports PENDING / JOB HELD.  Holding a held job does
        nothing."""
        folder = self._spooled(job_id, "hold")
        with self._locked(job_id, folder):
            state, info = spooled_state(folder)
            if info == HELD_INFO:
                return self._summary(self._job(folder))
            if state != PENDING or info != QUEUED_INFO:
                raise JobStateError(f"job {job_id} is {state} ({info}): only a PENDING job "
                                    "that has not started printing can be held")
            atomic_write(folder / HELD_MARK, now_iso().encode())
            job = self._job(folder)
        job.status, job.extra["status_info"] = PENDING, HELD_INFO
        record_state(job, self.index, "held")
        return self._summary(job)

    def release(self, job_id: str) -> dict[str, Any]:
        """Release a held job: PENDING (QUEUED) again, queued in a spool worker.
        Releasing a job that is queued and not held does nothing."""
        folder = self._spooled(job_id, "release")
        with self._locked(job_id, folder):
            state, info = spooled_state(folder)
            if info != HELD_INFO:
                if state == PENDING and info == QUEUED_INFO:
                    return self._summary(self._job(folder))
                raise JobStateError(f"job {job_id} is {state} ({info}), not held")
            (folder / HELD_MARK).unlink()
            fsync_dir(folder)
            job = self._job(folder)
        job.status, job.extra["status_info"] = PENDING, QUEUED_INFO
        record_state(job, self.index, "released")
        self.enqueue(job_id)
        return self._summary(job)

    def delete(self, job_id: str) -> None:
        """Delete a finished (or cancelled) job: its film files, its kept source, its
        previews, its sidecar (last: until then the job is still listed and can be
        deleted again) and its index rows.  A job still in the spool is refused."""
        if (self.spool_dir / job_id / "job.json").is_file():
            raise JobStateError(f"job {job_id} is still in the spool: cancel it first")
        side = sidecar_path(self.data_dir, job_id)
        history = self.data_dir / HISTORY / job_id
        if side is None and not history.exists() and self.index.get(job_id) is None:
            raise JobNotFound(job_id)
        if side is not None:
            try:
                record = json.loads(side.read_text("utf-8"))
            except (OSError, ValueError):
                record = {}
            for output in {*(record.get("outputs") or []), record.get("output") or ""}:
                if output:
                    with contextlib.suppress(OSError):
                        Path(output).unlink(missing_ok=True)
        shutil.rmtree(history, ignore_errors=True)
        shutil.rmtree(self.data_dir / PREVIEWS / job_id, ignore_errors=True)
        if side is not None:
            side.unlink(missing_ok=True)
            fsync_dir(side.parent)
        self.index.remove(job_id)
        LOGGER.info("job %s deleted%s", job_id, f" by {self.who}" if self.who else "")

    def reprint(self, job_id: str, printer: str | None = None,
                target: str | None = None) -> str:
        """Print the job's films again as a new job, written durably into the spool
        and queued; returns the new job's id.  Without ``printer`` and ``target`` it
        goes where the job went; otherwise to ``printer`` (a printer profile's name)
        and, with ``target``, to that one target of it (ValueError if unknown)."""
        source = job_source(self.data_dir, job_id)
        if source is None:
            if find_job(self.data_dir, job_id) is None:
                raise JobNotFound(job_id)
            raise JobStateError(f"job {job_id}'s films are no longer kept (history "
                                "retention); it cannot be reprinted")
        data = json.loads((source / "job.json").read_text("utf-8"))
        old = PrintJob.from_json(data)
        new_id = new_job_id()
        extra = {k: v for k, v in old.extra.items()
                 if k in ("printer", "output_profile", "dpi", "targets")}
        if printer is not None or target is not None:
            if self.resolve_targets is None:
                raise ValueError("printer: reprinting to another printer or target needs "
                                 "the node's configuration")
            resolved = self.resolve_targets(printer or str(old.extra.get("printer") or ""),
                                            target)
            name, targets = resolved[0], resolved[1]
            extra["printer"] = name
            extra["targets"] = [t if isinstance(t, dict) else t.to_json() for t in targets]
            if len(resolved) > 2 and resolved[2]:
                extra.update(resolved[2])
        extra.update(print_job_uid=print_job_uid(new_id, UID_ROOT), reprint_of=job_id)
        job = PrintJob(job_id=new_id, created=now_iso(), calling_ae=old.calling_ae,
                       called_ae=old.called_ae, peer=old.peer, session=dict(old.session),
                       films=old.films, extra=extra)
        write_job(self.spool_dir, job, pixels_from=source / PIXELS)
        job.extra["status_info"] = QUEUED_INFO
        record_state(job, self.index, f"reprint of {job_id}")
        with contextlib.suppress(Exception):
            self.index.add_event(job_id, *self._current(job_id), f"reprinted as {new_id}")
        self.enqueue(new_id)
        return new_id

    # -- helpers -----------------------------------------------------------------------
    def _spooled(self, job_id: str, action: str) -> Path:
        """The job's spool folder; a finished job is a state error, an unknown one
        :class:`JobNotFound`."""
        folder = self.spool_dir / job_id
        if (folder / "job.json").is_file():
            return folder
        record = find_job(self.data_dir, job_id)
        if record is None:
            raise JobNotFound(job_id)
        raise JobStateError(f"job {job_id} is {record.get('status')} "
                            f"({record.get('status_info', '')}): finished, nothing to {action}")

    @contextlib.contextmanager
    def _locked(self, job_id: str, folder: Path) -> Any:
        """The job's lock, then a re-check that it is still spooled."""
        try:
            with job_lock(folder, self.lock_timeout):
                if not (folder / "job.json").is_file():
                    raise FileNotFoundError(folder)
                yield
        except JobBusy:
            raise JobStateError(f"job {job_id} is {PRINTING}: it is being delivered now"
                                ) from None
        except FileNotFoundError:
            record = find_job(self.data_dir, job_id)
            if record is None:
                raise JobNotFound(job_id) from None
            raise JobStateError(f"job {job_id} is {record.get('status')} "
                                f"({record.get('status_info', '')}) now") from None

    @staticmethod
    def _job(folder: Path) -> PrintJob:
        return PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))

    def _current(self, job_id: str) -> tuple[str, str]:
        record = find_job(self.data_dir, job_id) or {}
        return str(record.get("status") or DONE), str(record.get("status_info") or "")

    @staticmethod
    def _summary(job: PrintJob) -> dict[str, Any]:
        return {"job_id": job.job_id, "state": job.status,
                "status_info": job.extra.get("status_info", "")}
