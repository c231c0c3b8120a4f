"""Printer QC (issue 19 §3): readings, evaluation, the QC film, profile versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.measurements import MeasurementError
from calibration.qa import profiles
from calibration.qa.film import (
    CRITERIA,
    FilmReadings,
    evaluate_film,
    index_steps,
    read_film_readings,
    simulated_readings,
    step_pvalues,
)
from calibration.qa.results import DeviceKind, TestKind, Verdict
from calibration.qa.test_film import qc_film, qc_film_dataset
from lut import density as lut_density
from lut import device as lut_device

PS314 = Path("/work/shared/dicom_ps314_2016a/ps314_tables.json")
COND = {"min_density": 0.20, "max_density": 3.00, "illumination": 2000.0, "ambient": 10.0}


def ideal(steps: int = 32, base_fog: float | None = 0.19, **shift: float) -> FilmReadings:
    """Readings of a perfectly calibrated film (PS3.14 D.2.3), to 0.01 OD."""
    p = step_pvalues(steps)
    d = lut_density.pvalue_to_density(p, 12, 0.20, 3.00, 2000, 10)
    d = np.round(d + shift.get("offset", 0.0), 2)
    return FilmReadings(tuple(range(1, steps + 1)), tuple(float(v) for v in d), tuple(p),
                        base_fog, None, "ideal")


def write(tmp_path: Path, text: str, name: str = "film.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- readings -------------------------------------------------------------------------
def test_step_pvalues_follow_ps314_d21() -> None:
    p = step_pvalues(32)
    assert (len(p), p[0], p[-1]) == (32, 0, 4095)
    assert p[1] == round(4095 / 31)
    assert step_pvalues(18, bits=8)[-1] == 255


def test_readings_file_with_base_fog_and_dmax(tmp_path: Path) -> None:
    rows = "\n".join(f"{k},{3.0 - 0.09 * (k - 1):.2f}" for k in range(1, 33))
    path = write(tmp_path, f"# QC film 2026-03-01\nstep,density\n{rows}\nbase_fog,0.18\n"
                 "dmax,3.21\n")
    r = read_film_readings(path)
    assert r.steps == tuple(range(1, 33))
    assert r.p_values[0] == 0 and r.p_values[-1] == 4095
    assert r.density[0] == 3.0 and r.base_fog == 0.18 and r.dmax == 3.21
    assert r.source == str(path)


def test_readings_with_p_values_and_fewer_steps(tmp_path: Path) -> None:
    path = write(tmp_path, "Step, Density, P_Value\n1,2.9,0\n2,1.5,2000\n3,0.2,4095\n")
    r = read_film_readings(path)
    assert r.p_values == (0, 2000, 4095)
    path = write(tmp_path, "step,density\n1,2.9\n2,1.5\n3,0.2\n", "three.csv")
    assert read_film_readings(path, steps=3).p_values == (0, 2048, 4095)


@pytest.mark.parametrize(("text", "where", "what"), [
    ("step,dens\n1,2\n", ":1:", "expected the header"),
    ("step,density\n1,2.0\n2,x\n3,0.2\n", ":3:", "density must be a number"),
    ("step,density\n1,2.0\n1,1.0\n3,0.2\n", ":3:", "step 1 given twice (first on line 2)"),
    ("step,density\n1,2.0\nfog,1.0\n3,0.2\n", ":3:", "base_fog or dmax"),
    ("step,density\n1,2.0\n2,9\n3,0.2\n", ":3:", "outside 0..6 OD"),
    ("step,density\n1,2.0\n2,1.0\n40,0.2\n", ":4:", "step 40 on a 32-step film"),
    ("step,density,p_value\n1,2.0,100\n2,1.0,50\n3,0.2,4095\n", ":3:", "must ascend"),
    ("step,density\n1,2.0\n2,1.0,7\n", ":3:", "expected 2 columns"),
    ("step,density\nbase_fog,0.2\nbase_fog,0.2\n", ":3:", "base_fog given twice"),
])
def test_bad_readings_name_file_and_line(tmp_path: Path, text: str, where: str,
                                         what: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MeasurementError) as err:
        read_film_readings(path)
    assert f"{path}{where}" in str(err.value) and what in str(err.value)


def test_missing_file_is_a_measurement_error(tmp_path: Path) -> None:
    with pytest.raises(MeasurementError, match=r"nope\.csv"):
        read_film_readings(tmp_path / "nope.csv")


# -- evaluation ------------------------------------------------------------------------
def test_calibrated_film_passes_and_matches_ps314_table_d21() -> None:
    table = json.loads(PS314.read_text())["D.2-1"]["values"]
    p8 = [0, 64, 128, 192, 255]
    expected = [float(table[str(p)]) for p in p8]
    d = lut_density.pvalue_to_density(p8, 8, 0.20, 3.00, 2000, 10)
    assert np.allclose(d, expected, atol=0.0015)

    result = evaluate_film(ideal(), TestKind.ACCEPTANCE, **COND)
    assert result.criteria == CRITERIA and result.device_kind is DeviceKind.PRINTER
    assert result.verdict is Verdict.PASS, result.failed
    assert result.value("response_max_error") < 10
    assert result.value("dmin") == 0.2 and result.value("dmax") == 3.0
    assert result.figure("response_max_error").high == 10.0
    assert "PS3.14" in result.figure("response_max_error").source
    assert result.series["steps"] == list(range(1, 33))
    assert np.allclose(result.series["target_density"], ideal().density, atol=0.006)
    assert result.figure("speed_change") is None  # acceptance: nothing to compare


def test_index_steps_follow_the_processor_qc_definitions() -> None:
    r = ideal(base_fog=0.20)
    steps = index_steps(r)
    d = dict(zip(r.steps, r.density, strict=True))
    # speed: closest to 1.00 above base+fog (1.20); contrast: 2.20 and 0.45 OD
    assert min(r.density, key=lambda v: abs(v - 1.20)) == d[steps["speed"]]
    assert min(r.density, key=lambda v: abs(v - 2.20)) == d[steps["contrast_high"]]
    assert min(r.density, key=lambda v: abs(v - 0.45)) == d[steps["contrast_low"]]
    result = evaluate_film(r, TestKind.ACCEPTANCE, **COND)
    assert result.value("speed") == d[steps["speed"]]
    assert result.value("contrast") == pytest.approx(
        d[steps["contrast_high"]] - d[steps["contrast_low"]])
    assert result.series["index_steps"] == steps


def test_constancy_tracks_the_baseline_steps_and_limits() -> None:
    baseline = evaluate_film(ideal(), TestKind.ACCEPTANCE, **COND)
    # The whole film 0.10 OD darker: speed changes 0.10 (within ±0.15), contrast 0.
    later = evaluate_film(ideal(offset=0.10, base_fog=0.21), TestKind.CONSTANCY, baseline,
                          **COND)
    assert later.value("speed_change") == pytest.approx(0.10)
    assert later.figure("speed_change").passed is True
    assert later.value("contrast_change") == pytest.approx(0.0)
    assert later.figure("base_fog_change").passed is True  # +0.02 <= +0.03
    assert later.series["index_steps"] == baseline.series["index_steps"]
    assert "baseline" in later.figure("speed").note
    # 0.20 OD darker and base+fog +0.04: speed and base+fog out of their limits.
    worse = evaluate_film(ideal(offset=0.20, base_fog=0.23), TestKind.CONSTANCY, baseline,
                          **COND)
    failed = {f.key for f in worse.failed}
    assert {"speed_change", "base_fog_change"} <= failed
    assert worse.figure("speed_change").source.startswith("21 CFR 900.12(e)(1)")
    # base+fog going down is not a failure (the limit is +0.03 only)
    lighter = evaluate_film(ideal(base_fog=0.10), TestKind.CONSTANCY, baseline, **COND)
    assert lighter.figure("base_fog_change").passed is True


def test_constancy_without_baseline_reports_changes_without_value() -> None:
    result = evaluate_film(ideal(), TestKind.CONSTANCY, None, **COND)
    fig = result.figure("speed_change")
    assert fig.value is None and "no baseline" in fig.note
    assert result.verdict is Verdict.PASS


def test_dmax_fallen_fails_and_defaults_are_noted() -> None:
    r = ideal()
    fallen = FilmReadings(r.steps, tuple(min(v, 2.7) for v in r.density), r.p_values,
                          r.base_fog, 2.7, "fallen")
    result = evaluate_film(fallen, TestKind.ACCEPTANCE, min_density=0.2, max_density=3.0)
    assert "dmax" in {f.key for f in result.failed}
    assert result.value("dmax") == 2.7
    assert any("default L0 = 2000" in n for n in result.notes)
    unjudged = evaluate_film(fallen, TestKind.ACCEPTANCE)
    assert unjudged.figure("dmax").passed is None


def test_a_film_without_contrast_is_unusable() -> None:
    flat = FilmReadings((1, 2, 3), (1.0, 1.0, 1.0), (0, 2048, 4095), None, None, "flat")
    with pytest.raises(MeasurementError, match="no contrast"):
        evaluate_film(flat, TestKind.ACCEPTANCE)


def test_results_round_trip_as_json() -> None:
    result = evaluate_film(ideal(), TestKind.ACCEPTANCE, **COND)
    again = type(result).from_json(json.loads(json.dumps(result.to_json())))
    assert again.figures == result.figures and again.series["index_steps"] == \
        result.series["index_steps"]
    back = FilmReadings.from_json(result.inputs["readings"])
    assert back == ideal()


# -- the QC film ----------------------------------------------------------------------
def test_qc_film_pixels() -> None:
    film = qc_film(900, 700, device="laser1", profile="v0002")
    px = film.pixels
    assert px.dtype == np.uint16 and px.shape == (900, 700)
    assert film.p_values == step_pvalues(32)
    for patch in film.steps:
        area = px[patch.r0:patch.r1, patch.c0:patch.c1]
        assert (area == patch.p_value).all(), patch
        assert (patch.r1 - patch.r0) >= 100 and (patch.c1 - patch.c0) >= 30
    named = {p.name: p for p in film.patches}
    outer, inner = named["0%"], named["5% in 0%"]
    assert px[outer.r0 + 2, outer.c0 + 2] == 0
    assert px[inner.centre] == round(4095 * 0.05)
    assert px[named["95% in 100%"].centre] == round(4095 * 0.95)
    lp = named["line pairs 1 px V"]
    row = px[lp.r0 + 3, lp.c0:lp.c0 + 8].tolist()
    assert row == [4095, 0] * 4
    lp2 = named["line pairs 2 px H"]
    col = px[lp2.r0:lp2.r0 + 8, lp2.c0 + 3].tolist()
    assert col == [4095, 4095, 0, 0] * 2
    assert [named[f"gray {10 * k}%"].p_value for k in (0, 5, 10)] == [0, 2048, 4095]
    # The label strip carries text (black on white) with the device and profile.
    strip = px[5:5 + 900 // 16 + 10, :]
    assert (strip == 0).sum() > 200 and "laser1" in film.label and "v0002" in film.label


def test_qc_film_dataset_prints_its_p_values(tmp_path: Path) -> None:
    from printscp.printing.images import read_print_images

    film = qc_film(400, 300, device="laser1")
    ds = qc_film_dataset(film, pixel_spacing_mm=0.423, device="laser1")
    path = tmp_path / "qc.dcm"
    ds.save_as(path, enforce_file_format=True)
    (image,) = list(read_print_images(path))
    assert image.bits_stored == 12
    assert np.array_equal(image.pixels, film.pixels)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert [float(v) for v in ds.PixelSpacing] == [0.423, 0.423]


# -- profile versions -----------------------------------------------------------------
def curve(dmax: float = 3.3, gamma: float = 1.0, max_ddl: int = 255
          ) -> lut_device.CharacteristicCurve:
    x = 1 - np.arange(max_ddl + 1) / max_ddl
    d = 0.18 + (dmax - 0.18) * x ** gamma
    return lut_device.CharacteristicCurve(lut_device.DeviceKind.PRINTER, max_ddl,
                                          np.arange(max_ddl + 1), np.round(d, 4),
                                          ambient=10.0, illumination=2000.0)


def test_versions_current_and_rollback(tmp_path: Path) -> None:
    assert profiles.current_profile(tmp_path, "laser1") is None
    v1 = profiles.add_version(tmp_path, "laser1", curve(), note="first")
    v2 = profiles.add_version(tmp_path, "laser1", curve(gamma=1.2), note="second")
    assert (v1.name, v2.name) == ("v0001", "v0002")
    assert v2.path == tmp_path / "qa" / "profiles" / "laser1" / "v0002.lut"
    assert profiles.current_profile(tmp_path, "laser1") == v2.path
    first = v1.path.read_bytes()
    back = profiles.rollback(tmp_path, "laser1")
    assert back.number == 1 and back.note == "first"
    assert profiles.current_profile(tmp_path, "laser1") == v1.path
    assert [v.name for v in profiles.versions(tmp_path, "laser1")] == ["v0001", "v0002"]
    assert v1.path.read_bytes() == first and v2.path.is_file()  # nothing deleted
    with pytest.raises(ValueError, match="oldest"):
        profiles.rollback(tmp_path, "laser1")
    assert profiles.rollback(tmp_path, "laser1", to="v0002").number == 2
    with pytest.raises(KeyError, match="known: v0001, v0002"):
        profiles.rollback(tmp_path, "laser1", to=7)
    log = (v1.path.parent / "log.txt").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in log] == [
        "add v0001", "add v0002", "rollback to v0001", "rollback to v0002"]
    # a version is a DCMTK printer file the renderer loads
    from printscp.printing.profile import OutputProfile

    assert OutputProfile.from_file(v2.path).curve == curve(gamma=1.2)


def test_add_version_never_reuses_a_number(tmp_path: Path) -> None:
    folder = profiles.profile_dir(tmp_path, "laser1")
    folder.mkdir(parents=True)
    (folder / "v0001.lut").write_text("someone else's")
    v = profiles.add_version(tmp_path, "laser1", curve(), make_current=False)
    assert v.number == 2 and (folder / "v0001.lut").read_text() == "someone else's"
    assert profiles.current_profile(tmp_path, "laser1") is None


def test_recalibrated_curve_recovers_the_printer() -> None:
    """Readings at the levels a wedge used give the printer's curve there, and the
    previous curve's shape, rescaled, beyond."""
    old, printer = curve(gamma=1.0, max_ddl=4095), curve(dmax=3.1, gamma=1.3, max_ddl=4095)
    levels = np.linspace(300, 4000, 32).round().astype(int)
    truth = lut_device.interpolate_curve(printer)
    new = profiles.recalibrated_curve(levels, truth[levels], old)
    full = lut_device.interpolate_curve(new)
    inside = np.arange(300, 4001)
    assert np.abs(full[inside] - truth[inside]).max() < 0.01
    assert np.all(np.diff(new.values) <= 0)
    assert (new.illumination, new.ambient, new.max_ddl) == (2000.0, 10.0, 4095)
    with pytest.raises(ValueError, match="fewer than 3 device levels"):
        profiles.recalibrated_curve([5, 5, 6], [1.0, 1.0, 0.9], old)


