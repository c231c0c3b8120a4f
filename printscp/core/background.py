"""Work a process does at the lowest CPU priority: warming up what it will need later
(importing the console's web stack, the render process's rendering stack) without
taking a core from the requests the node serves meanwhile.

On Linux the scheduler's unit is the thread, and a thread's policy and nice value are
its own: the work's thread puts itself in SCHED_IDLE (nice 19 where that is refused),
the rest of the process keeps its priority.  A SCHED_IDLE thread runs on a core nothing
else wants, and a normal thread waking up takes the core from it at once (nice 19 only
weighs less: measured, warm-ups at nice 19 still took ~20 % of the two cores from a
store burst whose threads keep waking from fsync and network waits).  It is not starved
either: on a saturated core it gets a tiny share (weight 3 against 1024).  Threads
inherit the policy of the thread that creates them, so the work must not start threads
that outlive it.  An unprivileged thread may lower its priority but not raise it again,
hence a thread of its own; :meth:`boost` tries (it works with CAP_SYS_NICE) when
something now waits for the work, and otherwise the waiter waits.

Elsewhere than Linux the work runs at the normal priority (there, setpriority would
lower the whole process).

Even so a warm-up running while requests are served costs them something (the
scheduler's groups: a session's processes share its CPU; caches): :class:`IdleWatch`
says when to begin, once the node has been idle a moment.  Work that someone waits for
does not wait for that: it runs at once and at the normal priority (``lowest=False``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: The nice value the work runs at where SCHED_IDLE is refused.
LOWEST = 19
#: Seconds without a request before deferred work begins (:class:`IdleWatch`).
IDLE_GRACE = 0.5


class Background(Generic[T]):
    """``work()`` running on a thread of its own, at the lowest priority unless
    ``lowest`` is false; :meth:`wait` returns its result (or raises its exception)."""

    def __init__(self, work: Callable[[], T], name: str, *, lowest: bool = True) -> None:
        self._work = work
        self._lowest = lowest
        self._done = threading.Event()
        self._tid: int | None = None
        self._result: T | None = None
        self._error: BaseException | None = None
        # Not a daemon: the work imports extension modules, and an interpreter that
        # ends while a daemon thread is inside one aborts ("FATAL: exception not
        # rethrown", seen on a SIGTERM two seconds into a start); leaving waits for it.
        self._thread = threading.Thread(target=self._run, name=name, daemon=False)
        self._thread.start()

    def _run(self) -> None:
        self._tid = threading.get_native_id()
        if self._lowest and sys.platform == "linux":
            try:  # pid 0: this thread
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            except OSError:
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, self._tid, LOWEST)
        try:
            self._result = self._work()
        except BaseException as exc:  # handed to wait()
            self._error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def boost(self) -> None:
        """Give the work back the normal priority if this process may (CAP_SYS_NICE);
        otherwise nothing changes."""
        if sys.platform == "linux" and self._tid is not None and not self.done:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(self._tid, os.SCHED_OTHER, os.sched_param(0))
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._tid, 0)

    def wait(self, timeout: float | None = None) -> T:
        """The work's result, once it is done; TimeoutError if not within ``timeout``."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self._thread.name} is not done")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


class IdleWatch:
    """When deferred work is due: once ``is_idle()`` has held for ``grace`` seconds in a
    row.  The caller polls :meth:`due` (every 0.1 s or so)."""

    def __init__(self, is_idle: Callable[[], bool], grace: float = IDLE_GRACE) -> None:
        self._is_idle = is_idle
        self._grace = grace
        self._quiet_since: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if not self._is_idle():
            self._quiet_since = None
            return False
        if self._quiet_since is None:
            self._quiet_since = now
        return now - self._quiet_since >= self._grace
