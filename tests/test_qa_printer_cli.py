"""``printscp qa print-test / test-printer / rollback``: closing the loop (issue 19 §3).

A simulated 12-bit film printer reads the films the node really renders: the QC film is
spooled by ``qa print-test`` as a job, rendered by the node's render step
(:func:`printscp.jobs.render.render_job`, 16-bit PNG target), and the printer's density
response is applied to the device level at the middle of each step.  A printer whose
response changed fails; ``--recalibrate`` makes a new profile version, and the next
film — rendered by the same path with that version — passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration.qa import profiles
from calibration.qa.film import step_pvalues
from calibration.qa.test_film import qc_film
from lut import device as lut_device
from printscp.app.cli.main import main
from printscp.config import load_config
from printscp.core.printer_state import last_calibration
from printscp.printing.display_format import ImageDisplayFormat
from printscp.printing.enums import FilmOrientation, FilmSize, MagnificationType
from printscp.printing.layout import film_geometry

MAX_DDL = 4095
DPI = 60


def response(dmax: float = 3.4, dmin: float = 0.18, gamma: float = 1.0
             ) -> Callable[[np.ndarray], np.ndarray]:
    """A film printer's density per DDL (0..4095): an S-shaped curve; ``gamma`` bends it."""
    def density(ddl: np.ndarray) -> np.ndarray:
        s = (1 - np.asarray(ddl, dtype=np.float64) / MAX_DDL) ** gamma
        return dmin + (dmax - dmin) * (0.3 * (3 * s ** 2 - 2 * s ** 3) + 0.7 * s)
    return density


@pytest.fixture
def node(tmp_path: Path) -> dict:
    ddl = np.arange(MAX_DDL + 1)
    accepted = lut_device.CharacteristicCurve(
        lut_device.DeviceKind.PRINTER, MAX_DDL, ddl, np.round(response()(ddl), 4),
        ambient=10.0, illumination=2000.0)
    lut_device.write_characteristic_file(accepted, tmp_path / "laser1.lut")
    data = tmp_path / "data"
    config = tmp_path / "printscp.toml"
    config.write_text(f"""
[node]
data_dir = "{data}"

[printer]
name = "laser1"
output_profile = "laser1.lut"
dpi = {DPI}

[printer.film_box_defaults]
film_size_id = "8INX10IN"
min_density = 20
max_density = 300
illumination = 2000
reflected_ambient_light = 10

[[printer.targets]]
type = "png"
bits = 16
""")
    common = ["--config", str(config)]
    assert main(["qa", *common, "add-device", "laser1", "--kind", "printer",
                 "--criteria", "ps3.14-film"]) == 0
    return {"data": data, "config": config, "common": common, "tmp": tmp_path}


def spooled(data: Path) -> list[Path]:
    spool = data / "spool"
    if not spool.is_dir():
        return []
    return sorted(p for p in spool.iterdir() if (p / "job.json").is_file())


def print_and_read(node: dict, printer: Callable[[np.ndarray], np.ndarray],
                   name: str) -> tuple[Path, dict]:
    """``qa print-test``, the node's render step, and a densitometer on the film."""
    from printscp.jobs.render import render_job

    before = set(spooled(node["data"]))
    assert main(["qa", *node["common"], "print-test", "--printer", "laser1"]) == 0
    (folder,) = set(spooled(node["data"])) - before
    job = json.loads((folder / "job.json").read_text())
    return read_film(node, render_job(folder, node["data"]), printer, name), job


def read_film(node: dict, rendered: dict, printer: Callable[[np.ndarray], np.ndarray],
              name: str) -> Path:
    (png,) = rendered["outputs"]
    raster = np.asarray(Image.open(png)).astype(np.int64)
    cells = ImageDisplayFormat.parse("STANDARD\\1,1").cells()
    geometry = film_geometry(FilmSize("8INX10IN"), FilmOrientation.PORTRAIT, cells)
    x0, y0, x1, y1 = geometry.boxes[0].pixels(DPI)
    film = qc_film(y1 - y0, x1 - x0)
    assert film.p_values == step_pvalues(32)
    levels = np.array([raster[y0 + p.centre[0], x0 + p.centre[1]] for p in film.steps])
    ddl = np.rint(levels * MAX_DDL / 65535)
    density = np.round(printer(ddl), 2)
    rows = "\n".join(f"{k},{d:.2f}" for k, d in enumerate(density, 1))
    path = node["tmp"] / f"{name}.csv"
    path.write_text(f"step,density\n{rows}\nbase_fog,0.18\n")
    return path