def test_simulated_readings() -> None:
    r = simulated_readings([0, 128, 255], lambda lv: 3.0 - lv / 100.0, base_fog=0.2)
    assert r.density == (3.0, 1.72, 0.45) and r.p_values == (0, 2048, 4095)


def test_site_limit_on_the_dmax_change_catches_a_slow_fall() -> None:
    """A printer's Dmax falls 0.06 OD a week; the films' Max Density is not given, so only
    the site's limit on the change since the acceptance film judges it, and the first
    film more than 0.2 OD down is the first to fail."""
    r = ideal()
    site = {"dmax_change": (-0.2, None)}
    baseline = evaluate_film(r, TestKind.ACCEPTANCE, site_limits=site)
    verdicts = []
    for week in range(1, 9):
        top = round(3.0 - 0.06 * week, 2)
        worn = FilmReadings(r.steps, tuple(min(v, top) for v in r.density), r.p_values,
                            r.base_fog, top, f"week {week}")
        result = evaluate_film(worn, TestKind.CONSTANCY, baseline, site_limits=site)
        change = result.figure("dmax_change")
        assert change.source == "site limit" and change.value == pytest.approx(-0.06 * week)
        verdicts.append(change.passed)
    assert verdicts == [True] * 3 + [False] * 5
    with pytest.raises(ValueError, match="unknown figure 'dmax_drop'"):
        evaluate_film(r, TestKind.ACCEPTANCE, site_limits={"dmax_drop": (0, 1)})
