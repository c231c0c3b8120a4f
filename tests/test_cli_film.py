"""``printscp film`` end to end on the sample files, read back from the PDF."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.films import pdf_page, pdf_pages

# printscp film, read back from the PDF
pytestmark = [pytest.mark.slow, pytest.mark.poppler("pdftoppm", "pdfinfo", "pdftotext")]


def run_film(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "printscp", "film", *args],
                          capture_output=True, text=True, timeout=120)


def bars(row: np.ndarray, n: int) -> np.ndarray:
    """Mean gray of ``n`` equal bars across the non-background part of ``row``."""
    cols = np.flatnonzero(row != row[0])
    seg = row[cols[0]:cols[-1] + 1]
    edges = np.linspace(0, seg.size, n + 1).astype(int)
    return np.array([seg[a + (b - a) // 3:b - (b - a) // 3].mean()
                     for a, b in itertools.pairwise(edges)])


def test_many_files_spread_over_pages_and_bad_files_are_reported(tmp_path, samples):
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom")
    out = tmp_path / "films.pdf"
    files = ["wedge_12bit.dcm", "wedge_8bit_mono1.dcm", "multiframe_3.dcm", "CT_small.dcm",
             "SC_rgb_small_odd.dcm"]
    res = run_film(*(str(samples / f) for f in files), str(junk), "--format", "STANDARD\\2,2",
                   "--film-size", "A4", "-o", str(out))
    assert res.returncode == 1, res.stderr
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1 and "notes.txt" in errors[0] and "DICOM" in errors[0]
    # 1 + 1 + 3 frames + 1 + 1 = 7 images on 4-image films: 2 pages of A4.
    pages, size = pdf_pages(out)
    assert pages == 2 and size == pytest.approx((595.28, 841.89), abs=0.01)
    assert "2 film(s), 7 image(s), 1 file(s) skipped" in res.stdout


def test_wedge_prints_in_order_and_reverse_polarity_flips_it(tmp_path, samples):
    outs = {}
    for polarity in ("NORMAL", "REVERSE"):
        out = tmp_path / f"{polarity}.pdf"
        res = run_film(str(samples / "wedge_12bit.dcm"), "--film-size", "8INX10IN",
                       "--polarity", polarity, "--magnification", "REPLICATE", "-o", str(out))
        assert res.returncode == 0, res.stderr
        assert pdf_pages(out) == (1, (576.0, 720.0))
        img = pdf_page(out, 30)
        outs[polarity] = bars(img[img.shape[0] // 2], 16)
    normal, reverse = outs["NORMAL"], outs["REVERSE"]
    assert np.all(np.diff(normal) > 0)  # 16 distinct steps, dark to light
    np.testing.assert_allclose(reverse, normal[::-1], atol=1.5)
    # Default pdf-srgb profile: 0.20 OD shows near gray 209, 3.00 OD near black.
    assert abs(normal[-1] - 209) <= 2 and normal[0] <= 6


def test_monochrome1_prints_zero_as_white(tmp_path, samples):
    out = tmp_path / "m1.pdf"
    res = run_film(str(samples / "wedge_8bit_mono1.dcm"), "--film-size", "8INX10IN",
                   "--magnification", "REPLICATE", "-o", str(out))
    assert res.returncode == 0, res.stderr
    img = pdf_page(out, 30)
    levels = bars(img[img.shape[0] // 2], 8)
    assert np.all(np.diff(levels) < 0)


def test_window_option_changes_the_rendering(tmp_path, samples):
    grays = []
    for i, window in enumerate(["2048,4096", "1024,512"]):
        out = tmp_path / f"w{i}.pdf"
        res = run_film(str(samples / "wedge_12bit.dcm"), "--window", window,
                       "--film-size", "8INX10IN", "-o", str(out))
        assert res.returncode == 0, res.stderr
        img = pdf_page(out, 30)
        grays.append(bars(img[img.shape[0] // 2], 16))
    # A narrow window at 1024 saturates: bars 6.. are all at the lightest level.
    assert np.ptp(grays[1][6:]) <= 1 and grays[1][6] > grays[0][6]


def test_landscape_annotation_and_profile(tmp_path, samples):
    out = tmp_path / "l.pdf"
    res = run_film(str(samples / "CT_small.dcm"), "--orientation", "landscape",
                   "--annotation", "printscp test", "--printer-profile",
                   "/usr/share/dcmtk/printer.lut", "-o", str(out))
    if not Path("/usr/share/dcmtk/printer.lut").exists():
        pytest.skip("dcmtk sample printer.lut not installed")
    assert res.returncode == 0, res.stderr
    assert pdf_pages(out) == (1, (1224.0, 1008.0))
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "printscp test" in text


def test_nothing_printable_writes_nothing(tmp_path):
    junk = tmp_path / "a.dcm"
    junk.write_bytes(b"\0" * 200)
    out = tmp_path / "none.pdf"
    res = run_film(str(junk), "-o", str(out))
    assert res.returncode == 2 and not out.exists()
    assert "a.dcm" in res.stderr


def test_bad_options_name_the_attribute(tmp_path, samples):
    res = run_film(str(samples / "CT_small.dcm"), "--format", "STANDARD\\0,2",
                   "-o", str(tmp_path / "x.pdf"))
    assert res.returncode == 2 and "ImageDisplayFormat (2010,0010)" in res.stderr
    res = run_film(str(samples / "CT_small.dcm"), "--min-density", "3.1",
                   "-o", str(tmp_path / "x.pdf"))
    assert res.returncode == 2 and "MaxDensity" in res.stderr
