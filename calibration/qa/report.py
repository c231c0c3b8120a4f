"""The QA report of one device: the latest test a physicist signs, and its trends.

:func:`report_data` gathers everything the report shows — the device's identity, the
conditions of the latest test, each of its figures against its limit and source, the
verdict, and the series behind every trend plot — into a :class:`ReportData`.  The
PDF (:func:`write_report`, reportlab) is drawn from that object alone, so what a test
checks is what the plots show, without looking at pixels.

Trends are read from the figures every test keeps under its stable key
(:data:`calibration.qa.results.FIGURE_KEYS`), one array per key over the tests, with
the limit each test was judged against and, where the criteria set judges a change
since the acceptance test (``lmax_change``, ``speed_change`` …), the band that change
limit draws around the baseline's value.  Tests that failed are marked in every plot.

Plots are drawn with matplotlib's Agg canvas on :class:`matplotlib.figure.Figure`
objects, one per plot, never registered with pyplot: nothing to close, nothing shared
between threads (the console may make a report while another is being made), and the
figure is freed once its PNG is in the PDF.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from calibration.qa.results import FIGURE_KEYS, DeviceKind, Figure, TestKind, TestResult, Verdict

if TYPE_CHECKING:  # only the types: a report is made from records, not from the store
    from calibration.qa.devices import Device
    from calibration.qa.store import TestRecord

#: What each figure is called in the report (the keys stay the stable names).
LABELS: dict[str, str] = {
    "response_max_error": "Luminance response: largest contrast error vs GSDF",
    "lmax": "L'max (ambient included)",
    "lmin": "L'min (ambient included)",
    "luminance_ratio": "L'max / L'min",
    "lamb": "Ambient luminance Lamb",
    "ambient_ratio": "Lamb / Lmin",
    "uniformity_max_dev": "Uniformity (as the criteria set defines it; the map shows each "
                          "position against the centre)",
    "white_point_distance": "White point: Δu'v' from the target",
    "white_point_drift": "White point: Δu'v' since the baseline",
    "lmax_change": "L'max change since the baseline",
    "lmin_change": "L'min change since the baseline",
    "response_change": "Response error change since the baseline",
    "base_fog": "Base + fog",
    "dmin": "Dmin",
    "dmax": "Dmax",
    "speed": "Speed (mid-density step)",
    "contrast": "Contrast (density difference)",
    "speed_change": "Speed change since the baseline",
    "contrast_change": "Contrast change since the baseline",
    "base_fog_change": "Base + fog change since the baseline",
    "dmax_change": "Dmax change since the baseline",
}

#: A value's change figure and whether that change is relative (in %) or absolute: the
#: band a trend plot draws around the baseline's value.
CHANGE_OF: dict[str, tuple[str, bool]] = {
    "lmax": ("lmax_change", True),
    "lmin": ("lmin_change", True),
    "speed": ("speed_change", False),
    "contrast": ("contrast_change", False),
    "base_fog": ("base_fog_change", False),
    "dmax": ("dmax_change", False),
}

#: CIE D65 in CIE 1976 u'v' (CIE 15:2004): the white point target when a test names none
#: (tests name theirs in ``series["white_target"]``).
D65_UV: tuple[float, float] = (0.1978, 0.4683)

#: Measurement conditions a test's inputs may carry (at the top of ``inputs`` or in
#: its ``ambient`` object, the notation the readings file used): key, label, unit.
CONDITION_INPUTS: tuple[tuple[str, str, str], ...] = (
    ("illuminance_lux", "ambient illuminance E", "lx"),
    ("reflection_coefficient", "reflection coefficient Rd", "cd/m² per lx"),
    ("lamb", "ambient luminance Lamb", "cd/m²"),
    ("illumination", "light-box illumination L0", "cd/m²"),
    ("ambient", "reflected ambient light La", "cd/m²"),
    ("min_density", "Min Density printed with", "OD"),
    ("max_density", "Max Density printed with", "OD"),
)

#: TG18-UNL position names (as :mod:`calibration.qa.display` lists them in
#: ``series["uniformity_positions"]``) -> (row, column) of a 3x3 grid, row 0 at the top.
GRID_OF_POSITION: dict[str, tuple[int, int]] = {
    "top-left": (0, 0), "top": (0, 1), "top-right": (0, 2),
    "left": (1, 0), "centre": (1, 1), "right": (1, 2),
    "bottom-left": (2, 0), "bottom": (2, 1), "bottom-right": (2, 2),
}
#: The order when a test gives deviations without names: 5 positions are the centre
#: and the corners, 9 are row by row.
DEFAULT_POSITIONS: dict[int, tuple[str, ...]] = {
    5: ("centre", "top-left", "top-right", "bottom-left", "bottom-right"),
    9: tuple(GRID_OF_POSITION),
}

_FLOAT = np.float64


@dataclass(frozen=True)
class FigureRow:
    """One figure of the latest test as the report's table shows it."""

    key: str
    label: str
    value: float | None
    unit: str
    limit: str  #: "≤ 10 %", "" when not judged
    source: str
    passed: bool | None  #: None: informative (no limit) or not computed
    note: str = ""

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "—"}[self.passed]


