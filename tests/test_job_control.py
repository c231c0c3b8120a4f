"""Job control: cancel, hold, release, delete and reprint through the spool's state
machine, across processes, and what Print Job N-GET then answers."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.net import wait_until
from helpers.print_scu import PrintSCU

from printscp.core import status, uids
from printscp.jobs import render as job_render
from printscp.jobs.control import JobControl, JobNotFound, JobStateError
from printscp.jobs.delivery import DeliveryError, job_lock
from printscp.jobs.spool import (
    CANCELED_INFO,
    DONE,
    FAILURE,
    HELD_INFO,
    HELD_MARK,
    PENDING,
    PRINTING,
    RENDERING_MARK,
    PrintJob,
    Spool,
    find_job,
    new_job_id,
    now_iso,
    print_job_uid,
)
from printscp.jobs.targets import CupsTarget, FileTarget
from printscp.printing.film_box import FilmBox
from printscp.printing.image_box import ImageBox
from printscp.printing.records import film_box_record

CUPS = CupsTarget(id="paper", queue="DOWN", server="127.0.0.1:9")
PDF = FileTarget()


def film_job(label: str = "LBL", targets=(PDF,), values=(4095,), calling="CT1",
             printer="P1") -> tuple[PrintJob, dict]:
    """A job of one 8INX10IN film with one 64x64 12-bit image per value."""
    arrays: dict = {}
    fmt = f"STANDARD\\{len(values)},1"
    fb = FilmBox(image_display_format=fmt, film_size_id="8INX10IN", film_orientation="PORTRAIT",
                 image_boxes=[ImageBox(position=i + 1, bits_stored=12,
                                       pixels=np.full((64, 64), v, np.uint16))
                              for i, v in enumerate(values)])
    job_id = new_job_id()
    job = PrintJob(job_id=job_id, created=now_iso(), calling_ae=calling, called_ae="PRINTSCP",
                   peer="127.0.0.1:1", session={"film_session_label": label,
                                                "number_of_copies": 1},
                   films=[film_box_record(fb, arrays, "film1")],
                   extra={"printer": printer, "targets": [t.to_json() for t in targets],
                          "print_job_uid": print_job_uid(job_id, uids.UID_ROOT)})
    return job, arrays


class FailingCups:
    """A CUPS-like delivery whose queue is down: every attempt raises a retriable error."""

    def __init__(self) -> None:
        self.attempts = 0
        self.ok = False

    def __call__(self, target, folder: Path, index: int) -> dict:
        self.attempts += 1
        if self.ok:
            return {"cups_job_id": 42}
        raise DeliveryError("queue DOWN is stopped", retriable=True, info="PRINTER OFFLINE")


@pytest.fixture
def spool(tmp_path):
    deliver = FailingCups()
    s = Spool(tmp_path, job_render.render_job, deliver=deliver)
    s.fake_cups = deliver  # type: ignore[attr-defined]
    yield s
    s.stop()


def control_for(spool: Spool, **kw) -> JobControl:
    return JobControl(spool.data_dir, spool.index, enqueue=spool.enqueue, **kw)


def test_a_finished_job_keeps_its_source_in_history(spool, tmp_path):
    job, arrays = film_job()
    spool.start()
    spool.submit(job, arrays)
    assert spool.wait_idle(30)
    assert sorted(p.name for p in (tmp_path / "history" / job.job_id).iterdir()) == [
        "job.json", "pixels.npz"]
    assert not (tmp_path / "spool" / job.job_id).exists()
    assert find_job(tmp_path, job.job_id)["status"] == DONE


def test_cancel_a_job_waiting_for_its_cups_queue(spool, tmp_path):
    job, arrays = film_job(targets=(PDF, CUPS))
    spool.start()
    spool.submit(job, arrays)
    # The queue is down: the job waits for a retry, PENDING with the printer's condition.
    wait_until(lambda: spool.fake_cups.attempts >= 1, timeout=20)
    wait_until(lambda: find_job(tmp_path, job.job_id)["status_info"] == "PRINTER OFFLINE",
               timeout=10)
    control = control_for(spool)
    assert control.get(job.job_id)["actions"]["cancel"]
    control.cancel(job.job_id)
    record = find_job(tmp_path, job.job_id)
    assert (record["status"], record["status_info"]) == (FAILURE, CANCELED_INFO)
    assert [d["state"] for d in record["deliveries"]] == ["done", "cancelled"]
    assert spool.wait_idle(5)  # the worker forgot it
    attempts = spool.fake_cups.attempts
    time.sleep(0.3)
    assert spool.fake_cups.attempts == attempts  # no retry of a cancelled job
    spool.index.flush()
    assert spool.index.get(job.job_id)["state"] == FAILURE
    assert [e["state"] for e in spool.index.events(job.job_id)][-1] == FAILURE
    with pytest.raises(JobStateError):
        control.cancel(job.job_id)  # finished now


def test_printing_jobs_cannot_be_cancelled_or_held(spool, tmp_path):
    started, go = threading.Event(), threading.Event()

    def slow_render(folder, data_dir):
        started.set()
        go.wait(10)
        return job_render.render_job(folder, data_dir)

    spool.renderer = slow_render
    job, arrays = film_job()
    spool.start()
    spool.submit(job, arrays)
    assert started.wait(10)
    control = control_for(spool)
    assert find_job(tmp_path, job.job_id)["status"] == PRINTING
    with pytest.raises(JobStateError, match="PRINTING"):
        control.cancel(job.job_id)
    with pytest.raises(JobStateError):
        control.hold(job.job_id)
    go.set()
    assert spool.wait_idle(30)
    assert find_job(tmp_path, job.job_id)["status"] == DONE


def test_hold_survives_a_restart_and_release_prints(tmp_path):
    job, arrays = film_job()
    first = Spool(tmp_path, job_render.render_job)
    first.submit(job, arrays)  # spooled, not yet rendered (no worker)
    control = JobControl(tmp_path, first.index, enqueue=first.enqueue)
    control.hold(job.job_id)
    assert find_job(tmp_path, job.job_id)["status_info"] == HELD_INFO
    restarted = Spool(tmp_path, job_render.render_job)  # a new process after a restart
    restarted.start()
    try:
        time.sleep(0.5)
        assert restarted.wait_idle(5)
        assert (tmp_path / "spool" / job.job_id / HELD_MARK).exists()
        record = find_job(tmp_path, job.job_id)
        assert (record["status"], record["status_info"]) == (PENDING, HELD_INFO)
        control = JobControl(tmp_path, restarted.index)  # request files: any worker claims
        control.release(job.job_id)
        wait_until(lambda: find_job(tmp_path, job.job_id)["status"] == DONE, timeout=20)
    finally:
        restarted.stop()
    assert [e["detail"] for e in restarted.index.events(job.job_id)][:3] == [
        "", "held", "released"]


def test_delete_a_finished_job_everywhere(spool, tmp_path):
    job, arrays = film_job()
    spool.start()
    spool.submit(job, arrays)
    assert spool.wait_idle(30)
    record = find_job(tmp_path, job.job_id)
    pdf = Path(record["output"])
    assert pdf.is_file()
    control = control_for(spool)
    with pytest.raises(JobNotFound):
        control.delete("20200101T000000000000Z-0000beef")
    control.delete(job.job_id)
    assert not pdf.exists() and find_job(tmp_path, job.job_id) is None
    assert not (tmp_path / "history" / job.job_id).exists()
    assert spool.index.get(job.job_id) is None and control.get(job.job_id) is None
    assert not list((tmp_path / "films").glob("*.json"))


def test_delete_refuses_a_pending_job(tmp_path):
    s = Spool(tmp_path, job_render.render_job)
    job, arrays = film_job()
    s.submit(job, arrays)
    with pytest.raises(JobStateError, match="cancel it first"):
        JobControl(tmp_path, s.index).delete(job.job_id)


def test_reprint_makes_a_new_done_job_with_the_same_films(spool, tmp_path):
    job, arrays = film_job(values=(4095, 0))
    spool.start()
    spool.submit(job, arrays)
    assert spool.wait_idle(30)

    def resolve(printer, target):
        if printer != "P2":
            raise ValueError(f"printer: no printer profile {printer!r}")
        return "P2", [FileTarget(directory="films-p2").to_json()]

    control = control_for(spool, resolve_targets=resolve)
    with pytest.raises(ValueError, match="printer"):
        control.reprint(job.job_id, printer="NOPE")
    new_id = control.reprint(job.job_id, printer="P2")
    assert new_id != job.job_id
    wait_until(lambda: (find_job(tmp_path, new_id) or {}).get("status") == DONE, timeout=30)
    again = find_job(tmp_path, new_id)
    assert again["printer"] == "P2" and again["reprint_of"] == job.job_id
    assert Path(again["output"]).parent.name == "films-p2"
    assert again["films"] == find_job(tmp_path, job.job_id)["films"]
    a = np.load(tmp_path / "history" / job.job_id / "pixels.npz")
    b = np.load(tmp_path / "history" / new_id / "pixels.npz")
    assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    spool.index.flush()
    assert any(e["detail"] == f"reprinted as {new_id}" for e in spool.index.events(job.job_id))
    details = control.get(new_id)
    assert details["state"] == DONE and details["actions"]["delete"]


def _hold_from_another_process(data_dir: str, job_id: str, out) -> None:
    try:
        JobControl(Path(data_dir), lock_timeout=0.2).hold(job_id)
        out.put("held")
    except JobStateError as exc:
        out.put(f"refused: {exc}")


def test_marker_protocol_across_processes(tmp_path):
    """While a worker holds a job's lock (it is taking the job), a control action in
    another process waits; once the job is marked rendering, the action is refused."""
    s = Spool(tmp_path, job_render.render_job)
    job, arrays = film_job()
    s.submit(job, arrays)
    folder = tmp_path / "spool" / job.job_id
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    with job_lock(folder):  # as Spool._process does while it claims the job
        p = ctx.Process(target=_hold_from_another_process, args=(str(tmp_path), job.job_id, out))
        p.start()
        (folder / RENDERING_MARK).write_text("1:x")  # the claim, under the lock
        p.join(30)
    assert out.get(timeout=5).startswith("refused")
    (folder / RENDERING_MARK).unlink()
    p = ctx.Process(target=_hold_from_another_process, args=(str(tmp_path), job.job_id, out))
    p.start()
    p.join(30)
    assert out.get(timeout=5) == "held"
    assert (folder / HELD_MARK).exists()
    # A worker dequeuing the held job leaves it alone.
    s.start()
    try:
        time.sleep(0.3)
        assert s.wait_idle(5) and (folder / "job.json").exists()
        assert not (folder / RENDERING_MARK).exists()
    finally:
        s.stop()


def test_a_job_owned_by_a_live_worker_is_not_taken_by_another(tmp_path):
    s = Spool(tmp_path, job_render.render_job)
    job, arrays = film_job()
    s.submit(job, arrays)
    folder = tmp_path / "spool" / job.job_id
    from printscp.jobs.delivery import process_token

    parent = process_token(__import__("os").getppid())  # a live process, not this one
    (folder / RENDERING_MARK).write_text(parent)
    s.start()
    try:
        time.sleep(0.3)
        assert s.wait_idle(5)
        assert (folder / "job.json").exists()  # left to its owner
        (folder / RENDERING_MARK).write_text("999999999:0")  # a dead owner: taken over
        s.enqueue(job.job_id)
        wait_until(lambda: not folder.exists(), timeout=20)
    finally:
        s.stop()
    assert find_job(tmp_path, job.job_id)["status"] == DONE


@pytest.mark.slow
def test_print_job_n_get_after_cancel_and_delete(make_node):
    node = make_node()
    node.spool.stop()  # keep the jobs spooled
    contexts = (uids.BASIC_GRAYSCALE_PRINT_META, uids.PRINT_JOB)
    try:
        job_uids = []
        for _ in range(2):
            with PrintSCU(node.port, contexts=contexts) as scu:
                scu.film_session()
                fb, _, _ = scu.film_box()
                _, ds = scu.action(uids.BASIC_FILM_BOX, fb)
                job_uids.append(ds[0x21000500].value[0].ReferencedSOPInstanceUID)
        data = node.config.data_path
        control = JobControl(data)
        [first, second] = sorted(p.name for p in (data / "spool").iterdir()
                                 if not p.name.startswith("."))
        with PrintSCU(node.port, calling="VIEWER", contexts=(uids.PRINT_JOB,)) as scu:
            def n_get(uid):
                return scu.assoc.send_n_get([0x21000020, 0x21000030], uids.PRINT_JOB, uid)

            control.hold(second)
            st, pj = n_get(job_uids[1])
            assert (pj.ExecutionStatus, pj.ExecutionStatusInfo) == ("PENDING", HELD_INFO)
            control.cancel(first)
            st, pj = n_get(job_uids[0])
            assert st.Status == 0
            assert (pj.ExecutionStatus, pj.ExecutionStatusInfo) == ("FAILURE", CANCELED_INFO)
            control.delete(first)
            st, _ = n_get(job_uids[0])
            assert st.Status == status.NO_SUCH_SOP_INSTANCE
        assert json.loads(json.dumps(control.get(second)))["held"]
    finally:
        node.stop()


def test_cli_actions(spool, tmp_path, capsys):
    from printscp.app.cli.main import main

    job, arrays = film_job()
    spool.submit(job, arrays)  # no worker yet: PENDING
    assert main(["jobs", "--data-dir", str(tmp_path), "hold", job.job_id]) == 0
    assert "JOB HELD" in capsys.readouterr().out
    assert main(["jobs", "delete", job.job_id, "--data-dir", str(tmp_path)]) == 1
    assert "cancel it first" in capsys.readouterr().err
    assert main(["jobs", "--data-dir", str(tmp_path), "cancel", job.job_id]) == 0
    assert find_job(tmp_path, job.job_id)["status_info"] == CANCELED_INFO
    assert main(["jobs", "--data-dir", str(tmp_path), "reprint", job.job_id]) == 0
    assert "reprinted as job" in capsys.readouterr().out
    assert main(["jobs", "--data-dir", str(tmp_path), "reprint", job.job_id,
                 "--printer", "X"]) == 2
    assert main(["jobs", "--data-dir", str(tmp_path), "delete", job.job_id]) == 0
    assert main(["jobs", "--data-dir", str(tmp_path), "cancel", job.job_id]) == 1
    assert main(["jobs", "--data-dir", str(tmp_path)]) == 0  # the list, as before


@pytest.mark.slow
def test_a_job_cancelled_elsewhere_is_reported_to_the_scu_watching_it(make_node):
    """The console (another process, through the files) cancels a job whose CUPS
    queue is down; the association that printed it gets its FAILURE event."""
    from helpers.net import free_port, wait_until
    from pynetdicom import evt

    node = make_node(f"""
