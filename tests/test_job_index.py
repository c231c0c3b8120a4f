"""The job index: filters, paging, events, and catching up with the files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from printscp.jobs.index import JobIndex
from printscp.jobs.spool import HELD_MARK, RENDERING_MARK


def sidecar(films_dir, n: int, *, calling="CT1", printer="P1", state="DONE", label="",
            day: int = 1) -> str:
    """A finished job's sidecar as the spool writes it; returns its job id."""
    job_id = f"202601{day:02d}T{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}000000Z-{n:08x}"
    created = datetime(2026, 1, day, n // 3600 % 24, n // 60 % 60, n % 60, tzinfo=UTC)
    stem = f"{job_id[:8]}-{job_id[9:15]}_{calling}_{n:08x}"
    data = {"job_id": job_id, "created": created.isoformat(timespec="milliseconds"),
            "calling_ae": calling, "called_ae": "PRINTSCP", "printer": printer,
            "session": {"film_session_label": label, "number_of_copies": 2},
            "films": [{}, {}], "status": state, "status_info": "NORMAL",
            "output": str(films_dir / f"{stem}.pdf"), "pages": 4,
            "finished": created.isoformat(timespec="milliseconds")}
    (films_dir / f"{stem}.json").write_text(json.dumps(data))
    return job_id


@pytest.fixture
def data(tmp_path):
    (tmp_path / "films").mkdir()
    (tmp_path / "spool").mkdir()
    return tmp_path


def test_query_filters_and_paging(data):
    films = data / "films"
    ids = [sidecar(films, n, calling="CT1" if n % 2 else "MR2", printer="P1" if n % 3 else "P2",
                   state="FAILURE" if n % 5 == 0 else "DONE", label=f"ACC{n}")
           for n in range(1, 31)]
    index = JobIndex(data)
    assert index.sync() == 30
    rows, total = index.query(limit=10)
    assert total == 30 and [r["job_id"] for r in rows] == ids[::-1][:10]  # newest first
    rows, total = index.query(limit=10, offset=25)
    assert total == 30 and [r["job_id"] for r in rows] == ids[::-1][25:]
    rows, total = index.query(calling_ae="MR2")
    assert total == 15 and all(r["calling_ae"] == "MR2" for r in rows)
    rows, total = index.query(printer="P2", state="FAILURE")
    assert total == 2 and {r["job_id"] for r in rows} == {ids[14], ids[29]}
    rows, total = index.query(label="acc2")  # substring, any case
    assert total == 11
    since = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    rows, total = index.query(since=since, until=since + timedelta(seconds=5))
    assert [r["job_id"] for r in rows] == ids[9:14][::-1]
    rows, _ = index.query(since="2026-01-01T00:00:29Z")
    assert len(rows) == 2
    row = index.get(ids[0])
    assert row["films"] == 2 and row["sheets"] == 4 and row["state"] == "DONE"
    assert row["film_session_label"] == "ACC1" and row["output"].endswith(".pdf")
    assert index.counts_by_state() == {"PENDING": 0, "PRINTING": 0, "DONE": 24,
                                       "FAILURE": 6, "HELD": 0}
    with pytest.raises(ValueError, match="state"):
        index.query(state="BOGUS")


def test_sync_follows_the_files(data):
    index = JobIndex(data)
    assert index.sync() == 0
    # A job appears in the spool, is held, then renders, then finishes.
    job_id = "20260102T000001000000Z-00000001"
    folder = data / "spool" / job_id
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps({
        "job_id": job_id, "created": "2026-01-02T00:00:01.000+00:00", "calling_ae": "CT1",
        "called_ae": "PRINTSCP", "peer": "x", "session": {}, "films": [{}],
        "status": "PENDING", "printer": "P1"}))
    assert index.sync() == 1 and index.get(job_id)["state"] == "PENDING"
    assert index.sync() == 0  # nothing changed
    (folder / HELD_MARK).write_text("x")
    index.sync()
    assert index.get(job_id)["held"] and index.query(state="HELD")[1] == 1
    (folder / HELD_MARK).unlink()
    (folder / RENDERING_MARK).write_text("1:1")
    index.sync()
    assert index.get(job_id)["state"] == "PRINTING"
    done = sidecar(data / "films", 1, day=2)
    assert done == job_id
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    index.sync()
    assert index.get(job_id)["state"] == "DONE"
    assert [e["state"] for e in index.events(job_id)] == ["PENDING", "PENDING", "PRINTING",
                                                          "DONE"]
    # A sidecar removed behind the node's back: the job leaves the index.
    next((data / "films").glob("*.json")).unlink()
    index.sync()
    assert index.get(job_id) is None


def test_a_late_write_never_takes_a_finished_job_back(data):
    index = JobIndex(data)
    job = {"job_id": "20260101T000001000000Z-00000001", "created": "2026-01-01T00:00:01Z",
           "calling_ae": "CT1", "films": [], "session": {}}
    index.record({**job, "status": "DONE"})
    index.record_later({**job, "status": "PRINTING"})
    assert index.flush()
    assert index.get(job["job_id"])["state"] == "DONE"


@pytest.mark.slow
def test_ten_thousand_jobs_sync_and_query(data):
    """At the benchmark's scale (benchmarks/console.py times it): an index up to date
    syncs nothing, and pages and filters answer right."""
    films = data / "films"
    for n in range(10_000):
        sidecar(films, n, calling=f"CT{n % 7}", printer=f"P{n % 3}", label=f"L{n % 100}",
                day=1 + n // 86400)
    index = JobIndex(data)
    assert index.sync() == 10_000
    assert index.sync() == 0
    rows, total = index.query(limit=50)
    assert total == 10_000 and len(rows) == 50
    assert [r["job_id"] for r in rows] == sorted((r["job_id"] for r in rows), reverse=True)
    rows, total = index.query(calling_ae="CT3", printer="P1", label="L4", limit=50)
    assert total > 0 and len(rows) <= 50
    assert all((r["calling_ae"], r["printer"]) == ("CT3", "P1")
               and "L4" in r["film_session_label"]
               for r in rows)