@dataclass(frozen=True, eq=False)
class Trend:
    """One figure over the tests, oldest first: the data behind a trend plot.

    Arrays are as long as the tests; NaN where a test did not report the figure (or
    has no such limit, or no baseline).
    """

    key: str
    label: str
    unit: str
    when: tuple[datetime, ...]
    test_ids: NDArray[np.int64]
    values: NDArray[np.float64]
    low: NDArray[np.float64]  #: the lower limit each test was judged against
    high: NDArray[np.float64]  #: the upper limit
    failed: NDArray[np.bool_]  #: this figure failed its limit in that test
    test_failed: NDArray[np.bool_]  #: that test failed (any figure)
    baseline: NDArray[np.float64]  #: the baseline's value of the figure, per test
    baseline_low: NDArray[np.float64]  #: the lowest value the change limit allows (NaN:
    #: no lower limit on the change, or no change figure)
    baseline_high: NDArray[np.float64]  #: the highest

    @property
    def present(self) -> NDArray[np.bool_]:
        return ~np.isnan(self.values)


@dataclass(frozen=True, eq=False)
class ResponseErrors:
    """Contrast error per GSDF interval of the latest test that measured a response."""

    test_id: int
    when: datetime
    midpoints: NDArray[np.float64]  #: interval midpoints (driving level or P-value)
    error: NDArray[np.float64]  #: % (δm/δe - 1)
    limit: float | None  #: ± % (the response_max_error figure's limit)
    failed: NDArray[np.bool_]  #: intervals outside ±limit


@dataclass(frozen=True, eq=False)
class UniformityMap:
    """Deviation from the centre at 5 or 9 positions of the latest test measuring it."""

    test_id: int
    when: datetime
    deviations: NDArray[np.float64]  #: % per position, in the test's order
    positions: tuple[str, ...]  #: the names of those positions (``top-left`` …)
    grid: NDArray[np.float64]  #: 3x3, NaN where not measured (5 positions)
    pattern: str  #: the TG18-UNL pattern shown (``unl80``; "" when not named)
    limit: float | None  #: % (the uniformity_max_dev figure's upper limit)


@dataclass(frozen=True, eq=False)
class WhitePointDrift:
    """u'v' of the white point of each test that measured it, around the target."""

    when: tuple[datetime, ...]
    test_ids: NDArray[np.int64]
    u: NDArray[np.float64]
    v: NDArray[np.float64]
    target: tuple[float, float]
    target_named: bool  #: False: D65 assumed (no test named a target)
    radius: float | None  #: Δu'v' limit from the target
    test_failed: NDArray[np.bool_]

    @property
    def distance(self) -> NDArray[np.float64]:
        return np.hypot(self.u - self.target[0], self.v - self.target[1])


