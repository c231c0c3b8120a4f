"""The node's SQLite database: a fresh file opened by several workers at once, and a
write that is on disk when it returns, its WAL flushed after the writer lock is freed."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
import traceback
from pathlib import Path
from unittest import mock

import pytest

from printscp.archive.index import Index
from printscp.core import database as database_module
from printscp.core.database import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (a INTEGER);"


def _open_index(path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        Index(Path(path)).close()
    except Exception:
        errors.put(traceback.format_exc())


@pytest.mark.slow
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork to start the openers at the same moment")
def test_workers_opening_a_new_database_at_once_all_succeed(tmp_path):
    """``printscp serve --workers N`` on an empty data directory: every worker opens the
    new index at the same moment.  The switch to WAL used to fail in some of them with
    "database is locked" (a third of the openers here), and that worker did not start."""
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for attempt in range(12):
        path = tmp_path / f"{attempt}" / "index.sqlite"
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_index, args=(str(path), barrier, errors))
                 for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
            assert proc.exitcode == 0
        assert errors.empty(), errors.get()
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def _lock_is_free(lock_file: Path) -> bool:
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the descriptor drops a lock taken through it
    return True


def test_a_write_returns_after_its_wal_is_flushed_outside_the_writer_lock(tmp_path):
    """What a DIMSE success promises: the committed row is on disk when the write
    returns; the flush runs once the lock is free, so other writers need not wait."""
    db = Database(tmp_path / "x.sqlite", SCHEMA)
    events: list[tuple[str, object]] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        events.append(("flush", os.readlink(f"/proc/self/fd/{fd}")))
        events.append(("lock free during flush", _lock_is_free(tmp_path / "x.sqlite.lock")))
        real_fdatasync(fd)

    with mock.patch.object(database_module.os, "fdatasync", fdatasync):
        with db._write() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            events.append(("committing", None))
        events.append(("returned", None))
    assert events == [("committing", None), ("flush", str(tmp_path / "x.sqlite-wal")),
                      ("lock free during flush", True), ("returned", None)]
    synchronous = db._connect().execute("PRAGMA synchronous").fetchone()[0]
    assert synchronous == 1  # NORMAL: SQLite does not flush inside the commit itself


def test_a_nested_write_flushes_once_when_the_outermost_lock_is_left(tmp_path):
    db = Database(tmp_path / "x.sqlite", SCHEMA)
    flushes: list[int] = []
    with mock.patch.object(db, "flush_wal", lambda ticket=None: flushes.append(1)):
        with db._writer():
            with db._write() as conn:
                conn.execute("INSERT INTO t VALUES (1)")
            assert flushes == []
        assert flushes == [1]


def test_a_failed_transaction_is_rolled_back_and_not_flushed(tmp_path):
    db = Database(tmp_path / "x.sqlite", SCHEMA)
    flushes: list[int] = []
    with (mock.patch.object(db, "flush_wal", lambda ticket=None: flushes.append(1)),
          pytest.raises(RuntimeError), db._write() as conn):
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("refused")
    assert flushes == []
    assert db._connect().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


def test_writers_of_several_threads_all_commit(tmp_path):
    """Writers flushing side by side: every row is there, none waits on another's
    flush under the lock."""
    db = Database(tmp_path / "x.sqlite", SCHEMA)

    def insert(base: int) -> None:
        for i in range(50):
            with db._write() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (base + i,))

    threads = [threading.Thread(target=insert, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    reader = sqlite3.connect(tmp_path / "x.sqlite")
    assert reader.execute("SELECT COUNT(DISTINCT a) FROM t").fetchone()[0] == 200


def test_concurrent_writers_share_flushes_and_each_waits_for_one_after_its_commit(tmp_path):
    """Group commit: eight threads writing at once need fewer flushes than writes, and
    none returns before a flush that began after its own commit has ended (what makes
    its row durable)."""
    import threading
    import time

    from printscp.core import database

    db = Database(tmp_path / "x.sqlite", SCHEMA)
    reader = sqlite3.connect(tmp_path / "x.sqlite", check_same_thread=False)
    reader_lock = threading.Lock()
    flushes: list[tuple[int, float]] = []  # (rows committed when it began, end time)
    real = database._fdatasync

    def slow_flush(path: str) -> None:
        with reader_lock:
            (committed,) = reader.execute("SELECT COUNT(*) FROM t").fetchone()
        time.sleep(0.01)
        real(path)
        flushes.append((committed, time.monotonic()))

    returned: list[tuple[int, float]] = []  # (the row's rank, return time)
    start = threading.Barrier(8)

    def writer() -> None:
        start.wait()
        for _ in range(5):
            with db._write() as conn:
                conn.execute("INSERT INTO t VALUES (1)")
                (rank,) = conn.execute("SELECT COUNT(*) FROM t").fetchone()
            returned.append((rank, time.monotonic()))

    reader.execute("PRAGMA query_only=1")
    with mock.patch.object(database, "_fdatasync", slow_flush):
        threads = [threading.Thread(target=writer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(returned) == 40
    assert len(flushes) < 40
    for rank, when in returned:
        assert any(covered >= rank and ended <= when for covered, ended in flushes), rank
