"""The node's SQLite database: a fresh file opened by several workers at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from pathlib import Path

import pytest

from printscp.archive.index import Index


def _open_index(path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        Index(Path(path)).close()
    except Exception:
        errors.put(traceback.format_exc())


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
