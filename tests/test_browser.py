"""The console in a real browser (headless Chromium): every page renders and is not
blank, the keyboard reaches the navigation, times show in the browser's time zone, and
the main flows work as a user does them: a film printed with DCMTK appears in the
queue with its thumbnail, is reprinted to a second printer profile, and a job whose
CUPS queue is down is cancelled.

Screenshots of every page are left in the test's folder (``pytest --basetemp`` to
keep them somewhere) for a person to look at.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers.archive_data import Study
from helpers.browser import WIDE, browser, console_node, not_blank, page, shoot  # noqa: F401
from helpers.dcmtk import PrintClient
from helpers.net import free_port

pytestmark = [pytest.mark.chromium, pytest.mark.slow]

TOKYO = ZoneInfo("Asia/Tokyo")


def node_toml(cups_port: int) -> str:
    """The default printer (a PDF per job), a second profile SECOND (PNG files), and
    PAPER whose CUPS server is not there (its deliveries wait for a retry)."""
    return f"""
[printer]
name = "main"

[printers.SECOND]
name = "second"

[[printers.SECOND.targets]]
type = "png"
id = "second-png"
directory = "second"

[printers.PAPER]
name = "paper"

[[printers.PAPER.targets]]
type = "cups"
id = "ward-laser"
queue = "ward"
server = "127.0.0.1:{cups_port}"
retry = {{initial_seconds = 30, max_seconds = 60}}
"""


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def running(tmp_path):
    with console_node(tmp_path, node_toml(free_port())) as running:
        yield running


def fill_archive(running, samples: Path) -> Study:
    """A study as a modality stores it, and a real CT image, in the node's archive."""
    from test_api_archive import store

    study = Study("PID-0042", "DOE^JANE", "20240105", "ACC-7", series=2, images=3,
                  size=64)
    store(running.console, study)
    outcome = running.console.archive.import_file(samples / "CT_small.dcm")
    assert outcome.status == 0, outcome.comment
    return study


