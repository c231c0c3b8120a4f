"""``printscp qa``: devices, tests with their figures and exit status, history, status
with OVERDUE, reports (and filed in the archive); and the console's Printers page and
its JSON twin showing each printer's last QC verdict and whether one is overdue."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.http import console_client
from helpers.nodes import node_config
from test_qa_store import make_edid

from calibration.measurements import MeasurementError
from calibration.qa.devices import Device
from calibration.qa.results import DeviceKind, Figure, TestKind, TestResult
from calibration.qa.store import QAStore
from printscp.app.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
INTERVAL = timedelta(days=30)


@pytest.fixture(autouse=True)
def interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed 30-day schedule, whatever the criteria module says."""
    monkeypatch.setattr("calibration.qa.status._default_interval",
                        lambda criteria, kind: INTERVAL)


@pytest.fixture
def fake_display(monkeypatch: pytest.MonkeyPatch) -> list:
    """A display module whose readings file is JSON ``{"lmax": …}``: Lmax ≥ 170, and
    for constancy its change from the baseline within ±10 %; what it was called with
    is kept (the CLI's plumbing is under test here, the figures in test_qa_display)."""
    calls: list = []
    mod = types.ModuleType("calibration.qa.display")

    def read_display_readings(path):
        try:
            return json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise MeasurementError(f"{path}: not display readings ({exc})") from None

    def evaluate_display(readings, criteria, kind, baseline=None, *, diagnostic=True,
                         site_limits=None):
        calls.append((readings, str(criteria), kind, baseline, diagnostic, site_limits))
        figures = [Figure("lmax", readings["lmax"], low=170.0, source="AAPM TG18 §4.3")]
        if kind is TestKind.CONSTANCY:
            base = None if baseline is None else baseline.value("lmax")
            change = None if base is None else 100 * (readings["lmax"] / base - 1)
            figures.append(Figure("lmax_change", change, -10.0, 10.0, "AAPM TG18 §4.3",
                                  "" if base else "no baseline"))
        return TestResult(DeviceKind.DISPLAY, kind, str(criteria), tuple(figures))

    mod.read_display_readings = read_display_readings
    mod.evaluate_display = evaluate_display
    monkeypatch.setitem(sys.modules, "calibration.qa.display", mod)
    return calls


def qa(data: Path, *args: object) -> int:
    return main(["qa", "--data-dir", str(data), *map(str, args)])


def readings(tmp_path: Path, lmax: float, name: str = "") -> Path:
    path = tmp_path / (name or f"lmax{lmax:g}.json")
    path.write_text(json.dumps({"lmax": lmax}))
    return path


