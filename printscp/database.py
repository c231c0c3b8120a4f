"""The node's database: one SQLite file, ``<data_dir>/index.sqlite``, shared by the
archive index, the worklist and MPPS, each with its own tables.

WAL mode lets readers (``printscp mpps list``, queries) run beside the server's
writes; ``synchronous=FULL`` makes a committed row survive a crash, which is what a
DIMSE success promises.  Writes take SQLite's write lock up front (``BEGIN
IMMEDIATE``) so worker processes serialise instead of failing on upgrade.  One
connection per thread: sqlite3 connections are not to be shared between threads.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


class Database:
    """Connections to the SQLite file at ``path``; ``schema`` is run once on open."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connect().executescript(schema)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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