[[printer.targets]]
type = "cups"
id = "ward"
queue = "ward"
server = "127.0.0.1:{free_port()}"
retry = {{initial_seconds = 30, max_seconds = 60}}
""")
    received: list[tuple[int, str]] = []

    def on_event(event):
        if event.request.AffectedSOPClassUID == uids.PRINT_JOB:  # not the Printer's
            received.append((event.request.EventTypeID,
                             str(event.event_information.ExecutionStatusInfo)))
        return 0x0000, None

    contexts = (uids.BASIC_GRAYSCALE_PRINT_META, uids.PRINT_JOB, uids.VERIFICATION)
    with PrintSCU(node.port, contexts=contexts,
                  evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event)]) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box("STANDARD\\1,1")
        scu.image(boxes[0], 1, np.full((64, 64), 2048, np.uint16))
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
        # PENDING, PRINTING, then PENDING again: the queue is down, a retry waits
        wait_until(lambda: (1, "PRINTER OFFLINE") in received, 20)
        [job_id] = [p.name for p in (node.config.data_path / "spool").iterdir()
                    if not p.name.startswith(".")]
        JobControl(node.config.data_path).cancel(job_id)
        wait_until(lambda: received[-1][0] == 4, 10)
        assert scu.assoc.send_c_echo().Status == 0
    assert received[-1] == (4, CANCELED_INFO)  # FAILURE, JOB CANCELED