# -- devices ---------------------------------------------------------------------------
def test_add_devices_from_edid_and_list_them(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    edid = tmp_path / "edid.bin"
    edid.write_bytes(make_edid())
    assert qa(data, "add-device", "RAD-1", "--kind", "display", "--edid", edid,
              "--criteria", "din6868-157", "--no-diagnostic", "--description", "room 3",
              "--interval-days", "30") == 0
    assert "added display RAD-1 (EIZ TEST MON, serial SN-0042)" in capsys.readouterr().out
    # the options go after the command too; the command line wins over the EDID
    assert main(["qa", "add-device", "DRYFILM", "--kind", "printer", "--printer-ae", "DRY1",
                 "--model", "DryView", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert qa(data, "devices") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "kind", "criteria", "model", "serial", "AE",
                              "interval", "description"]
    assert out[1].split() == ["DRYFILM", "printer", "ps3.14-film", "DryView", "—", "DRY1",
                              "—"]
    assert out[2].split() == ["RAD-1", "display", "din6868-157", "(non-diagnostic)", "EIZ",
                              "TEST", "MON", "SN-0042", "—", "30", "d", "room", "3"]
    store = QAStore(data / "qa.sqlite")
    assert not store.device("RAD-1").diagnostic and store.device("DRYFILM").model == "DryView"


@pytest.mark.parametrize(("args", "message"), [
    (["RAD-1", "--kind", "display"], "device 'RAD-1' already exists"),
    (["P", "--kind", "printer", "--criteria", "tg18"], "criteria 'tg18' is not one for a "
     "printer"),
    (["D", "--kind", "display", "--printer-ae", "X"], "for printers only"),
    (["D", "--kind", "display", "--edid", "missing.bin"], "missing.bin"),
    (["P", "--kind", "printer", "--edid", "missing.bin"], "--edid is for displays"),
    (["x" * 65, "--kind", "display"], "longer than 64"),
])
def test_add_device_bad_input_is_one_line_and_2(tmp_path: Path, capsys, args, message) -> None:
    qa(tmp_path, "add-device", "RAD-1", "--kind", "display")
    capsys.readouterr()
    assert qa(tmp_path, "add-device", *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("printscp qa add-device")


def test_reading_commands_without_a_store_make_none(tmp_path: Path, capsys) -> None:
    assert qa(tmp_path, "devices") == 0 and qa(tmp_path, "status") == 0
    assert "no devices" in capsys.readouterr().out
    assert qa(tmp_path, "history", "RAD-1") == 2
    assert "unknown device 'RAD-1'" in capsys.readouterr().err
    assert not (tmp_path / "qa.sqlite").exists()


# -- tests -----------------------------------------------------------------------------
def test_acceptance_then_constancy_against_the_baseline(tmp_path: Path, capsys,
                                                        fake_display) -> None:
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display")
    capsys.readouterr()
    assert qa(data, "test", readings(tmp_path, 400), "--device", "RAD-1", "--kind",
              "acceptance", "--operator", "jo") == 0
    out = capsys.readouterr().out
    assert "RAD-1: acceptance test (tg18), recorded as #1" in out and "by jo" in out
    assert [line.split()[:5] for line in out.splitlines() if line.startswith("lmax")] == \
        [["lmax", "400", "cd/m²", "≥", "170"]]
    assert "verdict: PASS" in out
    # constancy: compared with the acceptance test; Lmax down 15 % fails
    assert qa(data, "test", readings(tmp_path, 340), "--device", "RAD-1", "--kind",
              "constancy", "--operator", "al", "--json", tmp_path / "t.json") == 1
    out = capsys.readouterr().out
    assert "baseline #1 of" in out
    [row] = [line.split() for line in out.splitlines() if line.startswith("lmax_change")]
    assert row[:6] == ["lmax_change", "-15", "%", "-10", "…", "10"] and row[7] == "FAIL"
    assert "verdict: FAIL (lmax_change)" in out
    assert fake_display[1][3].value("lmax") == 400  # the baseline's result was passed
    assert fake_display[1][1] == "tg18" and fake_display[1][4] is True
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["id"] == 2 and record["baseline_id"] == 1 and record["operator"] == "al"
    assert record["result"]["verdict"] == "fail"
    assert record["source"].endswith("lmax340.json")
    # the criteria set can be chosen per test
    assert qa(data, "test", readings(tmp_path, 390), "--device", "RAD-1", "--kind",
              "constancy", "--criteria", "din6868-157") == 0
    assert fake_display[2][1] == "din6868-157"
    capsys.readouterr()

    assert qa(data, "history", "RAD-1") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[3], r[5]) for r in rows] == [("1", "acceptance", "PASS"),
                                                  ("2", "constancy", "FAIL"),
                                                  ("3", "constancy", "PASS")]
    assert rows[1][-2:] == ["#1", "lmax_change"]
    assert qa(data, "history", "RAD-1", "--json") == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["result"]["figures"][0]["value"] for r in records] == [400, 340, 390]


def test_unusable_input_is_exit_2_naming_it(tmp_path: Path, capsys, fake_display) -> None:
    data = tmp_path / "data"
    good = readings(tmp_path, 400)
    assert qa(data, "test", good, "--device", "RAD-1", "--kind", "acceptance") == 2
    assert "unknown device 'RAD-1'" in capsys.readouterr().err
    qa(data, "add-device", "RAD-1", "--kind", "display")
    qa(data, "add-device", "DRYFILM", "--kind", "printer")
    capsys.readouterr()
    assert qa(data, "test", good, "--device", "RAD-2", "--kind", "acceptance") == 2
    err = capsys.readouterr().err
    assert err == "printscp qa test: unknown device 'RAD-2' (known: DRYFILM, RAD-1)\n"
    assert qa(data, "test", good, "--device", "DRYFILM", "--kind", "acceptance") == 2
    assert "is a printer" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert qa(data, "test", bad, "--device", "RAD-1", "--kind", "acceptance") == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and err.count("\n") == 1
    assert QAStore(data / "qa.sqlite").history("RAD-1") == []  # nothing recorded


