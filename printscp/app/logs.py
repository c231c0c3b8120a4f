"""The node's log: levels, text or JSON lines, a rotated file, and every process in it.

``printscp serve`` receives in several worker processes (forked before the parent writes
a line; each replaces the handlers it inherited, :func:`in_worker`).  Each worker sends
its records through a queue to the parent, whose handlers write them: one stream, one
file that only the parent rotates, and the lines of every process in order of arrival.
``-v`` shows one line per association and per job state change, ``-d`` one line per
DIMSE message as well (``printscp.dimse``), ``-dd`` pynetdicom's own debug dumps too.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

#: Size at which ``--log-file`` is rotated, and how many old files are kept.
ROTATE_BYTES = 10 * 1024 * 1024
ROTATE_KEEP = 5

#: LogRecord attributes of the logging module itself; any other is a field of the line.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


class LogFormat(StrEnum):
    """How a log line is written (``--log-format``)."""

    TEXT = "text"  #: ``time level logger: message``
    JSON = "json"  #: one JSON object a line, the record's fields as keys


@dataclass(frozen=True)
class LogSettings:
    """``verbosity``: 0 warnings, 1 ``-v``, 2 ``-d``, 3 ``-dd``."""

    verbosity: int = 0
    format: LogFormat = LogFormat.TEXT
    file: Path | None = None

    @property
    def level(self) -> int:
        return (logging.WARNING, logging.INFO)[self.verbosity] if self.verbosity < 2 \
            else logging.DEBUG

    @property
    def pynetdicom_level(self) -> int:
        """pynetdicom's own lines are multi-line dumps: only with ``-dd``."""
        return logging.DEBUG if self.verbosity >= 3 else logging.WARNING


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, process, message, and
    the record's own fields (association, calling_ae, job_id...)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "process": record.process,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _formatter(settings: LogSettings) -> logging.Formatter:
    if settings.format is LogFormat.JSON:
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")


def _root_level(settings: LogSettings) -> int:
    """Records are made at INFO at least, whatever ``-v`` says: the console's log view
    (:class:`~printscp.http.context.RecentLogs`) shows associations and jobs even when
    stderr shows warnings only."""
    return min(settings.level, logging.INFO)


def configure(settings: LogSettings) -> list[logging.Handler]:
    """Set up the parent process's log (stderr, and ``settings.file`` rotated, at the
    settings' level; the console's recent lines at INFO or below); returns its handlers,
    for :class:`WorkerLogs` to write the workers' records with."""
    from printscp.http.context import RecentLogs

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.file is not None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            settings.file, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP, encoding="utf-8"))
    formatter = _formatter(settings)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.setLevel(settings.level)
        root.addHandler(handler)
    recent = RecentLogs()
    recent.setLevel(_root_level(settings))
    root.addHandler(recent)
    handlers.append(recent)
    root.setLevel(_root_level(settings))
    logging.getLogger("pynetdicom").setLevel(settings.pynetdicom_level)
    return handlers


def recent_lines(handlers: list[logging.Handler]) -> Any:
    """The console's :class:`~printscp.http.context.RecentLogs` among ``handlers``."""
    from printscp.http.context import RecentLogs

    return next((h for h in handlers if isinstance(h, RecentLogs)), None)


class WorkerLogs:
    """The parent's end of the workers' log queue: a listener that writes what the worker
    processes log with the parent's handlers (``start``/``stop``)."""

    def __init__(self, context: Any, settings: LogSettings,
                 handlers: list[logging.Handler]) -> None:
        self.settings = settings
        self.queue = context.Queue()
        self._listener = logging.handlers.QueueListener(self.queue, *handlers,
                                                        respect_handler_level=True)

    def start(self) -> WorkerLogs:
        self._listener.start()
        return self

    def stop(self) -> None:
        if self._listener._thread is not None:  # started (a failed start may not have)
            self._listener.stop()


def in_worker(queue: Any, settings: LogSettings) -> None:
    """In a worker process: send every record at the settings' levels to the parent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(queue))
    root.setLevel(_root_level(settings))
    logging.getLogger("pynetdicom").setLevel(settings.pynetdicom_level)
