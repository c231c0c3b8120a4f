"""Output targets of a printer: named film files, CUPS hardcopy, forwarding upstream,
retries with visible Printer and Print Job status, and resumption after a restart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.clients import associate
from helpers.films import pdf_page, pdf_pages, ramp_films
from helpers.net import refusing_port, wait_until
from helpers.nodes import make_node
from helpers.upstream import running_dcmprscp
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian

from printscp.app.node import Node
from printscp.config import ConfigError, load_config
from printscp.core import uids
from printscp.jobs.spool import list_jobs
from printscp.outputs.print_scu import print_films


def start_node(folder: Path, targets: str, printer: str = "") -> Node:
    """A node printing at 100 DPI to ``targets``, its data in ``folder/data``."""
    return make_node(folder, f'[printer]\ndpi = 100\n{printer}\n' + targets)


def send(node: Node, count: int = 1, label: str = "TARGETS", **kw) -> None:
    """Print ``count`` films as one job (Film Session N-ACTION)."""
    print_films(ramp_films(count, **kw), ("PRINTSCP", "127.0.0.1", node.port), calling_ae="CT1",
                session={"FilmSessionLabel": label}, timeout=20, collate=True)


def finished_job(node: Node, timeout: float = 60.0) -> dict:
    assert node.spool.wait_idle(timeout), list_jobs(node.config.data_path)
    [job] = list_jobs(node.config.data_path)
    return job


def n_get(port: int, sop_class: str, uid: str, tags: list[int]) -> pydicom.Dataset:
    """N-GET from a fresh association, as a modality checking on the printer does."""
    assoc = associate(port, (uids.BASIC_GRAYSCALE_PRINT_META, ExplicitVRLittleEndian),
                      (uids.PRINT_JOB, ExplicitVRLittleEndian), calling="CHECKER")
    try:
        meta = uids.BASIC_GRAYSCALE_PRINT_META if sop_class == uids.PRINTER else None
        status, ds = assoc.send_n_get(tags, sop_class, uid, meta_uid=meta)
        assert status.Status == 0x0000
        return ds
    finally:
        assoc.release()


def printer_status(node: Node) -> tuple[str, str]:
    ds = n_get(node.port, uids.PRINTER, uids.PRINTER_INSTANCE, [0x21100010, 0x21100020])
    return str(ds.PrinterStatus), str(ds.PrinterStatusInfo)


def print_job_status(node: Node, job: dict) -> tuple[str, str]:
    ds = n_get(node.port, uids.PRINT_JOB, job["print_job_uid"], [0x21000020, 0x21000030])
    return str(ds.ExecutionStatus), str(ds.ExecutionStatusInfo)


def spooled(node: Node) -> dict | None:
    jobs = list_jobs(node.config.data_path)
    return jobs[0] if jobs else None


# -- configuration -------------------------------------------------------------------
@pytest.mark.parametrize(("table", "message"), [
    ('type = "fax"', "printer.targets[0].type"),
    ('type = "pdf"\nname = "{patient}"', "unknown field(s) patient"),
    ('type = "pdf"\ncolour = 1', "printer.targets[0].colour: unknown key"),
    ('type = "cups"', "queue: the CUPS queue name is required"),
    ('type = "cups"\nqueue = "Q"\npaper = "B5"', "paper"),
    ('type = "dicom"\ndestination = "nowhere"', "AE@HOST:PORT"),
    ('type = "dicom"\ndestination = "A@h:1"\nfilm_sizes = ["9INX9IN"]', "9INX9IN"),
    ('type = "png"\nretry = {initial_seconds = 0}', "retry"),
])
def test_bad_targets_are_refused_naming_the_key(tmp_path, table, message):
    toml = tmp_path / "bad.toml"
    toml.write_text(f"[[printer.targets]]\n{table}\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        load_config(toml)


# -- film files ----------------------------------------------------------------------
@pytest.mark.slow
def test_file_targets_write_every_format_under_their_naming(tmp_path):
    tiff_dir = tmp_path / "elsewhere"
    node = start_node(tmp_path, f'''
[[printer.targets]]
type = "pdf"
directory = "films/{{calling_ae}}/{{date}}"
name = "{{label}}_{{job}}"
[[printer.targets]]
type = "png"
directory = "png"
name = "{{label}}_film{{film}}"
[[printer.targets]]
type = "tiff"
directory = "{tiff_dir}"
bits = 16
''')
    try:
        send(node, count=2, label="../../etc/ABD 1")  # hostile label: no way out
        job = finished_job(node)
    finally:
        node.stop()
    assert job["status"] == "DONE", job
    data = node.config.data_path
    suffix = job["job_id"].rsplit("-", 1)[1]
    pdf = data / "films" / "CT1" / job["job_id"][:8] / f"etc_ABD_1_{suffix}.pdf"
    pngs = [data / "png" / f"etc_ABD_1_film{i}.png" for i in (1, 2)]
    tiffs = sorted(tiff_dir.glob("*.tif"))
    assert job["outputs"] == [str(pdf), *map(str, pngs), *map(str, tiffs)]
    assert pdf.read_bytes().startswith(b"%PDF") and len(tiffs) == 2
    for png in pngs:  # 8INX10IN at 100 DPI, 8-bit
        with Image.open(png) as im:
            assert im.size == (800, 1000) and im.mode == "L"
    with Image.open(tiffs[0]) as im:
        assert im.size == (800, 1000) and im.mode.startswith("I;16")
        px = np.asarray(im)
    assert px.max() > 255  # really 16-bit levels
    assert not list((data / "films").glob("*.pdf"))  # the default PDF target is replaced
    assert not (tmp_path / "etc").exists()


# -- CUPS hardcopy -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.cups
@pytest.mark.poppler
def test_hardcopy_on_a4_fit_and_true_size(tmp_path, cups):
    node = start_node(tmp_path, f'''
[[printer.targets]]
type = "pdf"
[[printer.targets]]
id = "paper-fit"
type = "cups"
server = "{cups.server}"
queue = "{cups.queue}"
paper = "A4"
fit = "fit"
[[printer.targets]]
id = "paper-1to1"
type = "cups"
server = "{cups.server}"
queue = "{cups.queue}"
paper = "A4"
fit = "true-size"
''')
    try:
        send(node, size="14INX17IN")
        job = finished_job(node)
    finally:
        node.stop()
    assert job["status"] == "DONE", job
    by_id = {t["label"]: t for t in job["deliveries"]}
    assert by_id["pdf:films"]["state"] == "done"
    expected_sheets = {"paper-fit": 1, "paper-1to1": 4}  # 356 x 432 mm on A4 at 1:1
    for label, sheets in expected_sheets.items():
        result = by_id[label]["result"]
        assert result["paper"] == "A4" and result["sheets_per_copy"] == sheets
        attrs = cups.wait_for_job(result["cups_job_id"])
        assert attrs["job-state"] == "completed", cups.log_tail()
        printed = cups.output_for(result["cups_job_id"])
        pages, (w, h) = pdf_pages(printed)
        assert pages == sheets
        assert abs(w - 595) <= 1 and abs(h - 842) <= 1  # A4 portrait, in points
    # The fitted film: the wedge runs from black to white, left to right.
    page = pdf_page(cups.output_for(by_id["paper-fit"]["result"]["cups_job_id"]), 30)
    row = page[page.shape[0] // 2]
    inside = row[(row > 5) & (row < 250)]
    assert len(np.unique(inside)) > 20
    assert np.all(np.diff(inside.astype(int)) >= -3)  # monotonic up to resampling noise


@pytest.mark.slow
@pytest.mark.cups
def test_failing_cups_target_is_retried_shown_and_nothing_lost(tmp_path, cups):
    node = start_node(tmp_path, f'''
[[printer.targets]]
type = "pdf"
[[printer.targets]]
type = "cups"
server = "{cups.server}"
queue = "{cups.queue}"
retry = {{initial_seconds = 0.2, max_seconds = 0.4}}
''')
    cups.reject_jobs()
    try:
        send(node)
        job = wait_until(lambda: (j := spooled(node)) and any(
            t["attempts"] >= 2 for t in j.get("deliveries", [])) and j, 20)
        assert job, "timed out waiting for two attempts"
        # The PDF target completed meanwhile; the job waits for the paper.
        assert len(list((node.config.data_path / "films").glob("*.pdf"))) == 1
        assert printer_status(node) == ("WARNING", "PRINTER OFFLINE")
        assert print_job_status(node, job) == ("PENDING", "PRINTER OFFLINE")
        jobs_cli = subprocess.run(["printscp", "jobs", "--data-dir",
                                   str(node.config.data_path)], capture_output=True,
                                  text=True).stdout
        assert "PENDING" in jobs_cli and "cups:" in jobs_cli
        cups.accept_jobs()
        done = finished_job(node, timeout=30)
        assert done["status"] == "DONE"
        assert print_job_status(node, done) == ("DONE", "NORMAL")
        assert printer_status(node) == ("NORMAL", "NORMAL")
    finally:
        cups.accept_jobs()
        node.stop()
    [cups_state] = [t for t in done["deliveries"] if t["kind"] == "cups"]
    assert cups_state["attempts"] >= 2 and cups_state["result"]["cups_job_id"] > 0
    assert cups.wait_for_job(cups_state["result"]["cups_job_id"])["job-state"] == "completed"


@pytest.mark.slow
@pytest.mark.cups
def test_waiting_delivery_survives_a_restart(tmp_path, cups):
    targets = f'''
[[printer.targets]]
type = "cups"
server = "{cups.server}"
queue = "{cups.queue}"
retry = {{initial_seconds = 0.2, max_seconds = 0.2}}
'''
    cups.reject_jobs()
    node = start_node(tmp_path, targets)
    try:
        send(node, label="RESTART")
        assert wait_until(lambda: (j := spooled(node)) and any(t["attempts"] for t in j.get(
            "deliveries", [])), 20), "timed out waiting for a failed attempt"
    finally:
        node.stop()
        cups.accept_jobs()
    assert spooled(node)["status"] == "PENDING"  # kept, with its delivery state
    again = start_node(tmp_path, targets)
    try:
        job = finished_job(again, timeout=30)
    finally:
        again.stop()
    assert job["status"] == "DONE" and job["session"]["film_session_label"] == "RESTART"
    [state] = [t for t in job["deliveries"] if t["kind"] == "cups"]
    assert cups.wait_for_job(state["result"]["cups_job_id"])["job-state"] == "completed"


# -- forwarding to an upstream DICOM printer -------------------------------------------
@pytest.mark.slow
@pytest.mark.dcmtk("dcmprscp")
def test_forwarding_to_dcmtk_adjusts_the_film_to_the_printer(tmp_path):
    with running_dcmprscp(tmp_path, film_sizes="8INX10IN\\14INX17IN") as (port, db):
        node = start_node(tmp_path, f'''
[[printer.targets]]
type = "pdf"
[[printer.targets]]
type = "dicom"
destination = "UPSTREAM@127.0.0.1:{port}"
film_sizes = ["8INX10IN", "14INX17IN"]
max_density_range = [150, 320]
''')
        try:
            send(node, count=2, size="14INX14IN", label="FWD")
            job = finished_job(node)
        finally:
            node.stop()
    assert job["status"] == "DONE", job
    [fwd] = [t for t in job["deliveries"] if t["kind"] == "dicom"]
    assert fwd["state"] == "done" and fwd["result"]["films"] == 2
    assert "film 1: film_size_id 14INX14IN -> 14INX17IN" in fwd["result"]["adjusted"]
    stored = [pydicom.dcmread(p) for p in sorted(db.glob("SP_*.dcm"))]
    sizes = [sp[0x21300030][0].FilmSizeID for sp in stored]
    assert sizes == ["14INX17IN", "14INX17IN"]
    hardcopies = [pydicom.dcmread(p) for p in db.glob("HG_*.dcm")]
    assert len(hardcopies) == 2
    assert int(hardcopies[0].Columns) == 256 and int(hardcopies[0].BitsStored) == 12


@pytest.mark.slow
@pytest.mark.dcmtk("dcmprscp")
def test_unreachable_upstream_is_retried_until_it_answers(tmp_path):
    holder, port = refusing_port()
    node = start_node(tmp_path, f'''
[[printer.targets]]
type = "dicom"
destination = "UPSTREAM@127.0.0.1:{port}"
timeout = 5
retry = {{initial_seconds = 0.2, max_seconds = 0.5}}
''')
    try:
        send(node)
        job = wait_until(lambda: (j := spooled(node)) and any(
            t["attempts"] >= 2 for t in j.get("deliveries", [])) and j, 20)
        assert job, "timed out waiting for two attempts"
        assert print_job_status(node, job) == ("PENDING", "PRINTER OFFLINE")
        assert printer_status(node) == ("WARNING", "PRINTER OFFLINE")
        holder.close()
        with running_dcmprscp(tmp_path, port=port) as (_, db):
            done = finished_job(node, timeout=30)
            assert len(list(db.glob("HG_*.dcm"))) == 1
    finally:
        holder.close()
        node.stop()
    assert done["status"] == "DONE"


@pytest.mark.slow
@pytest.mark.parametrize("upstream_fails", [False, True])
def test_forwarding_reflects_the_upstream_print_job(tmp_path, upstream_fails):
    """Upstream is another printscp (it offers the Print Job SOP Class): its job's
    outcome becomes ours."""
    upstream_dir = tmp_path / "up"
    upstream_dir.mkdir()
    directory = "/proc/printscp-cannot-write-here" if upstream_fails else "films"
    upstream = start_node(upstream_dir, f'[[printer.targets]]\ntype = "pdf"\n'
                          f'directory = "{directory}"\n')
    node = start_node(tmp_path, f'''
[[printer.targets]]
type = "dicom"
destination = "PRINTSCP@127.0.0.1:{upstream.port}"
follow_print_job = 30
''')
    try:
        send(node, label="UPSTREAM", annotation="DR. HOUSE  LEFT KNEE")
        job = finished_job(node)
        status = print_job_status(node, job)
    finally:
        node.stop()
        upstream.stop()
    [fwd] = [t for t in job["deliveries"] if t["kind"] == "dicom"]
    if upstream_fails:
        assert job["status"] == "FAILURE" and fwd["state"] == "failed"
        assert "upstream Print Job failed (INVALID PAGE DES)" in fwd["last_error"]
        assert status == ("FAILURE", "INVALID PAGE DES")
        assert fwd["attempts"] == 1  # a definitive failure is not retried
    else:
        assert job["status"] == "DONE" and status == ("DONE", "NORMAL")
        [(uid, upstream_job)] = fwd["result"]["upstream_print_jobs"].items()
        assert upstream_job == {"status": "DONE", "info": "NORMAL"}
        [up] = list_jobs(upstream.config.data_path)
        assert up["print_job_uid"] == uid and up["calling_ae"] == "PRINTSCP"
        assert up["session"]["film_session_label"] == "UPSTREAM"
        film = up["films"][0]
        assert film["annotations"] == {"1": "DR. HOUSE  LEFT KNEE"}
        assert film["annotation_display_format_id"] == "LABEL"


@pytest.mark.slow
def test_job_snapshot_keeps_its_targets(tmp_path):
    """A spooled job records its targets, so a config change cannot redirect it."""
    node = start_node(tmp_path, '[[printer.targets]]\ntype = "png"\n')
    try:
        node.spool.stop()  # keep the job in the spool
        send(node)
        [folder] = [p for p in (node.config.data_path / "spool").iterdir()]
        snapshot = json.loads((folder / "job.json").read_text())["targets"]
    finally:
        node.stop()
    # The archive keeps every job's films as an Encapsulated PDF (archive.store_films).
    assert [t["type"] for t in snapshot] == ["png", "archive"]
