"""The durable print spool and its worker.

A print request is acknowledged only after its job is on disk: the job's record
(``job.json``) and pixel arrays (``pixels.npz``) are written into a temporary folder,
each file fsynced, the folder renamed into ``spool/`` and the spool folder
fsynced.  A background worker renders jobs in arrival order, writes the film
(PDF) and a JSON sidecar into ``films/`` atomically, and only then removes the
job from the spool.  After a crash or restart every job still in ``spool/`` is
rendered again; half-written folders (``.tmp-*``) were never acknowledged and are
deleted.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from printscp.core.files import atomic_write, fsync_dir, safe_name
from printscp.jobs.delivery import (
    Deliver,
    DeliveryError,
    Dispatcher,
    JobDelivery,
    load_delivery,
    save_delivery,
)
from printscp.jobs.targets import Target, snapshot_targets

LOGGER = logging.getLogger("printscp.spool")

PENDING = "PENDING"
PRINTING = "PRINTING"
DONE = "DONE"
FAILURE = "FAILURE"


#: File of a spooled job holding its pixel arrays by name.
PIXELS = "pixels.npz"
#: Marker in a job's spool folder while it is being rendered (Execution Status PRINTING).
RENDERING_MARK = "rendering"


def load_arrays(folder: Path) -> dict[str, NDArray]:
    """The pixel arrays of the job in spool ``folder``."""
    with np.load(Path(folder) / PIXELS, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


#: Print Priority (2000,0020) -> order of rendering.
PRIORITY_RANK = {"HIGH": 0, "MED": 1, "LOW": 2}


def _spooled_priority(folder: Path) -> str:
    try:
        job = json.loads((folder / "job.json").read_text("utf-8"))
        return str(job.get("session", {}).get("print_priority") or "MED")
    except (OSError, ValueError):
        return "MED"


class SpoolFull(Exception):
    """The spool holds ``max_queued`` jobs already (print queue is full)."""


@dataclass
class PrintJob:
    """A print request: who sent it, the session settings and the films to print."""

    job_id: str
    created: str
    calling_ae: str
    called_ae: str
    peer: str
    session: dict[str, Any]
    films: list[dict[str, Any]]
    status: str = PENDING
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "created": self.created, "calling_ae": self.calling_ae,
            "called_ae": self.called_ae, "peer": self.peer, "session": self.session,
            "films": self.films, "status": self.status, **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrintJob:
        known = {"job_id", "created", "calling_ae", "called_ae", "peer", "session", "films",
                 "status"}
        return cls(**{k: data[k] for k in known if k in data},
                   extra={k: v for k, v in data.items() if k not in known})


def new_job_id() -> str:
    """Time-ordered, unique job id: UTC timestamp plus 8 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")




def print_job_uid(job_id: str, root: str) -> str:
    """The Print Job SOP Instance UID of a job: derived from its id, so any process of
    the node can find the job from the UID alone (``root`` ends with a dot)."""
    stamp, _, suffix = job_id.partition("-")
    digits = "".join(ch for ch in stamp if ch.isdigit())
    return f"{root}1.{int(digits)}.{int(suffix, 16)}"


def job_id_from_uid(uid: str, root: str) -> str | None:
    """Inverse of :func:`print_job_uid`; None for a UID that is not one of ours."""
    if not uid.startswith(root + "1."):
        return None
    try:
        digits, number = uid[len(root) + 2:].split(".")
        digits = digits.zfill(20)
        stamp = f"{digits[:8]}T{digits[8:]}Z"
        return f"{stamp}-{int(number):08x}"
    except ValueError:
        return None


