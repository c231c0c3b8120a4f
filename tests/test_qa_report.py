"""The QA report: the data behind its tables and trend plots, and the PDF a physicist signs.

Synthetic devices with known faults — a display whose Lmax drifts down over 12 constancy
tests (with non-uniform corners and a white point walking off target), a printer whose
Dmax falls — must show the fault in the series the plots draw, at the right tests, and
the tests that failed must be marked.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from calibration.qa.devices import Device
from calibration.qa.report import D65_UV, report_data, write_report
from calibration.qa.results import DeviceKind, Figure, TestKind, TestResult, Verdict
from calibration.qa.store import QAStore, TestRecord

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
SRC = "test limits"  # these tests choose their own limits; the criteria tables are elsewhere


def display_result(kind: TestKind, lmax: float, baseline_lmax: float | None, *,
                   corners: float = 3.0, white: tuple[float, float] = D65_UV) -> TestResult:
    """A TG18-like display test: response, Lmax/Lmin with the change since the baseline,
    ambient ratio, 5-point uniformity and the white point."""
    levels = np.linspace(0, 255, 18)
    error = np.linspace(-4.0, 5.0, 17)  # in %
    lmin = 1.2
    figures = [
        Figure("response_max_error", 5.0, high=10.0, source=SRC),
        Figure("lmax", lmax, low=350.0, source=SRC),
        Figure("lmin", lmin, source=SRC),
        Figure("luminance_ratio", lmax / lmin, low=250.0, source=SRC),
        Figure("ambient_ratio", 0.2, high=0.25, source=SRC),
        Figure("uniformity_max_dev", corners, high=30.0, source=SRC),
        Figure("white_point_distance",
               float(np.hypot(white[0] - D65_UV[0], white[1] - D65_UV[1])),
               high=0.01, source=SRC),
    ]
    if kind is TestKind.CONSTANCY:
        change = None if baseline_lmax is None else 100 * (lmax / baseline_lmax - 1)
        figures.append(Figure("lmax_change", change, low=-10.0, high=10.0, source=SRC))
    return TestResult(DeviceKind.DISPLAY, kind, "tg18", tuple(figures),
                      series={"levels": levels.tolist(), "error": error.tolist(),
                              "uniformity": [0.0, corners, -corners, corners / 2, -corners],
                              "white_point": list(white),
                              "white_target": list(D65_UV)},
                      inputs={"ambient": {"illuminance_lux": 50.0,
                                          "reflection_coefficient": 0.006}, "lamb": 0.3})


def printer_result(kind: TestKind, dmax: float, baseline_dmax: float | None) -> TestResult:
    steps = np.arange(1, 33)
    target = np.linspace(0.2, 3.0, 32)
    density = np.minimum(target, dmax)
    figures = [
        Figure("base_fog", 0.18, source=SRC),
        Figure("dmax", dmax, low=2.8, source=SRC),
        Figure("speed", 1.2, source=SRC),
        Figure("contrast", 1.5, source=SRC),
    ]
    if kind is TestKind.CONSTANCY:
        figures += [Figure("dmax_change", None if baseline_dmax is None else
                           dmax - baseline_dmax, low=-0.15, high=0.15, source=SRC),
                    Figure("speed_change", 0.0, low=-0.15, high=0.15, source=SRC),
                    Figure("base_fog_change", 0.0, high=0.03, source=SRC)]
    return TestResult(DeviceKind.PRINTER, kind, "ps3.14-film", tuple(figures),
                      series={"steps": steps.tolist(), "density": density.tolist(),
                              "target_density": target.tolist()},
                      inputs={"illumination": 2000.0, "ambient": 10.0})


def records_of(device_id: str, results: list[TestResult]) -> list[TestRecord]:
    """Records as the store links them: constancy tests to the acceptance test (id 1)."""
    return [TestRecord(i, device_id, T0 + timedelta(days=7 * (i - 1)), "jdoe", f"m{i}.csv",
                       r, None if r.kind is TestKind.ACCEPTANCE else 1)
            for i, r in enumerate(results, start=1)]


DISPLAY = Device("RAD-1", DeviceKind.DISPLAY, "Barco", "MDRC-2321", "SN12345")
PRINTER = Device("DRYVIEW", DeviceKind.PRINTER, "Carestream", "DryView 5950", "P-778",
                 printer_ae="DRYVIEW5950")
LMAX0 = 420.0


def drifting_display() -> list[TestRecord]:
    """Acceptance at 420 cd/m², then 12 weekly constancy tests losing 1.5 % each: the
    change passes -10 % at the 7th (-10.5 %), Lmax passes 350 at the 12th (344.4)."""
    results = [display_result(TestKind.ACCEPTANCE, LMAX0, None)]
    results += [display_result(TestKind.CONSTANCY, LMAX0 * (1 - 0.015 * k), LMAX0,
                               corners=3.0 + 3.0 * k,
                               white=(D65_UV[0] + 0.0011 * k, D65_UV[1]))
                for k in range(1, 13)]
    return records_of(DISPLAY.id, results)


def falling_printer() -> list[TestRecord]:
    """Acceptance with Dmax 3.0, then 10 constancy films losing 0.03 OD each: the change
    passes -0.15 at the 6th (-0.18), Dmax passes 2.8 at the 7th (2.79)."""
    results = [printer_result(TestKind.ACCEPTANCE, 3.0, None)]
    results += [printer_result(TestKind.CONSTANCY, 3.0 - 0.03 * k, 3.0) for k in range(1, 11)]
    return records_of(PRINTER.id, results)


def test_display_lmax_drift_is_in_the_trend_and_failed_tests_are_marked() -> None:
    records = drifting_display()
    data = report_data(DISPLAY, records)
    lmax = data.trends["lmax"]
    expected = [LMAX0] + [LMAX0 * (1 - 0.015 * k) for k in range(1, 13)]
    np.testing.assert_allclose(lmax.values, expected)
    assert (np.diff(lmax.values) < 0).all()
    # tests 8..13 (constancy 7..12) fail on the change; the 13th also on Lmax itself
    assert data.failed_tests == tuple(range(8, 14))
    assert lmax.test_failed.tolist() == [False] * 7 + [True] * 6
    assert lmax.failed.tolist() == [False] * 12 + [True]
    assert data.trends["lmax_change"].failed.tolist() == [False] * 7 + [True] * 6
    # the baseline band around 420: -10 % .. +10 % on every constancy test
    np.testing.assert_allclose(lmax.baseline[1:], LMAX0)
    np.testing.assert_allclose(lmax.baseline_low[1:], LMAX0 * 0.9)
    np.testing.assert_allclose(lmax.baseline_high[1:], LMAX0 * 1.1)
    assert np.isnan(lmax.baseline_low[0])  # the acceptance test has no change limit
    np.testing.assert_allclose(lmax.low, 350.0)
    assert lmax.when[0] == T0 and lmax.when[-1] == T0 + timedelta(weeks=12)


def test_display_report_is_about_the_latest_test() -> None:
    data = report_data(DISPLAY, list(reversed(drifting_display())))  # any order
    assert data.latest.id == 13 and data.baseline is not None and data.baseline.id == 1
    assert data.verdict is Verdict.FAIL
    assert data.title.startswith("Constancy test report")
    rows = {r.key: r for r in data.figures}
    assert rows["lmax"].passed is False and rows["lmax"].limit == "≥ 350 cd/m²"
    assert rows["lmax"].result == "FAIL" and rows["lmin"].result == "—"
    assert rows["lmax_change"].value == pytest.approx(-18.0)
    assert rows["response_max_error"].passed is True
    conditions = dict(data.conditions)
    assert conditions["operator"] == "jdoe"
    assert conditions["criteria set"] == "tg18"
    assert conditions["ambient illuminance E"] == "50 lx"
    assert conditions["ambient luminance Lamb"] == "0.3 cd/m²"
    assert conditions["baseline"].startswith("acceptance test #1 of 2025-01-06")
    assert data.test_count == 13 and data.period == (T0, T0 + timedelta(weeks=12))
    assert list(data.plots) == ["response", "luminance", "ambient_ratio", "response_trend",
                                "uniformity", "white_point"]


def test_display_response_uniformity_and_white_point_plots_hold_the_latest_data() -> None:
    data = report_data(DISPLAY, drifting_display())
    r = data.response
    assert r is not None and r.test_id == 13 and r.limit == 10.0
    assert r.midpoints.size == 17 and r.midpoints[0] == pytest.approx(7.5)
    np.testing.assert_allclose(r.error[[0, -1]], [-4.0, 5.0])
    assert not r.failed.any()
    # non-uniform corners: 39 % at the latest, the centre 0, placed on the 3x3 grid
    u = data.uniformity
    assert u is not None and u.limit == 30.0
    assert u.grid[1, 1] == 0.0 and u.positions[0] == "centre"
    np.testing.assert_allclose([u.grid[0, 0], u.grid[0, 2], u.grid[2, 0], u.grid[2, 2]],
                               [39.0, -39.0, 19.5, -39.0])
    assert np.isnan(u.grid[0, 1]) and np.isnan(u.grid[1, 0])
    # the white point walks off D65 by 0.0011 u' a week: beyond 0.01 from the 10th
    w = data.white_point
    assert w is not None and w.target == D65_UV and w.target_named and w.radius == 0.01
    np.testing.assert_allclose(w.distance, 0.0011 * np.arange(13), atol=1e-12)
    dist = data.trends["white_point_distance"]
    assert dist.failed.tolist() == [False] * 10 + [True] * 3
    assert data.trends["uniformity_max_dev"].failed.tolist() == [False] * 10 + [True] * 3


def test_printer_dmax_falls_and_failing_films_are_marked() -> None:
    data = report_data(PRINTER, falling_printer())
    dmax = data.trends["dmax"]
    np.testing.assert_allclose(dmax.values, 3.0 - 0.03 * np.arange(11))
    assert (np.diff(dmax.values) < 0).all()
    # change beyond -0.15 OD from the 6th constancy film (test 7); Dmax < 2.8 from test 8
    assert data.failed_tests == tuple(range(7, 12))
    assert dmax.test_failed.tolist() == [False] * 6 + [True] * 5
    assert dmax.failed.tolist() == [False] * 7 + [True] * 4
    np.testing.assert_allclose(dmax.baseline_low[1:], 2.85)
    np.testing.assert_allclose(dmax.baseline_high[1:], 3.15)
    speed = data.trends["speed"]
    np.testing.assert_allclose(speed.baseline_low[1:], 1.05)
    assert np.isnan(data.trends["contrast"].baseline_low).all()  # no contrast limit given
    fog = data.trends["base_fog"]  # limited upwards only: fog may not rise by 0.03
    assert np.isnan(fog.baseline_low).all()
    np.testing.assert_allclose(fog.baseline_high[1:], 0.21)
    d = data.density
    assert d is not None and d.test_id == 11
    assert d.steps.tolist() == list(range(1, 33))
    assert d.density.max() == pytest.approx(2.7)
    assert d.deviation[-1] == pytest.approx(-0.3) and d.deviation[0] == 0.0
    assert list(data.plots) == ["density", "speed", "contrast", "dmax", "base_fog"]
    assert data.uniformity is None and data.white_point is None
    conditions = dict(data.conditions)
    assert conditions["light-box illumination L0"] == "2000 cd/m²"
    assert conditions["reflected ambient light La"] == "10 cd/m²"


def test_a_period_after_the_acceptance_test_with_its_baseline_given() -> None:
    records = drifting_display()
    later = records[6:]  # --from after the acceptance test
    data = report_data(DISPLAY, later)
    assert data.baseline is None
    assert dict(data.conditions)["baseline"] == "acceptance test #1 (not among the tests given)"
    assert np.isnan(data.trends["lmax"].baseline_low).all()
    data = report_data(DISPLAY, later, baselines=records[:1])
    assert data.baseline is records[0] and data.test_count == 7
    np.testing.assert_allclose(data.trends["lmax"].baseline_low, LMAX0 * 0.9)
    assert dict(data.conditions)["baseline"].startswith("acceptance test #1 of 2025-01-06")


def test_an_acceptance_report_and_a_constancy_test_without_baseline() -> None:
    first = records_of(DISPLAY.id, [display_result(TestKind.ACCEPTANCE, LMAX0, None)])
    data = report_data(DISPLAY, first)
    assert data.title.startswith("Acceptance test report") and data.verdict is Verdict.PASS
    assert data.baseline is None and "response_trend" not in data.plots
    alone = [TestRecord(5, DISPLAY.id, T0, "jdoe", "", display_result(
        TestKind.CONSTANCY, 300.0, None), None)]
    data = report_data(DISPLAY, alone)
    assert dict(data.conditions)["baseline"].startswith("none")
    assert np.isnan(data.trends["lmax"].baseline_low).all()


def test_no_tests_or_another_devices_tests_are_refused() -> None:
    with pytest.raises(ValueError, match="RAD-1: no tests"):
        report_data(DISPLAY, [])
    with pytest.raises(ValueError, match="DRYVIEW"):
        report_data(DISPLAY, drifting_display() + falling_printer())


def _pdf_text(path: Path) -> str | None:
    try:
        import pypdf
    except ImportError:
        pypdf = None
    if pypdf is not None:
        return "\n".join(p.extract_text() for p in pypdf.PdfReader(path).pages)
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                              text=True).stdout
    return None


@pytest.mark.parametrize("device, records", [(DISPLAY, drifting_display),
                                             (PRINTER, falling_printer)],
                         ids=["display", "printer"])
def test_pdf_names_the_device_and_verdict(tmp_path: Path, device: Device, records) -> None:
    out = tmp_path / "sub" / "report.pdf"
    data = write_report(out, device, records())
    raw = out.read_bytes()
    assert raw.startswith(b"%PDF-")
    assert data.verdict is Verdict.FAIL
    # the document title (Info dictionary, never compressed) holds both
    assert f"{device.id}: FAIL".encode() in raw
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary left behind
    text = _pdf_text(out)
    if text is None:
        pytest.skip("neither pypdf nor poppler's pdftotext to read the PDF's text")
    assert device.id in text and "Verdict: FAIL" in text
    assert device.serial in text and "jdoe" in text
    assert "≥ 2.8 OD" in text if device is PRINTER else "≥ 350 cd/m²" in text
    assert "Trends" in text and "signature" in text


def test_report_from_the_store(tmp_path: Path) -> None:
    """The records as the store gives them back (JSON round trip, baseline links)."""
    store = QAStore(tmp_path / "qa.sqlite")
    store.add_device(DISPLAY)
    for r in drifting_display():
        store.record_test(DISPLAY.id, r.result, operator="jdoe", when=r.when)
    history = store.history(DISPLAY.id)
    data = write_report(tmp_path / "r.pdf", store.device(DISPLAY.id), history)
    assert data.failed_tests == tuple(r.id for r in history[7:])
    assert data.baseline is not None and data.baseline.id == history[0].id
    np.testing.assert_allclose(data.trends["lmax"].baseline_low[1:], LMAX0 * 0.9)


# ------------------------------------------------------- the real display and film tests


def test_real_display_tests_nine_positions_and_response_in_percent(tmp_path: Path) -> None:
    """evaluate_display keeps the response error in %, names its 9 positions and the
    white target; the report reads them as such."""
    import json

    from calibration.qa.display import POSITIONS_9, evaluate_display, read_display_readings
    from lut import gsdf

    levels = [int(v) for v in np.rint(np.linspace(0, 255, 18))]
    j0, j1 = gsdf.jnd_index_exact([0.8, 400.0])
    lum = gsdf.luminance(j0 + (j1 - j0) * np.asarray(levels) / 255.0)
    lum[9] *= 1.08  # a bump in the middle: two intervals off the GSDF
    grid = [250.0, 270, 260, 280, 300, 275, 240, 265, 255]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({
        "response": {"points": [[d, float(v) - 0.2] for d, v in zip(levels, lum,
                                                                      strict=True)]},
        "ambient": {"lamb": 0.2}, "uniformity": {"unl80": dict(zip(POSITIONS_9, grid,
                                                                   strict=True))},
        "white_point": {"u": 0.2, "v": 0.47}}))
    result = evaluate_display(read_display_readings(path), "tg18", TestKind.ACCEPTANCE)
    data = report_data(DISPLAY, records_of(DISPLAY.id, [result]))
    r = data.response
    assert r is not None
    worst = result.value("response_max_error")
    assert float(np.max(np.abs(r.error))) == pytest.approx(worst)  # in %, not x100 again
    assert r.failed.sum() == (np.abs(r.error) > 10).sum() >= 1
    u = data.uniformity
    assert u is not None and u.pattern == "unl80" and u.positions == POSITIONS_9
    assert not np.isnan(u.grid).any()
    assert u.grid[1, 1] == pytest.approx(result.series["uniformity"][4])  # the centre
    w = data.white_point
    assert w is not None and w.target_named
    assert w.distance[0] == pytest.approx(result.value("white_point_distance"))
    assert dict(data.conditions)["ambient luminance Lamb"] == "0.2 cd/m²"


def test_real_film_tests_response_as_a_fraction(tmp_path: Path) -> None:
    """evaluate_film keeps δm/δe - 1 as a fraction: the report shows it in %."""
    from calibration.qa.film import evaluate_film, simulated_readings, step_pvalues
    from lut.density import pvalue_to_density

    p = np.asarray(step_pvalues(32), dtype=np.float64)

    def printer(dmax: float):
        return lambda levels: pvalue_to_density(levels, 12, 0.2, dmax, 2000.0, 10.0)

    base = evaluate_film(simulated_readings(p, printer(3.0), base_fog=0.19),
                         TestKind.ACCEPTANCE, max_density=3.0)
    later = evaluate_film(simulated_readings(p, printer(2.6), base_fog=0.19),
                          TestKind.CONSTANCY, base, max_density=3.0)
    data = report_data(PRINTER, records_of(PRINTER.id, [base, later]))
    assert data.verdict is later.verdict is Verdict.FAIL
    r = data.response
    assert r is not None and r.test_id == 2
    assert float(np.max(np.abs(r.error))) == pytest.approx(later.value("response_max_error"))
    d = data.density
    assert d is not None and d.density.max() == pytest.approx(2.6, abs=1e-3)
    assert data.trends["dmax"].failed.tolist() == [False, True]
    assert data.failed_tests == (2,)
