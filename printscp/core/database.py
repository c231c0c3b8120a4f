"""The node's database: one SQLite file, ``<data_dir>/index.sqlite``, shared by the
archive index, the worklist and MPPS, each with its own tables.

WAL mode lets readers (``printscp mpps list``, queries) run beside the server's
writes.  Writes take SQLite's write lock up front (``BEGIN IMMEDIATE``) so worker
processes serialise instead of failing on upgrade.

Before ``BEGIN IMMEDIATE`` a writer takes the *writer lock*: a per-process re-entrant
thread lock plus an exclusive ``flock`` on ``<database>.lock``.  SQLite's own busy
handler polls, sleeping 1, 2, 5, 10, 15, 20... ms between attempts, so with several
associations in several processes storing at once, writers would sleep far longer
than the lock is held; a blocking ``flock`` wakes the next writer as soon as the
lock is released.  The busy timeout stays as a backstop for other writers (the
``sqlite3`` shell).  One connection per thread: sqlite3 connections are not to be
shared between threads.

Durability: a write returns only once its transaction is on disk, which is what a
DIMSE success promises.  SQLite's ``synchronous=FULL`` would fsync the WAL inside
the commit, with the writer lock held, so every other writer of every worker waited
for that flush (0.6 ms of lock wait per C-STORE with four storing associations).
The connections run ``synchronous=NORMAL`` instead (the WAL is appended without a
flush; SQLite still syncs the WAL before each checkpoint and the database after it),
and the writer flushes the WAL itself with ``fdatasync`` once it has released the
lock (:meth:`Database._writer`).  The flush covers every frame appended so far,
its own included, and writers flush side by side; should a checkpoint have emptied
the WAL meanwhile, SQLite synced the database file with those frames in it first.
Writers of one process that finish at once share a flush (:class:`WalFlush`, a group
commit): the first starts one, those who committed before it started are done when it
ends, the others wait for it and then start the next for all of them together.
The first connection to a new file switches it to WAL under the writer lock too:
two workers opening a fresh data directory at once otherwise had one of them fail
with "database is locked" (SQLite does not wait on a busy handler for that switch).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path


class WriterLock:
    """Mutual exclusion of this database's writers across threads and processes.

    Re-entrant within a thread (the ``flock`` is taken by the outermost holder only).
    The lock file is opened lazily, in the process that writes: a descriptor
    inherited over ``fork`` shares its lock with the parent and would exclude nothing.
    """

    def __init__(self, path: Path, database: Path) -> None:
        self.path = path
        #: The group commit of the database's WAL in this process.
        self.wal = WalFlush(database)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._opened: list[int] = []  # closed with the lock, when no Database uses it
        weakref.finalize(self, _close_all, self._opened)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._lock_file()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock_file(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._opened.append(self._fd)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without holding the GIL


class WalFlush:
    """Flushes of one database's WAL in this process, shared by the writers that
    committed before a flush started (a group commit).

    Each writer takes a ticket (:meth:`committed`) while it still holds the writer
    lock, after its commit; :meth:`flush` returns once a flush that started after
    that ticket has ended.  One flush runs at a time: with four associations storing
    in two processes, each C-STORE's own fdatasync queued behind the others' on the
    disk, where one now covers all that committed before it.
    """

    def __init__(self, path: Path) -> None:
        self.path = f"{path}-wal"
        self._cond = threading.Condition()
        self._commits = 0  #: tickets handed out
        self._flushed = 0  #: every ticket up to this one is durable
        self._flushing = False

    def committed(self) -> int:
        """A ticket for what was just committed (call under the writer lock)."""
        with self._cond:
            self._commits += 1
            return self._commits

    def flush(self, ticket: int) -> None:
        """Return once what ``ticket``'s commit wrote is on disk."""
        with self._cond:
            while self._flushed < ticket:
                if not self._flushing:
                    self._flushing, target = True, self._commits
                    break
                self._cond.wait()
            else:
                return
        done = False
        try:
            _fdatasync(self.path)
            done = True
        finally:  # on failure the next waiter flushes (and raises, if it fails too)
            with self._cond:
                self._flushing = False
                if done:
                    self._flushed = max(self._flushed, target)
                self._cond.notify_all()


def _fdatasync(path: str) -> None:
    """``fdatasync`` the file at ``path`` (a WAL that is gone was checkpointed into
    the synced database file and removed by the last connection closing)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


_WRITER_LOCKS: weakref.WeakValueDictionary[tuple[int, str], WriterLock] = \
    weakref.WeakValueDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_lock(database: Path) -> WriterLock:
    """The writer lock of ``database`` in this process: one per file while a
    :class:`Database` on it lives, so the archive index and the worklist of one process
    exclude each other by the thread lock (re-entrantly) and not only by ``flock``."""
    key = (os.getpid(), str(Path(database).absolute()))
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(key)
        if lock is None:
            lock = _WRITER_LOCKS[key] = WriterLock(Path(key[1] + ".lock"), Path(key[1]))
        return lock


class Database:
    """Connections to the SQLite file at ``path``; ``schema`` is run once on open."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock: WriterLock | None = None
        self._lock_pid = 0
        with self._writer():  # the first connection switches a new file to WAL
            self._connect().executescript(schema)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # the WAL is flushed by _writer()
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """Hold the writer lock: around a transaction, and whatever must happen before
        another writer may look (the archive deletes a replaced file under it).  On
        leaving the outermost one, the WAL is flushed, after the lock is released:
        what was committed under it is durable when this returns."""
        if self._lock is None or self._lock_pid != os.getpid():  # first write, or forked
            self._lock, self._lock_pid = writer_lock(self.path), os.getpid()
        local = self._local
        depth = getattr(local, "writer_depth", 0)
        local.writer_depth = depth + 1
        lock = self._lock
        ticket = 0
        try:
            with lock.held():
                yield
                if depth == 0:
                    ticket = lock.wal.committed()
        finally:
            local.writer_depth = depth
        if ticket:
            self.flush_wal(ticket)

    def flush_wal(self, ticket: int | None = None) -> None:
        """``fdatasync`` the WAL: every transaction committed so far is then on disk
        (a WAL that is gone was checkpointed into the synced database file and
        removed by the last connection closing).  With a writer's ``ticket``, the
        flush is shared with this process's other writers (:class:`WalFlush`)."""
        if ticket is None or self._lock is None:
            _fdatasync(f"{self.path}-wal")
        else:
            self._lock.wal.flush(ticket)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success, under the writer lock."""
        with self._writer():
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