def find_job(data_dir: Path, job_id: str) -> dict[str, Any] | None:
    """The current record of job ``job_id``: its spool entry (PENDING, or PRINTING while
    it renders) or its sidecar once done (DONE or FAILURE); None if unknown."""
    folder = Path(data_dir) / "spool" / job_id
    try:
        data = json.loads((folder / "job.json").read_text("utf-8"))
        return _spooled_status(folder, data)
    except (OSError, ValueError):
        pass
    suffix = job_id.rsplit("-", 1)[-1]
    for side in (Path(data_dir) / "films").glob(f"*_{suffix}.json"):
        try:
            data = json.loads(side.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("job_id") == job_id:
            return data
    return None


def _spooled_status(folder: Path, data: dict[str, Any], live: bool = True) -> dict[str, Any]:
    """A spooled job's Execution Status: PENDING until rendering starts, PRINTING while
    it renders and is delivered, PENDING again while a target waits for a retry.
    Not ``live`` (read with the server maybe down): PENDING, the job waits for a node."""
    printing = live and (folder / RENDERING_MARK).exists()
    data["status"] = PRINTING if printing else PENDING
    data["status_info"] = "NORMAL" if data["status"] == PRINTING else "QUEUED"
    delivery = load_delivery(folder)
    if delivery is not None:
        data["deliveries"] = [asdict(t) for t in delivery.targets]
        waiting = delivery.waiting
        if waiting is not None:
            data["status"], data["status_info"] = PENDING, waiting.info
            data["error"] = f"{waiting.label}: {waiting.last_error}"
    return data


def film_file_stem(job: PrintJob) -> str:
    """``YYYYMMDD-HHMMSS_<calling AE>[_<Film Session Label>]_<8 hex>``, filesystem-safe."""
    stamp = job.job_id[:8] + "-" + job.job_id[9:15]
    parts = [stamp, job.calling_ae.strip() or "UNKNOWN"]
    label = str(job.session.get("film_session_label") or "").strip()
    if label:
        parts.append(label[:40])
    parts.append(job.job_id.rsplit("-", 1)[-1])
    return "_".join(safe_name(p) for p in parts)


#: ``renderer(job_folder, data_dir)`` renders the job in its spool folder for its
#: targets and returns what goes into its sidecar (output paths, pages...).
Renderer = Callable[[Path, Path], dict[str, Any]]


class Spool:
    """Durable queue of print jobs under ``data_dir`` with one rendering worker.

    The worker thread hands each job to ``renderer``, on ``executor`` when one is
    given (the node uses a process pool) or on its own thread; an exception marks
    the job FAILURE, and a dead render process is replaced and the job tried once
    more.  ``executor_factory`` makes a new executor after such a crash.
    """

    def __init__(self, data_dir: Path, renderer: Renderer, max_queued: int = 100,
                 executor_factory: Callable[[], Executor] | None = None,
                 deliver: Deliver | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.spool_dir = Path(data_dir) / "spool"
        self.films_dir = Path(data_dir) / "films"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.films_dir.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        self.max_queued = max_queued
        # (priority rank, arrival, job id): HIGH before MED before LOW, in order of arrival.
        self._queue: queue.PriorityQueue[tuple[int, int, str | None]] = queue.PriorityQueue()
        self._arrivals = itertools.count()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self.listeners: list[Callable[[PrintJob], None]] = []
        self._executor_factory = executor_factory
        self._executor: Executor | None = None
        self._deliver = deliver
        self.dispatcher = self._new_dispatcher()

    # -- submission -----------------------------------------------------------------
    def submit(self, job: PrintJob, arrays: dict[str, NDArray]) -> None:
        """Write ``job`` durably into the spool and queue it; returns once on disk."""
        with self._lock:
            if len(self._queued) >= self.max_queued:
                raise SpoolFull(f"{len(self._queued)} jobs already queued")
            self._queued.add(job.job_id)
        try:
            tmp = self.spool_dir / f".tmp-{job.job_id}"
            tmp.mkdir()
            # One uncompressed archive: one fsync for all the pixels of the job.
            with open(tmp / PIXELS, "wb") as f:
                np.savez(f, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
                f.flush()
                os.fsync(f.fileno())
            with open(tmp / "job.json", "w", encoding="utf-8") as f:
                json.dump(job.to_json(), f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(tmp)
            os.rename(tmp, self.spool_dir / job.job_id)
            fsync_dir(self.spool_dir)
        except BaseException:
            with self._lock:
                self._queued.discard(job.job_id)
            shutil.rmtree(self.spool_dir / f".tmp-{job.job_id}", ignore_errors=True)
            raise
        self._enqueue(job.job_id, job.session.get("print_priority"))
        log_state(job)

    # -- worker ---------------------------------------------------------------------
    def start(self, recover: bool = True) -> None:
        """Recover jobs left in the spool (unless ``recover`` is false: another worker
        process of the same node does it), then start the worker."""
        recovered: list[str] = []
        if recover:
            for leftover in self.spool_dir.glob(".tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            recovered = sorted(p.name for p in self.spool_dir.iterdir()
                               if p.is_dir() and not p.name.startswith("."))
        with self._lock:
            for job_id in recovered:
                if job_id not in self._queued:
                    self._queued.add(job_id)
                    self._enqueue(job_id, _spooled_priority(self.spool_dir / job_id))
        if recovered:
            LOGGER.info("recovered %d spooled job(s)", len(recovered))
        self._stopping.clear()
        if self.dispatcher.stopped:
            self.dispatcher = self._new_dispatcher()
        if self._executor_factory is not None and self._executor is None:
            self._executor = self._executor_factory()
        self._worker = threading.Thread(target=self._run, name="print-spool", daemon=True)
        self._worker.start()

    @property
    def executor(self) -> Executor | None:
        """Where jobs are rendered (None: on the spool's own thread)."""
        return self._executor

    def _enqueue(self, job_id: str, priority: object) -> None:
        self._queue.put((PRIORITY_RANK.get(str(priority or "MED"), 1), next(self._arrivals),
                         job_id))

    def _new_dispatcher(self) -> Dispatcher:
        return Dispatcher(self.data_dir, self._deliver_one, self._delivered,
                          self._delivery_changed)

    def _deliver_one(self, target: Target, folder: Path, index: int) -> dict[str, Any]:
        if self._deliver is None:
            raise DeliveryError(f"no delivery for {target.kind.value} targets here",
                                retriable=False)
        return self._deliver(target, folder, index)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the job being rendered, leave the rest spooled for the next start
        (deliveries waiting for a retry resume then)."""
        self._stopping.set()
        self.dispatcher.stop()
        self._queue.put((-1, next(self._arrivals), None))  # ahead of every job
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued job has been rendered (for tests and tools)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if not self._queued:
                    return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while not self._stopping.is_set():
            _, _, job_id = self._queue.get()
            if job_id is None:
                break
            try:
                self._process(job_id)
            except Exception:  # never let one job kill the worker
                LOGGER.exception("print job %s could not be processed", job_id)
                with self._lock:
                    self._queued.discard(job_id)

    def _render(self, folder: Path) -> dict[str, Any]:
        if self._executor is None:
            return self.renderer(folder, self.data_dir)
        try:
            return self._executor.submit(self.renderer, folder, self.data_dir).result()
        except BrokenProcessPool:
            LOGGER.error("render process died; starting a new one and retrying %s", folder.name)
            assert self._executor_factory is not None
            self._executor = self._executor_factory()
            return self._executor.submit(self.renderer, folder, self.data_dir).result()

    def _notify(self, job: PrintJob) -> None:
        log_state(job)
        for listener in self.listeners:
            try:
                listener(job)
            except Exception:  # a listener never stops the spool
                LOGGER.exception("print job listener failed")

    def _process(self, job_id: str) -> None:
        """Render the job (unless a previous run did), then hand its network targets to
        the dispatcher; a job with only file targets is finished here."""
        folder = self.spool_dir / job_id
        job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
        targets = snapshot_targets(job.extra.get("targets"))
        delivery = load_delivery(folder)
        if delivery is None:
            started = now_iso()
            t0 = time.perf_counter()
            (folder / RENDERING_MARK).touch()
            job.status = PRINTING
            self._notify(job)
            try:
                rendered = self._render(folder)
            except Exception as exc:
                LOGGER.error("print job %s failed: %s", job_id, exc)
                self._finish(job_id, {"error": f"{type(exc).__name__}: {exc}",
                                      "started": started, "status_info": "INVALID PAGE DES",
                                      "render_seconds": round(time.perf_counter() - t0, 3)},
                             FAILURE)
                return
            rendered.update(started=started, render_seconds=round(time.perf_counter() - t0, 3))
            delivery = JobDelivery.after_render(targets, rendered)
            save_delivery(folder, delivery)
        if delivery.finished:
            self._delivered(job_id, delivery)
        else:
            self.dispatcher.dispatch(folder, targets, str(job.extra.get("printer") or ""))

    def _delivered(self, job_id: str, delivery: JobDelivery) -> None:
        """Every target is done or given up: the job is DONE only if all succeeded."""
        fields = dict(delivery.rendered)
        fields["deliveries"] = [asdict(t) for t in delivery.targets]
        failed = [t for t in delivery.targets if t.state != "done"]
        if failed:
            fields["error"] = "; ".join(f"{t.label}: {t.last_error}" for t in failed)
            fields["status_info"] = failed[0].info or "PRINTER DOWN"
        self._finish(job_id, fields, FAILURE if failed else DONE)

    def _delivery_changed(self, job_id: str, delivery: JobDelivery) -> None:
        """A target failed and waits for a retry: the job is PENDING on that printer."""
        waiting = delivery.waiting
        if waiting is None:
            return
        folder = self.spool_dir / job_id
        try:
            job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
        except (OSError, ValueError):
            return
        job.status = PENDING
        job.extra["status_info"] = waiting.info
        self._notify(job)

    def _finish(self, job_id: str, fields: dict[str, Any], status: str) -> None:
        """Write the job's record (sidecar) into ``films/``, remove it from the spool."""
        folder = self.spool_dir / job_id
        job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
        job.status = status
        sidecar = job.to_json()
        sidecar.update(fields)
        sidecar.update(status=status, finished=now_iso())
        sidecar.setdefault("status_info", "NORMAL")
        job.extra["status_info"] = sidecar["status_info"]
        job.extra.update({k: sidecar[k] for k in ("deliveries", "output", "error")
                          if sidecar.get(k)})
        atomic_write(self.films_dir / f"{film_file_stem(job)}.json",
                     json.dumps(sidecar, indent=1).encode("utf-8"))
        shutil.rmtree(folder)
        fsync_dir(self.spool_dir)
        with self._lock:
            self._queued.discard(job_id)
        self._notify(job)


def log_state(job: PrintJob) -> None:
    """One line per state change of a job (``-v``): id, calling AE, printer, films,
    state and its detail, and each target's delivery once there is one."""
    deliveries = job.extra.get("deliveries") or []
    done = ", ".join(f"{d.get('label') or d.get('target', '?')} {d.get('state', '?')}"
                     for d in deliveries if isinstance(d, dict))
    info = job.extra.get("status_info") or ""
    result = job.extra.get("error") or job.extra.get("output") or ""
    LOGGER.info("job %s %s%s: from %s to printer %s, %d film(s)%s%s", job.job_id, job.status,
                f" ({info})" if info else "", job.calling_ae,
                job.extra.get("printer") or job.called_ae, len(job.films),
                f"; deliveries: {done}" if done else "", f"; {result}" if result else "",
                extra={"job_id": job.job_id, "state": job.status, "calling_ae": job.calling_ae,
                       "printer": job.extra.get("printer") or job.called_ae,
                       "films": len(job.films), "status_info": info,
                       "deliveries": deliveries})


def list_jobs(data_dir: Path) -> list[dict[str, Any]]:
    """Every job known under ``data_dir``: spooled ones (PENDING) and finished ones."""
    data_dir = Path(data_dir)
    jobs: list[dict[str, Any]] = []
    spool = data_dir / "spool"
    if spool.is_dir():
        for folder in sorted(spool.iterdir()):
            if folder.name.startswith(".") or not (folder / "job.json").is_file():
                continue
            try:
                data = json.loads((folder / "job.json").read_text("utf-8"))
            except (OSError, ValueError):
                continue
            jobs.append(_spooled_status(folder, data, live=False))
    films = data_dir / "films"
    if films.is_dir():
        for side in sorted(films.glob("*.json")):
            try:
                jobs.append(json.loads(side.read_text("utf-8")))
            except (OSError, ValueError):
                continue
    jobs.sort(key=lambda j: j.get("job_id", ""))
    return jobs
