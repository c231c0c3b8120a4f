"""Tests for lut.device: the DCMTK file format, eager validation, and parity with DCMTK.

The parity tests run the real ``dcmdspfn`` (Debian package ``dcmtk``) and demand the
same CC, GSDF and PSC columns to the 6 printed decimals, entry for entry: a PSC value
is ``CC[lut[i]]`` (``GSDF[lut[i]]`` for input devices), so an equal PSC column means the
same DDL was chosen for every P-value.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers.dcmtk import dcmdspfn

from lut import device, gsdf
from lut.device import (
    CharacteristicCurve,
    DeviceKind,
    calibrate,
    calibration_lut,
    device_luminance,
    gsdf_target_luminance,
    interpolate_curve,
    pvalue_to_ddl,
    read_characteristic_file,
    write_characteristic_file,
)

DCMTK_DATA = Path("/usr/share/dcmtk")
needs_dcmdspfn = pytest.mark.dcmtk("dcmdspfn")
SAMPLES = {
    "monitor": DeviceKind.MONITOR,
    "camera": DeviceKind.CAMERA,
    "printer": DeviceKind.PRINTER,
    "scanner": DeviceKind.SCANNER,
}


def sample(name: str) -> Path:
    path = DCMTK_DATA / f"{name}.lut"
    if not path.exists():
        pytest.skip(f"{path} not found (install Debian package 'dcmtk')")
    return path


def load(name: str) -> CharacteristicCurve:
    return read_characteristic_file(sample(name), SAMPLES[name])


# --------------------------------------------------------------------------------------
# dcmdspfn harness
# --------------------------------------------------------------------------------------


def options_to_kwargs(opts: list[str]) -> dict[str, float | int]:
    names = {
        "+Ca": ("ambient", float),
        "+Ci": ("illumination", float),
        "+Dn": ("min_density", float),
        "+Dx": ("max_density", float),
        "+Cf": ("order", int),
    }
    kwargs: dict[str, float | int] = {}
    for flag, value in zip(opts[::2], opts[1::2], strict=True):
        name, convert = names[flag]
        kwargs[name] = convert(value)
    return kwargs


def fmt(values: np.ndarray) -> list[str]:
    """Format like C++ ``std::fixed`` with the default precision 6."""
    return [f"{v:.6f}" for v in values.tolist()]


def first_mismatch(ours: list[str], theirs: list[str]) -> str:
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            return f"entry {i}: ours {a}, dcmdspfn {b}"
    return ""


def assert_same_as_dcmtk(tmp_path: Path, lut_file: Path, kind: DeviceKind, opts: list[str]) -> None:
    ref = dcmdspfn(lut_file, kind, tmp_path, opts)
    curve = read_characteristic_file(lut_file, kind)
    cal = calibrate(curve, **options_to_kwargs(opts))

    assert ref.ddl == [str(i) for i in range(curve.max_ddl + 1)]
    # CC: the interpolated characteristic curve (to the printed precision, which for
    # values of order 1..1000 cd/m² is far tighter than 1e-5 relative).
    assert fmt(cal.device) == ref.cc, first_mismatch(fmt(cal.device), ref.cc)
    finite = np.isfinite(cal.device)
    np.testing.assert_allclose(cal.device[finite], np.array(ref.cc, float)[finite], rtol=1e-5)
    assert fmt(cal.target) == ref.gsdf, first_mismatch(fmt(cal.target), ref.gsdf)
    assert fmt(cal.psc) == ref.psc, first_mismatch(fmt(cal.psc), ref.psc)
    jnd_min, jnd_max = cal.jnd_range
    assert ref.jnd_line == f"{jnd_min:g} - {jnd_max:g} ({jnd_max - jnd_min:g})"


# --------------------------------------------------------------------------------------
# Parity with dcmdspfn
# --------------------------------------------------------------------------------------

PARITY_CASES = [
    ("monitor", []),
    ("monitor", ["+Ca", "0"]),
    ("monitor", ["+Ca", "7.5"]),
    ("monitor", ["+Cf", "3"]),  # full table: DCMTK ignores the order
    ("printer", []),  # ord 5 from the file
    ("printer", ["+Cf", "0"]),  # cubic spline instead
    ("printer", ["+Cf", "1"]),
    ("printer", ["+Cf", "3"]),
    ("printer", ["+Cf", "8"]),
    ("printer", ["+Cf", "15"]),  # 16 points: ill-conditioned normal equations
    ("printer", ["+Cf", "20"]),  # underdetermined, DCMTK solves it anyway
    ("printer", ["+Dn", "0.2", "+Dx", "2.8"]),
    ("printer", ["+Dn", "0.2", "+Dx", "2.8", "+Cf", "0"]),
    ("printer", ["+Dn", "0.3"]),
    ("printer", ["+Dx", "2.0"]),  # first entry lands below the Dmax DDL (DCMTK quirk)
    ("printer", ["+Dx", "3.5", "+Dn", "0.1"]),  # wider than the device
    ("printer", ["+Ca", "0"]),
    ("printer", ["+Ca", "25", "+Ci", "3000"]),
    ("printer", ["+Dx", "2.9", "+Dn", "0.25", "+Ca", "0.5"]),
    ("camera", []),
    ("camera", ["+Ca", "2"]),
    ("camera", ["+Cf", "4"]),
    ("scanner", []),
    ("scanner", ["+Ci", "1500", "+Ca", "5"]),
    ("scanner", ["+Cf", "3"]),
    ("scanner", ["+Cf", "12"]),  # the fit explodes: OD -> -inf, CC -> inf, as in C
]


@needs_dcmdspfn
@pytest.mark.parametrize(("name", "opts"), PARITY_CASES, ids=lambda v: " ".join(v) or "default")
def test_sample_files_match_dcmdspfn(tmp_path: Path, name: str, opts: list[str]) -> None:
    assert_same_as_dcmtk(tmp_path, sample(name), SAMPLES[name], opts)


SYNTHETIC_FILES = {
    # 10-bit monitor, DDLs listed out of order, spline overshoots below zero.
    "monitor-overshoot": (
        DeviceKind.MONITOR,
        "max 1023\namb 0.5\n1023 400\n0 0.8\n60 150\n40 1.0\n80 160\n",
        [],
    ),
    # Non-monotonic interpolated camera curve: the inverse search cannot rewind.
    "camera-overshoot": (DeviceKind.CAMERA, "max 255\n0 5\n10 6\n20 300\n30 310\n255 320\n", []),
    # Sparse printer, polynomial order from the command line, flat segment.
    "printer-flat": (
        DeviceKind.PRINTER,
        "max 511\nlum 1800\namb 4\n0 3.2\n50 2.5\n100 2.5\n300 0.9\n400 0.4\n511 0.18\n",
        ["+Cf", "3", "+Dx", "2.7"],
    ),
    # A full table without interpolation and ambient from the command line.
    "monitor-full": (
        DeviceKind.MONITOR,
        "max 3\n0 0.5\n1 10\n2 50\n3 200\n",
        ["+Ca", "1"],
    ),
}


@needs_dcmdspfn
@pytest.mark.parametrize("name", sorted(SYNTHETIC_FILES))
def test_synthetic_files_match_dcmdspfn(tmp_path: Path, name: str) -> None:
    kind, text, opts = SYNTHETIC_FILES[name]
    path = tmp_path / f"{name}.lut"
    path.write_text(text)
    assert_same_as_dcmtk(tmp_path, path, kind, opts)


@needs_dcmdspfn
def test_written_file_gives_dcmtk_the_same_curve(tmp_path: Path) -> None:
    original = sample("printer")
    copy = tmp_path / "copy.lut"
    write_characteristic_file(load("printer"), copy)
    ref = dcmdspfn(original, DeviceKind.PRINTER, tmp_path, [])
    again = dcmdspfn(copy, DeviceKind.PRINTER, tmp_path, [])
    assert again == ref


@needs_dcmdspfn
def test_philips_presentation_lut_is_rejected_like_dcmtk(tmp_path: Path) -> None:
    # philips.lut is a presentation LUT ("count 256"), not a characteristic file:
    # dcmdspfn refuses it ("missing keyword 'max'"), and so do we, with the line.
    path = sample("philips")
    with pytest.raises(subprocess.CalledProcessError):
        dcmdspfn(path, DeviceKind.MONITOR, tmp_path, [])
    with pytest.raises(ValueError, match=r"philips\.lut:6: expected 'max"):
        read_characteristic_file(path, DeviceKind.MONITOR)


# --------------------------------------------------------------------------------------
# File format
# --------------------------------------------------------------------------------------


def test_read_printer_sample() -> None:
    curve = load("printer")
    assert curve.kind is DeviceKind.PRINTER
    assert curve.max_ddl == 255
    assert (curve.illumination, curve.ambient, curve.order) == (2000.0, 10.0, 5)
    assert curve.ddl.tolist()[:3] == [0, 16, 33]
    assert curve.values.tolist()[:3] == [3.0, 2.4, 2.09]
    assert curve.ddl.size == 16 and curve.is_sparse
    np.testing.assert_allclose(curve.luminance()[0], 10 + 2000 * 10**-3.0)


def test_read_monitor_sample() -> None:
    curve = load("monitor")
    assert (curve.max_ddl, curve.ambient, curve.illumination, curve.order) == (255, 1.0, None, None)
    assert curve.ddl.tolist() == list(range(256)) and not curve.is_sparse
    assert curve.values[0] == 0.18626
    np.testing.assert_array_equal(interpolate_curve(curve), curve.values)
    np.testing.assert_array_equal(curve.luminance(ambient=0.0), curve.values)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_samples(tmp_path: Path, name: str) -> None:
    curve = load(name)
    path = tmp_path / f"{name}.lut"
    write_characteristic_file(curve, path)
    assert read_characteristic_file(path, curve.kind) == curve


def test_round_trip_is_exact_for_awkward_floats(tmp_path: Path) -> None:
    curve = CharacteristicCurve(
        kind=DeviceKind.SCANNER,
        max_ddl=65535,
        ddl=np.array([0, 7, 65535]),
        values=np.array([3.3000000000000003, 1 / 3, 1e-7]),
        ambient=0.1 + 0.2,
        illumination=1234.5678901234567,
        order=0,
    )
    path = tmp_path / "scanner.lut"
    write_characteristic_file(curve, path)
    back = read_characteristic_file(path, "scanner")
    assert back == curve and hash(back) == hash(curve)
    assert back.values.tobytes() == curve.values.tobytes()


def test_reader_accepts_comments_blank_lines_and_any_order(tmp_path: Path) -> None:
    path = tmp_path / "m.lut"
    path.write_text("# head\n\n  max\t10  # trailing\nord 2\n10 5.0\n0 0.5 # c\namb 0.25\n5 2\n")
    curve = read_characteristic_file(path, DeviceKind.MONITOR)
    assert curve.ddl.tolist() == [0, 5, 10]
    assert curve.values.tolist() == [0.5, 2.0, 5.0]
    assert (curve.ambient, curve.order) == (0.25, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 1\n", r":1: expected 'max"),
        ("max 0\n", r":1: 'max' .* must be in 1\.\.65535"),
        ("max 2.5\n", r":1: 'max' needs an integer"),
        ("max 10\nmax 11\n", r":2: duplicate 'max' \(first on line 1\)"),
        ("max 10\namb -1\n", r":2: 'amb' .* >= 0"),
        ("max 10\nlum 0\n", r":2: 'lum' .* > 0"),
        ("max 10\nord 100\n", r":2: 'ord' .* 0\.\.99"),
        ("max 10\nord\n", r":2: 'ord' takes exactly one value"),
        ("max 10\ncount 256\n", r":2: unknown keyword 'count'"),
        ("max 10\n0 1\n11 2\n", r":3: DDL 11 outside the range 0\.\.10"),
        ("max 10\n0 1\n\n0 2\n", r":4: duplicate DDL 0 \(first on line 2\)"),
        ("max 10\n0 1 2\n", r":2: expected 'DDL value'"),
        ("max 10\n1.5 1\n", r":2: DDL must be an integer"),
        ("max 10\n0 abc\n", r":2: value must be a number"),
        ("max 10\n0 nan\n", r":2: value must be a finite number >= 0"),
        ("max 10\n0 1\n5 3\n9 2\n", r":4: monitor values must ascend"),
        ("max 10\n0 1\n", r": needs at least 2 'DDL value' entries, found 1"),
        ("# only a comment\n", r": no 'max"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.lut"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.lut" + message):
        read_characteristic_file(path, DeviceKind.MONITOR)


def test_reader_checks_od_direction_for_hardcopy(tmp_path: Path) -> None:
    path = tmp_path / "p.lut"
    path.write_text("max 255\nlum 2000\n0 0.2\n255 3.0\n")
    with pytest.raises(ValueError, match=r"p\.lut:4: printer values must descend"):
        read_characteristic_file(path, DeviceKind.PRINTER)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

GOOD = {
    "kind": DeviceKind.MONITOR,
    "max_ddl": 255,
    "ddl": [0, 128, 255],
    "values": [0.5, 50.0, 300.0],
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "plotter"}, "unknown device kind"),
        ({"max_ddl": 0}, r"max_ddl must be in 1\.\.65535"),
        ({"max_ddl": 70000}, r"max_ddl must be in 1\.\.65535"),
        ({"max_ddl": 255.0}, "max_ddl must be an integer"),
        ({"ddl": [0, 255], "values": [1.0]}, "2 entries but values has 1"),
        ({"ddl": [0], "values": [1.0]}, "at least 2 points"),
        ({"ddl": [[0, 1, 2]]}, "one-dimensional"),
        ({"ddl": [0, 128.5, 255]}, "DDLs must be integers"),
        ({"ddl": [0, 128, 256]}, r"DDL 256 outside the range 0\.\.255"),
        ({"ddl": [-1, 128, 255]}, r"DDL -1 outside"),
        ({"ddl": [0, 200, 128]}, "strictly increasing: 200 is followed by 128"),
        ({"ddl": [0, 128, 128]}, "strictly increasing"),
        ({"values": [0.5, math.nan, 300.0]}, "finite"),
        ({"values": [-0.5, 50.0, 300.0]}, "luminance must be >= 0"),
        ({"values": [0.5, 500.0, 300.0]}, "monotonically ascending"),
        ({"kind": DeviceKind.PRINTER}, "monotonically descending"),
        ({"ambient": -1.0}, "ambient light must be >= 0"),
        ({"illumination": 0.0}, "illumination must be > 0"),
        ({"order": -1}, r"order must be in 0\.\.99"),
        ({"order": 2.0}, "order must be an integer"),
    ],
)
def test_curve_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CharacteristicCurve(**{**GOOD, **changes})  # type: ignore[arg-type]


def test_curve_is_immutable_and_hashable() -> None:
    source = np.array([0.5, 50.0, 300.0])
    curve = CharacteristicCurve(**{**GOOD, "values": source, "kind": "monitor"})  # type: ignore[arg-type]
    source[0] = 99.0
    assert curve.values[0] == 0.5 and curve.kind is DeviceKind.MONITOR
    with pytest.raises(ValueError):
        curve.values[0] = 1.0
    assert {curve: 1}[CharacteristicCurve(**GOOD)] == 1  # type: ignore[arg-type]


def test_device_kind_properties() -> None:
    assert [k.is_hardcopy for k in DeviceKind] == [False, False, True, True]
    assert [k.is_input for k in DeviceKind] == [False, True, False, True]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("monitor", {"max_density": 2.5}, "only apply to printers"),
        ("scanner", {"min_density": 0.2}, "only apply to printers"),
        ("printer", {"min_density": 2.0, "max_density": 1.0}, "must be < max_density"),
        ("printer", {"lum_range": (5, 500), "max_density": 2.0}, "not both"),
        ("camera", {"lum_range": (20, 500)}, "forward"),
        ("monitor", {"lum_range": (500, 20)}, "must be < maximum"),
        ("monitor", {"ambient": 0.0, "lum_range": (0, None)}, "must be > 0"),
        ("monitor", {"n_entries": 1}, "at least 2 entries"),
        ("monitor", {"order": 100}, r"0\.\.99"),
    ],
)
def test_calibration_option_errors(name: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibrate(load(name), **kwargs)  # type: ignore[arg-type]


def test_hardcopy_needs_illumination_and_softcopy_needs_light() -> None:
    printer = CharacteristicCurve(DeviceKind.PRINTER, 255, [0, 255], [3.0, 0.2])
    with pytest.raises(ValueError, match="illumination"):
        calibration_lut(printer)
    assert calibration_lut(printer, illumination=2000.0).size == 256
    black = CharacteristicCurve(DeviceKind.MONITOR, 255, [0, 255], [0.0, 200.0])
    with pytest.raises(ValueError, match="needs ambient light"):
        calibration_lut(black)
    assert calibration_lut(black, ambient=0.2)[0] == 0


# --------------------------------------------------------------------------------------
# Calibration API
# --------------------------------------------------------------------------------------


def test_lut_shapes_and_entry_points_agree() -> None:
    printer = load("printer")
    lut = calibration_lut(printer)
    assert lut.dtype == np.uint16 and lut.shape == (256,)
    np.testing.assert_array_equal(lut, pvalue_to_ddl(printer, 256))
    np.testing.assert_array_equal(lut, calibrate(printer).lut)
    assert calibration_lut(printer, input_bits=12).shape == (4096,)
    assert calibration_lut(printer, n_entries=1000).shape == (1000,)
    assert np.all(np.diff(lut.astype(int)) >= 0)  # monotone device, monotone LUT
    # The LUT is a DDL lookup into the device's luminance, ambient included.
    np.testing.assert_array_equal(calibrate(printer).device, device_luminance(printer))


def test_camera_lut_is_inverse_by_default() -> None:
    camera = load("camera")
    cal = calibrate(camera, 256)
    assert cal.inverse and cal.target.shape == (4096,) and cal.lut.shape == (256,)
    assert cal.lut.max() <= 4095
    forward = calibrate(camera, 256, inverse=False)
    assert not forward.inverse and forward.target.shape == (256,)
    np.testing.assert_array_equal(forward.lut, pvalue_to_ddl(camera, 256))


def test_gsdf_target_follows_the_standard() -> None:
    printer = load("printer")
    cal = calibrate(printer, 4096)
    target = gsdf_target_luminance(printer, 4096)
    np.testing.assert_array_equal(target, cal.target)
    jnd_min, jnd_max = cal.jnd_range
    # DCMTK's spline through the integer JNDs is within 1e-6 of eq. 7.1 itself.
    expected = gsdf.luminance(np.linspace(jnd_min, jnd_max, 4096))
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    # The range ends at the device's Lmin/Lmax (ambient included) to eq. 7.2's accuracy.
    lum = printer.luminance()
    assert gsdf.jnd_index(lum.min()) == pytest.approx(jnd_min, abs=1e-9)
    assert gsdf.jnd_index(lum.max()) == pytest.approx(jnd_max, abs=1e-9)


def test_dcmtk_order_formulas_agree_with_gsdf_module() -> None:
    jnd, values, _ = device._gsdf_table()
    np.testing.assert_allclose(values, gsdf.luminance(jnd), rtol=1e-12)
    for lum in (0.05, 1.0, 37.5, 4000.0):
        assert device._jnd_index(lum) == pytest.approx(float(gsdf.jnd_index(lum)), abs=1e-9)
    assert device._jnd_index(0.0) == -1.0


def test_lum_range_equals_density_restriction() -> None:
    printer = load("printer")
    dmin, dmax = 0.2, 2.8
    lmin = 10.0 + 2000.0 * 10**-dmax
    lmax = 10.0 + 2000.0 * 10**-dmin
    by_density = calibrate(printer, 4096, min_density=dmin, max_density=dmax)
    by_lum = calibrate(printer, 4096, lum_range=(lmin, lmax))
    np.testing.assert_array_equal(by_lum.lut, by_density.lut)
    lo, hi = by_density.ddl_range
    assert 0 < lo < hi < 255
    # A restricted range on a monitor (extension) keeps the LUT inside it, give or
    # take DCMTK's one-step nearest-neighbour choice at the bottom.
    monitor = calibrate(load("monitor"), 256, lum_range=(5.0, None))
    assert monitor.lut.min() >= monitor.ddl_range[0] - 1
    assert monitor.device[monitor.ddl_range[0]] >= 5.0


def test_order_override_and_full_tables() -> None:
    printer = load("printer")
    spline = interpolate_curve(printer, order=0)
    poly = interpolate_curve(printer)
    assert not np.array_equal(spline, poly)
    # The spline goes through the measured points, the least-squares fit does not.
    np.testing.assert_allclose(spline[printer.ddl], printer.values, rtol=1e-12)
    assert np.max(np.abs(poly[printer.ddl] - printer.values)) > 1e-3
    np.testing.assert_allclose(poly[printer.ddl], printer.values, atol=0.1)
    # A table with every DDL is used as is, whatever the order (as DCMTK).
    monitor = load("monitor")
    np.testing.assert_array_equal(interpolate_curve(monitor, order=3), monitor.values)


def reference_scan(values: list[float], targets: list[float], lo: int, hi: int) -> list[int]:
    """DiGSDFLUT's search loop, transcribed literally."""
    j, out = lo, []
    for t in targets:
        while j < hi and values[j] < t:
            j += 1
        if j > 0 and abs(values[j - 1] - t) < abs(values[j] - t):
            j -= 1
        out.append(j)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_scan_equals_dcmtk_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_values = int(rng.integers(2, 300))
    values = np.cumsum(rng.normal(1.0, 2.0 if seed % 2 else 0.3, n_values))
    if seed % 5 == 0:
        values = np.round(values)  # ties
    targets = np.sort(rng.uniform(values.min() - 5, values.max() + 5, int(rng.integers(2, 400))))
    if seed % 3 == 0:
        targets = targets + rng.normal(0, 3, targets.size)  # non-monotone targets
    lo = int(rng.integers(0, n_values))
    hi = int(rng.integers(lo, n_values))
    got = device._nearest_scan(values, targets, lo, hi)
    assert got.tolist() == reference_scan(values.tolist(), targets.tolist(), lo, hi)
