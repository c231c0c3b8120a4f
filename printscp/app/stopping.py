"""Signals asking ``printscp serve`` to stop, kept from the process's first instant.

``python -m printscp serve`` installs :func:`keep` before it imports anything heavy:
the command line's imports (pydicom, numpy) take 0.3-0.7 s, and a SIGTERM in that
time (a service manager restarting a failing node) killed the process by the default
handler before ``serve`` could set its own, leaving started children behind.
"""

from __future__ import annotations

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
