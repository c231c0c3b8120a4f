"""The job index: a summary of every print job, and its Print Job events, in SQLite.

The files stay the source of truth (``spool/<job_id>/`` while a job waits or prints,
``films/<stem>.json`` once it is finished); this index is what lets the console list
10,000 jobs with filters and paging in a few milliseconds.  It is written on every
state change (:func:`printscp.jobs.spool.record_state`, in every worker process; the
spool queues its writes to a background thread, so the print path only pays for a
queue put) and caught up from the files by :meth:`JobIndex.sync`, which compares two
directory listings with the index and reads only what changed.  Deleting
``jobs.sqlite`` loses nothing: the next ``sync()`` rebuilds it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printscp.core.database import Database
from printscp.jobs.state import (
    CANCELED_INFO,
    DONE,
    FAILURE,
    HELD_INFO,
    PENDING,
    PRINTING,
    PrintJob,
    film_file_stem,
    now_iso,
    spooled_state,
)

LOGGER = logging.getLogger("printscp.jobs.index")

#: File of the index in the data directory.
INDEX_FILE = "jobs.sqlite"
#: Execution Status values, and the finished ones.
STATES = (PENDING, PRINTING, DONE, FAILURE)
FINISHED = (DONE, FAILURE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    finished TEXT,
    calling_ae TEXT NOT NULL DEFAULT '',
    called_ae TEXT NOT NULL DEFAULT '',
    printer TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    status_info TEXT NOT NULL DEFAULT '',
    film_session_label TEXT NOT NULL DEFAULT '',
    print_priority TEXT NOT NULL DEFAULT '',
    films INTEGER NOT NULL DEFAULT 0,
    sheets INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    stem TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '[]',
    deliveries TEXT NOT NULL DEFAULT '[]',
    print_job_uid TEXT NOT NULL DEFAULT '',
    reprint_of TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT 'spool'
);
-- Every filter's column, in job id (time) order: a page of any filter combination
-- scans this small covering index newest first and reads only the rows it returns
-- (a few ms with 10,000 jobs), and COUNT(*) never touches the table.
CREATE INDEX IF NOT EXISTS jobs_scan ON jobs (job_id, calling_ae, printer, state,
    status_info, film_session_label, created);
-- The few active jobs (PENDING, PRINTING) without a scan.
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, job_id);
CREATE TABLE IF NOT EXISTS job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    time TEXT NOT NULL,
    state TEXT NOT NULL,
    status_info TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, id);
"""

_COLUMNS = ("job_id", "created", "updated", "finished", "calling_ae", "called_ae", "printer",
            "state", "status_info", "film_session_label", "print_priority", "films",
            "sheets", "error", "stem", "output", "outputs", "deliveries", "print_job_uid",
            "reprint_of", "location")
_JSON_COLUMNS = ("outputs", "deliveries")

#: Upsert of a summary; a finished row is never taken back to a spooled state by a
#: late write (a queued PRINTING landing after the DONE that sync() already saw).
_UPSERT = (
    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT (job_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "job_id")
    + " WHERE jobs.location != 'films' OR excluded.location = 'films'")


def summary(job: dict[str, Any], stem: str = "") -> dict[str, Any]:
    """The index row of a job from its record (``job.json``, a sidecar, or
    :meth:`PrintJob.to_json` with the state in ``status`` and ``status_info``)."""
    session = job.get("session") or {}
    films = job.get("films") or []
    copies = int(session.get("number_of_copies") or 1)
    state = str(job.get("status") or PENDING)
    finished = state in FINISHED
    if not stem:
        try:
            stem = film_file_stem(PrintJob.from_json(job))
        except (KeyError, TypeError, ValueError):
            stem = ""
    deliveries = [
        {"label": d.get("label", ""), "kind": d.get("kind", ""), "state": d.get("state", ""),
         "attempts": d.get("attempts", 0), "last_error": d.get("last_error", ""),
         "cups_job_id": (d.get("result") or {}).get("cups_job_id")}
        for d in job.get("deliveries") or [] if isinstance(d, dict)]
    outputs = list(job.get("outputs") or ([job["output"]] if job.get("output") else []))
    return {
        "job_id": str(job["job_id"]), "created": str(job.get("created") or ""),
        "updated": now_iso(), "finished": job.get("finished") if finished else None,
        "calling_ae": str(job.get("calling_ae") or ""),
        "called_ae": str(job.get("called_ae") or ""),
        "printer": str(job.get("printer") or job.get("called_ae") or ""),
        "state": state, "status_info": str(job.get("status_info") or ""),
        "film_session_label": str(session.get("film_session_label") or ""),
        "print_priority": str(session.get("print_priority") or "MED"),
        "films": len(films),
        "sheets": int(job.get("pages") or len(films) * copies),
        "error": str(job.get("error") or "") if state != DONE else "",
        "stem": stem, "output": str(job.get("output") or (outputs[0] if outputs else "")),
        "outputs": outputs, "deliveries": deliveries,
        "print_job_uid": str(job.get("print_job_uid") or ""),
        "reprint_of": str(job.get("reprint_of") or ""),
        "location": "films" if finished else "spool",
    }


