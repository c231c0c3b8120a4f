"""Conformance of a measured response to the GSDF, and the LUT that calibrates it.

Method (AAPM TG18 / ACR–AAPM–SIIM, as pacsDisplay implements it; docs/calibration.md):
the measured levels are sorted by driving level p with luminance L (ambient light
included).  A GSDF-conformant device spreads JND indices linearly in p between
j(Lmin) and j(Lmax), so step k -> k+1 should span
``Δj_k = (j(Lmax) - j(Lmin)) * (p[k+1] - p[k]) / (p_max - p_min)`` JNDs.  The measured
contrast per JND is ``δm = (ΔL / L_mean) / Δj_k``; the expected one ``δe`` is the same
finite difference taken on the GSDF itself between the target JNDs of the two levels
(for a 1-JND step this is ``(L(j+½) - L(j-½)) / L(j)``, and taking the same step on both
sides means a perfect GSDF device has zero error whatever the step size).
The relative error is ``δm/δe - 1``; ±10 % is the limit for diagnostic devices,
±20 % for others.  Everything here is pure numpy, free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.measurements import Measurement, MeasurementError
from lut import device as lut_device
from lut import gsdf

#: Largest relative contrast error of a diagnostic device (ACR–AAPM–SIIM).
DIAGNOSTIC_LIMIT = 0.10
#: Largest relative contrast error of any other (e.g. modality, clinical review) device.
OTHER_LIMIT = 0.20
#: Lamb/Lmin above this is a warning: ambient light starts eating the darkest JNDs.
AMBIENT_WARN = 0.25
#: Lamb/Lmin above this fails: the dark end is lost in reflections.
AMBIENT_FAIL = 2.0 / 3.0
#: TG18-LN: 18 levels, 17 intervals.
TG18_INTERVALS = 17


@dataclass(frozen=True, eq=False)
class Response:
    """Per-level and per-interval figures of one measured (or predicted) response."""

    levels: NDArray[np.float64]  #: driving levels analysed, ascending
    luminance: NDArray[np.float64]  #: cd/m², ambient included
    target_luminance: NDArray[np.float64]  #: GSDF luminance each level should have
    jnd: NDArray[np.float64]  #: measured JND index of each level
    target_jnd: NDArray[np.float64]  #: JND index each level should have
    measured_contrast: NDArray[np.float64]  #: δm per interval, dL/L per JND
    expected_contrast: NDArray[np.float64]  #: δe per interval
    error: NDArray[np.float64]  #: δm/δe - 1 per interval

    @property
    def jnds_per_step(self) -> NDArray[np.float64]:
        return np.diff(self.jnd)

    @property
    def target_jnds_per_step(self) -> NDArray[np.float64]:
        return np.diff(self.target_jnd)


def contrast_response(levels: ArrayLike, luminance: ArrayLike) -> Response:
    """The GSDF contrast response of luminances ``luminance`` at driving ``levels``.

    ``levels`` must ascend and ``luminance`` (ambient included) be > 0 at the ends and
    increase overall; the caller validated that with a message naming the file.
    """
    p = np.asarray(levels, dtype=np.float64)
    lum = np.asarray(luminance, dtype=np.float64)
    if lum[0] <= 0:
        raise MeasurementError(
            "Lmin is 0 cd/m²: the GSDF needs light at the darkest level (give the ambient "
            "luminance with --ambient)")
    if not lum[-1] > lum[0]:
        raise MeasurementError("Lmax is not above Lmin: the device shows no contrast")
    j = gsdf.jnd_index_exact(np.maximum(lum, 1e-6))
    frac = (p - p[0]) / (p[-1] - p[0])
    target_j = j[0] + frac * (j[-1] - j[0])
    target_l = gsdf.luminance(target_j)
    dj = np.diff(target_j)
    measured = np.diff(lum) / ((lum[1:] + lum[:-1]) / 2.0) / dj
    expected = np.diff(target_l) / ((target_l[1:] + target_l[:-1]) / 2.0) / dj
    return Response(p, lum, target_l, j, target_j, measured, expected, measured / expected - 1.0)


def select_levels(levels: ArrayLike, intervals: int) -> NDArray[np.int64]:
    """Indices of the measured levels nearest to ``intervals + 1`` equally spaced ones.

    With 256 or 1024 measured levels a single step spans a fraction of a JND and its
    dL/L is dominated by DDL quantisation and photometer resolution; TG18 judges the
    response over its 18 LN levels.  ``intervals`` 0 keeps every level.
    """
    p = np.asarray(levels, dtype=np.float64)
    if intervals <= 0 or p.size <= intervals + 1:
        return np.arange(p.size)
    wanted = np.linspace(p[0], p[-1], intervals + 1)
    pos = np.clip(np.searchsorted(p, wanted), 1, p.size - 1)
    nearer_left = (wanted - p[pos - 1]) <= (p[pos] - wanted)
    return np.unique(np.where(nearer_left, pos - 1, pos))


@dataclass(frozen=True, eq=False)
class Conformance:
    """The verdict on one response, with every figure the report and JSON show."""

    kind: str
    response: Response
    ambient: float
    limit: float
    max_abs_error: float
    worst_interval: int
    luminance_ratio: float
    ambient_ratio: float
    conforms_10pct: bool
    conforms_20pct: bool
    conforms: bool
    warnings: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    density: dict[str, Any] = field(default_factory=dict)

    @property
    def lmin(self) -> float:
        return float(self.response.luminance[0])

    @property
    def lmax(self) -> float:
        return float(self.response.luminance[-1])

    def worst(self) -> tuple[float, float, float]:
        """(from level, to level, relative error) of the interval furthest off the GSDF."""
        r, k = self.response, self.worst_interval
        return float(r.levels[k]), float(r.levels[k + 1]), float(r.error[k])

    def to_dict(self) -> dict[str, Any]:
        """All figures as plain JSON types (the ``--json`` output)."""
        r = self.response
        lo, hi, err = self.worst()
        return {
            "conforms": self.conforms, "limit": self.limit,
            "max_abs_error": self.max_abs_error,
            "conforms_10pct": self.conforms_10pct, "conforms_20pct": self.conforms_20pct,
            "worst_interval": {"from_ddl": lo, "to_ddl": hi, "error": err},
            "lmin": self.lmin, "lmax": self.lmax, "ambient": self.ambient,
            "luminance_ratio": self.luminance_ratio, "ambient_ratio": self.ambient_ratio,
            "jnd_min": float(r.jnd[0]), "jnd_max": float(r.jnd[-1]),
            "warnings": list(self.warnings), "failures": list(self.failures),
            "density": self.density,
            "levels": r.levels.tolist(), "luminance": r.luminance.tolist(),
            "target_luminance": r.target_luminance.tolist(),
            "intervals": [
                {"from_ddl": float(a), "to_ddl": float(b), "measured_dl_l": float(m),
                 "expected_dl_l": float(e), "error": float(x), "jnds": float(dj),
                 "target_jnds": float(tj)}
                for a, b, m, e, x, dj, tj in zip(
                    r.levels[:-1], r.levels[1:], r.measured_contrast, r.expected_contrast,
                    r.error, r.jnds_per_step, r.target_jnds_per_step, strict=True)
            ],
        }


def judge(kind: str, levels: ArrayLike, luminance: ArrayLike, ambient: float, *,
          limit: float = DIAGNOSTIC_LIMIT, intervals: int = TG18_INTERVALS,
          density: dict[str, Any] | None = None) -> Conformance:
    """Analyse a response (luminance incl. ambient per level) and give the verdict.

    Ambient ratio limits apply to displays; for hardcopy the reflected light is part
    of the viewing condition the film is calibrated for, so its ratio is information.
    """
    p = np.asarray(levels, dtype=np.float64)
    lum = np.asarray(luminance, dtype=np.float64)
    keep = select_levels(p, intervals)
    response = contrast_response(p[keep], lum[keep])
    abs_err = np.abs(response.error)
    worst = int(np.argmax(abs_err))
    max_err = float(abs_err[worst])
    lmin, lmax = float(lum[keep][0]), float(lum[keep][-1])
    ratio = ambient / lmin
    warnings: list[str] = []
    failures: list[str] = []
    if max_err > limit:
        failures.append(f"contrast response off the GSDF by {max_err:.1%} "
                        f"(limit ±{limit:.0%}) between levels {p[keep][worst]:g} and "
                        f"{p[keep][worst + 1]:g}")
    if kind == "display":
        if ratio > AMBIENT_FAIL:
            failures.append(f"ambient ratio Lamb/Lmin {ratio:.2f} > 2/3")
        elif ratio > AMBIENT_WARN:
            warnings.append(f"ambient ratio Lamb/Lmin {ratio:.2f} > 1/4")
    density = dict(density or {})
    failures += density.pop("failures", [])
    return Conformance(
        kind=kind, response=response, ambient=ambient, limit=limit, max_abs_error=max_err,
        worst_interval=worst, luminance_ratio=lmax / lmin, ambient_ratio=ratio,
        conforms_10pct=max_err <= DIAGNOSTIC_LIMIT, conforms_20pct=max_err <= OTHER_LIMIT,
        conforms=not failures, warnings=tuple(warnings), failures=tuple(failures),
        density=density,
    )


def density_check(measured: Measurement, min_density: float | None,
                  max_density: float | None) -> dict[str, Any]:
    """Dmin/Dmax the printer reached against the film's requested range (OD)."""
    dmin, dmax = float(measured.values.min()), float(measured.values.max())
    out: dict[str, Any] = {"dmin": dmin, "dmax": dmax, "required_min_density": min_density,
                           "required_max_density": max_density, "failures": []}
    if min_density is not None and dmin > min_density:
        out["failures"].append(f"Dmin {dmin:.2f} OD does not reach the requested "
                               f"Min Density {min_density:.2f} OD")
    if max_density is not None and dmax < max_density:
        out["failures"].append(f"Dmax {dmax:.2f} OD does not reach the requested "
                               f"Max Density {max_density:.2f} OD")
    return out


