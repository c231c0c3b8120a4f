"""The QA store: devices and every test ever recorded of them, in one SQLite file.

A QA record is evidence a physicist signs, so the store is built to keep it:

- **Append-only.**  A test is one row, never updated or deleted (triggers refuse both,
  whoever writes): a repeated test is a new row, and the history shows both.
- **Durable when acknowledged.**  WAL with ``synchronous=FULL``: :meth:`QAStore.
  record_test` returns once the transaction is on disk, so a test the command line
  reported as recorded survives a power cut.
- **Readable while written.**  WAL lets the console and ``qa status`` read while a
  ``qa test`` writes; writers take the write lock up front (``BEGIN IMMEDIATE``) and
  wait up to :data:`BUSY_TIMEOUT_MS` for one another.  One connection per thread.
- **Fast to summarise.**  Each test row keeps its :class:`~calibration.qa.results.
  TestResult` as JSON *and* the columns the summaries ask for (device, time, kind,
  verdict, criteria), indexed, so :meth:`QAStore.latest` (``qa status``, the console)
  and :meth:`QAStore.history` are one query each and never parse a history they do not
  show.

The schema's version is SQLite's ``user_version``; a file from a newer printscp is
refused rather than misread.  Times are stored in UTC as fixed-width ISO text, whose
order is their chronological order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calibration.qa.devices import Device, check_device_id
from calibration.qa.results import DeviceKind, TestKind, TestResult
from printscp.core.files import fsync_dir

__all__ = ["SCHEMA_VERSION", "Device", "QAStore", "StoreError", "TestRecord"]

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 30_000
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_SCHEMA = """
CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    manufacturer TEXT NOT NULL DEFAULT '',
    model        TEXT NOT NULL DEFAULT '',
    serial       TEXT NOT NULL DEFAULT '',
    criteria     TEXT NOT NULL,
    diagnostic   INTEGER NOT NULL DEFAULT 1,
    description  TEXT NOT NULL DEFAULT '',
    printer_ae   TEXT NOT NULL DEFAULT '',
    added        TEXT NOT NULL,
    site_limits  TEXT NOT NULL DEFAULT '{}',
    interval_days INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE tests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    criteria    TEXT NOT NULL,
    operator    TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    baseline_id INTEGER REFERENCES tests(id),
    result      TEXT NOT NULL
);
CREATE INDEX tests_by_device ON tests(device_id, at, id);
CREATE INDEX tests_by_device_kind ON tests(device_id, kind, at, id);
CREATE TRIGGER tests_never_updated BEFORE UPDATE ON tests
BEGIN SELECT RAISE(ABORT, 'QA tests are append-only: a new test is a new record'); END;
CREATE TRIGGER tests_never_deleted BEFORE DELETE ON tests
BEGIN SELECT RAISE(ABORT, 'QA tests are append-only: a test is never deleted'); END;
"""

_GUARDS = """
CREATE TRIGGER tests_never_replaced BEFORE INSERT ON tests
WHEN EXISTS (SELECT 1 FROM tests WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'QA tests are append-only: a test is never replaced'); END;
CREATE TRIGGER devices_never_deleted BEFORE DELETE ON devices
BEGIN SELECT RAISE(ABORT, 'QA devices are never deleted: their history stays theirs'); END;
CREATE TRIGGER devices_never_replaced BEFORE INSERT ON devices
WHEN EXISTS (SELECT 1 FROM devices WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'a QA device id is never reused'); END;
CREATE TRIGGER devices_keep_their_id BEFORE UPDATE OF id, kind ON devices
WHEN NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind
BEGIN SELECT RAISE(ABORT, 'a QA device keeps its id and kind'); END;
"""
_SCHEMA += _GUARDS

def _statements(script: str) -> list[str]:
    """The statements of :data:`_SCHEMA` (triggers hold a ``;`` inside BEGIN…END)."""
    out, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


#: Schema changes, by the version they lead to (applied in order to older files).
_MIGRATIONS = {
    2: ("ALTER TABLE devices ADD COLUMN site_limits TEXT NOT NULL DEFAULT '{}'",),
    3: ("ALTER TABLE devices ADD COLUMN interval_days INTEGER NOT NULL DEFAULT 0",),
    # INSERT OR REPLACE went round the UPDATE/DELETE triggers (its delete fires none),
    # and devices could be deleted and their ids reused, inheriting a history.
    4: tuple(_statements(_GUARDS)),
}

_TEST_COLUMNS = "id, device_id, at, operator, source, baseline_id, result"
_DEVICE_COLUMNS = ("id, kind, manufacturer, model, serial, criteria, diagnostic, "
                   "description, printer_ae, site_limits, interval_days")


class StoreError(RuntimeError):
    """The QA store cannot be used (a newer schema, not a QA store); names the file."""


@dataclass(frozen=True)
class TestRecord:
    """One recorded test: who ran it and when, and what it found.  ``baseline_id`` is
    the acceptance test a constancy test was compared with (None: an acceptance test,
    or no baseline at the time)."""

    __test__ = False  # not a pytest class

    id: int
    device_id: str
    when: datetime  #: aware, UTC
    operator: str
    source: str  #: the measurement file it was computed from
    result: TestResult
    baseline_id: int | None = None

    @property
    def kind(self) -> TestKind:
        return self.result.kind

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "device_id": self.device_id,
                "when": self.when.isoformat(timespec="seconds"), "operator": self.operator,
                "source": self.source, "baseline_id": self.baseline_id,
                "result": self.result.to_json()}


def _utc(when: datetime, what: str = "time") -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} {when.isoformat()} has no time zone (give an aware "
                         "datetime, e.g. datetime.now(UTC))")
    return when.astimezone(UTC)


def _at(when: datetime) -> str:
    return _utc(when).strftime(_TIME_FORMAT)


def _when(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


class QAStore:
    """Devices and their tests in the SQLite file ``path`` (created with its folder
    unless ``create`` is false, when a missing file is :class:`FileNotFoundError`)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise FileNotFoundError(f"no QA store at {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    # -- connections and schema ------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a QA store ({exc})") from None
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: QA store schema {version} is newer than this "
                             f"printscp's ({SCHEMA_VERSION}); use a newer printscp")
        conn.execute("PRAGMA journal_mode = WAL")  # persistent; outside a transaction
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:  # a new file (another process may have made it meanwhile)
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise StoreError(f"{self.path}: a SQLite file but not a QA store")
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
            else:  # an older QA store: its migrations, in order
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target]:
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        fsync_dir(self.path.parent)

    def close(self) -> None:
        """Close every thread's connection (the store is not usable afterwards)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> QAStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: Iterable[Any]) -> int:
        """Run one statement in its own write transaction; the new row's id.  The
        commit returns once the WAL is synced (``synchronous=FULL``)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(sql, tuple(params))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(cur.lastrowid or 0)

    # -- devices -----------------------------------------------------------------------
    def add_device(self, device: Device) -> Device:
        """Add ``device``; :class:`ValueError` if its id is taken (an id is never
        reused: its history would become someone else's)."""
        if not isinstance(device, Device):
            raise TypeError(f"expected a Device, got {type(device).__name__}")
        try:
            self._write(
                f"INSERT INTO devices ({_DEVICE_COLUMNS}, added) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (device.id, device.kind.value, device.manufacturer, device.model,
                 device.serial, device.criteria, int(device.diagnostic), device.description,
                 device.printer_ae, json.dumps(device.to_json()["site_limits"]),
                 device.interval_days, _at(datetime.now(UTC))))
        except sqlite3.IntegrityError:
            raise ValueError(f"device {device.id!r} already exists in {self.path}") from None
        return device

    def update_device(self, device: Device) -> Device:
        """Replace the description of device ``device.id`` (identity, criteria, site
        limits) by ``device``'s; :class:`KeyError` when there is no such device,
        :class:`ValueError` when the kind would change (a display's history does not
        become a printer's).  Its tests keep the limits they were judged against: each
        figure of a recorded test holds its own."""
        if not isinstance(device, Device):
            raise TypeError(f"expected a Device, got {type(device).__name__}")
        old = self.device(device.id)
        if old.kind is not device.kind:
            raise ValueError(f"device {device.id!r} is a {old.kind.value}; its kind cannot "
                             "change")
        self._write(
            "UPDATE devices SET manufacturer = ?, model = ?, serial = ?, criteria = ?, "
            "diagnostic = ?, description = ?, printer_ae = ?, site_limits = ?, "
            "interval_days = ? WHERE id = ?",
            (device.manufacturer, device.model, device.serial, device.criteria,
             int(device.diagnostic), device.description, device.printer_ae,
             json.dumps(device.to_json()["site_limits"]), device.interval_days, device.id))
        return device

    def device(self, device_id: str) -> Device:
        """The device ``device_id``; :class:`KeyError` naming the known ids."""
        row = self._conn().execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?", (device_id,)).fetchone()
        if row is None:
            known = [r[0] for r in self._conn().execute("SELECT id FROM devices ORDER BY id")]
            raise KeyError(f"no device {device_id!r} in {self.path} (known: "
                           f"{', '.join(known) if known else 'none'})")
        return self._device(row)

    def devices(self) -> list[Device]:
        """Every device, by id."""
        return [self._device(r) for r in
                self._conn().execute(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY id")]

    @staticmethod
    def _device(row: tuple[Any, ...]) -> Device:
        (id_, kind, manufacturer, model, serial, criteria, diagnostic, description,
         printer_ae, site_limits, interval_days) = row
        return Device(id_, DeviceKind(kind), manufacturer, model, serial, criteria,
                      bool(diagnostic), description, printer_ae,
                      {k: tuple(v) for k, v in json.loads(site_limits).items()},
                      int(interval_days))

    # -- tests -------------------------------------------------------------------------
    def record_test(self, device_id: str, result: TestResult, *, operator: str,
                    when: datetime | None = None, source: str = "") -> TestRecord:
        """Append a test of ``device_id`` (at ``when``, an aware time; default now).

        A constancy test is linked to the baseline in force at ``when`` (the latest
        acceptance test up to then).  Returns once the record is on disk.
        """
        check_device_id(device_id)
        device = self.device(device_id)
        if not isinstance(result, TestResult):
            raise TypeError(f"expected a TestResult, got {type(result).__name__}")
        if result.device_kind is not device.kind:
            raise ValueError(f"device {device_id} is a {device.kind.value}; this is a "
                             f"{result.device_kind.value} test")
        if not isinstance(operator, str) or not operator.strip():
            raise ValueError("a test needs the operator who ran it")
        when = _utc(when, "test time") if when is not None else datetime.now(UTC)
        at = _at(when)
        baseline_id = None
        if result.kind is TestKind.CONSTANCY:
            base = self._conn().execute(
                "SELECT id FROM tests WHERE device_id = ? AND kind = ? AND at <= ? "
                "ORDER BY at DESC, id DESC LIMIT 1",
                (device_id, TestKind.ACCEPTANCE.value, at)).fetchone()
            baseline_id = base[0] if base else None
        data = result.to_json()
        test_id = self._write(
            "INSERT INTO tests (device_id, at, kind, verdict, criteria, operator, source, "
            "baseline_id, result) VALUES (?,?,?,?,?,?,?,?,?)",
            (device_id, at, result.kind.value, result.verdict.value, result.criteria,
             operator.strip(), str(source), baseline_id,
             json.dumps(data, separators=(",", ":"), allow_nan=False)))
        return TestRecord(test_id, device_id, _when(at), operator.strip(), str(source),
                          result, baseline_id)

    def history(self, device_id: str, since: datetime | None = None,
                until: datetime | None = None) -> list[TestRecord]:
        """The tests of ``device_id``, oldest first, from ``since`` to ``until``
        (both included, aware times).  An unknown device is :class:`KeyError`."""
        self.device(device_id)
        sql = f"SELECT {_TEST_COLUMNS} FROM tests WHERE device_id = ?"
        params: list[Any] = [device_id]
        if since is not None:
            sql += " AND at >= ?"
            params.append(_at(since))
        if until is not None:
            sql += " AND at <= ?"
            params.append(_at(until))
        rows = self._conn().execute(sql + " ORDER BY at, id", params).fetchall()
        return [self._record(r) for r in rows]

    def test(self, test_id: int) -> TestRecord:
        """One test by its id; :class:`KeyError` if there is none."""
        row = self._conn().execute(
            f"SELECT {_TEST_COLUMNS} FROM tests WHERE id = ?", (test_id,)).fetchone()
        if row is None:
            raise KeyError(f"no QA test {test_id} in {self.path}")
        return self._record(row)

    def baseline(self, device_id: str) -> TestRecord | None:
        """The device's baseline: its latest acceptance test (None: none yet)."""
        row = self._conn().execute(
            f"SELECT {_TEST_COLUMNS} FROM tests WHERE device_id = ? AND kind = ? "
            "ORDER BY at DESC, id DESC LIMIT 1",
            (device_id, TestKind.ACCEPTANCE.value)).fetchone()
        return None if row is None else self._record(row)

    def latest(self) -> dict[str, TestRecord]:
        """Each tested device's last test, in one query (one index probe per device)."""
        rows = self._conn().execute(
            f"SELECT {', '.join('t.' + c.strip() for c in _TEST_COLUMNS.split(','))} "
            "FROM devices d JOIN tests t ON t.id = (SELECT id FROM tests WHERE "
            "device_id = d.id ORDER BY at DESC, id DESC LIMIT 1) ORDER BY d.id").fetchall()
        return {r[1]: self._record(r) for r in rows}

    @staticmethod
    def _record(row: tuple[Any, ...]) -> TestRecord:
        id_, device_id, at, operator, source, baseline_id, result = row
        return TestRecord(id_, device_id, _when(at), operator, source,
                          TestResult.from_json(json.loads(result)), baseline_id)

