"""Delivering rendered jobs to their network targets, with retries that survive restarts.

After a job is rendered its file targets are done; each CUPS queue or upstream
DICOM printer is then tried on its own thread (one per target, so jobs reach a
printer in order and a slow printer never holds up another).  A failure that may
pass — printer unreachable, queue stopped, association refused — is retried with
back-off; a definitive one (the printer refused the film) fails that target.  The
per-target state of a job lives in its spool folder (``delivery.json``, written
atomically), so a restart resumes where it stopped and nothing acknowledged is
lost.  Each target's health (``<data>/targets/<id>.json``) is what the Printer's
status reports, from any worker process.

Delivery is at least once: a crash between a printer accepting a film and the
state being written prints that film again after the restart.

Each attempt holds the job's lock (:func:`job_lock`) from checking that the job is
still in the spool until its outcome is saved, so a control action in another
process (a cancel) never acts on a job while a printer is receiving it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from printscp.core import metrics
from printscp.core.files import atomic_write, safe_name
from printscp.jobs.targets import FileTarget, Target

LOGGER = logging.getLogger("printscp.delivery")

DELIVERY_FILE = "delivery.json"
PENDING, DONE, FAILED = "pending", "done", "failed"
#: A target's state once its job was cancelled before it was delivered there.
CANCELLED = "cancelled"
#: The lock file of a job's spool folder.
LOCK_FILE = ".lock"


class JobBusy(Exception):
    """The job's lock stayed taken: another process or thread is acting on it."""


