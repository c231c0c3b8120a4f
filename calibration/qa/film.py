"""Film and paper printer QC: densitometer readings of the QC film, judged (PS3.14 Annex D).

A printer's QC film (:mod:`calibration.qa.test_film`) carries a step wedge of known
P-values.  Printed through the node's calibration, step ``k`` should have the optical
density the GSDF gives its P-value between the film's Min and Max Density, seen at the
light box's Illumination L0 and the Reflected Ambient Light La (PS3.14 §7 and Annex D.2:
``L = La + L0 * 10**-D``).  :func:`evaluate_film` checks three things:

* the **contrast response**: the step densities turned into luminance and judged
  against the GSDF with the method of ``printscp calibrate analyze``
  (:func:`calibration.analysis.judge`: δm/δe - 1 per interval, ±10 %), over
  :data:`FILM_INTERVALS` intervals (densitometer resolution, see there);
* **Dmin and Dmax** against the Min and Max Density the films are printed with;
* the film-QC **indices** of daily processor/printer QC, against the baseline (the
  acceptance test): *speed* (mid-density: the density of the step whose density is
  closest to 1.00 above base+fog in the baseline), *contrast* (density difference:
  the step closest to 2.00 above base+fog minus the step closest to 0.25 above
  base+fog; with a base+fog of 0.20 these are the 1.20, 2.20 and 0.45 OD of the ACR
  manual) and *base+fog*.  The steps are chosen once, in the baseline, and the same
  steps are tracked afterwards, as a processor QC chart does.

Readings file (CSV, ``#`` comments and blank lines ignored)::

    step,density[,p_value]
    1,3.01
    ...
    32,0.21
    base_fog,0.19        # unexposed film (optional)
    dmax,3.05            # the darkest patch (optional; else the darkest step)

Steps are numbered 1..N on the film; without a ``p_value`` column step ``k`` of an
``N``-step film has P-value ``round(4095 * (k - 1) / (N - 1))`` (PS3.14 D.2.1's
equally spaced bars; step 1 is P-value 0, the darkest).  Every error names the file
and line (:class:`~calibration.measurements.MeasurementError`).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration import analysis
from calibration.measurements import MeasurementError
from calibration.qa.results import (
    FIGURE_KEYS,
    DeviceKind,
    Figure,
    SiteLimits,
    TestKind,
    TestResult,
)
from lut import density as lut_density

#: The criteria string of printer tests (``calibration.qa.criteria.PRINTER_CRITERIA``).
CRITERIA = "ps3.14-film"
#: Steps of the standard QC film (PS3.14 Annex D.2.1's example: 32 bars).
DEFAULT_STEPS = 32
#: P-value bit depth of the QC film's step wedge (12-bit image, IDENTITY P-LUT).
PVALUE_BITS = 12
#: Largest plausible reading of a transmission/reflection densitometer (OD).
MAX_READING = 6.0

#: Where each limit comes from (shown with the figure, kept in the store).
SOURCE_RESPONSE = ("DICOM PS3.14 (2016a) §7, Annex D.2; limit ±10 % as `calibrate "
                   "analyze` (ACR–AAPM–SIIM Technical Standard for Electronic Practice of "
                   "Medical Imaging, diagnostic)")
SOURCE_DENSITY = ("DICOM PS3.3 C.13.5.1 Min/Max Density (2010,0120)/(2010,0130) of the "
                  "films; tolerance {tol:g} OD is printscp's reading allowance, not a "
                  "standard's number")
SOURCE_CONSTANCY = ("21 CFR 900.12(e)(1)(i)-(iii) (MQSA processor performance: mid-density "
                    "and density difference ±0.15, base+fog +0.03 of the operating level); "
                    "ACR Mammography QC Manual (1999), processor QC")

#: Constancy limits of the film-QC indices (OD, change since the baseline).
SPEED_LIMIT = 0.15
CONTRAST_LIMIT = 0.15
BASE_FOG_LIMIT = 0.03
#: Allowance on Dmin/Dmax against the films' Min/Max Density: readings are given to
#: 0.01 OD and an 8-bit printer lands within half a device step of a target; PS3.14
#: states no tolerance, so this is printscp's choice (documented as such).
DENSITY_TOLERANCE = 0.02
#: GSDF intervals the contrast response of a film is judged over.  ``calibrate analyze``
#: judges a display over TG18's 17; a film's steps are read with a densitometer to
#: 0.01 OD, and at the light end of a 0.20-3.00 OD film one of 17 intervals spans about
#: 0.06 OD, so the reading's ±0.005 OD at each end alone can move δm/δe by ±12 %, more
#: than the ±10 % limit.  Over 8 intervals it stays within about ±6 %.  printscp's
#: choice, not a standard's number (``intervals=`` / ``--intervals`` change it).
FILM_INTERVALS = 8
#: Net densities (above base+fog) of the index steps: speed (mid-density) and the two
#: steps of the density difference (1.20, 2.20 and 0.45 OD gross at base+fog 0.20).
SPEED_NET = 1.00
CONTRAST_HIGH_NET = 2.00
CONTRAST_LOW_NET = 0.25


def step_pvalues(steps: int = DEFAULT_STEPS, bits: int = PVALUE_BITS) -> list[int]:
    """P-value of each step 1..``steps``: equally spaced over 0..2**bits-1 (PS3.14 D.2-1)."""
    if steps < 2:
        raise ValueError(f"a step wedge needs at least 2 steps, got {steps}")
    top = (1 << bits) - 1
    return [math.floor(top * i / (steps - 1) + 0.5) for i in range(steps)]


@dataclass(frozen=True)
class FilmReadings:
    """Densitometer readings of one QC film, validated (steps ascending, OD >= 0)."""

    steps: tuple[int, ...]
    density: tuple[float, ...]
    p_values: tuple[int, ...]
    base_fog: float | None = None
    dmax: float | None = None
    source: str = ""
    bits: int = PVALUE_BITS

    def __post_init__(self) -> None:
        n = len(self.steps)
        if n < 3:
            raise MeasurementError(f"{self.source or 'readings'}: need at least 3 steps, got {n}")
        if len(self.density) != n or len(self.p_values) != n:
            raise MeasurementError("steps, density and p_values differ in length")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise MeasurementError("steps must ascend")
        if any(b <= a for a, b in zip(self.p_values, self.p_values[1:], strict=False)):
            raise MeasurementError("P-values must ascend with the step number")
        top = (1 << self.bits) - 1
        for value in self.p_values:
            if not 0 <= value <= top:
                raise MeasurementError(f"P-value {value} outside 0..{top}")
        for value in (*self.density, self.base_fog, self.dmax):
            if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_READING):
                raise MeasurementError(f"density {value!r} outside 0..{MAX_READING:g} OD")

    def to_json(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "density": list(self.density),
                "p_values": list(self.p_values), "base_fog": self.base_fog,
                "dmax": self.dmax, "source": self.source, "bits": self.bits}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilmReadings:
        return cls(tuple(int(s) for s in data["steps"]),
                   tuple(float(d) for d in data["density"]),
                   tuple(int(p) for p in data["p_values"]), data.get("base_fog"),
                   data.get("dmax"), str(data.get("source", "")),
                   int(data.get("bits", PVALUE_BITS)))

    def density_of(self, step: int) -> float | None:
        try:
            return self.density[self.steps.index(step)]
        except ValueError:
            return None


def read_film_readings(path: str | os.PathLike[str], *, steps: int = DEFAULT_STEPS
                       ) -> FilmReadings:
    """Read a QC film's readings CSV (format in the module docstring).

    ``steps``: how many steps the printed film had, for the P-values of files without a
    ``p_value`` column.  Strict: unknown columns, a row that is not a step number,
    ``base_fog`` or ``dmax``, a density that is not a number in 0..6 OD, a repeated
    step and P-values that do not ascend are errors naming ``file:line``.
    """
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as err:
        raise MeasurementError(f"{name}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise MeasurementError(f"{name}: not a text file ({err.reason})") from None
    header: list[str] | None = None
    rows: dict[int, tuple[float, int | None, int]] = {}
    extra: dict[str, tuple[float, int]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        cells = [c.strip() for c in next(csv.reader(io.StringIO(stripped)))]
        where = f"{name}:{lineno}"
        if header is None:
            header = [c.lower() for c in cells]
            unknown = [c for c in header if c not in ("step", "density", "p_value")]
            if unknown or "step" not in header or "density" not in header \
                    or len(set(header)) != len(header):
                raise MeasurementError(
                    f"{where}: expected the header 'step,density[,p_value]', got {stripped!r}")
            continue
        if len(cells) != len(header):
            raise MeasurementError(f"{where}: expected {len(header)} columns, got {len(cells)}")
        row = dict(zip(header, cells, strict=True))
        density = _density(row["density"], where)
        label = row["step"].lower().replace("+", "_").replace(" ", "_")
        if label in ("base_fog", "dmax"):
            if row.get("p_value"):
                raise MeasurementError(f"{where}: {label} has no P-value")
            if label in extra:
                raise MeasurementError(f"{where}: {label} given twice "
                                       f"(first on line {extra[label][1]})")
            extra[label] = (density, lineno)
            continue
        try:
            step = int(row["step"])
        except ValueError:
            raise MeasurementError(f"{where}: step must be a number, base_fog or dmax, got "
                                   f"{row['step']!r}") from None
        if step < 1:
            raise MeasurementError(f"{where}: steps are numbered from 1, got {step}")
        if step in rows:
            raise MeasurementError(f"{where}: step {step} given twice "
                                   f"(first on line {rows[step][2]})")
        p_value = None
        if "p_value" in row:
            try:
                p_value = int(row["p_value"])
            except ValueError:
                raise MeasurementError(f"{where}: p_value must be an integer, got "
                                       f"{row['p_value']!r}") from None
            if not 0 <= p_value <= (1 << PVALUE_BITS) - 1:
                raise MeasurementError(f"{where}: p_value {p_value} outside "
                                       f"0..{(1 << PVALUE_BITS) - 1}")
        rows[step] = (density, p_value, lineno)
    if header is None:
        raise MeasurementError(f"{name}: no readings (expected 'step,density' and one row "
                               "per step)")
    if len(rows) < 3:
        raise MeasurementError(f"{name}: need at least 3 steps, got {len(rows)}")
    order = sorted(rows)
    if "p_value" in header:
        pvalues = [rows[s][1] for s in order]
    else:
        if order[-1] > steps:
            raise MeasurementError(
                f"{name}:{rows[order[-1]][2]}: step {order[-1]} on a {steps}-step film "
                "(give --steps, or a p_value column)")
        table = step_pvalues(steps)
        pvalues = [table[s - 1] for s in order]
    for prev, step in itertools.pairwise(order):
        if pvalues[order.index(step)] <= pvalues[order.index(prev)]:  # type: ignore[operator]
            raise MeasurementError(f"{name}:{rows[step][2]}: P-values must ascend with the "
                                   f"step number (step {prev} has {pvalues[order.index(prev)]})")
    return FilmReadings(
        tuple(order), tuple(rows[s][0] for s in order), tuple(int(p) for p in pvalues),  # type: ignore[arg-type]
        extra.get("base_fog", (None,))[0], extra.get("dmax", (None,))[0], name)


def _density(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MeasurementError(f"{where}: density must be a number, got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_READING):
        raise MeasurementError(f"{where}: density {text} outside 0..{MAX_READING:g} OD")
    return value


# -- evaluation ----------------------------------------------------------------------------
def index_steps(readings: FilmReadings) -> dict[str, int]:
    """The steps the film-QC indices track, chosen on ``readings`` (the baseline's).

    Densities are taken above base+fog (the lightest step when base+fog was not read):
    speed = the step closest to 1.00 above it, contrast = the steps closest to 2.00 and
    0.25 above it (the first such step on a tie).
    """
    ref = readings.base_fog if readings.base_fog is not None else min(readings.density)
    d = np.asarray(readings.density)

    def closest(net: float) -> int:
        return readings.steps[int(np.argmin(np.abs(d - (ref + net))))]

    return {"speed": closest(SPEED_NET), "contrast_high": closest(CONTRAST_HIGH_NET),
            "contrast_low": closest(CONTRAST_LOW_NET)}


def _indices(readings: FilmReadings, steps: dict[str, int]) -> tuple[float | None, float | None]:
    speed = readings.density_of(steps["speed"])
    high, low = readings.density_of(steps["contrast_high"]), readings.density_of(
        steps["contrast_low"])
    return speed, (None if high is None or low is None else high - low)


def _baseline_parts(baseline: TestResult) -> tuple[dict[str, int] | None, dict[str, Any]]:
    """(index steps, the baseline's values) of a stored printer test."""
    steps = baseline.series.get("index_steps")
    if not steps and baseline.inputs.get("readings"):
        steps = index_steps(FilmReadings.from_json(baseline.inputs["readings"]))
    values = {key: baseline.value(key) for key in ("speed", "contrast", "base_fog", "dmax")}
    return (dict(steps) if steps else None), values


def evaluate_film(readings: FilmReadings, kind: TestKind, baseline: TestResult | None = None,
                  *, min_density: float | None = None, max_density: float | None = None,
                  illumination: float | None = None, ambient: float | None = None,
                  limit: float = analysis.DIAGNOSTIC_LIMIT,
                  intervals: int = FILM_INTERVALS,
                  site_limits: SiteLimits | None = None) -> TestResult:
    """Judge a QC film's readings (criteria ``ps3.14-film``); see the module docstring.

    ``min_density``/``max_density``: the Min/Max Density (OD) the films are printed
    with; None: Dmin/Dmax are reported unjudged.  ``illumination``/``ambient``: L0 and
    La in cd/m² (None: PS3.3's defaults 2000 and 10, with a note).  A constancy test
    compares the indices with ``baseline`` (a printer test, normally the acceptance
    test); without one the change figures have no value and a note says why.  Raises
    :class:`MeasurementError` when the film shows no contrast at all.  ``site_limits``
    (figure key -> (low, high)) replace the limits above, or add some (for the change
    of Dmax, which no source at hand limits), as for displays.
    """
    site = dict(site_limits or {})
    for key in site:
        if key not in FIGURE_KEYS:
            raise ValueError(f"site limit for an unknown figure {key!r}")
    notes: list[str] = []
    if illumination is None:
        illumination = lut_density.DEFAULT_ILLUMINATION
        notes.append(f"illumination not given: PS3.3 default L0 = {illumination:g} cd/m²")
    if ambient is None:
        ambient = lut_density.DEFAULT_AMBIENT
        notes.append(f"reflected ambient light not given: PS3.3 default La = {ambient:g} cd/m²")
    p = np.asarray(readings.p_values, dtype=np.float64)
    d = np.asarray(readings.density, dtype=np.float64)
    lum = lut_density.density_to_luminance(d, illumination, ambient)
    conf = analysis.judge("printer", p, lum, ambient, limit=limit, intervals=intervals)
    lo, hi, _ = conf.worst()
    figures = [Figure("response_max_error", conf.max_abs_error * 100.0, high=limit * 100.0,
                      source=SOURCE_RESPONSE,
                      note=f"worst between P-values {lo:g} and {hi:g}")]

    dmin = float(d.min())
    dmax = readings.dmax if readings.dmax is not None else float(d.max())
    density_source = SOURCE_DENSITY.format(tol=DENSITY_TOLERANCE)
    figures.append(Figure(
        "dmin", dmin, high=None if min_density is None else min_density + DENSITY_TOLERANCE,
        source=density_source if min_density is not None else "",
        note="" if min_density is not None else "Min Density not given: not judged"))
    figures.append(Figure(
        "dmax", dmax, low=None if max_density is None else max_density - DENSITY_TOLERANCE,
        source=density_source if max_density is not None else "",
        note=("" if readings.dmax is not None else "no dmax reading: the darkest step")
        + ("" if max_density is not None else "; Max Density not given: not judged")))
    figures.append(Figure("base_fog", readings.base_fog,
                          note="" if readings.base_fog is not None else
                          "no base_fog reading: indices taken above the lightest step"))

    own_steps = index_steps(readings)
    steps = own_steps
    base_steps, base_values = (None, {}) if baseline is None else _baseline_parts(baseline)
    if base_steps is not None:
        steps = base_steps
    speed, contrast = _indices(readings, steps)
    missing = [s for s in (steps["speed"], steps["contrast_high"], steps["contrast_low"])
               if readings.density_of(s) is None]
    step_note = (f"step {steps['speed']}" + (" (the baseline's)" if base_steps else ""))
    figures.append(Figure("speed", speed, note=step_note if speed is not None else
                          f"step {steps['speed']} not read"))
    figures.append(Figure("contrast", contrast,
                          note=f"step {steps['contrast_high']} - step {steps['contrast_low']}"
                          + ("" if contrast is not None else ": not read")))
    if missing:
        notes.append(f"index step(s) {', '.join(map(str, missing))} missing from the readings")

    if kind is TestKind.CONSTANCY:
        why = "" if baseline is not None else "no baseline (acceptance test) to compare with"

        def change(key: str, value: float | None, low: float | None, high: float | None,
                   source: str = SOURCE_CONSTANCY, note: str = "") -> Figure:
            base = base_values.get(key)
            if baseline is None or value is None or base is None:
                return Figure(f"{key}_change", None, low, high, source,
                              why or f"{key} missing in this test or the baseline")
            return Figure(f"{key}_change", value - base, low, high, source, note)

        figures += [
            change("speed", speed, -SPEED_LIMIT, SPEED_LIMIT),
            change("contrast", contrast, -CONTRAST_LIMIT, CONTRAST_LIMIT),
            change("base_fog", readings.base_fog, None, BASE_FOG_LIMIT),
            change("dmax", dmax, None, None, "",
                   "no constancy limit for Dmax in the sources at hand (judged against "
                   "Max Density above)"),
        ]

    target = _target_density(p, readings.bits, min_density, max_density, dmin, dmax,
                             illumination, ambient)
    r = conf.response
    series: dict[str, Any] = {
        "steps": list(readings.steps), "p_values": [int(v) for v in readings.p_values],
        "density": [float(v) for v in d], "target_density": target,
        "luminance": [float(v) for v in lum],
        "levels": r.levels.tolist(), "error": (100.0 * r.error).tolist(),
        "index_steps": steps,
    }
    inputs = {"readings": readings.to_json(), "illumination": illumination,
              "ambient": ambient, "min_density": min_density, "max_density": max_density,
              "limit": limit, "intervals": intervals}
    if site:
        inputs["site_limits"] = {k: list(v) for k, v in site.items()}
    return TestResult(DeviceKind.PRINTER, kind, CRITERIA,
                      tuple(f.held_to(site) for f in figures), series, inputs,
                      tuple(notes)).judged()


def _target_density(p: np.ndarray, bits: int, min_density: float | None,
                    max_density: float | None, dmin: float, dmax: float,
                    illumination: float, ambient: float) -> list[float] | None:
    """Density each step should have on a GSDF-calibrated film (PS3.14 D.2.3), between
    the films' Min/Max Density (the measured extremes when not given)."""
    lo = min_density if min_density is not None else dmin
    hi = max_density if max_density is not None else dmax
    if not 0 <= lo < hi:
        return None
    return lut_density.pvalue_to_density(p, bits, lo, hi, illumination, ambient).tolist()


def simulated_readings(levels: Sequence[int] | np.ndarray, response: Any, *,
                       steps: Sequence[int] | None = None, p_values: Sequence[int] | None = None,
                       base_fog: float | None = None, source: str = "simulated"
                       ) -> FilmReadings:
    """Readings of a simulated printer: ``response(levels)`` is its density per device
    level (for tests and the benchmark: a printer with a known fault)."""
    lv = np.asarray(levels)
    n = lv.size
    dens = np.round(np.asarray(response(lv), dtype=np.float64), 3)
    steps = list(steps) if steps is not None else list(range(1, n + 1))
    pv = list(p_values) if p_values is not None else step_pvalues(n)
    return FilmReadings(tuple(steps), tuple(float(v) for v in dens), tuple(int(v) for v in pv),
                        base_fog, None, source)
