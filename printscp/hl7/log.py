"""The HL7 log: every message received, what became of it, and the ACK it got.

One row per message received (raw text, peer, time, sending application/facility,
type, control id, outcome, ACK text, error), in the node's ``index.sqlite`` beside the
worklist (table ``hl7_messages``), through :class:`printscp.core.database.Database`:
a row is on disk before the ACK that reports it is sent.  The row is written twice:
``RECEIVED`` before the message is applied, its outcome after, so a crash in between
leaves a row saying so (and the RIS, having no ACK, sends the message again: it is
applied then, since only a finished row counts as the original).

The ``changes`` column keeps what applying the message replaced (items' stored
attributes, archive patient rows, studies moved), as JSON: the record from which a
merge is undone (:meth:`printscp.hl7.inbox.Inbox.unmerge`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from printscp.core.database import Database

__all__ = ["HL7Log", "LogEntry", "Status"]


class Status(StrEnum):
    """A logged message's outcome."""

    RECEIVED = "RECEIVED"  #: being applied (or the node stopped while it was)
    ACCEPTED = "AA"
    ERROR = "AE"
    REJECTED = "AR"
    DUPLICATE = "DUPLICATE"  #: already applied: the original's ACK was sent again
    UNDONE = "UNDONE"  #: applied, then undone (unmerge)


SCHEMA = """
CREATE TABLE IF NOT EXISTS hl7_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    peer TEXT NOT NULL DEFAULT '',
    sending_application TEXT NOT NULL DEFAULT '',
    sending_facility TEXT NOT NULL DEFAULT '',
    message_type TEXT NOT NULL DEFAULT '',
    control_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    raw TEXT NOT NULL,
    ack TEXT,
    error TEXT,
    changes TEXT,
    original_id INTEGER,   -- DUPLICATE: the row applied; a replay: the row replayed
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS hl7_messages_key
    ON hl7_messages(sending_application, sending_facility, control_id);
CREATE INDEX IF NOT EXISTS hl7_messages_time ON hl7_messages(received_at);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LogEntry:
    """One logged message (what ``printscp hl7 log`` lists)."""

    id: int
    received_at: str
    peer: str
    sending_application: str
    sending_facility: str
    message_type: str
    control_id: str
    status: str
    raw: str
    ack: str | None
    error: str | None
    changes: str | None
    original_id: int | None
    finished_at: str | None

    def to_dict(self, *, raw: bool = True) -> dict[str, Any]:
        out = dict(self.__dict__)
        if not raw:
            out.pop("raw")
            out.pop("changes")
        return out

    @property
    def record(self) -> dict[str, Any]:
        """The changes made, as stored (empty when none)."""
        return json.loads(self.changes) if self.changes else {}


_COLUMNS = ("id, received_at, peer, sending_application, sending_facility, message_type,"
            " control_id, status, raw, ack, error, changes, original_id, finished_at")


class HL7Log(Database):
    """The log in the SQLite file at ``path`` (the node's ``index.sqlite``)."""

    def __init__(self, path: Path | str, *, share: Database | None = None) -> None:
        super().__init__(Path(path), SCHEMA)
        #: Whose connection and writer the rows are written with: ``share`` (the
        #: worklist store of the same file) puts the log's commits and the worklist's
        #: under one writer, flushed to disk once when :meth:`writer` is left.
        self._db: Database = share if share is not None else self
        if share is not None and Path(share.path).absolute() != self.path.absolute():
            raise ValueError(f"{share.path} is not {self.path}: no writer to share")

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the database's writer lock around several writes (the log's and those
        of the Database shared): one WAL flush when it is left."""
        with self._db._writer():
            yield

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> HL7Log:
        return cls(Path(data_dir) / "index.sqlite")

    # -- writing -------------------------------------------------------------------
    def start(self, raw: str, *, peer: str = "", sending_application: str = "",
              sending_facility: str = "", message_type: str = "", control_id: str = "",
              original_id: int | None = None) -> int:
        """A RECEIVED row for a message about to be applied; its id."""
        with self._db._write() as db:
            cur = db.execute(
                "INSERT INTO hl7_messages (received_at, peer, sending_application,"
                " sending_facility, message_type, control_id, status, raw, original_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), peer, sending_application, sending_facility, message_type,
                 control_id, Status.RECEIVED, raw, original_id))
            return int(cur.lastrowid or 0)

    def finish(self, entry_id: int, status: Status | str, ack: str, *, error: str = "",
               changes: dict[str, Any] | None = None) -> None:
        with self._db._write() as db:
            db.execute("UPDATE hl7_messages SET status = ?, ack = ?, error = ?, changes = ?,"
                       " finished_at = ? WHERE id = ?",
                       (str(status), ack, error or None,
                        json.dumps(changes) if changes else None, _now(), entry_id))

    def set_status(self, entry_id: int, status: Status | str) -> None:
        with self._db._write() as db:
            db.execute("UPDATE hl7_messages SET status = ? WHERE id = ?",
                       (str(status), entry_id))

    # -- reading -------------------------------------------------------------------
    def original(self, sending_application: str, sending_facility: str, control_id: str,
                 raw: str | None = None) -> LogEntry | None:
        """The first finished (AA, AE, UNDONE) row of a message with this key (and this
        text, when ``raw`` is given), if any."""
        sql = (f"SELECT {_COLUMNS} FROM hl7_messages WHERE sending_application = ? AND"
               " sending_facility = ? AND control_id = ? AND status IN ('AA', 'AE', 'UNDONE')"
               " AND original_id IS NULL")
        params = [sending_application, sending_facility, control_id]
        if raw is not None:
            sql += " AND raw = ?"
            params.append(raw)
        row = self._connect().execute(sql + " ORDER BY id LIMIT 1", params).fetchone()
        return LogEntry(*row) if row else None

    def get(self, entry_id: int) -> LogEntry | None:
        row = self._connect().execute(f"SELECT {_COLUMNS} FROM hl7_messages WHERE id = ?",
                                      (int(entry_id),)).fetchone()
        return LogEntry(*row) if row else None

    def entries(self, since: datetime | str | None = None, status: str | None = None,
                limit: int = 100, *, message_type: str | None = None) -> list[LogEntry]:
        """Logged messages, newest first: received at or after ``since`` (a datetime,
        naive = UTC, or an ISO 8601 text), with ``status`` (AA, AE, AR, RECEIVED,
        DUPLICATE, UNDONE; case-insensitive), of ``message_type`` (``ORM^O01`` or
        ``ORM``), at most ``limit``."""
        where, params = [], []
        if since is not None:
            if isinstance(since, str):
                since = datetime.fromisoformat(since)
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            where.append("received_at >= ?")
            params.append(since.astimezone(UTC).isoformat(timespec="milliseconds"))
        if status:
            value = status.strip().upper()
            if value not in set(Status):
                raise ValueError(f"status {status!r} is not one of {', '.join(Status)}")
            where.append("status = ?")
            params.append(value)
        if message_type:
            where.append("(message_type = ? OR message_type LIKE ?)")
            params.extend([message_type, message_type + "^%"])
        sql = f"SELECT {_COLUMNS} FROM hl7_messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        return [LogEntry(*row) for row in self._connect().execute(sql, params)]