# -- status ----------------------------------------------------------------------------
def test_status_shows_verdicts_due_dates_and_overdue(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    for device, kind in (("RAD-1", "display"), ("RAD-2", "display"), ("DRYFILM", "printer")):
        qa(data, "add-device", device, "--kind", kind)
    store = QAStore(data / "qa.sqlite")
    now = datetime.now(UTC)
    store.record_test("RAD-1", TestResult(DeviceKind.DISPLAY, TestKind.ACCEPTANCE, "tg18", (
        Figure("lmax", 400.0, low=170.0),)), operator="jo", when=now - timedelta(days=3))
    store.record_test("DRYFILM", TestResult(DeviceKind.PRINTER, TestKind.CONSTANCY,
                                            "ps3.14-film", (Figure("dmax", 2.5, low=2.9),)),
                      operator="jo", when=now - timedelta(days=45))
    capsys.readouterr()
    assert qa(data, "status") == 1  # something needs attention: a reminder for cron
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in out[1:-1]}
    due = (now - timedelta(days=3) + INTERVAL).astimezone().strftime("%Y-%m-%d %H:%M")
    assert f" PASS     {due}  ok" in rows["RAD-1"]
    assert rows["RAD-1"].rstrip().endswith("ok") and " PASS " in rows["RAD-1"]
    assert rows["DRYFILM"].rstrip().endswith("OVERDUE") and " FAIL " in rows["DRYFILM"]
    assert rows["RAD-2"].rstrip().endswith("OVERDUE: never tested")
    assert out[-1] == "3 device(s), 2 overdue, 1 failed their last test"
    assert qa(data, "status", "--json") == 1
    by_id = {s["device"]["id"]: s for s in json.loads(capsys.readouterr().out)}
    assert by_id["RAD-1"]["overdue"] is False and by_id["RAD-1"]["last"]["verdict"] == "pass"
    assert datetime.fromisoformat(by_id["RAD-1"]["due"]) > now
    assert by_id["DRYFILM"]["overdue"] is True
    assert by_id["DRYFILM"]["last"]["failed"] == ["dmax"]
    assert by_id["RAD-2"]["last"] is None and by_id["RAD-2"]["overdue"] is True


# -- reports ---------------------------------------------------------------------------
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_report_of_a_period_and_filed_in_the_archive(tmp_path: Path, capsys,
                                                     monkeypatch) -> None:
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display")
    store = QAStore(data / "qa.sqlite")
    t0 = datetime(2026, 1, 10, 12, tzinfo=UTC)
    for days in (0, 30, 60):
        store.record_test("RAD-1", TestResult(
            DeviceKind.DISPLAY, TestKind.CONSTANCY if days else TestKind.ACCEPTANCE, "tg18",
            (Figure("lmax", 400.0 - days),)), operator="jo", when=t0 + timedelta(days))
    written: list = []
    report = types.ModuleType("calibration.qa.report")

    def write_report(path, device, records, baselines=()):
        written.append((device.id, [r.result.value("lmax") for r in records],
                        [r.result.value("lmax") for r in baselines]))
        Path(path).write_bytes(PDF)
    report.write_report = write_report
    monkeypatch.setitem(sys.modules, "calibration.qa.report", report)
    capsys.readouterr()
    out_pdf = tmp_path / "r.pdf"
    assert qa(data, "report", "RAD-1", "--from", "2026-02-01", "--to", "2026-03-11",
              "-o", out_pdf, "--archive") == 0
    # --to takes the whole day; the acceptance test the period's tests compare with
    # comes along for the change bands
    assert written == [("RAD-1", [370.0, 340.0], [400.0])]
    out = capsys.readouterr().out
    assert f"report: {out_pdf} (RAD-1, 2 test(s)" in out
    assert "archived: patient PRINTSCP-QA, study 2.25." in out
    from printscp.archive.archive import Archive
    from printscp.archive.documents import ENCAPSULATED_PDF

    archive = Archive(data)
    [doc] = [archive.read(r) for r in archive.instances()
             if r.sop_class_uid == ENCAPSULATED_PDF]
    assert doc.DocumentTitle == "QA constancy report RAD-1"
    assert str(doc.SOPInstanceUID) in out
    assert qa(data, "report", "RAD-1", "--from", "2027-01-01", "-o", out_pdf) == 2
    assert "no tests of RAD-1 in that period" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        qa(data, "report", "RAD-1", "--from", "yesterday", "-o", out_pdf)
    assert exit_.value.code == 2
    assert "expected a date" in capsys.readouterr().err


