"""``printscp print`` (Print SCU) against printscp's own Print SCP."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers.nodes import printed_jobs
from helpers.upstream import running_dcmprscp

pytestmark = pytest.mark.slow  # every test runs printscp print


def run_print(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "printscp", "print", *args],
                          capture_output=True, text=True, timeout=120)


def test_prints_images_as_films_and_reports_every_step(node, samples):
    res = run_print(str(samples / "wedge_12bit.dcm"), str(samples / "wedge_8bit_mono1.dcm"),
                    str(samples / "multiframe_3.dcm"), "--to", f"PRINTSCP@127.0.0.1:{node.port}",
                    "--format", "STANDARD\\2,2", "--film-size", "A4", "--copies", "2",
                    "--label", "FROM SCU", "--priority", "HIGH", "--calling-ae", "MYSCU")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("Printer N-GET: 0x0000 Success")
    assert any(ln.startswith("film 2: Film Box N-ACTION (print): 0x0000") for ln in lines)
    assert lines[-1].startswith("printed 2 film(s)") and "NORMAL" in lines[-1]
    # 1 + 1 + 3 frames = 5 images on 2x2 films: two jobs, one film each.
    printed = printed_jobs(node)
    assert [j["calling_ae"] for j in printed] == ["MYSCU", "MYSCU"]
    assert printed[0]["session"] == printed[1]["session"]
    assert printed[0]["session"]["film_session_label"] == "FROM SCU"
    assert printed[0]["session"]["print_priority"] == "HIGH" and printed[0]["copies"] == 2
    film = printed[0]["films"][0]
    assert film["film_size_id"] == "A4" and film["image_display_format"] == "STANDARD\\2,2"
    boxes = film["image_boxes"]
    assert [b["bits_stored"] for b in boxes] == [12, 12, 12, 12]
    assert boxes[1]["photometric_interpretation"] == "MONOCHROME1"
    assert [b.get("pixels") is not None for b in printed[1]["films"][0]["image_boxes"]] == [
        True, False, False, False]


def test_collated_films_are_one_job_followed_to_done(node, samples):
    res = run_print(str(samples / "wedge_12bit.dcm"), str(samples / "multiframe_3.dcm"),
                    "--to", f"PRINTSCP@127.0.0.1:{node.port}", "--format", "STANDARD\\1,2",
                    "--collate", "--wait", "30")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Film Session N-ACTION (print): 0x0000" in res.stdout
    [printed] = printed_jobs(node)
    assert len(printed["films"]) == 2
    assert f"print job {printed['print_job_uid']}: DONE (NORMAL)" in res.stdout


def test_refused_step_fails_with_the_printers_status(node, samples):
    # A 256-pixel wedge in a 16x16 grid on 8x10 in (boxes of about 122 printer pixels)
    # does not fit, and the printer's default for that is FAIL: 0xC603.
    res = run_print(str(samples / "wedge_12bit.dcm"), "--to",
                    f"PRINTSCP@127.0.0.1:{node.port}", "--format", "STANDARD\\16,16",
                    "--film-size", "8INX10IN")
    assert res.returncode == 2
    assert "Image Box 1 N-SET: 0xC603 Failure" in res.stderr


@pytest.mark.parametrize("dest", ["PRINTSCP@127.0.0.1", "127.0.0.1:104", "@h:1"])
def test_bad_destination(dest, samples):
    res = run_print(str(samples / "CT_small.dcm"), "--to", dest)
    assert res.returncode == 2 and "AE@HOST:PORT" in res.stderr


def test_unreachable_printer(samples):
    res = run_print(str(samples / "CT_small.dcm"), "--to", "NOBODY@127.0.0.1:9")
    assert res.returncode == 2 and "not accepted" in res.stderr


@pytest.mark.dcmtk("dcmprscp")
def test_prints_on_dcmtk_print_scp(tmp_path, samples):
    import pydicom

    with running_dcmprscp(tmp_path) as (port, db):
        res = run_print(str(samples / "wedge_12bit.dcm"), str(samples / "CT_small.dcm"),
                        "--to", f"UPSTREAM@127.0.0.1:{port}", "--format", "STANDARD\\2,2",
                        "--film-size", "8INX10IN")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "Film Box N-ACTION (print): 0x0000" in res.stdout
    [sp] = db.glob("SP_*.dcm")
    stored = pydicom.dcmread(sp)
    film = stored[0x21300030][0]  # Film Box Content Sequence (retired, as DCMTK writes it)
    assert film.ImageDisplayFormat == "STANDARD\\2,2" and film.FilmSizeID == "8INX10IN"
    assert len(list(db.glob("HG_*.dcm"))) == 2