@contextlib.contextmanager
def job_lock(folder: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock of the job in spool ``folder`` (``flock`` on its ``.lock``): the
    spool worker of any process and the control actions take it before they look at
    or change the job's state.  ``timeout`` None waits for ever; otherwise
    :class:`JobBusy` after ``timeout`` seconds.  A folder that is gone (the job was
    finished and moved away) raises FileNotFoundError; callers re-check what they read
    before they took the lock, since the job may have changed while they waited."""
    fd = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            end = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= end:
                        raise JobBusy(str(folder)) from None
                    time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


def process_token(pid: int | None = None) -> str:
    """``pid:start time`` of a process (this one by default): names the owner of a job
    being rendered, and tells a live owner from a dead one whose pid was reused
    (containers restart their pids from 1)."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start = fields[19].decode()
        if fields[0] in (b"Z", b"X"):
            # Dead, not yet reaped: a killed node's processes stay zombies under a PID 1
            # that does not reap (some containers' init), and a job they owned would
            # never be taken over.
            start = "dead"
    except (OSError, IndexError):
        start = "?"
    return f"{pid}:{start}"


def token_alive(token: str) -> bool:
    """Whether the process named by ``token`` (:func:`process_token`) is running."""
    try:
        pid = int(token.split(":", 1)[0])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return process_token(pid) == token

#: Printer Status Info / Execution Status Info while a target waits for a retry, and
#: when it was given up (PS3.3 C.13.9.1 defined terms).
OFFLINE_INFO = "PRINTER OFFLINE"
DOWN_INFO = "PRINTER DOWN"


class DeliveryError(Exception):
    """A target could not take the job.  ``retriable``: the cause may pass (try again
    later); ``info``: the Execution Status Info term to report."""

    def __init__(self, message: str, *, retriable: bool, info: str = "") -> None:
        super().__init__(message)
        self.retriable = retriable
        self.info = info or (OFFLINE_INFO if retriable else DOWN_INFO)


@dataclass
class TargetState:
    label: str
    kind: str
    index: int  #: position in the job's target list
    state: str = PENDING
    attempts: int = 0
    next_attempt: float = 0.0  #: epoch seconds
    last_error: str = ""
    info: str = ""
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobDelivery:
    """What the render step produced and where each target stands."""

    rendered: dict[str, Any]
    targets: list[TargetState]

    @property
    def finished(self) -> bool:
        return all(t.state != PENDING for t in self.targets)

    @property
    def succeeded(self) -> bool:
        return all(t.state == DONE for t in self.targets)

    @property
    def waiting(self) -> TargetState | None:
        """A target that failed and waits for its next attempt, if any."""
        return next((t for t in self.targets if t.state == PENDING and t.attempts), None)

    def to_json(self) -> dict[str, Any]:
        return {"rendered": self.rendered, "targets": [asdict(t) for t in self.targets]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobDelivery:
        return cls(data["rendered"], [TargetState(**t) for t in data["targets"]])

    @classmethod
    def after_render(cls, targets: tuple[Target, ...], rendered: dict[str, Any]) -> JobDelivery:
        states = []
        for index, target in enumerate(targets):
            st = TargetState(target.label, target.kind.value, index)
            if isinstance(target, FileTarget):  # written by the render step itself
                st.state = DONE
            states.append(st)
        return cls(rendered, states)


def load_delivery(folder: Path) -> JobDelivery | None:
    try:
        return JobDelivery.from_json(json.loads((folder / DELIVERY_FILE).read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        LOGGER.error("unreadable %s in %s: rendering the job again", DELIVERY_FILE, folder)
        return None


def save_delivery(folder: Path, delivery: JobDelivery) -> None:
    atomic_write(folder / DELIVERY_FILE, json.dumps(delivery.to_json(), indent=1).encode())


# -- target health ---------------------------------------------------------------------
def _health_path(data_dir: Path, label: str) -> Path:
    return Path(data_dir) / "targets" / (safe_name(label) + ".json")


def record_health(data_dir: Path, label: str, printer: str, ok: bool, error: str = "",
                  info: str = "") -> None:
    """Record a target's health when it changes (read by the Printer status)."""
    path = _health_path(data_dir, label)
    try:
        previous = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        previous = None
    if previous is not None and previous.get("ok") == ok and (ok or previous.get("error")
                                                                == error):
        return
    data = {"target": label, "printer": printer, "ok": ok, "error": error,
            "info": "NORMAL" if ok else info, "since": time.time()}
    atomic_write(path, json.dumps(data, indent=1).encode())


def unhealthy_targets(data_dir: Path, printer: str | None = None) -> list[dict[str, Any]]:
    """Targets (of ``printer``, or of every printer) whose last attempt failed."""
    out = []
    for path in sorted((Path(data_dir) / "targets").glob("*.json")):
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not data.get("ok", True) and (printer is None or data.get("printer") == printer):
            out.append(data)
    return out


# -- the dispatcher ----------------------------------------------------------------------
#: ``deliver(target, job_folder, index)`` sends one job to one target; returns what
#: goes into the job's record (CUPS job id, upstream statuses...) or raises
#: :class:`DeliveryError` (any other exception counts as a definitive failure).
Deliver = Callable[[Target, Path, int], dict[str, Any]]


class Dispatcher:
    """Runs the deliveries of spooled jobs and their retries.

    ``on_change(job_id, delivery)`` is called after every attempt, while the job's
    lock is held; ``on_finished(job_id, delivery)`` once every target is done or
    given up (the spool then writes the job's record and removes it), also under the
    lock; ``on_gone(job_id)`` when a job's folder left the spool (it was cancelled).
    ``may_deliver(folder)``, asked under the lock before each attempt, can stop it.
    """

    def __init__(self, data_dir: Path, deliver: Deliver,
                 on_finished: Callable[[str, JobDelivery], None],
                 on_change: Callable[[str, JobDelivery], None] = lambda *a: None,
                 on_gone: Callable[[str], None] = lambda job_id: None,
                 may_deliver: Callable[[Path], bool] = lambda folder: True) -> None:
        self.data_dir = Path(data_dir)
        self.deliver = deliver
        self.on_finished = on_finished
        self.on_change = on_change
        self.on_gone = on_gone
        self.may_deliver = may_deliver
        self._lock = threading.Lock()
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._timers: set[threading.Timer] = set()
        self._stopped = False

    def dispatch(self, folder: Path, targets: tuple[Target, ...], printer: str) -> None:
        """Start (or resume) every pending target of the job in ``folder``."""
        delivery = load_delivery(folder)
        assert delivery is not None
        for st in delivery.targets:
            if st.state == PENDING:
                self._schedule(folder, targets[st.index], st, printer)

    def _schedule(self, folder: Path, target: Target, st: TargetState, printer: str) -> None:
        delay = max(0.0, st.next_attempt - time.time())
        with self._lock:
            if self._stopped:
                return
            if delay > 0:
                timer = threading.Timer(delay, self._fire, (folder, target, st.label, printer))
                timer.daemon = True
                self._timers.add(timer)
                timer.start()
                return
            executor = self._executors.get(st.label)
            if executor is None:
                executor = self._executors[st.label] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"deliver-{st.kind}")
            executor.submit(self._attempt, folder, target, st.label, printer)

    def _fire(self, folder: Path, target: Target, label: str, printer: str) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive()
                            and t is not threading.current_thread()}
        delivery = load_delivery(folder)
        if delivery is None and not folder.is_dir():
            self.on_gone(folder.name)
            return
        st = next((t for t in delivery.targets if t.label == label), None) if delivery else None
        if st is not None and st.state == PENDING:
            st.next_attempt = 0.0
            self._schedule(folder, target, st, printer)

    def _attempt(self, folder: Path, target: Target, label: str, printer: str) -> None:
        if self._stopped:
            return
        try:
            with job_lock(folder):
                self._attempt_locked(folder, target, label, printer)
        except FileNotFoundError:  # cancelled, and moved out of the spool
            self.on_gone(folder.name)

    def _attempt_locked(self, folder: Path, target: Target, label: str, printer: str) -> None:
        if not (folder / DELIVERY_FILE).exists():
            self.on_gone(folder.name)
            return
        if not self.may_deliver(folder):
            return
        delivery = load_delivery(folder)
        st = next((t for t in delivery.targets if t.label == label), None) if delivery else None
        if st is None or st.state != PENDING:
            return
        t0 = time.perf_counter()
        try:
            result = self.deliver(target, folder, st.index)
            outcome: tuple[dict[str, Any], DeliveryError | None] = (result, None)
        except DeliveryError as exc:
            outcome = ({}, exc)
        except Exception as exc:  # a bug or an unexpected refusal: do not loop on it
            LOGGER.exception("delivery of %s to %s failed", folder.name, label)
            outcome = ({}, DeliveryError(f"{type(exc).__name__}: {exc}",
                                             retriable=False))
        seconds = round(time.perf_counter() - t0, 3)
        job_id = folder.name
        with self._lock:  # one writer of the job's state at a time
            delivery = load_delivery(folder)
            if delivery is None:
                return
            st = next(t for t in delivery.targets if t.label == label)
            st.attempts += 1
            result, error = outcome
            retry_in = None
            if error is None:
                st.state, st.result, st.last_error, st.info = DONE, result, "", "NORMAL"
                st.result["seconds"] = seconds
                LOGGER.info("job %s delivered to %s in %.2f s", job_id, label, seconds)
            else:
                st.last_error, st.info = str(error), error.info
                if error.retriable and not target.retry.exhausted(st.attempts):
                    retry_in = target.retry.delay(st.attempts)
                    st.next_attempt = time.time() + retry_in
                    LOGGER.warning("job %s: %s failed (attempt %d): %s; retrying in %.0f s",
                                   job_id, label, st.attempts, error, retry_in)
                else:
                    st.state = FAILED
                    LOGGER.error("job %s: %s failed for good after %d attempt(s): %s",
                                 job_id, label, st.attempts, error)
            save_delivery(folder, delivery)
        metrics.delivery(st.kind, label, seconds, error is None)
        if retry_in is not None:
            metrics.delivery_retry(st.kind, label)
        try:
            record_health(self.data_dir, label, printer, ok=error is None,
                          error="" if error is None else str(error),
                          info="" if error is None else error.info)
        except OSError:
            LOGGER.exception("cannot record the health of %s", label)
        if delivery.finished:
            self.on_finished(job_id, delivery)
        else:
            self.on_change(job_id, delivery)
            if retry_in is not None:
                self._schedule(folder, target, st, printer)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Cancel waiting retries (they resume at the next start) and in-flight queues."""
        with self._lock:
            self._stopped = True
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            executors = list(self._executors.values())
            self._executors.clear()
        for executor in executors:
            executor.shutdown(wait=True, cancel_futures=True)