def _row_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(json.dumps(row[c]) if c in _JSON_COLUMNS else row[c] for c in _COLUMNS)


def _as_dict(row: tuple[Any, ...], columns: Iterable[str] = _COLUMNS) -> dict[str, Any]:
    out = dict(zip(columns, row, strict=True))
    for c in _JSON_COLUMNS:
        if c in out:
            out[c] = json.loads(out[c] or "[]")
    out.pop("location", None)
    out["held"] = out.get("status_info") == HELD_INFO
    return out


def _iso(value: str | datetime | None) -> str | None:
    """A bound of a date filter as the index stores times (UTC ISO, milliseconds); a
    naive value or a bare date is UTC."""
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


class JobIndex(Database):
    """The job index of ``data_dir`` (``data_dir/jobs.sqlite``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        super().__init__(self.data_dir / INDEX_FILE, SCHEMA)
        self._pending: queue.SimpleQueue[tuple[dict[str, Any], str, str] | None] = \
            queue.SimpleQueue()
        self._bg_thread: threading.Thread | None = None
        self._bg_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._last_sync = 0.0

    def flush_wal(self, ticket: int | None = None) -> None:
        """No flush: the index is a cache of the files (a crash may lose its last
        writes, and the next :meth:`sync` restores them), so its writers never wait on
        the disk, nor make a film's own fsync wait behind theirs."""

    # -- writing -------------------------------------------------------------------
    def record(self, job: dict[str, Any], detail: str = "") -> None:
        """Record a job's state change now: its summary, and one event."""
        self._record([(job, detail, now_iso())])

    def record_later(self, job: dict[str, Any], detail: str = "") -> None:
        """Queue :meth:`record` for the index's writer thread (the spool's way: the
        print path never waits for the database)."""
        self._idle.clear()
        self._pending.put((job, detail, now_iso()))
        if self._bg_thread is None:
            with self._bg_lock:
                if self._bg_thread is None:
                    self._bg_thread = threading.Thread(target=self._drain, name="job-index",
                                                    daemon=True)
                    self._bg_thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queued writes are in the database."""
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        while True:
            batch = [self._pending.get()]
            while True:  # whatever else arrived meanwhile goes in the same transaction
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            items = [b for b in batch if b is not None]
            try:
                if items:
                    self._record(items)
            except Exception:  # sync() catches up from the files
                LOGGER.exception("cannot write %d job state change(s) to the index",
                                 len(items))
            if self._pending.empty():
                self._idle.set()

    def _record(self, items: list[tuple[dict[str, Any], str, str]]) -> None:
        rows = []
        for job, detail, when in items:
            row = summary(job)
            row["updated"] = when
            rows.append((row, detail, when))
        with self._write() as db:
            for row, detail, when in rows:
                db.execute(_UPSERT, _row_values(row))
                db.execute("INSERT INTO job_events (job_id, time, state, status_info, detail) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (row["job_id"], when, row["state"], row["status_info"], detail))

    def add_event(self, job_id: str, state: str, status_info: str, detail: str) -> None:
        """An event of a job that is no state change of its own (reprinted as...)."""
        with self._write() as db:
            db.execute("INSERT INTO job_events (job_id, time, state, status_info, detail) "
                       "VALUES (?, ?, ?, ?, ?)", (job_id, now_iso(), state, status_info, detail))

    def remove(self, job_id: str) -> None:
        """Forget a deleted job: its summary and events."""
        with self._write() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM job_events WHERE job_id = ?", (job_id,))

    # -- catching up with the files ---------------------------------------------------
    def sync(self) -> int:
        """Bring the index up to date with ``spool/`` and ``films/``; returns the number
        of rows changed.  Cheap when nothing changed: two directory listings, one
        select, and a few ``stat`` calls per spooled job."""
        self._last_sync = time.monotonic()
        spool = self.data_dir / "spool"
        films = self.data_dir / "films"
        try:  # the spool first: a job leaving it has its sidecar written already
            spooled = [n for n in os.listdir(spool) if not n.startswith(".")]
        except FileNotFoundError:
            spooled = []
        try:
            stems = {n[:-5] for n in os.listdir(films)
                     if n.endswith(".json") and not n.startswith(".")}
        except FileNotFoundError:
            stems = set()
        db = self._connect()
        indexed = db.execute(
            "SELECT job_id, stem, state, status_info, location FROM jobs").fetchall()
        finished_stems = {stem: job_id for job_id, stem, _, _, loc in indexed
                          if loc == "films"}
        in_spool = {job_id: (state, info) for job_id, _, state, info, loc in indexed
                    if loc == "spool"}
        writes: list[tuple[dict[str, Any], str, str]] = []
        removed: list[str] = []
        # Finished jobs new to the index (or finished since it last looked).
        for stem in stems - finished_stems.keys():
            try:
                data = json.loads((films / f"{stem}.json").read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict) or not data.get("job_id"):
                continue  # not a sidecar
            row = summary(data, stem)
            writes.append((row, "", str(data.get("finished") or now_iso())))
        finished_ids = {w[0]["job_id"] for w in writes} | set(finished_stems.values())
        # Finished jobs whose sidecar is gone (deleted behind the node's back).
        removed += [job_id for stem, job_id in finished_stems.items() if stem not in stems]
        # Spooled jobs: new ones, and changed markers.
        live = set(spooled)
        for job_id in spooled:
            folder = spool / job_id
            try:
                state, info = spooled_state(folder)
            except OSError:
                continue
            if in_spool.get(job_id) == (state, info) or job_id in finished_ids:
                continue
            try:
                data = json.loads((folder / "job.json").read_text("utf-8"))
            except (OSError, ValueError):
                continue
            data["status"], data["status_info"] = state, info
            writes.append((summary(data), "", now_iso()))
        removed += [job_id for job_id in in_spool
                    if job_id not in live and job_id not in finished_ids]
        if not writes and not removed:
            return 0
        with self._write() as wdb:
            for row, detail, when in writes:
                row["updated"] = when
                previous = in_spool.get(row["job_id"])
                wdb.execute(_UPSERT, _row_values(row))
                if previous != (row["state"], row["status_info"]):
                    wdb.execute(
                        "INSERT INTO job_events (job_id, time, state, status_info, detail) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (row["job_id"], when, row["state"], row["status_info"],
                         detail or "seen on disk"))
            for job_id in removed:
                wdb.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        return len(writes) + len(removed)

    def maybe_sync(self, max_age: float = 1.0) -> None:
        """:meth:`sync` unless this index synced less than ``max_age`` seconds ago (a
        console polling once a second pays for one sync per second at most)."""
        if time.monotonic() - self._last_sync >= max_age:
            self.sync()

    # -- reading -----------------------------------------------------------------------
    def query(self, calling_ae: str | None = None, printer: str | None = None,
              state: str | Iterable[str] | None = None,
              since: str | datetime | None = None, until: str | datetime | None = None,
              label: str | None = None, limit: int = 50, offset: int = 0,
              ) -> tuple[list[dict[str, Any]], int]:
        """Jobs matching every given filter, newest first, and how many match in all.

        ``calling_ae`` and ``printer`` match exactly; ``state`` is one Execution Status
        or several (``HELD`` and ``CANCELED`` select held and cancelled jobs);
        ``since``/``until`` bound the creation time (``until`` excluded); ``label`` is
        a case-insensitive substring of the Film Session Label."""
        where: list[str] = []
        args: list[Any] = []
        if calling_ae:
            where.append("calling_ae = ?")
            args.append(calling_ae)
        if printer:
            where.append("printer = ?")
            args.append(printer)
        if state:
            states = [state] if isinstance(state, str) else list(state)
            terms = []
            for s in (x.strip().upper() for x in states):
                if s == "HELD":
                    terms.append("(state = ? AND status_info = ?)")
                    args += [PENDING, HELD_INFO]
                elif s in ("CANCELED", "CANCELLED"):
                    terms.append("(state = ? AND status_info = ?)")
                    args += [FAILURE, CANCELED_INFO]
                elif s in STATES:
                    terms.append("state = ?")
                    args.append(s)
                else:
                    raise ValueError(f"state: {s!r} is not one of "
                                     f"{', '.join((*STATES, 'HELD', 'CANCELED'))}")
            where.append("(" + " OR ".join(terms) + ")")
        low, high = _iso(since), _iso(until)
        if low:
            where.append("created >= ?")
            args.append(low)
        if high:
            where.append("created < ?")
            args.append(high)
        if label:
            escaped = label.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("film_session_label LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        limit = max(0, min(int(limit), 1000))
        offset = max(0, int(offset))
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        db = self._connect()
        total = db.execute(f"SELECT COUNT(*) FROM jobs{clause}", args).fetchone()[0]
        rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs{clause} "
                          "ORDER BY job_id DESC LIMIT ? OFFSET ?",
                          [*args, limit, offset]).fetchall()
        return [_as_dict(r) for r in rows], int(total)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The summary of one job, None if the index does not know it."""
        row = self._connect().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _as_dict(row) if row else None

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's Print Job events, oldest first: time, state, status_info, detail."""
        rows = self._connect().execute(
            "SELECT time, state, status_info, detail FROM job_events WHERE job_id = ? "
            "ORDER BY id", (job_id,)).fetchall()
        return [dict(zip(("time", "state", "status_info", "detail"), r, strict=True))
                for r in rows]

    def counts_by_state(self) -> dict[str, int]:
        """Number of jobs per Execution Status (every status present, 0 if none), plus
        ``HELD`` (held jobs, also counted as PENDING)."""
        db = self._connect()
        counts = dict.fromkeys(STATES, 0)
        for state, n in db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[state] = n
        counts["HELD"] = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = ? AND status_info = ?",
            (PENDING, HELD_INFO)).fetchone()[0]
        return counts

    def close(self) -> None:
        self.flush(2.0)
        super().close()
