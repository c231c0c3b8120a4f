"""The spool on its own: durability layout, priority order, recovery."""

from __future__ import annotations

import json
from pathlib import Path

from printscp.jobs.spool import PENDING, PrintJob, Spool, list_jobs, new_job_id, now_iso


def job(priority: str) -> PrintJob:
    return PrintJob(job_id=new_job_id(), created=now_iso(), calling_ae="CT", called_ae="P",
                    peer="127.0.0.1:1", session={"print_priority": priority}, films=[])


def test_high_priority_jobs_render_first_in_arrival_order(tmp_path):
    order: list[str] = []

    def render(folder: Path, films: Path) -> dict:
        data = json.loads((folder / "job.json").read_text())
        order.append(f"{data['session']['print_priority']}-{data['job_id'][-4:]}")
        return {}

    spool = Spool(tmp_path, render)
    jobs = [job(p) for p in ("LOW", "MED", "HIGH", "LOW", "HIGH")]
    for j in jobs:
        spool.submit(j, {})
    # Submitted before the worker runs, like jobs found in the spool after a restart.
    assert [j["status"] for j in list_jobs(tmp_path)] == [PENDING] * 5
    spool.start(recover=False)
    assert spool.wait_idle(30)
    spool.stop()
    expected = [f"{j.session['print_priority']}-{j.job_id[-4:]}" for j in
                sorted(jobs, key=lambda j: ({"HIGH": 0, "MED": 1, "LOW": 2}[
                    j.session["print_priority"]], jobs.index(j)))]
    assert order == expected
    assert not [p for p in (tmp_path / "spool").iterdir() if not p.name.startswith(".")]


def test_recovery_keeps_priorities_and_drops_unacknowledged_folders(tmp_path):
    order: list[str] = []
    spool = Spool(tmp_path, lambda folder, films: order.append(
        json.loads((folder / "job.json").read_text())["session"]["print_priority"]) or {})
    for p in ("LOW", "HIGH"):
        spool.submit(job(p), {})
    (tmp_path / "spool" / ".tmp-half-written").mkdir()
    restarted = Spool(tmp_path, spool.renderer)  # a new process finds what is on disk
    restarted.start()
    assert restarted.wait_idle(30)
    restarted.stop()
    assert order == ["HIGH", "LOW"]
    assert not (tmp_path / "spool" / ".tmp-half-written").exists()


def test_finished_jobs_move_to_history_and_old_ones_are_pruned(tmp_path):
    import os
    import time

    spool = Spool(tmp_path, lambda folder, data_dir: {}, history_days=7)
    old, new = job("MED"), job("MED")
    for j in (old, new):
        spool.submit(j, {})
    spool.start(recover=False)
    assert spool.wait_idle(30)
    spool.stop()
    history = tmp_path / "history"
    assert sorted(p.name for p in history.iterdir()) == sorted([old.job_id, new.job_id])
    eight_days_ago = time.time() - 8 * 86400
    os.utime(history / old.job_id, (eight_days_ago, eight_days_ago))
    restarted = Spool(tmp_path, spool.renderer, history_days=7)
    restarted.start(recover=False)  # prunes at start
    restarted.stop()
    assert [p.name for p in history.iterdir()] == [new.job_id]
    # The sidecars stay: the job is still listed, only no longer reprintable.
    assert len(list_jobs(tmp_path)) == 2