def analyse(measured: Measurement, *, limit: float = DIAGNOSTIC_LIMIT,
            intervals: int = TG18_INTERVALS, min_density: float | None = None,
            max_density: float | None = None) -> Conformance:
    """Conformance of the measured device as it is (before calibration)."""
    density = (density_check(measured, min_density, max_density)
               if measured.is_printer else None)
    return judge(measured.kind, measured.ddl, measured.luminance(), measured.ambient,
                 limit=limit, intervals=intervals, density=density)


def calibrate(measured: Measurement, *, input_bits: int = 8,
              min_density: float | None = None,
              max_density: float | None = None) -> lut_device.Calibration:
    """DCMTK's GSDF calibration of the measured curve (``dcmdspfn`` gives the same LUT).

    Printers are calibrated to the requested density range when one is given, as
    ``dcmdspfn +Dn/+Dx`` and as printscp renders films.
    """
    curve = measured.to_curve()
    options: dict[str, Any] = {}
    if measured.is_printer:
        options = {"min_density": min_density, "max_density": max_density}
    try:
        return lut_device.calibrate(curve, 1 << input_bits, inverse=False, **options)
    except ValueError as err:
        raise MeasurementError(f"{measured.source}: cannot calibrate: {err}") from None


def predict(measured: Measurement, calibration: lut_device.Calibration, *,
            limit: float = DIAGNOSTIC_LIMIT, intervals: int = TG18_INTERVALS,
            min_density: float | None = None, max_density: float | None = None
            ) -> Conformance:
    """Conformance expected after calibration: the same test levels, sent through the LUT.

    A patch at level p becomes LUT input ``round(p * (n-1) / max_ddl)``, which drives
    DDL ``lut[i]``, whose light is the measured curve interpolated as DCMTK does.
    """
    n = calibration.lut.size
    index = np.rint(measured.ddl * ((n - 1) / measured.max_ddl)).astype(np.int64)
    lum = calibration.device[calibration.lut[index]]
    density = (density_check(measured, min_density, max_density)
               if measured.is_printer else None)
    return judge(measured.kind, measured.ddl, lum, measured.ambient, limit=limit,
                 intervals=intervals, density=density)