# -- end to end, as a user runs it -----------------------------------------------------
def test_the_command_in_a_process_with_its_own_qa_db(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "my-qa.sqlite"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "printscp", "qa", "--qa-db", str(db),
                               *args], capture_output=True, text=True, cwd=ROOT)
    added = run("add-device", "DRYFILM", "--kind", "printer", "--printer-ae", "DRYFILM")
    assert added.returncode == 0, added.stderr
    listed = run("devices")
    assert listed.returncode == 0 and "DRYFILM" in listed.stdout and db.exists()
    unknown = run("history", "NOPE")
    assert unknown.returncode == 2
    assert unknown.stderr == "printscp qa history: unknown device 'NOPE' (known: DRYFILM)\n"


# -- the console's Printers page -------------------------------------------------------
CONSOLE_TOML = """
[archive]
enabled = false

[printers.DRYFILM]
name = "DRYFILM"

[printers.PAPER]
name = "PAPER"
"""


def test_printers_page_and_json_show_the_last_qc(tmp_path: Path) -> None:
    from printscp.http.app import create_app
    from printscp.http.context import Console

    console = Console(node_config(tmp_path, CONSOLE_TOML))
    client = console_client(create_app(console))
    printers = {p["name"]: p for p in client.get("/api/printers").json()["printers"]}
    assert {p["qc"] for p in printers.values()} == {None}  # no QA store yet
    assert "not a QA device" in client.get("/printers").text

    store = QAStore(console.config.data_path / "qa.sqlite")
    now = datetime.now(UTC)
    for name in ("DRYFILM", "PAPER", "printscp"):
        store.add_device(Device(name, DeviceKind.PRINTER))
    store.record_test("DRYFILM", TestResult(DeviceKind.PRINTER, TestKind.CONSTANCY,
                                            "ps3.14-film", (Figure("dmax", 2.5, low=2.9),)),
                      operator="jo", when=now - timedelta(days=45))
    store.record_test("PAPER", TestResult(DeviceKind.PRINTER, TestKind.ACCEPTANCE,
                                          "ps3.14-film", (Figure("dmax", 3.1, low=2.9),)),
                      operator="jo", when=now - timedelta(days=2))

    printers = {p["name"]: p for p in client.get("/api/printers").json()["printers"]}
    dry, paper, default = printers["DRYFILM"]["qc"], printers["PAPER"]["qc"], \
        printers["printscp"]["qc"]
    assert dry["verdict"] == "fail" and dry["overdue"] is True and dry["failed"] == ["dmax"]
    assert dry["kind"] == "constancy" and dry["device"] == "DRYFILM"
    assert paper["verdict"] == "pass" and paper["overdue"] is False
    assert datetime.fromisoformat(paper["due"]) > now
    assert default["verdict"] is None and default["overdue"] is True
    assert client.get("/api/printers/DRYFILM").json()["qc"] == dry

    html = client.get("/printers").text
    sections = {name: html.split(f'data-printer="{name}"')[1].split("</section>")[0]
                for name in ("DRYFILM", "PAPER", "printscp")}
    assert 'data-qc-verdict="fail" data-qc-overdue="yes"' in sections["DRYFILM"]
    assert "FAIL</span> (dmax)" in sections["DRYFILM"] and "OVERDUE" in sections["DRYFILM"]
    assert 'data-qc-verdict="pass" data-qc-overdue="no"' in sections["PAPER"]
    assert "PASS" in sections["PAPER"] and "OVERDUE" not in sections["PAPER"]
    assert "never tested: overdue" in sections["printscp"]


def test_an_unreadable_qa_store_does_not_break_the_page(tmp_path: Path) -> None:
    from printscp.http.app import create_app
    from printscp.http.context import Console

    console = Console(node_config(tmp_path, CONSOLE_TOML))
    console.config.data_path.mkdir(parents=True, exist_ok=True)
    (console.config.data_path / "qa.sqlite").write_bytes(b"not a database" * 100)
    client = console_client(create_app(console))
    r = client.get("/api/printers")
    assert r.status_code == 200
    assert "QA store" in r.json()["printers"][0]["qc"]["error"]
    page = client.get("/printers")
    assert page.status_code == 200 and "QA store" in page.text


