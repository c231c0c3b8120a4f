"""What the console's routes work on: one :class:`Console` per HTTP application.

The node builds it (:mod:`printscp.app`), tests build it over a data directory.  Domain
objects are opened on first use and shared by every request: they are the same objects
the command line uses (``printscp jobs cancel`` and the console's cancel are one call).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printscp.config import NodeConfig

#: Log records the console keeps for its log view (newest last).
RECENT_LOG_LINES = 2000


class RecentLogs(logging.Handler):
    """The last :data:`RECENT_LOG_LINES` log records, as dicts (time, level, logger,
    process, message and the record's fields), for ``/api/node/logs``.

    The node adds it to the handlers of the process that writes the log, so it holds
    the lines of every worker process too."""

    def __init__(self, capacity: int = RECENT_LOG_LINES) -> None:
        super().__init__(logging.DEBUG)
        self._lines: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "process": record.processName, "message": record.getMessage(),
            }
        except Exception:  # a bad format string must not break logging
            self.handleError(record)
            return
        with self._guard:
            self._lines.append(line)

    def lines(self, *, level: str | None = None, text: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        """Newest first, at ``level`` or above, containing ``text`` (case-insensitive)."""
        floor = logging.getLevelName(level.upper()) if level else 0
        if not isinstance(floor, int):
            raise ValueError(f"unknown log level {level!r}")
        needle = (text or "").lower()
        with self._guard:
            snapshot = list(self._lines)
        out = []
        for line in reversed(snapshot):
            if logging.getLevelName(line["level"]) < floor:
                continue
            if needle and needle not in line["message"].lower():
                continue
            out.append(line)
            if len(out) >= limit:
                break
        return out


@dataclass
class Console:
    """The node as the console sees it.

    ``enqueue(job_id)`` hands a job already written into the spool to a spool that
    renders it (None: a request file whichever worker's spool polls first claims,
    :func:`printscp.jobs.spool.request_enqueue`);
    ``dicom_port()`` the port the DICOM side listens on (None: not listening).
    """

    config: NodeConfig
    enqueue: Callable[[str], None] | None = None
    dicom_port: Callable[[], int | None] = lambda: None
    #: The DICOM TLS port (None: no TLS listener).
    tls_port: Callable[[], int | None] = lambda: None
    logs: RecentLogs = field(default_factory=RecentLogs)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))

    @property
    def data_dir(self) -> Path:
        return self.config.data_path

    @functools.cached_property
    def job_index(self) -> Any:
        from printscp.jobs.index import JobIndex

        return JobIndex(self.data_dir)

    @functools.cached_property
    def job_control(self) -> Any:
        """Cancel, hold, release, delete, reprint: the calls ``printscp jobs`` makes."""
        from printscp.jobs.control import JobControl

        return JobControl(self.data_dir, self.job_index, self.enqueue,
                          self.config.reprint_printing, who="console")

    @functools.cached_property
    def archive(self) -> Any:
        """The archive, or None when ``[archive] enabled = false``."""
        if not self.config.archive.enabled:
            return None
        from printscp.archive.archive import Archive, DuplicatePolicy

        return Archive(self.data_dir, DuplicatePolicy(self.config.archive.duplicates))

    @functools.cached_property
    def worklist(self) -> Any:
        """The worklist store, or None when ``[worklist] enabled = false``."""
        if not self.config.worklist.enabled:
            return None
        from printscp.worklist.items import WorklistStore

        return WorklistStore.for_data_dir(self.data_dir)

    @functools.cached_property
    def mpps(self) -> Any:
        from printscp.mpps.steps import MppsStore

        return MppsStore(self.data_dir)