def has_route(running, path: str) -> bool:
    """Whether the console serves ``path`` (pages other helpers add may not be there)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(running.url + path, timeout=10) as answer:
            return answer.status == 200
    except urllib.error.HTTPError as exc:
        return exc.code not in (404, 405)
    except OSError:
        return False


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_archive_workflow_node_pages(running, page, samples, shots):  # noqa: F811
    fill_archive(running, samples)
    running.console.worklist.add(_item())
    page.goto(running.url + "/archive")
    assert page.title().startswith("Archive")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 2
    assert "DOE, JANE" in page.locator("main table").inner_text()
    shoot(page, shots, "archive")

    page.get_by_role("link", name="DOE, JANE").click()
    page.wait_for_load_state("networkidle")
    thumbs = page.locator("img.thumb")
    assert thumbs.count() == 2
    for i in range(2):  # each thumbnail loaded, and it is an image, not a grey box
        assert page.evaluate("(img) => img.complete && img.naturalWidth", thumbs.nth(i)
                             .element_handle()) == 64
    shoot(page, shots, "archive_study")

    page.goto(running.url + "/workflow")
    assert "DOE, JOHN" in page.locator("main").inner_text()
    shoot(page, shots, "workflow")

    page.goto(running.url + "/node")
    assert "Open associations" in page.content()
    shoot(page, shots, "node")
    page.set_viewport_size(WIDE)
    shoot(page, shots, "node_1920")


def _item():
    from printscp.worklist.importing import build_item

    return build_item({"patient_name": "DOE^JOHN", "patient_id": "P77", "accession": "A77",
                       "procedure_description": "CHEST PA", "modality": "CR",
                       "station_ae": "CR01", "start_date": "20240501",
                       "start_time": "0930"})


def test_local_time_and_keyboard(running, page):  # noqa: F811
    page.goto(running.url + "/node")
    started = page.locator("dd time").first
    iso = started.get_attribute("datetime")
    expected = datetime.fromisoformat(iso).astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S")
    assert started.inner_text() == expected  # Tokyo is UTC+9: not the UTC text
    assert started.inner_text() != iso

    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => [document.activeElement.tagName,"
                                " document.activeElement.textContent.trim(),"
                                " !!document.activeElement.closest('nav')]")
        reached.append(focused)
    labels = [text for tag, text, in_nav in reached if tag == "A" and in_nav]
    assert labels[:5] == ["Print queue", "Printers", "Archive", "Worklist & MPPS",
                          "Associations & logs"], reached
    assert reached[0][1] == "Skip to content"
    # The focus ring is visible: an outline is drawn on the focused link
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_worklist_form_names_the_bad_field_then_adds(running, page):  # noqa: F811
    page.goto(running.url + "/workflow")
    page.get_by_text("Add an item").click()
    form = page.locator("form[data-api]")
    form.get_by_label("Patient name").fill("ROE^ANN")
    form.get_by_label("Patient ID").fill("P88")
    form.get_by_label("Procedure description").fill("KNEE")
    form.get_by_label("Modality").fill("DX")
    form.get_by_label("Station AE title").fill("DX1")
    form.get_by_label("Sex").select_option("F")
    page.evaluate("() => { const f = document.querySelector('form[data-api]');"
                  " const i = f.querySelector('[name=birth_date]'); i.type = 'text';"
                  " i.value = '1990-02-31'; }")
    form.get_by_role("button", name="Add item").click()
    alert = form.locator("[role=alert]")
    alert.wait_for(state="visible")
    assert "PatientBirthDate" in alert.inner_text()
    assert form.locator("[name=birth_date]").get_attribute("aria-invalid") == "true"
    form.locator("[name=birth_date]").fill("1990-02-27")
    with page.expect_navigation():
        form.get_by_role("button", name="Add item").click()
    assert "ROE, ANN" in page.locator("main").inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Remove the item of ROE, ANN").click()
    assert "ROE, ANN" not in page.locator("main").inner_text()


def test_delete_study_after_confirming(running, page, samples):  # noqa: F811
    study = fill_archive(running, samples)
    page.goto(running.url + f"/archive/studies/{study.study_uid}")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete study").click()
    assert running.console.archive.index.counts()["studies"] == 2  # dismissed: kept
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation(url=re.compile(r"/archive$")):
        page.get_by_role("button", name="Delete study").click()
    assert running.console.archive.index.counts()["studies"] == 1
    assert "DOE, JANE" not in page.locator("main table").inner_text()


# -- the print flows (the queue, job and printer pages) --------------------------------

@pytest.mark.dcmtk("dcmpsprt", "dcmprscu")
def test_print_reprint_and_cancel(running, page, samples, shots, tmp_path):  # noqa: F811
    if not has_route(running, "/") or not has_route(running, "/printers"):
        pytest.skip("the print queue and job pages are not there yet")
    (tmp_path / "dcmtk-main").mkdir()
    client = PrintClient(tmp_path / "dcmtk-main", running.port)

    # 1. a film printed with DCMTK appears in the queue, with its thumbnail
    client.print([samples / "CT_small.dcm"])
    running.node.spool.wait_idle()
    page.goto(running.url + "/")
    row = page.locator("tr[data-job]").first
    row.wait_for()
    wait_for(lambda: _reload_state(page) == "DONE", what="the job DONE in the queue")
    row = page.locator("tr[data-job]").first
    job_id = row.get_attribute("data-job")
    thumb = row.locator("img.thumb")
    thumb.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=thumb.element_handle())
    shoot(page, shots, "queue")

    # 2. it is reprinted to the second printer profile
    page.goto(running.url + f"/jobs/{job_id}")
    shoot(page, shots, "job")
    page.locator("#reprint-to").select_option(label="second: all targets")
    page.get_by_role("button", name="Reprint").click()

    def reprinted():
        running.node.spool.wait_idle(5)
        jobs = running.console.job_index
        jobs.sync()
        found, _ = jobs.query(printer="second")
        return found and found[0]["state"] == "DONE" and found[0]
    second = wait_for(reprinted, 60, "the reprint on printer second")
    pngs = list((running.console.data_dir / "second").rglob("*.png"))
    assert pngs, "the second profile's PNG target wrote nothing"
    page.goto(running.url + "/?printer=second")
    assert page.locator("tr[data-job]").count() == 1
    assert second["job_id"] != job_id

    # 3. a job whose CUPS queue is down waits, pending; it is cancelled from the console
    (tmp_path / "dcmtk-paper").mkdir()
    paper = PrintClient(tmp_path / "dcmtk-paper", running.port)
    paper.print([samples / "CT_small.dcm"], Aetitle="PAPER")

    def waiting():
        jobs = running.console.job_index
        jobs.sync()
        found, _ = jobs.query(printer="paper")
        return found and found[0]["state"] in ("PENDING", "PRINTING") and found[0]
    pending = wait_for(waiting, 60, "the paper job waiting for its CUPS queue")
    page.goto(running.url + f"/jobs/{pending['job_id']}")
    def delivery_shown() -> bool:
        if "ward-laser" in page.locator("table.deliveries").inner_text():
            return True
        page.reload()
        return False
    wait_for(delivery_shown, 30, "the failed CUPS delivery on the job page")
    shoot(page, shots, "job_pending")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():  # the page reloads once the cancel is done
        page.get_by_role("button", name="Cancel").click()

    def cancelled():
        jobs = running.console.job_index
        jobs.sync()
        job = jobs.get(pending["job_id"])
        return job and job["state"] not in ("PENDING", "PRINTING") and job
    job = wait_for(cancelled, 30, "the paper job cancelled")
    assert job["state"] in ("CANCELLED", "FAILURE"), job
    page.goto(running.url + "/?printer=paper")
    assert page.locator("tr[data-job]").first.get_attribute("data-state") == job["state"]

    # the paper printer's last QC film failed (issue 19): its section says so
    from calibration.qa.devices import Device
    from calibration.qa.results import DeviceKind, Figure, TestKind, TestResult
    from calibration.qa.store import QAStore

    with QAStore(running.console.config.data_path / "qa.sqlite") as qa:
        qa.add_device(Device("paper", DeviceKind.PRINTER))
        qa.record_test("paper", TestResult(DeviceKind.PRINTER, TestKind.CONSTANCY,
                                           "ps3.14-film", (Figure("dmax", 2.5, low=2.9),)),
                       operator="qa")
    page.goto(running.url + "/printers")
    assert page.locator("section.printer").count() == 3
    qc = page.locator('section[data-printer="paper"] dd.qc')
    assert qc.get_attribute("data-qc-verdict") == "fail"
    assert "FAIL (dmax)" in qc.inner_text() and "next due" in qc.inner_text()
    assert "not a QA device" in page.locator('section[data-printer="main"] dd.qc').inner_text()
    shoot(page, shots, "printers")


def _reload_state(tab) -> str:
    tab.reload()
    row = tab.locator("tr[data-job]").first
    row.wait_for()
    return row.get_attribute("data-state") or ""


def test_every_page_has_no_blank_screenshot_at_both_sizes(running, page, samples,  # noqa: F811
                                                          shots):
    study = fill_archive(running, samples)
    paths = ["/archive", f"/archive/studies/{study.study_uid}", "/workflow", "/node"]
    for path in ("/", "/printers"):
        if has_route(running, path):
            paths.append(path)
    for size_name, size in (("1366", None), ("1920", WIDE)):
        if size:
            page.set_viewport_size(size)
        for path in paths:
            answer = page.goto(running.url + path)
            assert answer.status == 200, path
            # nothing wider than the window: no horizontal scrolling of the page itself
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow} px wider than {size_name}"
            name = (path.strip("/").replace("/", "_") or "queue")[:40]
            png = shoot(page, shots, f"{name}_{size_name}", full_page=False)
            not_blank(png)
