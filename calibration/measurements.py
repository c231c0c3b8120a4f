"""Reading photometer/densitometer measurements: CSV, JSON and DCMTK characteristic files.

A measurement is what a technician typed in after showing test patterns (display) or
printing a step wedge (printer): one value per driving level (DDL), plus the light
the value is seen in.  Whatever the file format, it becomes one :class:`Measurement`,
which converts losslessly to a :class:`lut.device.CharacteristicCurve`, so the
analysis, the calibration LUT and the printer profile all start from the same data.

Every reader is strict and names the file and line of the first problem: a
calibration silently computed from a mistyped reading is worse than none.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lut import device as lut_device
from lut.density import DEFAULT_AMBIENT, DEFAULT_ILLUMINATION

#: A conformance analysis needs at least two intervals, i.e. three levels.
MIN_POINTS = 3

KINDS = ("display", "printer")


class MeasurementError(ValueError):
    """The measurement file is unusable; the message names file, line and problem."""


@dataclass(frozen=True, eq=False)
class Measurement:
    """Measured response of one device, sorted by driving level.

    ``values`` are luminances in cd/m² *without* ambient light for displays, optical
    densities for printers.  ``ambient`` is Lamb (display) or the Reflected Ambient
    Light La (printer), ``illumination`` the light box / viewing luminance L0 of a
    printer (unused for displays).  ``order`` is a DCMTK ``ord`` setting, kept so
    the calibration LUT interpolates exactly as DCMTK would for the same file.
    """

    kind: str
    ddl: NDArray[np.int64]
    values: NDArray[np.float64]
    max_ddl: int
    ambient: float = 0.0
    illumination: float | None = None
    order: int | None = None
    source: str = ""

    @property
    def is_printer(self) -> bool:
        return self.kind == "printer"

    @property
    def device_kind(self) -> lut_device.DeviceKind:
        return lut_device.DeviceKind.PRINTER if self.is_printer else lut_device.DeviceKind.MONITOR

    def luminance(self) -> NDArray[np.float64]:
        """Luminance seen at every measured level, ambient light included (cd/m²)."""
        if self.is_printer:
            assert self.illumination is not None
            return self.ambient + self.illumination * np.power(10.0, -self.values)
        return self.values + self.ambient

    def to_curve(self) -> lut_device.CharacteristicCurve:
        """The DCMTK characteristic curve of this measurement (what dcmdspfn would read)."""
        return lut_device.CharacteristicCurve(
            kind=self.device_kind, max_ddl=self.max_ddl, ddl=self.ddl, values=self.values,
            ambient=self.ambient, illumination=self.illumination if self.is_printer else None,
            order=self.order,
        )


def default_max_ddl(highest: int) -> int:
    """Smallest ``2**n - 1`` (n >= 8) holding ``highest``: 255 for TG18 levels 0..255."""
    bits = max(8, int(highest).bit_length())
    return (1 << bits) - 1


def parse_number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise MeasurementError(f"{where}: {what} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise MeasurementError(f"{where}: {what} must be finite, got {text!r}")
    return value


def parse_ddl(text: Any, where: str) -> int:
    value = parse_number(text, "ddl", where)
    if value != round(value) or value < 0:
        raise MeasurementError(f"{where}: ddl must be a whole number >= 0, got {text!r}")
    return int(value)


def _check_rows(kind: str, rows: list[tuple[int, float, str]], path: str) -> None:
    """Order and monotony, reported at the row the user has to fix."""
    if len(rows) < MIN_POINTS:
        raise MeasurementError(
            f"{path}: too few points: {len(rows)} measured level(s), need at least {MIN_POINTS}")
    for (d0, v0, _), (d1, v1, where) in itertools.pairwise(rows):
        if d1 <= d0:
            raise MeasurementError(
                f"{where}: driving levels must increase: ddl {d1} follows ddl {d0}")
        if kind == "printer" and v1 > v0:
            raise MeasurementError(
                f"{where}: density must not increase with the driving level "
                f"(non-monotonic): ddl {d0} -> {v0:g} OD, ddl {d1} -> {v1:g} OD")
        if kind == "display" and v1 < v0:
            raise MeasurementError(
                f"{where}: luminance must not decrease with the driving level "
                f"(non-monotonic): ddl {d0} -> {v0:g}, ddl {d1} -> {v1:g} cd/m²")
        if v1 < 0:
            raise MeasurementError(f"{where}: value must be >= 0, got {v1:g}")
    if rows[0][1] < 0:
        raise MeasurementError(f"{rows[0][2]}: value must be >= 0, got {rows[0][1]:g}")


def build_measurement(kind: str, rows: list[tuple[int, float, str]], path: str, *,
                      max_ddl: int | None, ambient: float | None, illumination: float | None,
                      includes_ambient: bool, order: int | None = None) -> Measurement:
    """Common tail of all readers: validate, remove ambient if included, fill defaults."""
    if kind not in KINDS:
        raise MeasurementError(f"{path}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if ambient is not None and (not math.isfinite(ambient) or ambient < 0):
        raise MeasurementError(f"{path}: ambient must be a number >= 0, got {ambient!r}")
    if illumination is not None and (not math.isfinite(illumination) or illumination <= 0):
        raise MeasurementError(f"{path}: illumination must be > 0, got {illumination!r}")
    if kind == "display" and includes_ambient:
        # Ambient light is subtracted so the curve is the device's own (DCMTK's
        # convention); the analysis adds it back.
        amb = ambient or 0.0
        rows = [(d, v - amb, w) for d, v, w in rows]
        low = min(rows, key=lambda r: r[1])
        if low[1] < 0:
            raise MeasurementError(
                f"{low[2]}: luminance {low[1] + amb:g} is below the ambient {amb:g} cd/m² "
                "it is said to include (--includes-ambient)")
    _check_rows(kind, rows, path)
    top = rows[-1][0]
    max_ddl = default_max_ddl(top) if max_ddl is None else max_ddl
    if not 1 <= max_ddl <= lut_device.MAX_DDL_LIMIT or top > max_ddl:
        raise MeasurementError(
            f"{rows[-1][2]}: ddl {top} exceeds the maximum driving level {max_ddl}")
    if kind == "printer":
        ambient = DEFAULT_AMBIENT if ambient is None else ambient
        illumination = DEFAULT_ILLUMINATION if illumination is None else illumination
    return Measurement(
        kind=kind, ddl=np.array([r[0] for r in rows], dtype=np.int64),
        values=np.array([r[1] for r in rows], dtype=np.float64), max_ddl=max_ddl,
        ambient=0.0 if ambient is None else float(ambient),
        illumination=illumination if kind == "printer" else None, order=order, source=path,
    )


def read_csv(path: str | os.PathLike[str], kind: str | None = None, *,
             ambient: float | None = None, illumination: float | None = None,
             includes_ambient: bool = False, max_ddl: int | None = None) -> Measurement:
    """CSV with a header naming ``ddl`` and ``luminance`` (display) or ``density`` (printer).

    Other columns are ignored, ``#`` lines and blank lines skipped.  The value column
    decides the kind when ``kind`` is None.  Luminance is in cd/m² without ambient
    light unless ``includes_ambient``.
    """
    name = os.fspath(path)
    text = Path(path).read_text(encoding="utf-8-sig")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise MeasurementError(f"{name}: empty file (expected a header row 'ddl,luminance')")
    header_no, header_line = lines[0]
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(header_line)))]
    if "ddl" not in header:
        raise MeasurementError(
            f"{name}:{header_no}: header must name a 'ddl' column, got {header_line.strip()!r}")
    value_col = {"display": "luminance", "printer": "density"}
    if kind is None:
        kind = "printer" if "density" in header else "display"
    if kind not in KINDS:
        raise MeasurementError(f"{name}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    column = value_col[kind]
    if column not in header:
        raise MeasurementError(
            f"{name}:{header_no}: header must name a '{column}' column for a {kind}, "
            f"got {header_line.strip()!r}")
    i_ddl, i_val = header.index("ddl"), header.index(column)
    rows: list[tuple[int, float, str]] = []
    for lineno, line in lines[1:]:
        where = f"{name}:{lineno}"
        cells = next(csv.reader(io.StringIO(line)))
        if len(cells) <= max(i_ddl, i_val):
            raise MeasurementError(f"{where}: expected {len(header)} columns, got {len(cells)}")
        rows.append((parse_ddl(cells[i_ddl].strip(), where),
                     parse_number(cells[i_val].strip(), column, where), where))
    return build_measurement(kind, rows, name, max_ddl=max_ddl, ambient=ambient,
                  illumination=illumination, includes_ambient=includes_ambient)


def read_json(path: str | os.PathLike[str], kind: str | None = None, *,
              ambient: float | None = None, illumination: float | None = None,
              includes_ambient: bool | None = None, max_ddl: int | None = None) -> Measurement:
    """The JSON schema of docs/calibration.md; arguments override the file's values.

    ``{"kind": "display", "max_ddl": 255, "ambient": 0.5, "includes_ambient": false,
    "points": [[ddl, value], ...]}``; printers add ``"illumination"``.  Errors in
    points name the line of the file the point is written on.
    """
    name = os.fspath(path)
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MeasurementError(f"{name}:{err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise MeasurementError(f"{name}: expected a JSON object with 'points'")
    known = {"kind", "max_ddl", "ambient", "illumination", "includes_ambient", "points",
             "comment", "order"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise MeasurementError(f"{name}: unknown key(s) {', '.join(unknown)}")
    kind = kind or data.get("kind", "display")

    def opt(key: str, given: Any) -> Any:
        if given is not None:
            return given
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise MeasurementError(f"{name}: '{key}' must be a number, got {value!r}")
        return value

    points = data.get("points")
    if not isinstance(points, list):
        raise MeasurementError(f"{name}: 'points' must be a list of [ddl, value] pairs")
    lines = point_lines(text, len(points))
    rows: list[tuple[int, float, str]] = []
    for i, point in enumerate(points):
        where = f"{name}:{lines[i]}: points[{i}]"
        if not isinstance(point, list) or len(point) != 2:
            raise MeasurementError(f"{where}: expected [ddl, value], got {point!r}")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in point):
            bad = next(v for v in point if isinstance(v, bool) or not isinstance(v, int | float))
            raise MeasurementError(f"{where}: value is not a number: {bad!r}")
        rows.append((parse_ddl(point[0], where), parse_number(point[1], "value", where), where))
    top = opt("max_ddl", max_ddl)
    order = data.get("order")
    return build_measurement(kind, rows, name, max_ddl=None if top is None else int(top),
                  ambient=opt("ambient", ambient), illumination=opt("illumination", illumination),
                  includes_ambient=bool(data.get("includes_ambient", False)
                                        if includes_ambient is None else includes_ambient),
                  order=None if order is None else int(order))


def point_lines(text: str, count: int) -> list[int]:
    """Line number of each ``[ddl, value]`` pair of ``points``, for error messages.

    json has no positions, so the text after ``"points"`` is scanned for the opening
    brackets of the inner lists (valid JSON here: strings cannot hold ``[``
    unexpectedly in a list of numbers, and a non-list point just keeps the last line).
    """
    start = max(text.find('"points"'), 0)
    lines: list[int] = []
    depth = 0
    in_scalar = False
    line = text.count("\n", 0, start) + 1
    for ch in text[start:]:
        if ch == "\n":
            line += 1
        if ch == "[":
            depth += 1
            if depth == 2:
                lines.append(line)
        elif ch == "]":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and ch not in " \t\r\n,":
            if not in_scalar:
                lines.append(line)  # a scalar where a pair belongs
            in_scalar = True
            continue
        in_scalar = False
    while len(lines) < count:
        lines.append(line)
    return lines


def read_dcmtk(path: str | os.PathLike[str], kind: str | None = None, *,
               ambient: float | None = None, illumination: float | None = None,
               includes_ambient: bool = False, max_ddl: int | None = None) -> Measurement:
    """A DCMTK characteristic file (``/usr/share/dcmtk/monitor.lut``, ``printer.lut``).

    The kind comes from the header comment (``# Printer ...``) as printscp's output
    profiles decide it, unless given.  ``amb``/``lum``/``ord`` are kept; arguments
    override ``amb`` and ``lum`` as dcmdspfn's ``+Ca``/``+Ci`` do.
    """
    name = os.fspath(path)
    if kind is None:
        with open(path, encoding="latin-1") as f:
            head = f.read(200).lower()
        kind = "printer" if "printer" in head or "scanner" in head else "display"
    dk = lut_device.DeviceKind.PRINTER if kind == "printer" else lut_device.DeviceKind.MONITOR
    try:
        curve = lut_device.read_characteristic_file(path, dk)
    except ValueError as err:
        raise MeasurementError(str(err)) from None
    amb = ambient if ambient is not None else curve.ambient
    rows = [(int(d), float(v), f"{name}: ddl {d}")
            for d, v in zip(curve.ddl.tolist(), curve.values.tolist(), strict=True)]
    if len(rows) < MIN_POINTS:
        raise MeasurementError(
            f"{name}: too few points: {len(rows)} measured level(s), need at least {MIN_POINTS}")
    return build_measurement(kind, rows, name, max_ddl=max_ddl or curve.max_ddl, ambient=amb,
                  illumination=illumination if illumination is not None else curve.illumination,
                  includes_ambient=includes_ambient, order=curve.order)


def read_measurements(path: str | os.PathLike[str], kind: str | None = None, **options: Any
                      ) -> Measurement:
    """Read any supported file, chosen by extension: ``.csv``, ``.json``, else DCMTK.

    Options: ``ambient``, ``illumination``, ``includes_ambient``, ``max_ddl``.
    A missing or unreadable file is a :class:`MeasurementError` too.
    """
    suffix = Path(path).suffix.lower()
    reader = {".csv": read_csv, ".json": read_json}.get(suffix, read_dcmtk)
    try:
        return reader(path, kind, **options)
    except OSError as err:
        raise MeasurementError(f"{os.fspath(path)}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise MeasurementError(f"{os.fspath(path)}: not a text file ({err.reason})") from None


def with_light(measurement: Measurement, *, ambient: float | None = None,
               illumination: float | None = None) -> Measurement:
    """A copy with other viewing light (e.g. the light box the film will be read on)."""
    changes: dict[str, Any] = {}
    if ambient is not None:
        changes["ambient"] = float(ambient)
    if illumination is not None and measurement.is_printer:
        changes["illumination"] = float(illumination)
    return replace(measurement, **changes)
