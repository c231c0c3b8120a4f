"""Pixels written as the Image Box N-SETs arrive (printscp.jobs.staging), and the job
the N-ACTION makes of them: the same pixel file, the same durability, a fallback."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from helpers.images import step_wedge
from helpers.net import wait_until
from helpers.nodes import printed_jobs
from helpers.print_scu import PrintSCU

from printscp.core import status, uids
from printscp.jobs import staging
from printscp.jobs.spool import PrintJob, Spool, list_jobs, load_arrays, new_job_id, now_iso
from printscp.jobs.staging import STAGE_PREFIX, PixelStage


def stages(spool_dir):
    return sorted(spool_dir.glob(f"{STAGE_PREFIX}*"))


def test_a_committed_stage_is_the_npz_numpy_would_write(tmp_path):
    images = [np.arange(i, i + 512 * 512, dtype=np.uint16).reshape(512, 512) for i in range(3)]
    rgb = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    stage = PixelStage(tmp_path)
    names = [stage.add(a, f"box{i}") for i, a in enumerate(images, start=1)]
    replaced = stage.add(rgb, "box2")  # the second box set again: a new member
    assert names == ["box1", "box2", "box3"] and replaced not in names
    plut = np.arange(4096, dtype=np.uint16)
    folder = stage.commit([names[0], replaced, names[2]], {"film1-plut": plut},
                          {"job_id": "J"}, "J")
    assert folder == tmp_path / "J" and not stages(tmp_path)
    assert json.loads((folder / "job.json").read_text()) == {"job_id": "J"}
    with zipfile.ZipFile(folder / "pixels.npz") as z:
        assert z.testzip() is None  # every member's CRC-32
        assert sorted(z.namelist()) == sorted(f"{n}.npy" for n in (
            "box1", replaced, "box3", "film1-plut"))
    arrays = load_arrays(folder)
    assert set(arrays) == {"box1", replaced, "box3", "film1-plut"}  # the old box2 is gone
    for got, want in ((arrays["box1"], images[0]), (arrays[replaced], rgb),
                      (arrays["box3"], images[2]), (arrays["film1-plut"], plut)):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_a_discarded_stage_leaves_nothing(tmp_path):
    stage = PixelStage(tmp_path)
    stage.add(np.zeros((64, 64), np.uint16), "box1")
    assert wait_until(lambda: stages(tmp_path), 5, 0.01)
    stage.discard()
    assert not stages(tmp_path) and not stage.usable


def test_a_stage_left_by_a_crash_is_no_job_and_recovery_removes_it(tmp_path):
    spool = Spool(tmp_path, lambda folder, data_dir: {})
    stage = PixelStage(spool.spool_dir)
    stage.add(np.ones((64, 64), np.uint16), "box1")
    assert wait_until(lambda: stages(spool.spool_dir), 5, 0.01)
    assert list_jobs(tmp_path) == []
    restarted = Spool(tmp_path, lambda folder, data_dir: {})
    restarted.start()
    restarted.stop()
    assert not stages(spool.spool_dir)


def test_a_stage_whose_write_failed_says_so_and_cannot_commit(tmp_path, monkeypatch):
    def no_space(*args):
        raise OSError(28, "No space left on device")

    stage = PixelStage(tmp_path)
    monkeypatch.setattr(staging.os, "pwritev", no_space)
    name = stage.add(np.zeros((64, 64), np.uint16), "box1")
    with pytest.raises(OSError):
        stage.commit([name], {}, {}, "J")
    assert not stage.usable
    stage.discard()
    assert not stages(tmp_path) and not (tmp_path / "J").exists()


def test_pixels_are_written_before_the_n_action_and_the_job_uses_them(node):
    spool_dir = node.spool.spool_dir
    wedge = step_wedge(bits=12)
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,2", FilmSizeID="8INX10IN")
        assert scu.image(boxes[0], 1, wedge, bits=12)[0].Status == 0
        assert scu.image(boxes[1], 2, wedge[::-1].copy(), bits=12)[0].Status == 0
        [stage] = wait_until(lambda: stages(spool_dir), 5, 0.01)
        # On its way to disk before any print was asked for (a writer thread).
        assert wait_until(lambda: (stage / "pixels.npz").stat().st_size
                          >= 2 * wedge.nbytes, 5, 0.01)
        assert scu.action(uids.BASIC_FILM_BOX, fb_uid)[0].Status == 0
        assert not stages(spool_dir)  # the stage became the job's folder
    [job] = printed_jobs(node)
    assert job["status"] == "DONE"
    names = [b["pixels"] for b in job["films"][0]["image_boxes"]]
    assert names == ["box1", "box2"]
    arrays = load_arrays(node.config.data_path / "history" / job["job_id"])
    assert np.array_equal(arrays["box1"], wedge)
    assert np.array_equal(arrays["box2"], wedge[::-1])


def test_a_broken_stage_falls_back_to_writing_the_pixels_at_n_action(node, monkeypatch):
    real = staging.os.pwritev
    calls = []

    def first_fails(fd, buffers, offset):
        calls.append(offset)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return real(fd, buffers, offset)

    monkeypatch.setattr(staging.os, "pwritev", first_fails)
    wedge = step_wedge(bits=12)
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,2", FilmSizeID="8INX10IN")
        for position, uid in enumerate(boxes, start=1):
            assert scu.image(uid, position, wedge, bits=12)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, fb_uid)[0].Status == status.SUCCESS
        assert not stages(node.spool.spool_dir)
    [job] = printed_jobs(node)
    assert job["status"] == "DONE"
    assert [b["pixels"] for b in job["films"][0]["image_boxes"]] == [
        "film1-box1", "film1-box2"]  # written at N-ACTION, from memory


def test_a_film_box_deleted_unprinted_or_an_ended_association_drops_its_stage(node):
    wedge = step_wedge(bits=12)
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN")
        scu.image(boxes[0], 1, wedge, bits=12)
        assert wait_until(lambda: stages(node.spool.spool_dir), 5, 0.01)
        assert scu.delete(uids.BASIC_FILM_BOX, fb_uid).Status == 0
        assert not stages(node.spool.spool_dir)
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN")
        scu.image(boxes[0], 1, wedge, bits=12)
        assert wait_until(lambda: stages(node.spool.spool_dir), 5, 0.01)
    assert wait_until(lambda: not stages(node.spool.spool_dir), 5, 0.01)  # its end seen
    assert printed_jobs(node) == []


def test_a_film_printed_twice_is_written_from_memory_the_second_time(node):
    wedge = step_wedge(bits=12)
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN")
        scu.image(boxes[0], 1, wedge, bits=12)
        assert scu.action(uids.BASIC_FILM_BOX, fb_uid)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, fb_uid)[0].Status == 0
    first, second = printed_jobs(node)
    assert first["status"] == second["status"] == "DONE"
    assert first["films"][0]["image_boxes"][0]["pixels"] == "box1"
    assert second["films"][0]["image_boxes"][0]["pixels"] == "film1-box1"


def test_write_job_and_a_commit_write_the_same_record(tmp_path):
    job = PrintJob(job_id=new_job_id(), created=now_iso(), calling_ae="CT", called_ae="P",
                   peer="127.0.0.1:1", session={}, films=[])
    spool = Spool(tmp_path, lambda folder, data_dir: {})
    spool.submit(job, {"a": np.zeros(3, np.uint8)})
    job2 = PrintJob(job_id=new_job_id(), created=now_iso(), calling_ae="CT", called_ae="P",
                    peer="127.0.0.1:1", session={}, films=[])
    stage = PixelStage(spool.spool_dir)
    name = stage.add(np.zeros(3, np.uint8), "a")
    spool.submit(job2, {}, stage=stage, staged=[name])
    for j in (job, job2):
        folder = spool.spool_dir / j.job_id
        assert json.loads((folder / "job.json").read_text())["job_id"] == j.job_id
        assert np.array_equal(load_arrays(folder)["a"], np.zeros(3, np.uint8))


def test_writes_deferred_in_a_block_start_when_it_ends(tmp_path):
    stage = PixelStage(tmp_path)
    image = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    with staging.deferred_writes():
        name = stage.add(image, "box1")
        assert not stages(tmp_path)  # nothing written while the response goes out
    assert wait_until(lambda: stages(tmp_path), 5, 0.01)
    with staging.deferred_writes():  # a commit inside a block waits for nothing forever
        second = stage.add(image[::-1].copy(), "box2")
        folder = stage.commit([name, second], {"film1-plut": np.arange(3, dtype=np.uint16)},
                              {}, "J")
    arrays = load_arrays(folder)
    assert np.array_equal(arrays["box1"], image) and np.array_equal(arrays["box2"], image[::-1])


def test_a_stage_discarded_inside_a_deferring_block_leaves_nothing(tmp_path):
    stage = PixelStage(tmp_path)
    with staging.deferred_writes():
        stage.add(np.zeros((8, 8), np.uint16), "box1")
        stage.discard()
    assert not stages(tmp_path)


def test_a_stage_that_breaks_while_n_action_waits_for_it_writes_from_memory(node, monkeypatch):
    """The last image's write fails on the stage's thread only after the N-ACTION has
    chosen the stage (CI hit this by chance): the job is written from the pixels in
    memory, as when the stage broke earlier, and the N-ACTION succeeds."""
    import time as _time

    real = staging.os.pwritev
    calls = []

    def second_fails_late(fd, buffers, offset):
        calls.append(offset)
        if len(calls) == 2:
            _time.sleep(0.5)  # the N-ACTION arrives meanwhile
            raise OSError(5, "Input/output error")
        return real(fd, buffers, offset)

    monkeypatch.setattr(staging.os, "pwritev", second_fails_late)
    wedge = step_wedge(bits=12)
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb_uid, boxes, _ = scu.film_box("STANDARD\\1,2", FilmSizeID="8INX10IN")
        for position, uid in enumerate(boxes, start=1):
            assert scu.image(uid, position, wedge, bits=12)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, fb_uid)[0].Status == status.SUCCESS
        assert not stages(node.spool.spool_dir)
    assert len(calls) == 2
    [job] = printed_jobs(node)
    assert job["status"] == "DONE"
    assert [b["pixels"] for b in job["films"][0]["image_boxes"]] == [
        "film1-box1", "film1-box2"]
