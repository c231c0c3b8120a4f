"""Measurement readers: CSV, JSON, DCMTK files, and the messages bad files get."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.measurements import MeasurementError, read_measurements
from lut.device import DeviceKind, interpolate_curve, read_characteristic_file

MONITOR = Path("/usr/share/dcmtk/monitor.lut")
PRINTER = Path("/usr/share/dcmtk/printer.lut")
needs_dcmtk_files = pytest.mark.skipif(
    not (MONITOR.exists() and PRINTER.exists()),
    reason="DCMTK sample files not found (install Debian package 'dcmtk')")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_display(tmp_path):
    path = write(tmp_path, "m.csv", "# comment\nDDL, Luminance ,note\n0,0.5,dark\n"
                 "128,40,\n255,300,bright\n")
    m = read_measurements(path, ambient=0.25)
    assert m.kind == "display" and m.max_ddl == 255
    assert m.ddl.tolist() == [0, 128, 255]
    np.testing.assert_array_equal(m.luminance(), [0.75, 40.25, 300.25])


def test_csv_includes_ambient_is_subtracted(tmp_path):
    path = write(tmp_path, "m.csv", "ddl,luminance\n0,0.75\n128,40.25\n255,300.25\n")
    m = read_measurements(path, ambient=0.25, includes_ambient=True)
    np.testing.assert_allclose(m.values, [0.5, 40.0, 300.0])
    np.testing.assert_allclose(m.luminance(), [0.75, 40.25, 300.25])


def test_csv_printer_defaults_light_and_ten_bit_range(tmp_path):
    path = write(tmp_path, "w.csv", "ddl,density\n0,3.0\n500,1.0\n1023,0.2\n")
    m = read_measurements(path)
    assert m.kind == "printer" and m.max_ddl == 1023
    assert (m.illumination, m.ambient) == (2000.0, 10.0)
    np.testing.assert_allclose(m.luminance(), 10 + 2000 * 10 ** -np.array([3.0, 1.0, 0.2]))


@pytest.mark.parametrize(("text", "line", "message"), [
    ("ddl,luminance\n0,0.5\n128,abc\n255,300\n", 3, "not a number"),
    ("ddl,luminance\n0,0.5\n128,40\n100,300\n", 4, "must increase"),
    ("ddl,luminance\n0,0.5\n128,40\n255,30\n", 4, "non-monotonic"),
    ("ddl,luminance\n0,0.5\n255,300\n", None, "too few points"),
    ("level,luminance\n0,0.5\n", 1, "'ddl' column"),
    ("ddl,luminance\n0,0.5\n12.5,3\n255,300\n", 3, "whole number"),
])
def test_csv_errors_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(MeasurementError, match=message) as err:
        read_measurements(path)
    prefix = f"{path}:{line}:" if line else f"{path}:"
    assert str(err.value).startswith(prefix)


def test_printer_density_must_fall(tmp_path):
    path = write(tmp_path, "w.csv", "ddl,density\n0,3.0\n100,1.0\n200,1.5\n255,0.2\n")
    with pytest.raises(MeasurementError, match=rf"{path}:4: density must not increase"):
        read_measurements(path)


def test_json_display_and_override(tmp_path):
    data = {"kind": "display", "max_ddl": 1023, "ambient": 0.5,
            "points": [[0, 0.3], [512, 50], [1023, 400]]}
    path = write(tmp_path, "m.json", json.dumps(data, indent=1))
    m = read_measurements(path)
    assert (m.max_ddl, m.ambient) == (1023, 0.5)
    assert read_measurements(path, ambient=1.5).ambient == 1.5


def test_json_errors_name_the_line(tmp_path):
    text = ('{\n "kind": "display",\n "points": [\n  [0, 0.3],\n  [128, "x"],\n'
            '  [255, 300]\n ]\n}\n')
    path = write(tmp_path, "m.json", text)
    with pytest.raises(MeasurementError, match=rf"{path}:5: points\[1\]: value is not a number"):
        read_measurements(path)
    bad = write(tmp_path, "broken.json", '{\n "points": [\n  [0, 1],\n  [1 2]\n ]\n}\n')
    with pytest.raises(MeasurementError, match=rf"{bad}:4: invalid JSON"):
        read_measurements(bad)


@needs_dcmtk_files
def test_dcmtk_files_keep_their_settings():
    mon = read_measurements(MONITOR)
    assert mon.kind == "display" and mon.ddl.size == read_characteristic_file(
        MONITOR, DeviceKind.MONITOR).ddl.size
    prn = read_measurements(PRINTER)
    curve = read_characteristic_file(PRINTER, DeviceKind.PRINTER)
    assert prn.kind == "printer" and prn.order == curve.order == 5
    assert (prn.illumination, prn.ambient) == (curve.illumination, curve.ambient)
    # The round trip to a curve keeps 'ord': the LUT interpolates as DCMTK does.
    np.testing.assert_array_equal(interpolate_curve(prn.to_curve()), interpolate_curve(curve))


def test_dcmtk_errors_keep_the_line(tmp_path):
    path = write(tmp_path, "m.lut", "max 255\n0 0.5\n128 oops\n255 300\n")
    with pytest.raises(MeasurementError, match=rf"{path}:3:"):
        read_measurements(path, "display")


def test_missing_file(tmp_path):
    with pytest.raises(MeasurementError, match=r"nope\.csv"):
        read_measurements(tmp_path / "nope.csv")
