"""``printscp calibrate`` end to end: exit codes, outputs, profile, record, patterns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.dcmtk import dcmdspfn
from helpers.films import pdf_pages

from calibration.export import read_lut_text
from lut.device import DeviceKind
from printscp.app.cli.main import main

MEASUREMENTS = Path(__file__).resolve().parents[1] / "samples" / "measurements"
LCD = MEASUREMENTS / "lcd-gamma22-tg18.csv"
GSDF_LCD = MEASUREMENTS / "lcd-gsdf.json"
WEDGE = MEASUREMENTS / "printer-wedge.csv"


def analyze(*args: str | Path) -> int:
    return main(["calibrate", "analyze", *map(str, args)])


def test_conforming_display_exits_0_with_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert analyze(GSDF_LCD, "--json", out) == 0
    text = capsys.readouterr().out
    assert "verdict: PASS" in text and "worst interval" in text and "Lamb/Lmin" in text
    data = json.loads(out.read_text())
    for key in ("max_abs_error", "conforms_10pct", "conforms_20pct", "luminance_ratio",
                "ambient_ratio", "intervals", "predicted", "lut"):
        assert key in data
    assert data["conforms_10pct"] is True and data["max_abs_error"] < 1e-3
    assert data["ambient_ratio"] == pytest.approx(0.2 / data["lmin"])
    assert data["luminance_ratio"] == pytest.approx(data["lmax"] / data["lmin"])
    assert len(data["intervals"]) == 17 and len(data["lut"]) == 256


def test_gamma_display_exits_1_and_its_lut_is_predicted_to_pass(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert analyze(LCD, "--ambient", "0.2", "--json", out, "--lut", tmp_path / "l.txt") == 1
    assert "verdict: FAIL" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert not data["conforms_20pct"] and data["max_abs_error"] > 0.2
    assert data["predicted"]["conforms"] is True
    lut = read_lut_text(tmp_path / "l.txt")
    assert lut.tolist() == data["lut"] and np.all(np.diff(lut) >= 0)


@pytest.mark.parametrize(("text", "message"), [
    ("ddl,luminance\n0,0.5\n128,4O\n255,300\n", "bad.csv:3: luminance is not a number"),
    ("ddl,luminance\n0,0.5\n200,40\n128,300\n", "bad.csv:4: driving levels must increase"),
    ("ddl,luminance\n0,0.5\n255,300\n", "too few points"),
])
def test_unusable_input_exits_2_naming_the_line(tmp_path, capsys, text, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    assert analyze(bad) == 2
    assert message in capsys.readouterr().err


def test_density_options_are_for_printers(capsys):
    assert analyze(LCD, "--min-density", "0.2") == 2
    assert "printers only" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.poppler("pdfinfo", "pdfimages", "pdftotext")
def test_printer_report_has_pages_and_plots(tmp_path, capsys):
    pdf = tmp_path / "report.pdf"
    assert analyze(WEDGE, "--min-density", "0.2", "--max-density", "3.0", "--report", pdf) == 1
    pages, _ = pdf_pages(pdf)
    listing = subprocess.run(["pdfimages", "-list", pdf], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    pngs = sorted(tmp_path.glob("report-*.png"))
    # luminance, contrast, JND steps and the printer's density curve
    assert [p.name for p in pngs] == ["report-contrast.png", "report-density.png",
                                      "report-jnds.png", "report-luminance.png"]
    assert len(listing) == len(pngs) and pages >= 2
    assert listing[0].split()[0] == "1"  # first page shows a plot under the verdict
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True).stdout
    if text:
        assert "GSDF conformance: FAIL" in text and "date:" in text


def test_printer_profile_is_accepted_and_renders(tmp_path, capsys):
    from printscp.config import load_config
    from printscp.printing.film_export import export_pdf
    from printscp.printing.profile import OutputProfile

    toml = tmp_path / "profile" / "out.toml"
    toml.parent.mkdir()
    assert analyze(WEDGE, "--min-density", "0.25", "--max-density", "2.9",
                   "--profile", toml) == 1
    config = load_config(toml)
    assert Path(config.printer.output_profile) == toml.with_suffix(".lut")
    defaults = config.printer.film_box_defaults
    assert (defaults["min_density"], defaults["max_density"]) == (25, 290)
    profile = OutputProfile.from_file(config.printer.output_profile)
    assert profile.curve.kind.is_hardcopy
    # The node's renderer with this profile prints our own step wedge.
    assert main(["calibrate", "patterns", "-o", str(tmp_path / "pat")]) == 0
    result = export_pdf([str(tmp_path / "pat" / "step-wedge.dcm")], tmp_path / "film.pdf",
                        film_attributes={"image_display_format": "STANDARD\\1,1",
                                         "min_density": 25, "max_density": 290},
                        profile=profile)
    assert (result.films, result.errors) == (1, [])
    table = profile.table(8, 0.25, 2.9, 2000.0, 10.0)
    assert table[0] < table[-1] and np.all(np.diff(table.astype(int)) >= 0)


def test_record_updates_last_calibration(tmp_path, capsys):
    from printscp.core.printer_state import last_calibration

    data_dir = tmp_path / "data"
    assert last_calibration(data_dir) is None
    assert analyze(GSDF_LCD, "--record", "--data-dir", data_dir,
                   "--profile", tmp_path / "p.toml") == 0
    recorded = last_calibration(data_dir)
    assert recorded is not None and recorded.conforms is True
    assert recorded.profile == str((tmp_path / "p.lut").resolve())


@pytest.mark.slow
def test_patterns_are_printable_dicom_and_png(tmp_path, capsys):
    out = tmp_path / "pat"
    assert main(["calibrate", "patterns", "-o", str(out), "--size", "128"]) == 0
    patches = sorted(out.glob("LN-*.dcm"))
    assert len(patches) == 18 and len(list(out.glob("*.png"))) == 19
    levels = []
    for path in patches:
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
        pixels = ds.pixel_array
        levels.append(int(pixels[64, 64]))
        assert pixels[0, 0] == 51  # 20 % surround
    assert levels == np.rint(np.linspace(0, 255, 18)).astype(int).tolist()
    wedge = pydicom.dcmread(out / "step-wedge.dcm").pixel_array
    assert set(levels) <= set(np.unique(wedge).tolist())
    film = subprocess.run(["python", "-m", "printscp", "film", *map(str, patches[:4]),
                           "--format", "STANDARD\\2,2", "-o", str(tmp_path / "f.pdf")],
                          capture_output=True, text=True)
    assert film.returncode == 0, film.stderr


@pytest.mark.dcmtk("dcmdspfn")
def test_cli_lut_matches_dcmdspfn(tmp_path, capsys):
    """The written LUT drives the DDLs whose light dcmdspfn's PSC column lists."""
    assert analyze(WEDGE, "--lut", tmp_path / "l.txt", "--profile", tmp_path / "p.toml") == 1
    curves = dcmdspfn(tmp_path / "p.lut", DeviceKind.PRINTER, tmp_path)
    cc, psc = curves.cc, curves.psc
    lut = read_lut_text(tmp_path / "l.txt")
    assert [cc[i] for i in lut.tolist()] == psc
