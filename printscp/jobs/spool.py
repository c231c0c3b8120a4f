"""The durable print spool and its worker.

A print request is acknowledged only after its job is on disk: the job's record
(``job.json``) and pixel arrays (``pixels.npz``) are written into a temporary folder,
each file fsynced, the folder renamed into ``spool/`` and the spool folder
fsynced.  A background worker renders jobs in arrival order, writes the film
(PDF) and a JSON sidecar into ``films/`` atomically, and only then removes the
job from the spool.  After a crash or restart every job still in ``spool/`` is
rendered again; half-written folders (``.tmp-*``) were never acknowledged and are
deleted.

A finished job's folder is not deleted but moved (one rename) to
``history/<job_id>/`` (``job.json`` and ``pixels.npz``), so it can be reprinted and
previewed; folders older than ``history_days`` are pruned at start and hourly.

Control actions (:mod:`printscp.jobs.control`, any process) and the spool workers
(one per worker process) share each job through a lock file (``.lock``, ``flock``)
in its spool folder and markers beside ``job.json``:

* ``rendering`` — holds the owner (pid and start time of the worker process); the
  job is PRINTING there, and no other worker takes it while that process lives;
* ``held`` — the job is held: no worker renders it (it stays in ``spool/``, across
  restarts) until released;
* ``cancelled`` — written by a cancel before the job is finished as FAILURE; a
  worker or a restart finding it completes the cancel.

A worker takes the lock and checks them when it dequeues a job and before each
delivery attempt; a control action takes it to check the state and act.  A job is
queued in a worker process other than the one acting through a request file,
``spool/.requests/<job_id>``, which whichever worker polls first claims (unlink).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from printscp.core import audit, metrics
from printscp.core.files import atomic_write, fsync_dir
from printscp.jobs.delivery import (
    CANCELLED as TARGET_CANCELLED,
)
from printscp.jobs.delivery import (
    LOCK_FILE,
    Deliver,
    DeliveryError,
    Dispatcher,
    JobDelivery,
    job_lock,
    load_delivery,
    process_token,
    save_delivery,
    token_alive,
)
from printscp.jobs.staging import PixelStage, prune_stages, write_record
from printscp.jobs.state import (
    CANCEL_MARK,
    CANCELED_INFO,
    DONE,
    FAILURE,
    HELD_INFO,
    HELD_MARK,
    HISTORY,
    PENDING,
    PIXELS,
    PRINTING,
    QUEUED_INFO,
    RENDERING_MARK,
    REQUESTS,
    PrintJob,
    film_file_stem,
    new_job_id,
    now_iso,
    spooled_state,
)
from printscp.jobs.targets import Target, snapshot_targets

#: Names that moved to :mod:`printscp.jobs.state` and are still imported from here.
__all__ = ["CANCELED_INFO", "CANCEL_MARK", "DONE", "FAILURE", "HELD_INFO", "HELD_MARK",
           "HISTORY", "PENDING", "PIXELS", "PRINTING", "QUEUED_INFO", "RENDERING_MARK",
           "REQUESTS", "PrintJob", "Spool", "SpoolFull", "film_file_stem", "find_job",
           "finish_job", "job_source", "new_job_id", "now_iso", "print_job_uid",
           "record_state", "request_enqueue", "spooled_state", "write_job"]

LOGGER = logging.getLogger("printscp.spool")

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


def find_job(data_dir: Path, job_id: str, stem: str = "") -> dict[str, Any] | None:
    """The current record of job ``job_id``: its spool entry (PENDING, held, or PRINTING
    while it renders) or its sidecar once done (DONE or FAILURE, cancelled included);
    None if unknown (or deleted).  ``stem``: see :func:`sidecar_path`."""
    folder = Path(data_dir) / "spool" / job_id
    try:
        data = json.loads((folder / "job.json").read_text("utf-8"))
        return _spooled_status(folder, data)
    except (OSError, ValueError):
        pass
    path = sidecar_path(data_dir, job_id, stem)
    if path is not None:
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
    return None


def sidecar_path(data_dir: Path, job_id: str, stem: str = "") -> Path | None:
    """The sidecar (``films/<stem>.json``) of finished job ``job_id``, None if none.
    ``stem``, when known (the job index has it), spares listing ``films/``, which holds
    two files per job: about 10 ms with 10,000 jobs."""
    films = Path(data_dir) / "films"
    if stem:
        side = films / f"{stem}.json"
        try:
            if json.loads(side.read_text("utf-8")).get("job_id") == job_id:
                return side
        except (OSError, ValueError):
            pass
    suffix = job_id.rsplit("-", 1)[-1]
    for side in films.glob(f"*_{suffix}.json"):
        try:
            data = json.loads(side.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("job_id") == job_id:
            return side
    return None


def _spooled_status(folder: Path, data: dict[str, Any], live: bool = True) -> dict[str, Any]:
    """A spooled job's record with its Execution Status (:func:`spooled_state`), its
    deliveries so far and the error a waiting target reported."""
    data["status"], data["status_info"] = spooled_state(folder, live)
    if (folder / HELD_MARK).exists():
        data["held"] = True
    delivery = load_delivery(folder)
    if delivery is not None:
        data["deliveries"] = [asdict(t) for t in delivery.targets]
        waiting = delivery.waiting
        if waiting is not None:
            data["error"] = f"{waiting.label}: {waiting.last_error}"
    return data


# -- the durable write path, finishing, history ------------------------------------------
def write_job(spool_dir: Path, job: PrintJob, arrays: dict[str, NDArray] | None = None,
              pixels_from: Path | None = None) -> Path:
    """Write ``job`` durably as ``spool_dir/<job_id>/``: its pixels (``arrays``, or a
    copy of the ``pixels.npz`` file ``pixels_from``) and ``job.json``, each fsynced, in
    a ``.tmp-`` folder renamed into place, then the spool directory fsynced.  Returns
    the job's folder once all of it is on disk."""
    spool_dir = Path(spool_dir)
    tmp = spool_dir / f".tmp-{job.job_id}"
    try:
        tmp.mkdir()
        with open(tmp / PIXELS, "wb") as f:
            if pixels_from is not None:
                with open(pixels_from, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
            else:  # one uncompressed archive: one fsync for all the pixels of the job
                np.savez(f, **{k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()})
            f.flush()
            os.fsync(f.fileno())
        write_record(tmp / "job.json", job.to_json())
        fsync_dir(tmp)
        os.rename(tmp, spool_dir / job.job_id)
        fsync_dir(spool_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return spool_dir / job.job_id


def request_enqueue(data_dir: Path, job_id: str) -> None:
    """Ask whichever spool worker polls first (any process of the node) to queue
    ``job_id``, e.g. after a release or a reprint from the console or the CLI."""
    requests = Path(data_dir) / "spool" / REQUESTS
    requests.mkdir(parents=True, exist_ok=True)
    atomic_write(requests / job_id, b"")


def finish_job(data_dir: Path, job_id: str, fields: dict[str, Any], status: str) -> PrintJob:
    """Finish a spooled job: its record (sidecar) goes into ``films/`` atomically, then
    its folder moves (one rename) to ``history/<job_id>/`` with only ``job.json`` and
    ``pixels.npz`` left, for reprints and previews.  The caller holds the job (its
    worker, or the job's lock).  Returns the job with the sidecar's state in ``extra``."""
    data_dir = Path(data_dir)
    spool_dir = data_dir / "spool"
    folder = spool_dir / job_id
    job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
    job.status = status
    sidecar = job.to_json()
    sidecar.update(fields)
    sidecar.update(status=status, finished=now_iso())
    sidecar.setdefault("status_info", "NORMAL")
    job.extra["status_info"] = sidecar["status_info"]
    job.extra.update({k: sidecar[k] for k in ("deliveries", "output", "outputs", "error",
                                              "pages", "finished") if sidecar.get(k)})
    stem = film_file_stem(job)
    job.extra["stem"] = stem
    atomic_write(data_dir / "films" / f"{stem}.json",
                 json.dumps(sidecar, indent=1).encode("utf-8"))
    for entry in os.scandir(folder):  # keep the source only (the lock until it moved)
        if entry.name not in ("job.json", PIXELS, LOCK_FILE) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    history = data_dir / HISTORY
    history.mkdir(exist_ok=True)
    kept = history / job_id
    try:
        os.rename(folder, kept)
        os.utime(kept)  # the retention counts from the end of the job
        (kept / LOCK_FILE).unlink(missing_ok=True)
    except OSError as exc:  # never leave a finished job in the spool
        LOGGER.warning("cannot keep job %s in %s (%s): removing it", job_id, history, exc)
        shutil.rmtree(folder, ignore_errors=True)
    fsync_dir(spool_dir)
    return job


def prune_history(data_dir: Path, days: float) -> int:
    """Remove the kept sources of jobs finished more than ``days`` ago; returns how
    many.  Their sidecars and films stay (listed, but no longer reprintable)."""
    history = Path(data_dir) / HISTORY
    cutoff = time.time() - days * 86400
    removed = 0
    try:
        entries = list(os.scandir(history))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        LOGGER.info("history: removed %d job source(s) older than %g day(s)", removed, days)
    return removed


def job_source(data_dir: Path, job_id: str) -> Path | None:
    """The folder holding job ``job_id``'s ``job.json`` and ``pixels.npz``: in
    ``history/`` once finished, in ``spool/`` before; None when gone (pruned)."""
    for where in (HISTORY, "spool"):
        folder = Path(data_dir) / where / job_id
        if (folder / "job.json").is_file() and (folder / PIXELS).is_file():
            return folder
    return None


def record_state(job: PrintJob, index: Any = None, detail: str = "",
                 later: bool = False) -> None:
    """The one path of every job state change, whoever makes it (a spool worker, a
    control action): the ``-v`` log line, the metrics, and the job index (its summary
    and an event); ``later``: the index write is queued (the print path's way)."""
    log_state(job)
    printer = str(job.extra.get("printer") or job.called_ae)
    metrics.job_state(job.status, printer)
    if job.status == DONE:
        copies = int(job.session.get("number_of_copies") or 1)
        metrics.printed(printer, len(job.films),
                        int(job.extra.get("pages") or len(job.films) * copies))
    if index is not None:
        try:
            if later:
                index.record_later(job.to_json(), detail)
            else:
                index.record(job.to_json(), detail)
        except Exception:  # the files are the truth; the index catches up on sync()
            LOGGER.exception("cannot record job %s in the index", job.job_id)


#: ``renderer(job_folder, data_dir)`` renders the job in its spool folder for its
#: targets and returns what goes into its sidecar (output paths, pages...).
Renderer = Callable[[Path, Path], dict[str, Any]]

#: Seconds between two looks at the request folder and at queued jobs that left.
POLL_SECONDS = 0.5
#: Seconds between two prunings of ``history/``.
PRUNE_SECONDS = 3600.0
#: Seconds after which a pixel stage nobody wrote to is left over by a worker process
#: that died (the spool's recovery at start removes every one).
STAGE_MAX_AGE = 86400.0


class Spool:
    """Durable queue of print jobs under ``data_dir`` with one rendering worker.

    The worker thread hands each job to ``renderer``, on ``executor`` when one is
    given (the node uses a process pool) or on its own thread; an exception marks
    the job FAILURE, and a dead render process is replaced and the job tried once
    more.  ``executor_factory`` makes a new executor after such a crash.

    ``index`` (a :class:`~printscp.jobs.index.JobIndex`; by default the data
    directory's) records every state change; ``history_days`` is how long finished
    jobs' sources are kept in ``history/`` (0: not kept).
    """

    def __init__(self, data_dir: Path, renderer: Renderer, max_queued: int = 100,
                 executor_factory: Callable[[], Executor] | None = None,
                 deliver: Deliver | None = None, index: Any = None,
                 history_days: float = 7.0, max_queued_per_ae: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.spool_dir = Path(data_dir) / "spool"
        self.films_dir = Path(data_dir) / "films"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.films_dir.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        self.max_queued = max_queued
        #: Jobs one calling AE title may have queued ([limits] pending_jobs_per_ae; 0:
        #: only ``max_queued``), so one modality cannot fill the queue for all.
        self.max_queued_per_ae = max_queued_per_ae
        self._calling_ae: dict[str, str] = {}  #: job id -> calling AE, of queued jobs
        self.history_days = history_days
        if index is None:
            from printscp.jobs.index import JobIndex

            index = JobIndex(self.data_dir)
        self.index = index
        # (priority rank, arrival, job id): HIGH before MED before LOW, in order of arrival.
        self._queue: queue.PriorityQueue[tuple[int, int, str | None]] = queue.PriorityQueue()
        self._arrivals = itertools.count()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        #: Jobs this spool rendered and whose deliveries its dispatcher runs.
        self._active: set[str] = set()
        self._submitting: set[str] = set()  #: queued, still being written
        self._token = process_token()
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_poll = 0.0
        self._last_prune = 0.0
        self.listeners: list[Callable[[PrintJob], None]] = []
        self._executor_factory = executor_factory
        self._executor: Executor | None = None
        self._deliver = deliver
        self.dispatcher = self._new_dispatcher()

    # -- submission -----------------------------------------------------------------
    def submit(self, job: PrintJob, arrays: dict[str, NDArray],
               stage: PixelStage | None = None, staged: Sequence[str] = ()) -> None:
        """Write ``job`` durably into the spool and queue it; returns once on disk.

        ``stage``: the job's pixels were written as they arrived; its members
        ``staged`` and ``arrays`` make the job's pixel file (:mod:`.staging`)."""
        with self._lock:
            if len(self._queued) >= self.max_queued:
                raise SpoolFull(f"{len(self._queued)} jobs already queued")
            if self.max_queued_per_ae:
                mine = self._queued_from(job.calling_ae)
                if mine >= self.max_queued_per_ae:
                    LOGGER.warning("print job from %s refused: %d of its jobs already "
                                   "queued ([limits] pending_jobs_per_ae)", job.calling_ae,
                                   mine, extra={"calling_ae": job.calling_ae})
                    raise SpoolFull(f"{mine} jobs from {job.calling_ae} already queued")
                self._calling_ae[job.job_id] = job.calling_ae
            self._queued.add(job.job_id)
            self._submitting.add(job.job_id)
        try:
            if stage is not None:
                stage.commit(list(staged), arrays, job.to_json(), job.job_id)
            else:
                write_job(self.spool_dir, job, arrays)
        except BaseException:
            with self._lock:
                self._queued.discard(job.job_id)
            raise
        finally:
            with self._lock:
                self._submitting.discard(job.job_id)
        self._enqueue(job.job_id, job.session.get("print_priority"))
        job.extra.setdefault("status_info", QUEUED_INFO)
        record_state(job, self.index, later=True)
        audit.print_job(job, spooled=True)

    def _queued_from(self, calling_ae: str) -> int:
        """Queued jobs of ``calling_ae`` (under the lock); forgets those that left."""
        for job_id in [j for j in self._calling_ae if j not in self._queued]:
            del self._calling_ae[job_id]
        return sum(ae == calling_ae for ae in self._calling_ae.values())

    def enqueue(self, job_id: str) -> None:
        """Queue job ``job_id``, already in ``spool/`` (released, reprinted), here."""
        with self._lock:
            if job_id in self._queued:
                return
            self._queued.add(job_id)
        self._enqueue(job_id, _spooled_priority(self.spool_dir / job_id))

    # -- worker ---------------------------------------------------------------------
    def start(self, recover: bool = True) -> None:
        """Recover jobs left in the spool (unless ``recover`` is false: another worker
        process of the same node does it), prune old history, then start the worker."""
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
        self._prune()
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
                          self._delivery_changed, self._gone, self._may_deliver)

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
        with contextlib.suppress(Exception):
            self.index.flush()
        with self._lock:
            self._active.clear()

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
            if time.monotonic() - self._last_poll >= POLL_SECONDS:
                self._poll()
            try:
                _, _, job_id = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if job_id is None:
                break
            try:
                self._process(job_id)
            except Exception:  # never let one job kill the worker
                LOGGER.exception("print job %s could not be processed", job_id)
                self._forget(job_id)

    def _poll(self) -> None:
        """Claim requests to queue a job (a release, a reprint), forget queued jobs that
        left the spool (cancelled elsewhere), prune ``history/`` once an hour."""
        self._last_poll = time.monotonic()
        try:
            requested = os.listdir(self.spool_dir / REQUESTS)
        except FileNotFoundError:
            requested = []
        for name in requested:
            if name.startswith("."):
                continue
            try:
                os.unlink(self.spool_dir / REQUESTS / name)  # exactly one process wins
            except FileNotFoundError:
                continue
            if (self.spool_dir / name / "job.json").is_file():
                self.enqueue(name)
        with self._lock:
            queued = list(self._queued - self._submitting)
        for job_id in queued:
            if not (self.spool_dir / job_id).is_dir():
                self._forget(job_id)
                self._finished_elsewhere(job_id)
        if self._last_poll - self._last_prune >= PRUNE_SECONDS:
            self._prune()

    def _prune(self) -> None:
        self._last_prune = time.monotonic()
        try:
            prune_history(self.data_dir, self.history_days)
        except OSError:
            LOGGER.exception("cannot prune %s", self.data_dir / HISTORY)
        prune_stages(self.spool_dir, STAGE_MAX_AGE)

    def _finished_elsewhere(self, job_id: str) -> None:
        """A job this spool had queued was finished by another process (cancelled from
        the console or the command line): the listeners here (the Print Management
        service, whose association may be watching the job's events) hear its end.
        Its state was recorded by whoever finished it; nothing is recorded again."""
        if not self.listeners:
            return
        record = find_job(self.data_dir, job_id)
        if record is None or record.get("status") not in (DONE, FAILURE):
            return
        job = PrintJob.from_json(record)
        for listener in self.listeners:
            try:
                listener(job)
            except Exception:  # a listener never stops the spool
                LOGGER.exception("print job listener failed")

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._queued.discard(job_id)
            self._active.discard(job_id)

    def _gone(self, job_id: str) -> None:
        """The dispatcher found the job's folder gone: it was cancelled elsewhere."""
        self._forget(job_id)

    def _may_deliver(self, folder: Path) -> bool:
        """Asked under the job's lock before each delivery attempt."""
        if (folder / CANCEL_MARK).exists():
            self._finish_cancelled(folder.name)
            return False
        return True

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

    def _notify(self, job: PrintJob, detail: str = "") -> None:
        record_state(job, self.index, detail, later=True)
        for listener in self.listeners:
            try:
                listener(job)
            except Exception:  # a listener never stops the spool
                LOGGER.exception("print job listener failed")

    def _claim(self, job_id: str) -> JobDelivery | bool | None:
        """Under the job's lock: decide whether this worker processes the job now.
        False: not here (gone, held, cancelled, or another live process owns it);
        otherwise its delivery state (None: to render, after the ``rendering`` mark
        naming this process was written)."""
        folder = self.spool_dir / job_id
        if not (folder / "job.json").is_file():
            return False
        if (folder / CANCEL_MARK).exists():
            self._finish_cancelled(job_id)
            return False
        if (folder / HELD_MARK).exists():
            LOGGER.info("job %s is held: not rendered until released", job_id)
            return False
        with self._lock:
            if job_id in self._active:  # queued twice here (a release crossed the queue)
                return False
        mark = folder / RENDERING_MARK
        try:
            owner = mark.read_text("ascii").strip()
        except FileNotFoundError:
            owner = None
        if owner and owner != self._token and token_alive(owner):
            return False  # another worker process renders or delivers it
        delivery = load_delivery(folder) if owner is not None else None
        mark.write_text(self._token, "ascii")
        with self._lock:
            self._active.add(job_id)
        return delivery

    def _process(self, job_id: str) -> None:
        """Render the job (unless a previous run did), then hand its network targets to
        the dispatcher; a job with only file targets is finished here."""
        folder = self.spool_dir / job_id
        try:
            with job_lock(folder):
                claimed = self._claim(job_id)
        except FileNotFoundError:
            claimed = False
        if claimed is False:
            self._forget(job_id)
            return
        delivery = claimed if isinstance(claimed, JobDelivery) else None
        job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
        targets = snapshot_targets(job.extra.get("targets"))
        printer = str(job.extra.get("printer") or "")
        if delivery is None:
            started = now_iso()
            t0 = time.perf_counter()
            job.status = PRINTING
            job.extra["status_info"] = "NORMAL"
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
            seconds = time.perf_counter() - t0
            metrics.rendered(printer or job.called_ae, seconds)
            rendered.update(started=started, render_seconds=round(seconds, 3))
            delivery = JobDelivery.after_render(targets, rendered)
            save_delivery(folder, delivery)
        if delivery.finished:
            self._delivered(job_id, delivery)
        else:
            self.dispatcher.dispatch(folder, targets, printer)

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
        job.extra["deliveries"] = [asdict(t) for t in delivery.targets]
        job.extra["error"] = f"{waiting.label}: {waiting.last_error}"
        self._notify(job, f"{waiting.label}: attempt {waiting.attempts} failed: "
                          f"{waiting.last_error}")

    def _finish_cancelled(self, job_id: str) -> None:
        """A ``cancelled`` mark found (the canceller died before finishing): finish it."""
        job = finish_cancelled(self.data_dir, job_id)
        self._forget(job_id)
        self._notify(job, "cancelled")

    def _finish(self, job_id: str, fields: dict[str, Any], status: str) -> None:
        """Write the job's record (sidecar) into ``films/``, keep its source in
        ``history/`` (moved out of the spool)."""
        job = finish_job(self.data_dir, job_id, fields, status)
        self._forget(job_id)
        self._notify(job)
        audit.print_job(job, spooled=False)


def finish_cancelled(data_dir: Path, job_id: str, who: str = "") -> PrintJob:
    """Finish the spooled job ``job_id`` as cancelled (FAILURE, JOB CANCELED), its
    targets not yet delivered marked cancelled.  The caller holds the job's lock and
    has written the ``cancelled`` mark."""
    folder = Path(data_dir) / "spool" / job_id
    fields: dict[str, Any] = {"status_info": CANCELED_INFO, "cancelled": now_iso(),
                              "error": f"cancelled{f' by {who}' if who else ''}"}
    delivery = load_delivery(folder)
    if delivery is not None:
        fields.update(delivery.rendered)
        for t in delivery.targets:
            if t.state == "pending":
                t.state = TARGET_CANCELLED
        fields["deliveries"] = [asdict(t) for t in delivery.targets]
    return finish_job(data_dir, job_id, fields, FAILURE)


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
