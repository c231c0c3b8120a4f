"""A display's QA test: its readings file, and the figures a criteria set judges.

A QA test of a display is more than the GSDF check of ``printscp calibrate analyze``:
the same luminance response, plus what the photometer and colorimeter read for
uniformity (TG18-UNL10/UNL80 at 5 or 9 positions), the white point, and the ambient
light, all in one readings file (JSON, schema in docs/qa.md and :func:`read_display_readings`).
:func:`evaluate_display` turns it into a :class:`~calibration.qa.results.TestResult`
with every figure against the limits of :mod:`calibration.qa.criteria`, and for a
constancy test the changes since the device's acceptance baseline.

The response is judged by :func:`calibration.analysis.analyse` itself, with the same
intervals as ``calibrate analyze``: a display cannot pass one and fail the other on
the contrast response.  The readers are strict and name the file and key (or line) of
the first problem, as :mod:`calibration.measurements` does.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration import analysis
from calibration.measurements import (
    Measurement,
    MeasurementError,
    build_measurement,
    parse_ddl,
    parse_number,
    point_lines,
    read_measurements,
)
from calibration.qa import criteria as qa_criteria
from calibration.qa.criteria import AMBIENT_WARN, D65_XY, CriteriaSet, Limit, Uniformity
from calibration.qa.results import FIGURE_KEYS, DeviceKind, Figure, TestKind, TestResult

#: TG18-UNL positions: the centre and four corners, or a 3 x 3 grid (row by row).
POSITIONS_5 = ("centre", "top-left", "top-right", "bottom-left", "bottom-right")
POSITIONS_9 = ("top-left", "top", "top-right", "left", "centre", "right",
               "bottom-left", "bottom", "bottom-right")
#: The uniformity patterns (TG18-UNL10: 10 % of the maximum level, UNL80: 80 %).
PATTERNS = ("unl10", "unl80")

_POSITION_ALIASES = {"center": "centre", "middle": "centre"}
_TOP_KEYS = ("comment", "response", "ambient", "uniformity", "white_point", "white_target")
_RESPONSE_KEYS = ("points", "max_ddl", "ambient", "includes_ambient", "comment", "order")


def xy_to_uv(x: float, y: float) -> tuple[float, float]:
    """CIE 1931 (x, y) to CIE 1976 UCS (u', v')."""
    d = -2.0 * x + 12.0 * y + 3.0
    return 4.0 * x / d, 9.0 * y / d


def uv_distance(a: tuple[float, float] | list[float], b: tuple[float, float] | list[float]
                ) -> float:
    """Δu'v': the Euclidean distance of two (u', v') points."""
    return math.hypot(a[0] - b[0], a[1] - b[1])


@dataclass(frozen=True)
class UniformityReading:
    """Luminances of one TG18-UNL pattern at 5 or 9 positions (cd/m², no ambient)."""

    pattern: str  #: ``unl10`` or ``unl80``
    positions: tuple[str, ...]
    luminance: tuple[float, ...]

    def of(self, position: str) -> float:
        return self.luminance[self.positions.index(position)]


@dataclass(frozen=True, eq=False)
class DisplayReadings:
    """Everything measured in one display test, validated.

    ``response`` is the luminance response (no ambient in its values; ``ambient`` is
    Lamb), as :mod:`calibration.measurements` reads it.  ``white_point`` and
    ``white_target`` are (u', v').  ``given`` keeps the file's own ambient and
    chromaticity notation, so the stored inputs say what was typed in.
    """

    response: Measurement
    lamb: float
    uniformity: tuple[UniformityReading, ...] = ()
    white_point: tuple[float, float] | None = None
    white_target: tuple[float, float] = field(default_factory=lambda: xy_to_uv(*D65_XY))
    given: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """The parsed readings as plain JSON types (a TestResult's ``inputs``)."""
        m = self.response
        return {
            "source": self.source,
            "response": {"source": m.source, "max_ddl": m.max_ddl,
                         "points": [[int(d), float(v)] for d, v in
                                    zip(m.ddl.tolist(), m.values.tolist(), strict=True)]},
            "lamb": self.lamb,
            "ambient": self.given.get("ambient", {"lamb": self.lamb}),
            "uniformity": {u.pattern: dict(zip(u.positions, u.luminance, strict=True))
                           for u in self.uniformity},
            "white_point": None if self.white_point is None else {
                "u": self.white_point[0], "v": self.white_point[1],
                **({"given": self.given["white_point"]} if "white_point" in self.given
                   else {})},
            "white_target": {"u": self.white_target[0], "v": self.white_target[1]},
        }


# ----------------------------------------------------------------------------- reading


def _finite(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeasurementError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        rule = "> 0" if positive else ">= 0"
        raise MeasurementError(f"{where}: must be a finite number {rule}, got {value!r}")
    return number


def _object(value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MeasurementError(f"{where}: expected an object, got {value!r}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise MeasurementError(f"{where}: unknown key(s) {', '.join(unknown)} "
                               f"(known: {', '.join(known)})")
    return value


def _ambient(data: Any, name: str) -> tuple[float | None, dict[str, Any]]:
    """Lamb from ``{"lamb": L}`` or ``{"illuminance_lux": E, "reflection_coefficient": Rd}``.

    TG18 (§4.2) relates them as Lamb = Rd · E, with Rd the display's diffuse
    reflection coefficient in cd/m² per lux (a matte surface of reflectance ρ has
    Rd = ρ/π).
    """
    if data is None:
        return None, {}
    where = f"{name}: ambient"
    data = _object(data, where, ("lamb", "illuminance_lux", "reflection_coefficient"))
    if "lamb" in data:
        if len(data) > 1:
            raise MeasurementError(f"{where}: give either 'lamb' or 'illuminance_lux' with "
                                   "'reflection_coefficient', not both")
        return _finite(data["lamb"], f"{where}.lamb"), dict(data)
    missing = [k for k in ("illuminance_lux", "reflection_coefficient") if k not in data]
    if missing:
        raise MeasurementError(f"{where}: missing {' and '.join(repr(k) for k in missing)} "
                               "(or give 'lamb' in cd/m²)")
    lux = _finite(data["illuminance_lux"], f"{where}.illuminance_lux")
    rd = _finite(data["reflection_coefficient"], f"{where}.reflection_coefficient",
                 positive=True)
    if rd >= 1.0 / math.pi:
        raise MeasurementError(
            f"{where}.reflection_coefficient: {rd:g} cd/m²/lx is above 1/π, the most a "
            "surface can reflect (a display's is of the order of 0.01 or less)")
    return rd * lux, dict(data)


def _inline_response(data: dict[str, Any], text: str, name: str,
                     lamb: float | None) -> Measurement:
    where = f"{name}: response"
    data = _object(data, where, _RESPONSE_KEYS)
    points = data.get("points")
    if not isinstance(points, list):
        raise MeasurementError(f"{where}.points: expected a list of [ddl, luminance] pairs")
    start = max(text.find('"response"'), 0)
    offset = text.count("\n", 0, start)
    lines = [n + offset for n in point_lines(text[start:], len(points))]
    rows: list[tuple[int, float, str]] = []
    for i, point in enumerate(points):
        at = f"{name}:{lines[i]}: response.points[{i}]"
        if not isinstance(point, list) or len(point) != 2:
            raise MeasurementError(f"{at}: expected [ddl, luminance], got {point!r}")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in point):
            raise MeasurementError(f"{at}: not a number: {point!r}")
        rows.append((parse_ddl(point[0], at), parse_number(point[1], "luminance", at), at))
    own = data.get("ambient")
    if own is not None:
        own = _finite(own, f"{where}.ambient")
        if lamb is not None and not math.isclose(own, lamb, rel_tol=1e-9, abs_tol=1e-12):
            raise MeasurementError(f"{where}.ambient {own:g} contradicts ambient "
                                   f"({lamb:g} cd/m²): give Lamb once")
    max_ddl = data.get("max_ddl")
    if max_ddl is not None:
        max_ddl = int(_finite(max_ddl, f"{where}.max_ddl", positive=True))
    includes = data.get("includes_ambient", False)
    if not isinstance(includes, bool):
        raise MeasurementError(f"{where}.includes_ambient: expected true or false")
    order = data.get("order")
    return build_measurement("display", rows, name, max_ddl=max_ddl,
                  ambient=lamb if lamb is not None else own, illumination=None,
                  includes_ambient=includes,
                  order=None if order is None else int(_finite(order, f"{where}.order")))


def _response(data: Any, text: str, path: Path, lamb: float | None) -> Measurement:
    name = os.fspath(path)
    if isinstance(data, str):
        target = path.parent / data
        if lamb is None and target.suffix.lower() == ".csv":
            raise MeasurementError(f"{name}: ambient: missing (a CSV response carries no "
                                   "Lamb: give 'ambient' in the readings file)")
        try:
            return read_measurements(target, "display", ambient=lamb)
        except MeasurementError as err:
            raise MeasurementError(f"{name}: response: {err}") from None
    if isinstance(data, dict):
        return _inline_response(data, text, name, lamb)
    raise MeasurementError(f"{name}: response: expected a file name (CSV, JSON or DCMTK, "
                           "relative to this file) or an object with 'points'")


def _uniformity(data: Any, name: str) -> tuple[UniformityReading, ...]:
    if data is None:
        return ()
    where = f"{name}: uniformity"
    if not isinstance(data, dict) or not data:
        raise MeasurementError(f"{where}: expected an object of patterns "
                               f"({', '.join(PATTERNS)}) to luminance per position")
    out = []
    for raw_pattern, values in data.items():
        pattern = str(raw_pattern).lower().removeprefix("tg18-").replace("-", "")
        at = f"{where}.{raw_pattern}"
        if pattern not in PATTERNS:
            raise MeasurementError(f"{at}: unknown pattern (known: {', '.join(PATTERNS)})")
        if not isinstance(values, dict):
            raise MeasurementError(f"{at}: expected an object of position to luminance")
        readings: dict[str, float] = {}
        for raw, value in values.items():
            pos = str(raw).lower().replace("_", "-").replace(" ", "-")
            pos = _POSITION_ALIASES.get(pos, pos)
            if pos not in POSITIONS_9:
                raise MeasurementError(f"{at}.{raw}: unknown position "
                                       f"(known: {', '.join(POSITIONS_9)})")
            if pos in readings:
                raise MeasurementError(f"{at}.{raw}: position given twice")
            readings[pos] = _finite(value, f"{at}.{raw}", positive=True)
        for layout in (POSITIONS_5, POSITIONS_9):
            if set(readings) == set(layout):
                out.append(UniformityReading(pattern, layout,
                                             tuple(readings[p] for p in layout)))
                break
        else:
            missing = sorted(set(POSITIONS_5 if len(readings) <= 5 else POSITIONS_9)
                             - set(readings))
            raise MeasurementError(f"{at}: needs the 5 positions ({', '.join(POSITIONS_5)}) "
                                   f"or all 9; missing {', '.join(missing)}")
    return tuple(out)


def _chromaticity(data: Any, where: str) -> tuple[float, float]:
    """``{"x", "y"}`` (CIE 1931) or ``{"u", "v"}`` (CIE 1976 u', v') to (u', v')."""
    if not isinstance(data, dict):
        raise MeasurementError(f"{where}: expected {{\"x\": .., \"y\": ..}} or "
                               "{\"u\": .., \"v\": ..} (u', v')")
    if set(data) == {"x", "y"}:
        x, y = (_finite(data[k], f"{where}.{k}", positive=True) for k in ("x", "y"))
        if x >= 1 or y >= 1 or x + y >= 1:
            raise MeasurementError(f"{where}: x {x:g}, y {y:g} is not a chromaticity "
                                   "(x, y and x + y are below 1)")
        return xy_to_uv(x, y)
    if set(data) == {"u", "v"}:
        u, v = (_finite(data[k], f"{where}.{k}", positive=True) for k in ("u", "v"))
        if u >= 1 or v >= 1:
            raise MeasurementError(f"{where}: u' {u:g}, v' {v:g} is not a chromaticity")
        return u, v
    raise MeasurementError(f"{where}: give x and y, or u and v (u', v'), got keys "
                           f"{', '.join(sorted(data)) or 'none'}")


def read_display_readings(path: str | os.PathLike[str]) -> DisplayReadings:
    """Read a display QA readings file (JSON; docs/qa.md has the schema).

    ``response`` (required) names a measurements file relative to this one, as
    ``calibrate analyze`` reads it (CSV, JSON, DCMTK), or holds ``points`` inline with
    the keys of the measurements JSON; ``ambient`` overrides a response file's Lamb as
    ``--ambient`` does.  Any problem is a :class:`MeasurementError` naming this file
    and the key, or the line of a response point.
    """
    file = Path(path)
    name = os.fspath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise MeasurementError(f"{name}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise MeasurementError(f"{name}: not a text file ({err.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MeasurementError(f"{name}:{err.lineno}: invalid JSON: {err.msg}") from None
    data = _object(data, name, _TOP_KEYS)
    if "response" not in data:
        raise MeasurementError(f"{name}: missing 'response' (the luminance response: a "
                               "measurements file or inline points)")
    lamb, ambient_given = _ambient(data.get("ambient"), name)
    response = _response(data["response"], text, file, lamb)
    given: dict[str, Any] = {}
    if ambient_given:
        given["ambient"] = ambient_given
    white = None
    if data.get("white_point") is not None:
        white = _chromaticity(data["white_point"], f"{name}: white_point")
        given["white_point"] = data["white_point"]
    target = xy_to_uv(*D65_XY)
    if data.get("white_target") is not None:
        target = _chromaticity(data["white_target"], f"{name}: white_target")
    return DisplayReadings(
        response=response, lamb=response.ambient,
        uniformity=_uniformity(data.get("uniformity"), name), white_point=white,
        white_target=target, given=given, source=name)


# -------------------------------------------------------------------------- evaluating


def uniformity_deviation(reading: UniformityReading, definition: Uniformity,
                         lamb: float = 0.0) -> tuple[float, list[float]]:
    """(The figure in %, the deviation of each position in %) of one pattern.

    Luminances are taken with the ambient light added (what the viewer sees, as
    pacsDisplay's uniLum does).  Per position, the deviation is from the median for
    TG270's LUDM and from the centre otherwise, so the map shows what the figure saw.
    """
    lum = [v + lamb for v in reading.luminance]
    if definition is Uniformity.MEDIAN_DEVIATION:
        ref = statistics.median(lum)
        per = [100.0 * (v - ref) / ref for v in lum]
        return max(abs(d) for d in per), per
    centre = reading.of("centre") + lamb
    per = [100.0 * (v - centre) / centre for v in lum]
    if definition is Uniformity.CENTRE_DEVIATION:
        return max(abs(d) for d in per), per
    hi, lo = max(lum), min(lum)
    return 200.0 * (hi - lo) / (hi + lo), per


def _figure(key: str, value: float | None, rows: Mapping[str, Limit],
            site: Mapping[str, tuple[float | None, float | None]], note: str = "") -> Figure:
    """A figure held to the site's limit if one is given, else to the set's row."""
    row = rows.get(key)
    if row is None:
        return Figure(key, value, note=note).held_to(dict(site))
    notes = [n for n in (note, "" if key in site else row.note) if n]
    return Figure(key, value, row.low, row.high, row.source, "; ".join(notes)).held_to(
        dict(site))


def evaluate_display(readings: DisplayReadings, criteria: CriteriaSet | str, kind: TestKind,
                     baseline: TestResult | None = None, *, diagnostic: bool = True,
                     site_limits: Mapping[str, tuple[float | None, float | None]] | None
                     = None) -> TestResult:
    """Judge one display test against ``criteria`` (and, for constancy, its baseline).

    ``baseline`` is the device's acceptance test; a constancy test without one reports
    the change figures with value None and a note.  ``site_limits`` maps figure keys to
    (low, high) a site sets for itself, replacing the set's limit (the figure's source
    then says "site limit"): no source at hand limits the change since the baseline or
    the white point's distance from its target, so only a site limit judges those.
    """
    criteria = CriteriaSet(criteria)
    kind = TestKind(kind)
    site = dict(site_limits or {})
    for key in site:
        if key not in FIGURE_KEYS:
            raise ValueError(f"site limit for an unknown figure {key!r}")
    rows = qa_criteria.limits(criteria, kind, diagnostic)
    m = readings.response

    # The luminance response, judged exactly as calibrate analyze judges it.
    limit_row = rows.get("response_max_error")
    limit = (limit_row.high / 100.0 if limit_row is not None and limit_row.high is not None
             else analysis.DIAGNOSTIC_LIMIT if diagnostic else analysis.OTHER_LIMIT)
    conformance = analysis.analyse(m, limit=limit)
    r = conformance.response
    lamb = readings.lamb
    lmin_display = conformance.lmin - lamb
    figures = [
        _figure("response_max_error", 100.0 * conformance.max_abs_error, rows, site,
                "largest |δm/δe - 1| over the {} intervals between levels {:g} and {:g}"
                .format(r.error.size, *conformance.worst()[:2])),
        _figure("lmax", conformance.lmax, rows, site, "L'max, ambient included"),
        _figure("lmin", conformance.lmin, rows, site, "L'min, ambient included"),
        _figure("luminance_ratio", conformance.luminance_ratio, rows, site),
        _figure("lamb", lamb, rows, site, _lamb_note(readings)),
        _figure("ambient_ratio", lamb / lmin_display if lmin_display > 0 else None, rows,
                site, "" if lmin_display > 0 else "Lmin is 0: no ratio"),
    ]
    notes: list[str] = []
    if lmin_display > 0 and lamb / lmin_display > AMBIENT_WARN:
        notes.append(f"ambient ratio Lamb/Lmin {lamb / lmin_display:.2f} is above 1/4: "
                     "ambient light starts to hide the darkest JNDs (TG18, ACR)")
    series: dict[str, Any] = {
        "levels": r.levels.tolist(), "luminance": r.luminance.tolist(),
        "target_luminance": r.target_luminance.tolist(),
        "error": (100.0 * r.error).tolist(),
        "white_target": list(readings.white_target),
    }

    if readings.uniformity:
        definition = qa_criteria.UNIFORMITY[criteria]
        by_pattern = {}
        for u in readings.uniformity:
            value, per = uniformity_deviation(u, definition, lamb)
            by_pattern[u.pattern] = {"value": value, "positions": list(u.positions),
                                     "luminance": list(u.luminance), "deviation": per}
        worst = max(by_pattern, key=lambda p: by_pattern[p]["value"])
        series["uniformity_pattern"] = worst
        series["uniformity_positions"] = by_pattern[worst]["positions"]
        series["uniformity"] = by_pattern[worst]["deviation"]
        series["uniformity_by_pattern"] = by_pattern
        figures.append(_figure("uniformity_max_dev", by_pattern[worst]["value"], rows, site,
                               f"{definition.value} of TG18-{worst.upper()}"
                               + (" (TG18's definition: this set's was not at hand)"
                                  if criteria is CriteriaSet.IEC62563_2 else "")))

    if readings.white_point is not None:
        series["white_point"] = list(readings.white_point)
        figures.append(_figure(
            "white_point_distance", uv_distance(readings.white_point, readings.white_target),
            rows, site, "Δu'v' from the target white point "
            "(u' {:.4f}, v' {:.4f})".format(*readings.white_target)))

    if kind is TestKind.CONSTANCY:
        figures += _changes(figures, series, baseline, rows, site)
    elif baseline is not None:
        notes.append("an acceptance test sets the baseline: the baseline given was not used")

    return TestResult(DeviceKind.DISPLAY, kind, criteria.value, tuple(figures), series,
                      readings.to_json() | {"diagnostic": diagnostic,
                                            "site_limits": {k: list(v) for k, v in
                                                            site.items()}},
                      tuple(notes)).judged()


def _lamb_note(readings: DisplayReadings) -> str:
    amb = readings.given.get("ambient", {})
    if "illuminance_lux" in amb:
        return (f"Lamb = Rd · E = {amb['reflection_coefficient']:g} cd/m²/lx · "
                f"{amb['illuminance_lux']:g} lx (TG18)")
    return "Lamb as given"


def _changes(figures: list[Figure], series: dict[str, Any], baseline: TestResult | None,
             rows: Mapping[str, Limit],
             site: Mapping[str, tuple[float | None, float | None]]) -> list[Figure]:
    """Changes since the baseline: L'max and L'min in %, response error in percentage
    points, white point in Δu'v'."""
    now = {f.key: f.value for f in figures}
    if baseline is None:
        why = "no acceptance baseline to compare with"
        return [_figure(k, None, rows, site, why) for k in
                ("lmax_change", "lmin_change", "response_change", "white_point_drift")]
    if baseline.device_kind is not DeviceKind.DISPLAY:
        raise ValueError(f"baseline is a {baseline.device_kind} test, not a display test")
    out = []
    for key, fig in (("lmax_change", "lmax"), ("lmin_change", "lmin")):
        before, after = baseline.value(fig), now.get(fig)
        if before is None or after is None or before <= 0:
            out.append(_figure(key, None, rows, site, f"the baseline has no {fig}"))
        else:
            out.append(_figure(key, 100.0 * (after - before) / before, rows, site,
                               f"{before:g} -> {after:g} cd/m²"))
    base_err = baseline.series.get("error")
    if base_err is not None and baseline.series.get("levels") == series["levels"]:
        change = max(abs(a - b) for a, b in zip(series["error"], base_err, strict=True))
        out.append(_figure("response_change", change, rows, site,
                           "largest change of an interval's error, in percentage points"))
    else:
        before = baseline.value("response_max_error")
        after = now.get("response_max_error")
        out.append(_figure(
            "response_change", None if before is None or after is None else abs(after - before),
            rows, site, "the baseline measured other levels: change of the largest error"))
    base_white = baseline.series.get("white_point")
    if base_white is None or "white_point" not in series:
        out.append(_figure("white_point_drift", None, rows, site,
                           "white point not measured " + ("now" if base_white is not None
                                                          else "at the baseline")))
    else:
        out.append(_figure("white_point_drift", uv_distance(series["white_point"], base_white),
                           rows, site, "Δu'v' from the baseline's white point"))
    return out
