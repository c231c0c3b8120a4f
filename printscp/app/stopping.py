"""Signals asking ``printscp serve`` to stop, kept from the process's first instant, and
the children that must not outlive it.

``python -m printscp serve`` installs :func:`keep` before it imports anything heavy:
the command line's imports (pydicom, numpy) take 0.3-0.7 s, and a SIGTERM in that
time (a service manager restarting a failing node) killed the process by the default
handler before ``serve`` could set its own, leaving started children behind.

Light on purpose: a render process imports it first thing (:func:`die_with_parent` is
its initializer).
"""

from __future__ import annotations

import contextlib
import signal

#: Signal numbers received, oldest first; ``printscp serve`` stops when it is not empty.
received: list[int] = []


def _record(signum: int, frame: object) -> None:
    received.append(signum)  # no lock here: the main thread may hold one


def keep() -> list[int]:
    """Record SIGINT and SIGTERM in :data:`received` from now on; returns that list."""
    signal.signal(signal.SIGINT, _record)
    signal.signal(signal.SIGTERM, _record)
    return received


def die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies, so no orphan
    worker keeps serving (or rendering) after the node crashed."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