def test_print_test_spools_a_qc_film_job(node: dict) -> None:
    from printscp.jobs.render import render_job

    assert main(["qa", *node["common"], "print-test", "--printer", "laser1",
                 "--save", str(node["tmp"] / "qc.dcm")]) == 0
    (folder,) = spooled(node["data"])
    job = json.loads((folder / "job.json").read_text())
    assert job["calling_ae"] == "PRINTSCP-QA" and job["printer"] == "laser1"
    assert job["output_profile"] == str(node["tmp"] / "laser1.lut")
    assert (node["data"] / "spool" / ".requests" / folder.name).exists()  # queued
    film = job["films"][0]
    assert film["film_size_id"] == "8INX10IN" and film["magnification_type"] == \
        MagnificationType.REPLICATE.value
    rendered = render_job(folder, node["data"])
    assert Image.open(rendered["outputs"][0]).mode.startswith("I")  # 16-bit levels
    assert (node["tmp"] / "qc.dcm").stat().st_size > 0


def test_unknown_printer_and_bad_readings_exit_2(node: dict, capsys) -> None:
    assert main(["qa", *node["common"], "print-test", "--printer", "nope"]) == 2
    assert "no printer profile 'nope'" in capsys.readouterr().err
    bad = node["tmp"] / "bad.csv"
    bad.write_text("step,density\n1,3.0\n2,oops\n3,0.2\n")
    assert main(["qa", *node["common"], "test-printer", str(bad), "--device", "laser1"]) == 2
    assert f"{bad}:3: density must be a number" in capsys.readouterr().err