# -- with the real display evaluation and report ---------------------------------------
def display_readings(path: Path, lmax: float, gamma: float | None = None) -> Path:
    """18 levels of a display on the GSDF from 0.8 to ``lmax`` cd/m² (or, with
    ``gamma``, a power law instead: a response gone wrong), uniform, D65."""
    import numpy as np

    from lut import gsdf

    ddl = np.linspace(0, 255, 18).round()
    if gamma is None:
        j0, j1 = gsdf.jnd_index(0.8), gsdf.jnd_index(lmax)
        lum = gsdf.luminance(j0 + (j1 - j0) * ddl / 255)
    else:
        lum = 0.8 + (lmax - 0.8) * (ddl / 255) ** gamma
    path.write_text(json.dumps({
        "response": {"points": [[int(d), round(float(v), 4)] for d, v in zip(ddl, lum,
                                                                              strict=True)]},
        "ambient": {"lamb": 0.2}, "white_point": {"x": 0.3127, "y": 0.329},
        "uniformity": {"unl80": {"centre": 300, "top-left": 290, "top-right": 295,
                                 "bottom-left": 285, "bottom-right": 292}}}))
    return path


def test_a_display_tested_for_real_then_reported(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display")
    assert qa(data, "test", display_readings(tmp_path / "a.json", 400), "--device", "RAD-1",
              "--kind", "acceptance") == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out
    [lmax] = [line.split() for line in out.splitlines() if line.startswith("lmax ")]
    assert lmax[1:6] == ["400.3", "cd/m²", "≥", "170", "cd/m²"] and lmax[6] == "pass"
    assert qa(data, "test", display_readings(tmp_path / "b.json", 330, gamma=2.2),
              "--device", "RAD-1", "--kind", "constancy") == 1
    out = capsys.readouterr().out
    assert "verdict: FAIL (response_max_error)" in out and "baseline #1" in out
    [change] = [line.split() for line in out.splitlines() if line.startswith("lmax_change")]
    assert change[1:3] == ["-17.5", "%"]
    assert qa(data, "report", "RAD-1", "-o", tmp_path / "rad1.pdf") == 0
    assert (tmp_path / "rad1.pdf").read_bytes().startswith(b"%PDF")


def test_site_limits_of_the_device_and_of_one_test(tmp_path: Path, capsys) -> None:
    """No source at hand limits the change since the baseline: a site's limit, kept
    with the device, judges it in every constancy test; one test may add its own."""
    data = tmp_path / "data"
    assert qa(data, "add-device", "RAD-1", "--kind", "display",
              "--limit", "lmax_change=-10:10", "--limit", "white_point_distance=:0.01") == 0
    assert "lmax_change -10:10, white_point_distance :0.01" in capsys.readouterr().out
    device = QAStore(data / "qa.sqlite").device("RAD-1")
    assert device.limits == {"lmax_change": (-10.0, 10.0),
                             "white_point_distance": (None, 0.01)}
    qa(data, "test", display_readings(tmp_path / "a.json", 400), "--device", "RAD-1",
       "--kind", "acceptance")
    # Lmax down 12 % on the GSDF: the criteria set passes it, the site's limit does not
    assert qa(data, "test", display_readings(tmp_path / "b.json", 352), "--device", "RAD-1",
              "--kind", "constancy") == 1
    out = capsys.readouterr().out
    [change] = [line.split() for line in out.splitlines() if line.startswith("lmax_change")]
    assert change[3:7] == ["-10", "…", "10", "%"] and change[7] == "FAIL"
    assert "verdict: FAIL (lmax_change)" in out
    # this test's own limit replaces the device's
    assert qa(data, "test", display_readings(tmp_path / "b.json", 352), "--device", "RAD-1",
              "--kind", "constancy", "--limit", "lmax_change=-15:15") == 0
    capsys.readouterr()
    for bad in ("lmax_change=-10", "lmax_change=a:b"):  # argparse: usage and exit 2
        with pytest.raises(SystemExit) as exit_:
            qa(data, "test", tmp_path / "b.json", "--device", "RAD-1", "--kind", "constancy",
               "--limit", bad)
        assert exit_.value.code == 2
    capsys.readouterr()
    assert qa(data, "test", tmp_path / "b.json", "--device", "RAD-1", "--kind", "constancy",
              "--limit", "nonsense=1:2") == 2
    err = capsys.readouterr().err
    assert "unknown figure 'nonsense'" in err and err.count("\n") == 1
    assert qa(data, "add-device", "RAD-2", "--kind", "display", "--limit", "lmax=5:1") == 2
    assert "low 5 is above high 1" in capsys.readouterr().err



def test_status_is_0_when_all_is_current_and_passing(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display")
    QAStore(data / "qa.sqlite").record_test(
        "RAD-1", TestResult(DeviceKind.DISPLAY, TestKind.ACCEPTANCE, "tg18",
                            (Figure("lmax", 400.0, low=170.0),)), operator="jo")
    assert qa(data, "status") == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        "1 device(s), 0 overdue, 0 failed their last test"


def test_edit_device_changes_limits_not_history(tmp_path: Path, capsys) -> None:
    """A site tightens its limits after the acceptance test: new tests are held to the
    new ones, recorded tests keep the limits they were judged against."""
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display", "--limit", "lmax_change=-10:10")
    qa(data, "test", display_readings(tmp_path / "a.json", 400), "--device", "RAD-1",
       "--kind", "acceptance")
    assert qa(data, "test", display_readings(tmp_path / "b.json", 376), "--device", "RAD-1",
              "--kind", "constancy") == 0  # -6 %
    capsys.readouterr()
    assert qa(data, "edit-device", "RAD-1", "--limit", "lmax_change=-5:5",
              "--description", "reading room 3") == 0
    out = capsys.readouterr().out
    assert "description: '' -> 'reading room 3'" in out and "lmax_change" in out
    assert qa(data, "test", tmp_path / "b.json", "--device", "RAD-1",
              "--kind", "constancy") == 1  # the same -6 % fails the site's new limit
    history = QAStore(data / "qa.sqlite").history("RAD-1")
    highs = [r.result.figure("lmax_change").high for r in history[1:]]
    assert highs == [10.0, 5.0]
    assert qa(data, "edit-device", "RAD-1", "--drop-limit", "lmax_change") == 0
    assert QAStore(data / "qa.sqlite").device("RAD-1").limits == {}
    capsys.readouterr()
    assert qa(data, "edit-device", "RAD-1", "--drop-limit", "lmax_change") == 2
    assert "has no site limit for 'lmax_change'" in capsys.readouterr().err
    assert qa(data, "edit-device", "NOPE", "--description", "x") == 2


def test_a_display_drifting_over_twelve_constancy_tests(tmp_path: Path, capsys) -> None:
    """Lmax falls 2 % a month; with the site's ±10 % on the change since the acceptance
    test, the first constancy test past 10 % is the first to fail, and every later one."""
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display", "--limit", "lmax_change=-10:10")
    assert qa(data, "test", display_readings(tmp_path / "a.json", 400), "--device", "RAD-1",
              "--kind", "acceptance") == 0
    codes = [qa(data, "test", display_readings(tmp_path / f"m{m}.json", 400 * (1 - 0.02 * m)),
                "--device", "RAD-1", "--kind", "constancy") for m in range(1, 13)]
    assert codes == [0] * 5 + [1] * 7  # month 6: -12 % (L'max, ambient included: about)
    history = QAStore(data / "qa.sqlite").history("RAD-1")
    assert [r.result.verdict.value for r in history] == ["pass"] * 6 + ["fail"] * 7


def test_a_devices_own_schedule(tmp_path: Path, capsys) -> None:
    """A site tests a display every 10 days: 11 days after its last test it is overdue,
    though its criteria set's interval (30 days in this module) is longer."""
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display", "--interval-days", "10")
    qa(data, "add-device", "RAD-2", "--kind", "display")
    store = QAStore(data / "qa.sqlite")
    when = datetime.now(UTC) - timedelta(days=11)
    for device in ("RAD-1", "RAD-2"):
        store.record_test(device, TestResult(DeviceKind.DISPLAY, TestKind.ACCEPTANCE, "tg18",
                                             (Figure("lmax", 400.0, low=170.0),)),
                          operator="jo", when=when)
    capsys.readouterr()
    assert qa(data, "status", "--json") == 1
    by_id = {s["device"]["id"]: s for s in json.loads(capsys.readouterr().out)}
    assert by_id["RAD-1"]["overdue"] is True and by_id["RAD-2"]["overdue"] is False
    assert qa(data, "edit-device", "RAD-1", "--interval-days", "0") == 0
    capsys.readouterr()
    assert qa(data, "status") == 0
    assert qa(data, "edit-device", "RAD-1", "--interval-days", "-3") == 2


def test_a_criteria_set_without_limits_records_nothing(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    qa(data, "add-device", "RAD-1", "--kind", "display")
    capsys.readouterr()
    assert qa(data, "test", display_readings(tmp_path / "a.json", 400), "--device", "RAD-1",
              "--kind", "acceptance", "--criteria", "iec62563-2") == 2
    assert "no figure of this test is held to a limit" in capsys.readouterr().err
    assert QAStore(data / "qa.sqlite").history("RAD-1") == []