@dataclass(frozen=True, eq=False)
class DensitySteps:
    """Density per step of the latest printer test against the target densities."""

    test_id: int
    when: datetime
    steps: NDArray[np.float64]
    density: NDArray[np.float64]
    target: NDArray[np.float64]  #: NaN where the test gave no target

    @property
    def deviation(self) -> NDArray[np.float64]:
        return self.density - self.target


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the report shows, in the order it shows it."""

    device: Device
    title: str  #: "Constancy test report" / "Acceptance test report"
    latest: TestRecord
    baseline: TestRecord | None  #: the acceptance test the latest was compared with
    verdict: Verdict
    conditions: tuple[tuple[str, str], ...]
    figures: tuple[FigureRow, ...]
    notes: tuple[str, ...]
    period: tuple[datetime, datetime]  #: first and last test in the report
    test_count: int
    failed_tests: tuple[int, ...]  #: ids of the tests that failed, oldest first
    trends: dict[str, Trend] = field(default_factory=dict)
    response: ResponseErrors | None = None
    uniformity: UniformityMap | None = None
    white_point: WhitePointDrift | None = None
    density: DensitySteps | None = None
    #: the plots in report order: name -> caption (names as :data:`PLOTS` lists)
    plots: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- data


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _when(record: TestRecord) -> datetime:
    when = record.when
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _series(result: TestResult, name: str) -> NDArray[np.float64] | None:
    data = result.series.get(name)
    if data is None:
        return None
    try:
        arr = np.asarray(data, dtype=_FLOAT)
    except (TypeError, ValueError):
        return None
    return arr if arr.size else None


def _baselines(records: Sequence[TestRecord],
               extra: Sequence[TestRecord] = ()) -> list[TestRecord | None]:
    """Each test's baseline: the record its baseline_id names (among the records or the
    ``extra`` ones), else the last acceptance test before it (an acceptance test is its
    own baseline)."""
    by_id = {r.id: r for r in extra} | {r.id: r for r in records}
    out: list[TestRecord | None] = []
    last_acceptance: TestRecord | None = None
    for r in records:
        if r.result.kind is TestKind.ACCEPTANCE:
            last_acceptance = r
        base = by_id.get(r.baseline_id) if r.baseline_id is not None else None
        out.append(base if base is not None else last_acceptance)
    return out


def _trends(records: Sequence[TestRecord],
            baselines: Sequence[TestRecord | None]) -> dict[str, Trend]:
    """One :class:`Trend` per figure key any test reported: one pass over the tests."""
    n = len(records)
    index = {key: i for i, key in enumerate(FIGURE_KEYS)}
    # values, low, high, failed per key: one (4, keys, tests) block filled test by test
    block = np.full((4, len(index), n), np.nan)
    seen = np.zeros(len(index), dtype=bool)
    for t, record in enumerate(records):
        for fig in record.result.figures:
            k = index[fig.key]
            seen[k] = True
            block[0, k, t] = _num(fig.value)
            block[1, k, t] = _num(fig.low)
            block[2, k, t] = _num(fig.high)
            block[3, k, t] = fig.passed is False
    when = tuple(_when(r) for r in records)
    ids = np.fromiter((r.id for r in records), dtype=np.int64, count=n)
    test_failed = np.fromiter((r.result.verdict is Verdict.FAIL for r in records),
                              dtype=bool, count=n)
    # the baseline's own value of every key, per test
    base_pos = {r.id: t for t, r in enumerate(records)}
    base_index = np.fromiter((base_pos.get(b.id, -1) if b is not None else -1
                              for b in baselines), dtype=np.int64, count=n)
    has_base = base_index >= 0
    # baselines before the period reported (``baselines=``, a report --from after them)
    outside = [(t, b) for t, b in enumerate(baselines) if b is not None and base_index[t] < 0]
    trends: dict[str, Trend] = {}
    for key, k in index.items():
        if not seen[k]:
            continue
        values = block[0, k]
        base = np.full(n, np.nan)
        base[has_base] = values[base_index[has_base]]
        for t, b in outside:
            base[t] = _num(b.result.value(key))
        base_low = np.full(n, np.nan)
        base_high = np.full(n, np.nan)
        if key in CHANGE_OF and seen[index[CHANGE_OF[key][0]]]:
            change, relative = CHANGE_OF[key]
            c = index[change]
            clow, chigh = block[1, c], block[2, c]  # NaN where a side has no limit
            if relative:
                base_low, base_high = base * (1 + clow / 100), base * (1 + chigh / 100)
            else:
                base_low, base_high = base + clow, base + chigh
        trends[key] = Trend(key, LABELS.get(key, key), FIGURE_KEYS[key], when, ids, values,
                            block[1, k].copy(), block[2, k].copy(), block[3, k] > 0,
                            test_failed, base, base_low, base_high)
    return trends


def _latest_with(records: Sequence[TestRecord], *names: str) -> TestRecord | None:
    for record in reversed(records):
        if all(_series(record.result, n) is not None for n in names):
            return record
    return None


def _limit_of(result: TestResult, key: str) -> float | None:
    fig = result.figure(key)
    return None if fig is None else fig.high


def _response(records: Sequence[TestRecord]) -> ResponseErrors | None:
    record = _latest_with(records, "levels", "error")
    if record is None:
        return None
    levels = _series(record.result, "levels")
    error = _series(record.result, "error")
    assert levels is not None and error is not None
    if levels.size != error.size + 1:
        return None
    midpoints = (levels[1:] + levels[:-1]) / 2
    limit = _limit_of(record.result, "response_max_error")
    error_pct = error  # in % (calibration.qa.results.TestResult)
    failed = (np.abs(error_pct) > limit) if limit is not None \
        else np.zeros(error.size, dtype=bool)
    return ResponseErrors(record.id, _when(record), midpoints, error_pct, limit, failed)


def _uniformity(records: Sequence[TestRecord]) -> UniformityMap | None:
    record = _latest_with(records, "uniformity")
    if record is None:
        return None
    dev = _series(record.result, "uniformity")
    assert dev is not None
    names = record.result.series.get("uniformity_positions") or \
        DEFAULT_POSITIONS.get(dev.size)
    if names is None or len(names) != dev.size or \
            any(n not in GRID_OF_POSITION for n in names):
        return None
    grid = np.full((3, 3), np.nan)
    rows, cols = zip(*(GRID_OF_POSITION[n] for n in names), strict=True)
    grid[list(rows), list(cols)] = dev
    return UniformityMap(record.id, _when(record), dev, tuple(names), grid,
                         str(record.result.series.get("uniformity_pattern") or ""),
                         _limit_of(record.result, "uniformity_max_dev"))


def _white_point(records: Sequence[TestRecord]) -> WhitePointDrift | None:
    chosen = [r for r in records if (wp := _series(r.result, "white_point")) is not None
              and wp.size == 2]
    if not chosen:
        return None
    uv = np.array([r.result.series["white_point"] for r in chosen], dtype=_FLOAT)
    target: tuple[float, float] = D65_UV
    named = False
    radius = None
    for r in reversed(chosen):
        t = _series(r.result, "white_target")
        if t is not None and t.size == 2:
            target, named = (float(t[0]), float(t[1])), True
            radius = _limit_of(r.result, "white_point_distance")
            break
    if radius is None:
        radius = _limit_of(chosen[-1].result, "white_point_distance")
    return WhitePointDrift(
        tuple(_when(r) for r in chosen),
        np.fromiter((r.id for r in chosen), dtype=np.int64, count=len(chosen)),
        uv[:, 0].copy(), uv[:, 1].copy(), target, named, radius,
        np.fromiter((r.result.verdict is Verdict.FAIL for r in chosen), dtype=bool,
                    count=len(chosen)))


def _density(records: Sequence[TestRecord]) -> DensitySteps | None:
    record = _latest_with(records, "density")
    if record is None:
        return None
    density = _series(record.result, "density")
    assert density is not None
    steps = _series(record.result, "steps")
    if steps is None or steps.size != density.size:
        steps = np.arange(1, density.size + 1, dtype=_FLOAT)
    target = _series(record.result, "target_density")
    if target is None or target.size != density.size:
        target = np.full(density.size, np.nan)
    return DensitySteps(record.id, _when(record), steps, density, target)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return f"{text} {unit}".rstrip()


def _conditions(device: Device, latest: TestRecord,
                baseline: TestRecord | None) -> tuple[tuple[str, str], ...]:
    result = latest.result
    out = [("test", f"{result.kind.value} test #{latest.id}"),
           ("date", _when(latest).strftime("%Y-%m-%d %H:%M UTC")),
           ("operator", latest.operator or "—"),
           ("criteria set", result.criteria),
           ("use", "diagnostic" if device.diagnostic else "non-diagnostic")]
    given = dict(result.inputs)
    if isinstance(given.get("ambient"), dict):  # the display file's own notation
        given.update(given.pop("ambient"))
    for key, label, unit in CONDITION_INPUTS:
        value = given.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        out.append((label, _fmt(float(value), unit) if isinstance(value, (int, float))
                    else value))
    if "lamb" not in given and "ambient" not in given and \
            (lamb := result.value("lamb")) is not None:
        out.append(("ambient luminance Lamb", _fmt(lamb, "cd/m²")))
    if latest.source:
        out.append(("measurements", latest.source))
    if result.kind is TestKind.CONSTANCY:
        if baseline is not None:
            text = f"acceptance test #{baseline.id} of {_when(baseline):%Y-%m-%d}"
        elif latest.baseline_id is not None:
            text = f"acceptance test #{latest.baseline_id} (not among the tests given)"
        else:
            text = "none: the changes since the acceptance test are not judged"
        out.append(("baseline", text))
    return tuple(out)


def _row(fig: Figure) -> FigureRow:
    return FigureRow(fig.key, LABELS.get(fig.key, fig.key), fig.value, fig.unit, fig.limit,
                     fig.source, fig.passed, fig.note)


#: Every plot the report can hold, in report order, with its caption.
PLOTS: dict[str, str] = {
    "response": "Contrast error per GSDF interval of the latest test, with the ±limit",
    "luminance": "L'max and L'min over time, with the limits and the baseline's band",
    "ambient_ratio": "Lamb / Lmin over time, with the limit",
    "response_trend": "Largest contrast error vs GSDF over time, with the limit",
    "uniformity": "Uniformity map of the latest test: deviation from the centre",
    "white_point": "White point u'v' over time around the target",
    "density": "Density per step of the latest test against the target",
    "speed": "Speed over time, with the baseline ± limit",
    "contrast": "Contrast over time, with the baseline ± limit",
    "dmax": "Dmax over time, with the baseline ± limit and the profile's limit",
    "base_fog": "Base + fog over time, with the baseline ± limit",
}


def report_data(device: Device, records: Sequence[TestRecord], *,
                baselines: Sequence[TestRecord] = ()) -> ReportData:
    """The data behind the report of ``device`` over ``records`` (any order).

    The latest record is the test the report is about (its figures, verdict and
    conditions); all records make the trends.  ``baselines``: acceptance tests the
    records name (``baseline_id``) that are not among them — a report of a period after
    the acceptance test — for the band the change limits draw.  ValueError when there
    are no records, or when a record is of another device.
    """
    if not records:
        raise ValueError(f"device {device.id}: no tests to report (none recorded in the "
                         "period asked for)")
    others = {r.device_id for r in records} - {device.id}
    if others:
        raise ValueError(f"report of {device.id}: tests of other devices given "
                         f"({', '.join(sorted(others))})")
    ordered = sorted(records, key=lambda r: (_when(r), r.id))
    base_of = _baselines(ordered, baselines)
    latest, baseline = ordered[-1], base_of[-1]
    result = latest.result
    kind = "Acceptance" if result.kind is TestKind.ACCEPTANCE else "Constancy"
    device_word = "display" if device.kind is DeviceKind.DISPLAY else "printer"
    trends = _trends(ordered, base_of)
    data = ReportData(
        device=device,
        title=f"{kind} test report — {device_word} {device.id}",
        latest=latest,
        baseline=baseline if result.kind is TestKind.CONSTANCY else None,
        verdict=result.verdict,
        conditions=_conditions(device, latest, baseline),
        figures=tuple(_row(f) for f in result.figures),
        notes=tuple(result.notes),
        period=(_when(ordered[0]), _when(latest)),
        test_count=len(ordered),
        failed_tests=tuple(r.id for r in ordered if r.result.verdict is Verdict.FAIL),
        trends=trends,
        response=_response(ordered),
        uniformity=_uniformity(ordered) if device.kind is DeviceKind.DISPLAY else None,
        white_point=_white_point(ordered) if device.kind is DeviceKind.DISPLAY else None,
        density=_density(ordered) if device.kind is DeviceKind.PRINTER else None,
    )
    present = {
        "response": data.response is not None,
        "luminance": "lmax" in trends or "lmin" in trends,
        "ambient_ratio": "ambient_ratio" in trends,
        "response_trend": "response_max_error" in trends and len(ordered) > 1,
        "uniformity": data.uniformity is not None,
        "white_point": data.white_point is not None,
        "density": data.density is not None,
        "speed": "speed" in trends,
        "contrast": "contrast" in trends,
        "dmax": "dmax" in trends,
        "base_fog": "base_fog" in trends,
    }
    if device.kind is DeviceKind.PRINTER:
        for name in ("luminance", "ambient_ratio", "uniformity", "white_point"):
            present[name] = False
    data.plots.update({name: caption for name, caption in PLOTS.items() if present[name]})
    return data


# --------------------------------------------------------------------------- plots

_FAIL_COLOUR = "#c62828"
_BAND_COLOUR = "#1565c0"


#: Figure width (inches) and the margins every plot keeps: fixed, not tight_layout (which
#: lays the text out once more per plot, a third of the report's time with long trends).
_WIDTH = 7.2
_LEFT, _RIGHT, _TOP, _BOTTOM = 0.8, 2.0, 0.35, 0.5  # inches; the legend sits right of it


def _new_figure(height: float = 3.6, rows: int = 1) -> tuple[Any, list[Any]]:
    """A figure of ``rows`` stacked axes sharing x, with room on the right for the
    legend (outside the axes: on a trend of 1,000 points no corner is free)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(_WIDTH, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    fig.subplots_adjust(left=_LEFT / _WIDTH, right=1 - _RIGHT / _WIDTH,
                        top=1 - _TOP / height, bottom=_BOTTOM / height, hspace=0.12)
    return fig, list(axes)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    fig.clear()
    return buf.getvalue()


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def _dates(when: Sequence[datetime]) -> NDArray[np.float64]:
    import matplotlib.dates as mdates

    return np.asarray(mdates.date2num(list(when)), dtype=_FLOAT)


def _draw_trend(ax: Any, trend: Trend, x: NDArray[np.float64], colour: str) -> None:
    """The values as a line, the limits as steps, the baseline band shaded, failures
    marked: a red ring where the figure failed, a red cross on every failed test."""
    ok = trend.present
    ax.plot(x[ok], trend.values[ok], "-", color=colour, lw=1,
            marker="o" if ok.sum() <= 60 else None, ms=3, label=trend.label)
    for limit, name in ((trend.low, "lower limit"), (trend.high, "upper limit")):
        if not np.isnan(limit).all():
            ax.step(x, limit, "--", where="post", color=colour, lw=0.9, alpha=0.8,
                    label=name)
    # a change limited on one side only (base + fog may rise so much) shades from the
    # baseline to that side
    lower = np.where(np.isnan(trend.baseline_low), trend.baseline, trend.baseline_low)
    upper = np.where(np.isnan(trend.baseline_high), trend.baseline, trend.baseline_high)
    band = ~np.isnan(lower) & ~np.isnan(upper) & (upper > lower)
    if band.any():
        ax.fill_between(x, lower, upper, where=band,
                        step="post", color=colour, alpha=0.12,
                        label="baseline ± change limit")
        ax.step(x, trend.baseline, ":", where="post", color=colour, lw=0.8)
    dense = ok.sum() > 100  # smaller marks where a thousand tests share the axis
    bad = trend.test_failed & ok
    if bad.any():
        ax.plot(x[bad], trend.values[bad], "x", color=_FAIL_COLOUR, ms=3 if dense else 6,
                mew=1 if dense else 1.5, label="failed test", ls="none")
    own = trend.failed & ok
    if own.any():
        ax.plot(x[own], trend.values[own], "o", mfc="none", mec=_FAIL_COLOUR,
                ms=5 if dense else 9, mew=0.8 if dense else 1.2,
                label="figure out of its limit", ls="none")


def _trend_plot(data: ReportData, keys: Sequence[str], title: str, ylabel: str) -> bytes:
    """One panel per key, stacked on a shared time axis (L'max and L'min differ by two
    decades: on one log axis a 10 % drift would not show)."""
    shown = [data.trends[k] for k in keys if k in data.trends]
    fig, axes = _new_figure(3.6 if len(shown) == 1 else 5.4, len(shown))
    for ax, trend in zip(axes, shown, strict=True):
        _draw_trend(ax, trend, _dates(trend.when), _BAND_COLOUR)
        ax.set_ylabel(f"{ylabel}" if len(shown) == 1 else f"{trend.label}\n({trend.unit})",
                      fontsize=8 if len(shown) > 1 else None)
        _time_axis(ax)
        _legend(ax)
    axes[0].set_title(title)
    return _png(fig)


def _legend(ax: Any, **where: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        labels = ["\n".join(textwrap.wrap(label, 30)) for label in unique]
        place = where or {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
        ax.legend(list(unique.values()), labels, fontsize=7, borderaxespad=0, **place)


def _response_plot(r: ResponseErrors, printer: bool) -> bytes:
    fig, (ax,) = _new_figure()
    ax.plot(r.midpoints, r.error, "o-", color=_BAND_COLOUR, ms=4, label="contrast error")
    if r.limit is not None:
        ax.axhspan(-r.limit, r.limit, color="#2e7d32", alpha=0.08)
        ax.axhline(r.limit, color="#2e7d32", ls="--", label=f"±{r.limit:g} %")
        ax.axhline(-r.limit, color="#2e7d32", ls="--")
    if r.failed.any():
        ax.plot(r.midpoints[r.failed], r.error[r.failed], "o", mfc="none",
                mec=_FAIL_COLOUR, ms=10, mew=1.4, label="out of the limit", ls="none")
    ax.set_xlabel(f"interval midpoint ({'P-value' if printer else 'driving level'})")
    ax.set_ylabel("δm/δe − 1 (%)")
    ax.set_title(f"Contrast response per interval, test #{r.test_id} "
                 f"({r.when:%Y-%m-%d})")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return _png(fig)


def _uniformity_plot(u: UniformityMap) -> bytes:
    fig, (ax,) = _new_figure(3.8)
    ax.set_position((0.08, 0.05, 0.55, 0.82))
    worst = float(np.nanmax(np.abs(u.grid)))
    scale = max(worst, u.limit or 0.0, 1.0)
    image = ax.imshow(u.grid, cmap="coolwarm", vmin=-scale, vmax=scale)
    for (r, c), value in np.ndenumerate(u.grid):  # 9 cells: labels, not pixels
        if not math.isnan(value):
            out = u.limit is not None and abs(value) > u.limit
            ax.text(c, r, f"{value:+.1f} %" + ("\nFAIL" if out else ""), ha="center",
                    va="center", fontsize=10, fontweight="bold" if out else "normal",
                    color=_FAIL_COLOUR if out else "black",
                    bbox={"facecolor": "white", "edgecolor": _FAIL_COLOUR if out else "none",
                          "alpha": 0.85, "boxstyle": "round,pad=0.3"})
    ax.set_xticks([])
    ax.set_yticks([])
    limit = f", limit {u.limit:g} %" if u.limit is not None else ""
    pattern = f"TG18-{u.pattern.upper()}, " if u.pattern else ""
    ax.set_title(f"Uniformity, {pattern}test #{u.test_id} ({u.when:%Y-%m-%d}){limit}")
    fig.colorbar(image, cax=fig.add_axes((0.7, 0.08, 0.03, 0.76)),
                 label="deviation from the centre (%)")
    return _png(fig)


def _white_point_plot(w: WhitePointDrift) -> bytes:
    import matplotlib.patches as mpatches

    fig, (ax,) = _new_figure(4.4)
    ax.set_position((_LEFT / _WIDTH, 0.3, 1 - (_LEFT + _RIGHT) / _WIDTH, 0.62))
    ax.set_aspect("equal", adjustable="datalim")
    ax.plot(w.u, w.v, "-", color="#9e9e9e", lw=0.7)
    order = ax.scatter(w.u, w.v, c=_dates(w.when), cmap="viridis", s=14, zorder=3,
                       label="white point (colour: date)")
    ax.plot(*w.target, "+", color="black", ms=12, mew=1.5,
            label="target" if w.target_named else "target (D65 assumed)")
    if w.radius is not None:
        ax.add_patch(mpatches.Circle(w.target, w.radius, fill=False, ls="--",
                                     color="#2e7d32", label=f"Δu'v' ≤ {w.radius:g}"))
    if w.test_failed.any():
        ax.plot(w.u[w.test_failed], w.v[w.test_failed], "x", color=_FAIL_COLOUR, ms=7,
                mew=1.5, label="failed test", ls="none")
    ax.plot(w.u[-1], w.v[-1], "s", mfc="none", mec="black", ms=9, label="latest")
    import matplotlib.dates as mdates

    cbar = fig.colorbar(order, cax=fig.add_axes((_LEFT / _WIDTH, 0.08, 0.45, 0.03)),
                        orientation="horizontal")
    cbar.ax.set_title("date of the test", fontsize=8)
    locator = mdates.AutoDateLocator(minticks=2, maxticks=4)
    cbar.ax.xaxis.set_major_locator(locator)
    cbar.ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("u'")
    ax.set_ylabel("v'")
    ax.set_title("White point drift (CIE 1976 u'v')")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return _png(fig)


def _density_plot(d: DensitySteps) -> bytes:
    fig, (ax,) = _new_figure()
    ax.plot(d.steps, d.density, "o-", color=_BAND_COLOUR, ms=4, label="measured density")
    if not np.isnan(d.target).all():
        ax.plot(d.steps, d.target, "k--", label="target (GSDF)")
    ax.set_xlabel("step")
    ax.set_ylabel("optical density (OD)")
    ax.set_title(f"Density per step, test #{d.test_id} ({d.when:%Y-%m-%d})")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return _png(fig)


def _render_plots(data: ReportData) -> list[tuple[str, bytes]]:
    draw = {
        "response": lambda: _response_plot(
            data.response, data.device.kind is DeviceKind.PRINTER),  # type: ignore[arg-type]
        "luminance": lambda: _trend_plot(data, ("lmax", "lmin"), "L'max and L'min",
                                         "luminance (cd/m²)"),
        "ambient_ratio": lambda: _trend_plot(data, ("ambient_ratio",), "Lamb / Lmin",
                                             "ratio"),
        "response_trend": lambda: _trend_plot(data, ("response_max_error",),
                                              "Largest contrast error vs GSDF", "%"),
        "uniformity": lambda: _uniformity_plot(data.uniformity),  # type: ignore[arg-type]
        "white_point": lambda: _white_point_plot(data.white_point),  # type: ignore[arg-type]
        "density": lambda: _density_plot(data.density),  # type: ignore[arg-type]
        "speed": lambda: _trend_plot(data, ("speed",), "Speed", "OD"),
        "contrast": lambda: _trend_plot(data, ("contrast",), "Contrast", "OD"),
        "dmax": lambda: _trend_plot(data, ("dmax",), "Dmax", "OD"),
        "base_fog": lambda: _trend_plot(data, ("base_fog",), "Base + fog", "OD"),
    }
    return [(name, draw[name]()) for name in data.plots]


# --------------------------------------------------------------------------- PDF

_FONTS: tuple[str, str] | None = None


def _fonts() -> tuple[str, str]:
    """DejaVu Sans (shipped with matplotlib) for the text: Helvetica's encoding has no
    ≤, ≥, Δ or ′, which limits and figure names need."""
    global _FONTS
    if _FONTS is None:
        import matplotlib
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        try:
            pdfmetrics.registerFont(TTFont("QASans", str(folder / "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont("QASans-Bold", str(folder / "DejaVuSans-Bold.ttf")))
            _FONTS = ("QASans", "QASans-Bold")
        except Exception:  # a trimmed matplotlib: fall back on the PDF core fonts
            _FONTS = ("Helvetica", "Helvetica-Bold")
    return _FONTS


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def report_pdf(device: Device, records: Sequence[TestRecord], *,
               baselines: Sequence[TestRecord] = (),
               compress: bool = True) -> tuple[ReportData, bytes]:
    """The report as PDF bytes (for the archive's Encapsulated PDF) and its data
    (``baselines`` as :func:`report_data`; ``compress`` False leaves the page streams
    readable, for a look at the PDF's text)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    data = report_data(device, records, baselines=baselines)
    plain, bold = _fonts()
    base = getSampleStyleSheet()
    body = ParagraphStyle("qa-body", parent=base["BodyText"], fontName=plain, fontSize=8.5,
                          leading=10.5)
    small = ParagraphStyle("qa-small", parent=body, fontSize=7.5, leading=9)
    head = ParagraphStyle("qa-head", parent=base["Heading2"], fontName=bold, fontSize=11.5,
                          spaceBefore=8, spaceAfter=4)
    title = ParagraphStyle("qa-title", parent=base["Title"], fontName=bold, fontSize=15,
                           alignment=0)
    passed = data.verdict is Verdict.PASS
    verdict_style = ParagraphStyle("qa-verdict", parent=title, fontSize=14,
                                   textColor=colors.HexColor("#2e7d32" if passed
                                                             else _FAIL_COLOUR))

    def table(rows: list[list[Any]], widths: list[float], *, header: bool = False,
              extra: Sequence[tuple[Any, ...]] = ()) -> Table:
        t = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1 if header else 0)
        style: list[tuple[Any, ...]] = [
            ("FONTNAME", (0, 0), (-1, -1), plain), ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#bdbdbd")),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
        if header:
            style += [("FONTNAME", (0, 0), (-1, 0), bold),
                      ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]
        t.setStyle(TableStyle(style + list(extra)))
        return t

    d = data.device
    story: list[Any] = [
        Paragraph(_esc(data.title), title),
        Paragraph(f"Verdict: {data.verdict.value.upper()}", verdict_style),
        Paragraph("Device", head),
        table([["id", d.id], ["kind", d.kind.value], ["manufacturer", d.manufacturer or "—"],
               ["model", d.model or "—"], ["serial number", d.serial or "—"],
               *([["called AE title", d.printer_ae]] if getattr(d, "printer_ae", "") else []),
               *([["description", d.description]] if d.description else [])],
              [4 * cm, 13 * cm]),
        Paragraph("Conditions", head),
        table([[k, Paragraph(_esc(v), body)] for k, v in data.conditions], [4 * cm, 13 * cm]),
        Paragraph("Figures of the latest test", head),
    ]
    rows: list[list[Any]] = [["figure", "value", "limit", "source", "result"]]
    extra: list[tuple[Any, ...]] = []
    for i, f in enumerate(data.figures, start=1):
        note = f"<br/><font size=6.5>{_esc(f.note)}</font>" if f.note else ""
        rows.append([Paragraph(_esc(f.label) + note, body), _fmt(f.value, f.unit), f.limit,
                     Paragraph(_esc(f.source), small), f.result])
        if f.passed is False:
            extra += [("TEXTCOLOR", (0, i), (-1, i), colors.HexColor(_FAIL_COLOUR)),
                      ("FONTNAME", (4, i), (4, i), bold),
                      ("BACKGROUND", (0, i), (-1, i), colors.HexColor("#fdecea"))]
    story.append(table(rows, [5.6 * cm, 2.6 * cm, 2.6 * cm, 4.8 * cm, 1.4 * cm],
                       header=True, extra=extra))
    if data.notes:
        story += [Paragraph("Notes", head),
                  *(Paragraph("• " + _esc(n), body) for n in data.notes)]
    first, last = data.period
    failed = len(data.failed_tests)
    story += [
        Spacer(1, 6),
        Paragraph(f"History in this report: {data.test_count} test(s) from "
                  f"{first:%Y-%m-%d} to {last:%Y-%m-%d}, {failed} failed "
                  "(marked with a red cross in the trend plots).", body),
        Spacer(1, 18),
        KeepTogether([
            Paragraph("Reviewed by (medical physicist)", head),
            table([["name", ""], ["date", ""], ["signature", ""]], [4 * cm, 13 * cm],
                  extra=[("TOPPADDING", (0, 0), (-1, -1), 12)]),
        ]),
    ]
    plots = _render_plots(data)
    if plots:
        story += [PageBreak(), Paragraph("Trends", head)]
    width = A4[0] - 4 * cm
    for name, png in plots:
        img = Image(io.BytesIO(png))
        img.drawHeight = width * img.imageHeight / img.imageWidth
        img.drawWidth = width
        story.append(KeepTogether([img, Paragraph(_esc(data.plots[name]), small),
                                   Spacer(1, 8)]))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(plain, 7)
        canvas.drawString(2 * cm, 1.2 * cm, f"printscp QA — {d.id} — {data.title} — "
                          f"page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm,
                            topMargin=1.8 * cm, bottomMargin=1.8 * cm,
                            title=f"{data.title}: {data.verdict.value.upper()}",
                            author="printscp", subject=f"QA report of {d.id}",
                            pageCompression=1 if compress else 0)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return data, buf.getvalue()


def write_report(path: str | os.PathLike[str], device: Device,
                 records: Sequence[TestRecord], *, baselines: Sequence[TestRecord] = (),
                 compress: bool = True) -> ReportData:
    """Write the PDF report to ``path`` (whole or not at all) and return its data."""
    data, pdf = report_pdf(device, records, baselines=baselines, compress=compress)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pdf", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pdf)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return data