def test_closing_the_loop(node: dict, capsys) -> None:
    data, common = node["data"], node["common"]
    # Acceptance: the printer as calibrated.
    readings, job = print_and_read(node, response(), "acceptance")
    out = node["tmp"] / "acceptance.json"
    assert main(["qa", *common, "test-printer", str(readings), "--device", "laser1",
                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["result"]["kind"] == "acceptance"
    assert record["result"]["verdict"] == "pass"
    capsys.readouterr()

    # The printer's response bends (and its Dmax falls 3.4 -> 3.1): the film fails.
    faulty = response(dmax=3.1, gamma=1.4)
    readings, _ = print_and_read(node, faulty, "faulty")
    assert main(["qa", *common, "test-printer", str(readings), "--device", "laser1"]) == 1
    text = capsys.readouterr().out
    assert "constancy test" in text and "verdict: FAIL (response_max_error" in text

    # --recalibrate: a new version, the calibration recorded, the next film spooled.
    before = set(spooled(data))
    out = node["tmp"] / "recal.json"
    assert main(["qa", *common, "test-printer", str(readings), "--device", "laser1",
                 "--recalibrate", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    recal = json.loads(out.read_text())["recalibration"]
    assert recal["version"] == "v0002" and recal["predicted"] == "pass"
    assert recal["printed_with"] == str(node["tmp"] / "laser1.lut") and recal["levels"] == 16
    versions = profiles.versions(data, "laser1")
    assert [v.name for v in versions] == ["v0001", "v0002"]
    assert versions[0].path.read_text() == (node["tmp"] / "laser1.lut").read_text()
    assert profiles.current_profile(data, "laser1") == versions[1].path
    state = last_calibration(data, "laser1")
    assert state is not None and state.conforms is None  # a prediction is no verdict
    assert last_calibration(data) is None  # the printer's own record, not the node's
    assert state is not None and state.profile == str(versions[1].path)
    assert "next QC film spooled" in text
    (folder,) = set(spooled(data)) - before
    job = json.loads((folder / "job.json").read_text())
    assert job["output_profile"] == str(versions[1].path)  # jobs render with v0002

    # The next film, rendered with v0002 by the node's render step, passes.
    from printscp.jobs.render import render_job

    readings = read_film(node, render_job(folder, data), faulty, "after")
    out = node["tmp"] / "after.json"
    assert main(["qa", *common, "test-printer", str(readings), "--device", "laser1",
                 "--json", str(out)]) == 0, capsys.readouterr().out
    assert "sets the new baseline" in capsys.readouterr().out
    after = json.loads(out.read_text())["result"]
    assert after["inputs"]["profile"] == "v0002"  # what the film was printed with
    assert "film printed with profile v0002" in after["notes"]
    figures = {f["key"]: f for f in after["figures"]}
    assert figures["response_max_error"]["value"] < 10
    # the printer was recalibrated on purpose: this film is its new acceptance test
    assert after["kind"] == "acceptance" and "speed_change" not in figures

    # Rollback: v0001 is current again, and new jobs render with it; nothing deleted.
    assert main(["qa", *common, "rollback", "laser1"]) == 0
    assert "v0002 -> v0001" in capsys.readouterr().out
    rolled = last_calibration(data, "laser1")  # N-GET: the calibration now in effect
    assert rolled is not None and rolled.profile == str(versions[0].path)
    assert profiles.current_profile(data, "laser1") == versions[0].path
    cfg = load_config(node["config"])
    assert cfg.job_printing(cfg.printer)["output_profile"] == str(versions[0].path)
    assert versions[1].path.is_file()
    assert main(["qa", *common, "rollback", "laser1", "--to", "9"]) == 2


def test_dmax_below_the_films_max_density_cannot_be_recalibrated_away(
        node: dict, capsys) -> None:
    common = node["common"]
    readings, _ = print_and_read(node, response(), "acceptance")
    assert main(["qa", *common, "test-printer", str(readings), "--device", "laser1"]) == 0
    readings, _ = print_and_read(node, response(dmax=2.7), "fallen")
    out = node["tmp"] / "recal.json"
    assert main(["qa", *common, "test-printer", str(readings), "--device", "laser1",
                 "--recalibrate", "--no-print", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "dmax" in text and "lower max_density" in text
    assert json.loads(out.read_text())["recalibration"]["predicted"] == "fail"


def test_passing_test_needs_no_recalibration(node: dict, capsys) -> None:
    readings, _ = print_and_read(node, response(), "ok")
    assert main(["qa", *node["common"], "test-printer", str(readings), "--device", "laser1",
                 "--recalibrate"]) == 0
    assert "not needed" in capsys.readouterr().out
    assert profiles.versions(node["data"], "laser1") == []


@pytest.mark.dcmtk("dcmprscp")
def test_print_test_on_a_dcmtk_printer(node: dict, capsys) -> None:
    """``--to``: the QC film goes to a real third-party Print SCP (DCMTK's dcmprscp) as
    ``printscp print`` sends films; what dcmprscp stores is the 32-step wedge."""
    import pydicom
    from helpers.upstream import running_dcmprscp

    (node["tmp"] / "upstream").mkdir()
    with running_dcmprscp(node["tmp"] / "upstream") as (port, db):
        code = main(["qa", *node["common"], "print-test", "--printer", "laser1",
                     "--to", f"UPSTREAM@127.0.0.1:{port}", "--dpi", "60"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "Film Box N-ACTION (print): 0x0000" in out
    [sp] = db.glob("SP_*.dcm")
    film_box = pydicom.dcmread(sp)[0x21300030][0]
    assert film_box.ImageDisplayFormat == "STANDARD\\1,1"
    assert film_box.FilmSizeID == "8INX10IN"
    [hg] = db.glob("HG_*.dcm")
    pixels = pydicom.dcmread(hg).pixel_array.astype(np.int64)
    film = qc_film(*pixels.shape)
    got = [int(pixels[p.centre]) for p in film.steps]
    assert got == sorted(got) and len(set(got)) == 32  # 32 distinct steps, in order
    assert not spooled(node["data"])  # nothing printed locally


def test_the_devices_site_limits_judge_its_films(tmp_path: Path, node: dict, capsys) -> None:
    """A printer added with ``--limit dmax_change=-0.2:`` has every film held to it; a
    ``--limit`` on the command line adds to the device's for that test."""
    common = [*node["common"], "--qa-db", str(tmp_path / "site.sqlite")]
    assert main(["qa", *common, "add-device", "laser1", "--kind", "printer",
                 "--limit", "dmax_change=-0.2:"]) == 0
    ok, _ = print_and_read(node, response(), "acceptance")
    assert main(["qa", *common, "test-printer", str(ok), "--device", "laser1",
                 "--max-density", "2.0"]) == 0  # Max Density 2.0: Dmax 3.1 is judged fine
    worn, _ = print_and_read(node, response(dmax=3.1), "worn")
    out = tmp_path / "worn.json"
    code = main(["qa", *common, "test-printer", str(worn), "--device", "laser1",
                 "--max-density", "2.0", "--json", str(out)])
    figures = {f["key"]: f for f in json.loads(out.read_text())["result"]["figures"]}
    assert figures["dmax_change"]["source"] == "site limit"
    assert -0.35 < figures["dmax_change"]["value"] < -0.2  # Dmax 3.4 -> about 3.1
    assert code == 1 and "dmax_change" in capsys.readouterr().out
    main(["qa", *common, "test-printer", str(worn), "--device", "laser1",
          "--max-density", "2.0", "--limit", "dmax_change=-0.5:", "--json", str(out)])
    result = json.loads(out.read_text())["result"]
    change = next(f for f in result["figures"] if f["key"] == "dmax_change")
    assert change["low"] == -0.5 and change["value"] > -0.5
    assert main(["qa", *common, "test-printer", str(worn), "--device", "laser1",
                 "--limit", "nonsense=1:2"]) == 2


def test_a_printer_device_takes_its_identity_from_its_profile(node: dict, capsys) -> None:
    """With the node's configuration, a printer's device is its printer profile: its
    manufacturer, model, serial number and called AE title come from there, and a name
    that is no profile of the node is refused."""
    from calibration.qa.store import QAStore

    device = QAStore(node["data"] / "qa.sqlite").device("laser1")
    cfg = load_config(node["config"])
    assert (device.manufacturer, device.model, device.serial) == (
        cfg.printer.manufacturer, cfg.printer.model, cfg.printer.serial_number)
    assert device.printer_ae == cfg.ae_title.strip()
    capsys.readouterr()
    assert main(["qa", *node["common"], "add-device", "laserX", "--kind", "printer"]) == 2
    assert "no printer profile 'laserX'" in capsys.readouterr().err
