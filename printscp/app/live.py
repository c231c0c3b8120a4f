"""This process's open associations, published for the console (``Node: live
associations``): who, since when, which services, how many operations, how many bytes.

:class:`LiveAssociations` keeps the associations its event handlers saw established and
not yet closed; a thread of its own looks at them at most once a second and, when the
list changed (one opened or closed, or one did more), rewrites the process's file
(:mod:`printscp.core.live`).  The DICOM threads pay for a dict insert and removal per
association and nothing per message: operations and bytes are counted anyway by the
network layer (:func:`printscp.net.channel.summary`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom.uid import UID

from printscp.core import live
from printscp.core.live import read_live
from printscp.net import channel

__all__ = ["LiveAssociations", "read_live"]

LOGGER = logging.getLogger("printscp.app.live")


class LiveAssociations:
    """The open associations of this process, published to ``data_dir/run/``.

    Add :meth:`handlers` to the node's pynetdicom event handlers, :meth:`start` with
    the node and :meth:`stop` after it (the file is removed).
    """

    #: Shortest time between two writes of the file, in seconds.
    INTERVAL = 1.0

    def __init__(self, data_dir: str | os.PathLike[str], interval: float = INTERVAL) -> None:
        self.data_dir = Path(data_dir)
        self.interval = interval
        self._open: dict[Any, str] = {}  # association -> since (ISO 8601, UTC)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._published: list[dict[str, Any]] = []

    # -- pynetdicom's events (association threads) -------------------------------------
    def handlers(self) -> list[tuple[Any, Any]]:
        """The event handlers to bind on the node's AE."""
        from pynetdicom import evt

        return [(evt.EVT_ESTABLISHED, self._opened), (evt.EVT_CONN_CLOSE, self._closed)]

    def _opened(self, event: Any) -> None:
        since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            self._open[event.assoc] = since
        self._wake.set()

    def _closed(self, event: Any) -> None:
        with self._lock:
            known = self._open.pop(event.assoc, None)
        if known is not None:
            self._wake.set()

    # -- what is published ---------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """The open associations now, oldest first, as published."""
        with self._lock:
            opened = list(self._open.items())
        out = []
        for assoc, since in opened:
            with contextlib.suppress(Exception):  # one closing meanwhile: left out
                out.append(describe(assoc, since))
        out.sort(key=lambda r: (r["since"], r["id"]))
        return out

    def publish(self) -> bool:
        """Write the file if the list changed since the last write; True if written."""
        current = self.snapshot()
        if current == self._published:
            return False
        live.publish(self.data_dir, current)
        self._published = current
        return True

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> LiveAssociations:
        """Publish from a thread of its own until :meth:`stop`."""
        if self._thread is None:
            live.withdraw(self.data_dir)  # a file left by a crashed process of this pid
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="printscp-live",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop publishing and remove the file."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(5.0)
        with contextlib.suppress(OSError):
            live.withdraw(self.data_dir)
        self._published = []

    def _run(self) -> None:
        written = 0.0
        while not self._stopping.is_set():
            self._wake.wait(self.interval)  # an open or close, or time to look again
            wait = written + self.interval - time.monotonic()
            if wait > 0 and self._stopping.wait(wait):  # at most one write a second
                break
            if self._stopping.is_set():
                break
            self._wake.clear()
            try:
                if self.publish():
                    written = time.monotonic()
            except OSError as exc:  # a full or read-only disk: the DICOM side goes on
                LOGGER.warning("cannot publish the open associations: %s", exc)


def describe(assoc: Any, since: str) -> dict[str, Any]:
    """One open association as the console shows it."""
    done = channel.summary(assoc)
    requestor = assoc.requestor
    primitive = requestor.primitive
    return {
        "id": done.id,
        "pid": os.getpid(),
        "calling_ae": str(primitive.calling_ae_title).strip(),
        "called_ae": str(primitive.called_ae_title).strip(),
        "peer": str(requestor.address),
        "peer_port": int(requestor.port or 0),
        "since": since,
        "services": [UID(uid).name for uid in done.sop_classes],
        "operations": done.operations,
        "operations_total": sum(done.operations.values()),
        "bytes_received": done.bytes_received,
        "bytes_sent": done.bytes_sent,
    }
