"""Device characteristic curves and GSDF calibration look-up tables (DICOM PS3.14).

A *characteristic curve* is what a photometer measured on a device: the luminance
(monitors, cameras) or optical density (printers, scanners) produced by a set of
Digital Driving Levels (DDLs).  Calibrating the device to the Grayscale Standard
Display Function means finding, for every P-value, the DDL whose light lies closest
to the GSDF luminance that P-value should have.

The reference implementation everybody compares against is DCMTK (``dcmdspfn``,
classes ``DiDisplayFunction``, ``DiGSDFunction``, ``DiGSDFLUT``, ``DiCubicSpline``
and ``DiCurveFitting``).  Calibration LUTs are only useful if a film printed here
looks like the same film printed through DCMTK, so this module reproduces DCMTK's
algorithm operation for operation, including its quirks:

* the file's DDL/value pairs are sorted by DDL; a table with gaps is completed to
  ``0..max`` by a natural cubic spline or, with ``ord N``, by a least-squares
  polynomial of order N solved from the normal equations (a *full* table is used
  as is, ``ord`` is then ignored);
* printers/scanners: OD is interpolated (not luminance), then ``L = La + L0*10^-OD``;
* the JND range comes from the *measured* extremes (not the interpolated ones),
  ambient light included;
* the GSDF is tabulated at the integer JNDs 1..1023 and interpolated by a natural
  cubic spline at ``n`` JND indices obtained by repeatedly adding a step;
* the DDL search is a forward-only scan that assumes monotony and prefers the upper
  neighbour on ties; with a Dmax restriction it may still pick the DDL just below
  the restricted range (its "closer neighbour" test looks at ``j > 0``, not the range);
* cameras and scanners (input devices) get the *inverse* LUT (DDL -> P-value).

Floating point evaluation order follows the C++ code and transcendental functions
go through :mod:`math` (the same libm DCMTK calls), so results are bit-identical,
which is what makes "same DDL for every entry" achievable.  Everything else is
vectorised numpy; a 65536-entry LUT takes a few milliseconds.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lut import gsdf

__all__ = [
    "MAX_DDL_LIMIT",
    "MAX_ORDER",
    "Calibration",
    "CharacteristicCurve",
    "DeviceKind",
    "calibrate",
    "calibration_lut",
    "device_luminance",
    "gsdf_target_luminance",
    "interpolate_curve",
    "pvalue_to_ddl",
    "read_characteristic_file",
    "write_characteristic_file",
]

#: Largest maximum DDL a characteristic file may declare (DCMTK stores DDLs as Uint16).
MAX_DDL_LIMIT = 65535
#: Largest polynomial order accepted (the range of dcmdspfn ``+Cf``).
MAX_ORDER = 99


class DeviceKind(enum.Enum):
    """The four device classes DCMTK distinguishes (dcmdspfn ``+Im/+Ic/+Ip/+Is``)."""

    MONITOR = "monitor"
    CAMERA = "camera"
    PRINTER = "printer"
    SCANNER = "scanner"

    @property
    def is_hardcopy(self) -> bool:
        """True if the curve holds optical densities, light being ``La + L0*10**-OD``."""
        return self in (DeviceKind.PRINTER, DeviceKind.SCANNER)

    @property
    def is_input(self) -> bool:
        """True for acquisition devices, which DCMTK calibrates with an inverse LUT."""
        return self in (DeviceKind.CAMERA, DeviceKind.SCANNER)


def _as_float(value: object, name: str, *, positive: bool = False) -> float:
    """Coerce an optional physical quantity, rejecting NaN/inf and negatives."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    if positive and number <= 0.0:
        raise ValueError(f"{name} must be > 0, got {number!r}")
    if number < 0.0:
        raise ValueError(f"{name} must be >= 0, got {number!r}")
    return number


def _as_int(value: object, name: str) -> int:
    """Coerce an integer parameter without silently truncating floats."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class CharacteristicCurve:
    """A measured device curve, exactly the content of a DCMTK characteristic file.

    ``values`` are luminances in cd/m² *without* ambient light for monitors and
    cameras, and optical densities for printers and scanners.  ``ddl`` may be sparse;
    :func:`interpolate_curve` completes it the way DCMTK does.  ``order`` is the
    file's ``ord`` (``None`` or 0: cubic spline, N > 0: polynomial of order N).

    Arrays are copied and made read-only, so a curve can be hashed and used as a
    cache key by renderers.  Validation is eager: a curve that exists is usable.
    Values must be monotonic (luminance ascending, OD descending with the DDL)
    because the DDL search assumes it; DCMTK only warns and then produces garbage.
    """

    kind: DeviceKind
    max_ddl: int
    ddl: NDArray[np.int64]
    values: NDArray[np.float64]
    ambient: float | None = None
    illumination: float | None = None
    order: int | None = None

    def __post_init__(self) -> None:
        try:
            kind = DeviceKind(self.kind)
        except ValueError:
            raise ValueError(f"unknown device kind {self.kind!r}") from None
        max_ddl = _as_int(self.max_ddl, "max_ddl")
        if not 1 <= max_ddl <= MAX_DDL_LIMIT:
            raise ValueError(f"max_ddl must be in 1..{MAX_DDL_LIMIT}, got {max_ddl}")

        raw_ddl = np.asarray(self.ddl)
        values = np.array(self.values, dtype=np.float64)
        if raw_ddl.ndim != 1 or values.ndim != 1:
            raise ValueError("ddl and values must be one-dimensional")
        if raw_ddl.shape != values.shape:
            raise ValueError(f"ddl has {raw_ddl.size} entries but values has {values.size}")
        if raw_ddl.size < 2:
            raise ValueError(f"a characteristic curve needs at least 2 points, got {raw_ddl.size}")
        if raw_ddl.dtype.kind == "f":
            if not np.all(np.isfinite(raw_ddl)) or np.any(raw_ddl != np.round(raw_ddl)):
                raise ValueError("DDLs must be integers")
        elif raw_ddl.dtype.kind not in "iu":
            raise ValueError(f"DDLs must be integers, got dtype {raw_ddl.dtype}")
        ddl = raw_ddl.astype(np.int64)
        if ddl[0] < 0 or ddl[-1] > max_ddl or np.any(ddl < 0) or np.any(ddl > max_ddl):
            bad = int(ddl[(ddl < 0) | (ddl > max_ddl)][0])
            raise ValueError(f"DDL {bad} outside the range 0..{max_ddl} (max_ddl)")
        steps = np.diff(ddl)
        if np.any(steps <= 0):
            i = int(np.flatnonzero(steps <= 0)[0])
            raise ValueError(
                f"DDLs must be strictly increasing: {ddl[i]} is followed by {ddl[i + 1]}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("values must be finite")
        unit = "optical density" if kind.is_hardcopy else "luminance"
        if np.any(values < 0):
            i = int(np.flatnonzero(values < 0)[0])
            raise ValueError(f"{unit} must be >= 0, got {values[i]!r} at DDL {ddl[i]}")
        # Light must not decrease with the DDL: OD descends, luminance ascends.
        wrong = np.diff(values) > 0 if kind.is_hardcopy else np.diff(values) < 0
        if np.any(wrong):
            i = int(np.flatnonzero(wrong)[0])
            trend = "descending" if kind.is_hardcopy else "ascending"
            raise ValueError(
                f"{unit} values must be monotonically {trend} with the DDL: "
                f"DDL {ddl[i]} -> {values[i]!r} but DDL {ddl[i + 1]} -> {values[i + 1]!r}"
            )

        ambient = None if self.ambient is None else _as_float(self.ambient, "ambient light")
        illumination = (
            None
            if self.illumination is None
            else _as_float(self.illumination, "illumination", positive=True)
        )
        order = None if self.order is None else _check_order(self.order)

        ddl.setflags(write=False)
        values.setflags(write=False)
        for name, value in (
            ("kind", kind),
            ("max_ddl", max_ddl),
            ("ddl", ddl),
            ("values", values),
            ("ambient", ambient),
            ("illumination", illumination),
            ("order", order),
        ):
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharacteristicCurve):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (
            self.kind,
            self.max_ddl,
            self.ddl.tobytes(),
            self.values.tobytes(),
            self.ambient,
            self.illumination,
            self.order,
        )

    @property
    def is_sparse(self) -> bool:
        """True if some DDLs are missing, i.e. DCMTK interpolates (and honours ``ord``)."""
        return self.ddl.size <= self.max_ddl

    def luminance(
        self, ambient: float | None = None, illumination: float | None = None
    ) -> NDArray[np.float64]:
        """Luminance in cd/m² at each sampled DDL, ambient light included.

        Hardcopy: ``La + L0 * 10**-OD`` (PS3.14 eq. for reflected light), computed as
        DCMTK does.  ``ambient``/``illumination`` override the file's values.
        """
        amb = _resolve_ambient(self, ambient)
        if not self.kind.is_hardcopy:
            return self.values + amb
        return _od_to_luminance(self.values, _resolve_illumination(self, illumination)) + amb


def _check_order(order: object) -> int:
    """Validate a polynomial order (the range of dcmdspfn ``+Cf``).

    An order >= the number of points is underdetermined, but DCMTK solves it anyway
    (the normal equations are only singular in exact arithmetic) and so do we.
    """
    value = _as_int(order, "polynomial order")
    if not 0 <= value <= MAX_ORDER:
        raise ValueError(f"polynomial order must be in 0..{MAX_ORDER}, got {value}")
    return value


def _resolve_ambient(curve: CharacteristicCurve, ambient: float | None) -> float:
    if ambient is not None:
        return _as_float(ambient, "ambient light")
    return 0.0 if curve.ambient is None else curve.ambient


def _resolve_illumination(curve: CharacteristicCurve, illumination: float | None) -> float:
    if illumination is not None:
        return _as_float(illumination, "illumination", positive=True)
    if curve.illumination is None:
        raise ValueError(
            f"a {curve.kind.value} curve holds optical densities: the illumination "
            "('lum' in the file, or the illumination argument) is required"
        )
    return curve.illumination


def _pow10(exponent: float) -> float:
    """``10**exponent`` through libm's pow (as DCMTK), inf on overflow like C."""
    try:
        return math.pow(10.0, exponent)
    except OverflowError:
        return math.inf


def _od_to_luminance(od: NDArray[np.float64], illumination: float) -> NDArray[np.float64]:
    """``L0 * 10**-OD`` as DCMTK's convertODtoLumTable (no ambient).

    numpy's SIMD ``power`` differs from libm in the last bit for some inputs, which
    could flip a nearest-DDL decision, hence the scalar libm loop (fast enough for
    65536 DDLs).  A wild polynomial fit can make the OD hugely negative: inf, as C.
    """
    return np.array([illumination * _pow10(-x) for x in od.tolist()], dtype=np.float64)


# --------------------------------------------------------------------------------------
# File format
# --------------------------------------------------------------------------------------

_KEYWORDS = {
    "max": "maximum DDL",
    "amb": "ambient light",
    "lum": "illumination",
    "ord": "polynomial order",
}


def read_characteristic_file(
    path: str | os.PathLike[str], kind: DeviceKind | str
) -> CharacteristicCurve:
    """Read a DCMTK characteristic file (the format of ``/usr/share/dcmtk/*.lut``).

    ``#`` starts a comment, ``max N`` must come first, ``amb``, ``lum`` and ``ord``
    are optional, then one ``DDL value`` pair per line, in any DDL order.  The file
    does not say what device it describes, hence ``kind``.  This reader is stricter
    than DCMTK (which skips bad entries with a warning): every problem is a
    ``ValueError`` naming the file and line, because a silently dropped measurement
    is a silently wrong calibration.
    """
    kind = DeviceKind(kind)
    path = Path(path)
    text = path.read_bytes().decode("latin-1")  # comments may hold any byte

    settings: dict[str, tuple[float, int]] = {}  # keyword -> (value, line)
    entries: dict[int, tuple[float, int]] = {}  # DDL -> (value, line)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        try:
            if "max" not in settings and tokens[0] != "max":
                raise ValueError(f"expected 'max <maximum DDL>' first, got {tokens[0]!r}")
            if tokens[0] in _KEYWORDS:
                key = tokens[0]
                if key in settings:
                    raise ValueError(f"duplicate '{key}' (first on line {settings[key][1]})")
                settings[key] = (_parse_setting(tokens), lineno)
                continue
            ddl, value = _parse_entry(tokens, int(settings["max"][0]))
            if ddl in entries:
                raise ValueError(f"duplicate DDL {ddl} (first on line {entries[ddl][1]})")
            entries[ddl] = (value, lineno)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None

    if "max" not in settings:
        raise ValueError(f"{path}: no 'max <maximum DDL>' entry")
    if len(entries) < 2:
        raise ValueError(f"{path}: needs at least 2 'DDL value' entries, found {len(entries)}")
    ddls = sorted(entries)
    values = [entries[d][0] for d in ddls]
    # Report a monotony violation at the line the user has to fix.
    for i in range(1, len(ddls)):
        if (values[i] > values[i - 1]) if kind.is_hardcopy else (values[i] < values[i - 1]):
            trend = "descend" if kind.is_hardcopy else "ascend"
            raise ValueError(
                f"{path}:{entries[ddls[i]][1]}: {kind.value} values must {trend} with the DDL:"
                f" DDL {ddls[i - 1]} -> {values[i - 1]!r}, DDL {ddls[i]} -> {values[i]!r}"
            )

    def setting(key: str) -> float | None:
        return settings[key][0] if key in settings else None

    order = setting("ord")
    try:
        return CharacteristicCurve(
            kind=kind,
            max_ddl=int(settings["max"][0]),
            ddl=np.array(ddls, dtype=np.int64),
            values=np.array(values, dtype=np.float64),
            ambient=setting("amb"),
            illumination=setting("lum"),
            order=None if order is None else int(order),
        )
    except ValueError as exc:  # everything was checked above; keep the file name anyway
        raise ValueError(f"{path}: {exc}") from None


def _parse_setting(tokens: list[str]) -> float:
    """Value of a ``max``/``amb``/``lum``/``ord`` line (integers for max and ord)."""
    key = tokens[0]
    if len(tokens) != 2:
        raise ValueError(f"'{key}' takes exactly one value ({_KEYWORDS[key]})")
    token = tokens[1]
    if key in ("max", "ord"):
        try:
            number = int(token)
        except ValueError:
            raise ValueError(f"'{key}' needs an integer, got {token!r}") from None
        low, high = (1, MAX_DDL_LIMIT) if key == "max" else (0, MAX_ORDER)
        if not low <= number <= high:
            raise ValueError(f"'{key}' ({_KEYWORDS[key]}) must be in {low}..{high}, got {number}")
        return number
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"'{key}' needs a number, got {token!r}") from None
    if not math.isfinite(value) or value < 0 or (key == "lum" and value == 0):
        bound = "> 0" if key == "lum" else ">= 0"
        raise ValueError(
            f"'{key}' ({_KEYWORDS[key]}) must be a finite number {bound}, got {token!r}"
        )
    return value


def _parse_entry(tokens: list[str], max_ddl: int) -> tuple[int, float]:
    """A ``DDL value`` line: integer DDL within ``0..max``, finite value >= 0."""
    if tokens[0][:1].isalpha():
        raise ValueError(f"unknown keyword {tokens[0]!r}")
    if len(tokens) != 2:
        raise ValueError(f"expected 'DDL value', got {' '.join(tokens)!r}")
    try:
        ddl = int(tokens[0])
    except ValueError:
        raise ValueError(f"DDL must be an integer, got {tokens[0]!r}") from None
    try:
        value = float(tokens[1])
    except ValueError:
        raise ValueError(f"value must be a number, got {tokens[1]!r}") from None
    if not 0 <= ddl <= max_ddl:
        raise ValueError(f"DDL {ddl} outside the range 0..{max_ddl} declared by 'max'")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"value must be a finite number >= 0, got {tokens[1]!r}")
    return ddl, value


def write_characteristic_file(curve: CharacteristicCurve, path: str | os.PathLike[str]) -> None:
    """Write ``curve`` so that DCMTK and :func:`read_characteristic_file` read it back.

    Floats are written with ``repr`` (shortest exact form), so a round trip is
    lossless.  ``max`` goes first because DCMTK requires it.
    """
    unit = "OD" if curve.kind.is_hardcopy else "luminance [cd/m^2]"
    lines = [
        f"# {curve.kind.value.capitalize()} characteristic file (DCMTK format)",
        "",
        "# maximum DDL value",
        f"max {curve.max_ddl}",
    ]
    if curve.ambient is not None:
        label = "reflected ambient light" if curve.kind.is_hardcopy else "ambient light"
        lines += ["", f"# {label} [cd/m^2]", f"amb {curve.ambient!r}"]
    if curve.illumination is not None:
        lines += ["", "# illumination [cd/m^2]", f"lum {curve.illumination!r}"]
    if curve.order is not None:
        lines += ["", "# order of the polynomial curve fitting algorithm", f"ord {curve.order}"]
    lines += ["", f"# DDL  {unit}"]
    width = len(str(curve.max_ddl))
    lines += [
        f"{d:>{width}d}  {v!r}"
        for d, v in zip(curve.ddl.tolist(), curve.values.tolist(), strict=True)
    ]
    lines += ["", "# end of file", ""]
    Path(path).write_text("\n".join(lines), encoding="ascii")


# --------------------------------------------------------------------------------------
# Interpolation (DiCubicSpline, DiCurveFitting)
# --------------------------------------------------------------------------------------


def _spline_second_derivatives(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Natural cubic spline (Numerical Recipes ``spline``), as DiCubicSpline::Function.

    The tridiagonal sweep is inherently sequential; it runs on Python floats, which
    are IEEE doubles, so the result is bit-identical to the C++ loop.
    """
    xs = x.tolist()
    ys = y.tolist()
    n = len(xs)
    y2 = [0.0] * n
    u = [0.0] * n
    for i in range(1, n - 1):
        sig = (xs[i] - xs[i - 1]) / (xs[i + 1] - xs[i - 1])
        p = sig * y2[i - 1] + 2.0
        y2[i] = (sig - 1.0) / p
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) - (ys[i] - ys[i - 1]) / (
            xs[i] - xs[i - 1]
        )
        u[i] = (6.0 * slope / (xs[i + 1] - xs[i - 1]) - sig * u[i - 1]) / p
    # Natural end conditions: qn = un = 0, so y2[n-1] = 0.
    y2[n - 1] = 0.0
    for i in range(n - 1, 0, -1):
        y2[i - 1] = y2[i - 1] * y2[i] + u[i - 1]
    return np.array(y2, dtype=np.float64)


def _spline_evaluate(
    xa: NDArray[np.float64],
    ya: NDArray[np.float64],
    y2a: NDArray[np.float64],
    x: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Evaluate the spline at ``x`` (DiCubicSpline::Interpolation, vectorised).

    Same bracket as DCMTK's bisection (end segments extrapolate), same operation
    order; at a knot the formula returns the knot value exactly, as DCMTK's shortcut.
    """
    klo = np.clip(np.searchsorted(xa, x, side="right") - 1, 0, xa.size - 2)
    khi = klo + 1
    x_lo = xa[klo]
    x_hi = xa[khi]
    h = x_hi - x_lo
    a = (x_hi - x) / h
    b = (x - x_lo) / h
    return (
        a * ya[klo]
        + b * ya[khi]
        + ((a * a * a - a) * y2a[klo] + (b * b * b - b) * y2a[khi]) * (h * h) / 6.0
    )


def _polyfit_dcmtk(
    x: NDArray[np.float64], y: NDArray[np.float64], order: int
) -> NDArray[np.float64]:
    """Least-squares polynomial coefficients exactly as DiCurveFitting computes them.

    Normal equations built with sequential sums (``cumsum`` is sequential, unlike
    ``sum``), then Gauss-Jordan elimination with partial pivoting.  Numerically this
    is a poor way to fit (DDL**10 for order 5) but matching DCMTK is the point.
    """
    m = order + 1
    basis = np.empty((m, x.size), dtype=np.float64)
    basis[0] = 1.0
    for i in range(1, m):
        basis[i] = x * basis[i - 1]
    alpha = np.empty((m, m), dtype=np.float64)
    for i in range(m):
        for j in range(i + 1):
            alpha[i, j] = alpha[j, i] = np.cumsum(basis[i] * basis[j])[-1]
    beta = np.array([np.cumsum(y * basis[i])[-1] for i in range(m)], dtype=np.float64)

    for i in range(m):
        column = np.abs(alpha[i:, i])
        column[np.isnan(column)] = -1.0  # C's '>' never picks a NaN pivot
        pivot = i + int(np.argmax(column))  # first maximum, as the strict '>' in C++
        if not column[pivot - i] > 0.0:
            if i == 0:
                raise ValueError(f"polynomial fit of order {order} is singular")
            # DCMTK stops eliminating and keeps the partial solution (an order too
            # high for the points); it is garbage, but it is DCMTK's garbage.
            break
        if pivot != i:
            alpha[[i, pivot], i:] = alpha[[pivot, i], i:]
            beta[[i, pivot]] = beta[[pivot, i]]
        mag = alpha[i, i]
        alpha[i, i:] /= mag
        beta[i] /= mag
        others = np.arange(m) != i
        factors = alpha[others, i].copy()
        alpha[others, i:] -= factors[:, None] * alpha[i, i:]
        beta[others] -= factors * beta[i]
    return beta


def _polyval_dcmtk(coeff: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``sum c[j] * x**j`` with powers by repeated multiplication (calculateValues)."""
    w = np.zeros_like(x)
    power = np.ones_like(x)
    for c in coeff.tolist():
        w += c * power
        power = power * x
    return w


def interpolate_curve(
    curve: CharacteristicCurve, *, order: int | None = None
) -> NDArray[np.float64]:
    """The curve's value (luminance w/o ambient, or OD) for every DDL ``0..max_ddl``.

    ``order`` overrides the file's ``ord`` like dcmdspfn ``+Cf``: 0 selects the cubic
    spline, N > 0 a polynomial fit of order N.  As in DCMTK, a table that already
    has every DDL is returned unchanged, whatever the order.
    """
    fit_order = curve.order if order is None else _check_order(order)
    if not curve.is_sparse:
        return curve.values.copy()
    x = curve.ddl.astype(np.float64)
    grid = np.arange(curve.max_ddl + 1, dtype=np.float64)
    if fit_order:
        return _polyval_dcmtk(_polyfit_dcmtk(x, curve.values, fit_order), grid)
    y2 = _spline_second_derivatives(x, curve.values)
    return _spline_evaluate(x, curve.values, y2, grid)


# --------------------------------------------------------------------------------------
# GSDF as DCMTK tabulates it
# --------------------------------------------------------------------------------------


@cache
def _gsdf_table() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """JND indices 1..1023, their GSDF luminance and the natural spline through them.

    PS3.14 eq. 7.1 is evaluated in DiGSDFunction's operation order with libm; the
    values agree with :func:`lut.gsdf.luminance` to ~1e-13 but bit-identity with
    DCMTK needs the same rounding.
    """
    a, b, c, d = -1.3011877, -2.5840191e-2, 8.0242636e-2, -1.0320229e-1
    e, f, g, h = 1.3646699e-1, 2.8745620e-2, -2.5468404e-2, -3.1978977e-3
    k, m = 1.2992634e-4, 1.3635334e-3
    lum = []
    for j in range(gsdf.JND_MIN, gsdf.JND_MAX + 1):
        ln = math.log(float(j))
        ln2 = ln * ln
        ln3 = ln2 * ln
        ln4 = ln3 * ln
        num = a + c * ln + e * ln2 + g * ln3 + m * ln4
        den = 1 + b * ln + d * ln2 + f * ln3 + h * ln4 + k * (ln4 * ln)
        lum.append(math.pow(10.0, num / den))
    jnd = np.arange(gsdf.JND_MIN, gsdf.JND_MAX + 1, dtype=np.float64)
    values = np.array(lum, dtype=np.float64)
    spline = _spline_second_derivatives(jnd, values)
    for array in (jnd, values, spline):
        array.setflags(write=False)
    return jnd, values, spline


_JND_COEFF = (
    71.498068,
    94.593053,
    41.912053,
    9.8247004,
    0.28175407,
    -1.1878455,
    -0.18014349,
    0.14710899,
    -0.017046845,
)


def _jnd_index(lum: float) -> float:
    """PS3.14 eq. 7.2 in DiGSDFunction::getJNDIndex's order; -1 for ``lum <= 0``."""
    if lum <= 0.0:
        return -1.0
    lg = [math.log10(lum)]
    for i in range(7):
        lg.append(lg[i] * lg[0])
    total = _JND_COEFF[0]
    for coeff, power in zip(_JND_COEFF[1:], lg, strict=True):
        total = total + coeff * power
    return total


def _gsdf_targets(jnd_min: float, jnd_max: float, count: int) -> NDArray[np.float64]:
    """GSDF luminance at ``count`` JND indices spread over ``[jnd_min, jnd_max]``.

    DCMTK accumulates ``jnd_min + dist + dist + ...`` (``cumsum`` reproduces the
    rounding) and pins the last index to ``jnd_max``.
    """
    steps = np.full(count, (jnd_max - jnd_min) / (count - 1), dtype=np.float64)
    steps[0] = jnd_min
    jidx = np.cumsum(steps)
    jidx[-1] = jnd_max
    jnd, values, spline = _gsdf_table()
    return _spline_evaluate(jnd, values, spline, jidx)


# --------------------------------------------------------------------------------------
# DDL search
# --------------------------------------------------------------------------------------


def _nearest_scan(
    values: NDArray[np.float64], targets: NDArray[np.float64], lo: int, hi: int
) -> NDArray[np.int64]:
    """For each target, DCMTK's "closest value" index, vectorised but exact.

    DCMTK walks one pointer ``j`` (starting at ``lo``) over all targets in order::

        while j < hi and values[j] < t: j += 1
        if j > 0 and |values[j-1] - t| < |values[j] - t|: j -= 1   # upper wins ties

    The pointer never rewinds by more than that one step, so on non-monotonic data
    the result depends on history.  Here every target first gets the answer of a scan
    started at ``lo`` (prefix maximum + ``searchsorted``), which equals the real scan
    whenever the previous result does not lie beyond it; the rare steps where it
    does (non-monotonic data, or a pointer that stepped below ``lo``) are replayed
    sequentially until both agree again.
    """
    n = targets.size
    prefix_max = np.maximum.accumulate(values[lo : hi + 1])
    first = np.minimum(np.searchsorted(prefix_max, targets, side="left") + lo, hi)
    below = np.maximum(first - 1, 0)
    closer = (first > 0) & (np.abs(values[below] - targets) < np.abs(values[first] - targets))
    result = first - closer.astype(np.int64)

    # Step i is right iff the real start, result[i-1], does not skip the answer.
    start = result[:-1]
    wrong = start > first[1:]
    if lo > 0:
        wrong |= (start < lo) & (values[lo - 1] >= targets[1:])
    suspects = np.flatnonzero(wrong) + 1
    if suspects.size == 0:
        return result

    vals = values.tolist()
    tgts = targets.tolist()
    firsts = first.tolist()
    out = result.tolist()
    i = 0
    while True:
        pos = int(np.searchsorted(suspects, i, side="left"))
        if pos == suspects.size:
            break
        i = int(suspects[pos])
        j = out[i - 1]
        while i < n:
            t = tgts[i]
            while j < hi and vals[j] < t:
                j += 1
            stop = j
            if j > 0 and abs(vals[j - 1] - t) < abs(vals[j] - t):
                j -= 1
            out[i] = j
            if stop == firsts[i]:  # in step with the vectorised answer again
                break
            i += 1
        i += 1
    return np.array(out, dtype=np.int64)


# --------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Calibration:
    """What DCMTK's DiGSDFLUT computes for one curve, one option set and one size.

    ``device`` is the characteristic curve (CC) in cd/m² for every DDL, ambient light
    included.  For output devices (``inverse`` False) ``target`` is the GSDF luminance
    of each of the ``lut.size`` P-values and ``lut`` the DDL to drive.  For input
    devices DCMTK inverts the roles: ``target`` is the GSDF luminance of each
    P-value ``0..max_ddl`` and ``lut`` maps a device value to a P-value.
    """

    device: NDArray[np.float64]
    target: NDArray[np.float64]
    lut: NDArray[np.uint16]
    #: GSDF JND indices of the calibrated black and white (dcmdspfn's header line).
    jnd_range: tuple[float, float]
    #: DDLs the search may use, narrowed by a density/luminance restriction.
    ddl_range: tuple[int, int]
    inverse: bool

    @property
    def psc(self) -> NDArray[np.float64]:
        """Post-standardized curve: the luminance each LUT entry ends up producing."""
        return self.target[self.lut] if self.inverse else self.device[self.lut]


def device_luminance(
    curve: CharacteristicCurve,
    *,
    ambient: float | None = None,
    illumination: float | None = None,
    order: int | None = None,
) -> NDArray[np.float64]:
    """Luminance in cd/m² for every DDL ``0..max_ddl``, ambient light included.

    This is dcmdspfn's CC column: the interpolated curve, converted from OD for
    hardcopy devices.  A film renderer indexes it with a LUT from :func:`pvalue_to_ddl`.
    """
    amb = _resolve_ambient(curve, ambient)
    values = interpolate_curve(curve, order=order)
    if curve.kind.is_hardcopy:
        values = _od_to_luminance(values, _resolve_illumination(curve, illumination))
    return values + amb


def calibrate(
    curve: CharacteristicCurve,
    n_entries: int | None = None,
    *,
    ambient: float | None = None,
    illumination: float | None = None,
    min_density: float | None = None,
    max_density: float | None = None,
    lum_range: tuple[float | None, float | None] | None = None,
    order: int | None = None,
    inverse: bool | None = None,
) -> Calibration:
    """Compute the GSDF calibration of ``curve`` exactly as DCMTK does.

    ``n_entries`` defaults to ``max_ddl + 1`` (what dcmdspfn prints).  ``ambient`` and
    ``illumination`` override the file (``+Ca``/``+Ci``); ``order`` overrides ``ord``
    (``+Cf``, 0 = spline).  ``min_density``/``max_density`` (printers only, ``+Dn``/
    ``+Dx``) restrict the calibrated range to what the film should show.
    ``lum_range=(Lmin, Lmax)`` does the same in cd/m² with ambient light included, for
    any output device (an extension: DCMTK applies this mechanism only to printer
    densities, and gives identical results for the equivalent luminances); ``None``
    in either place keeps the device limit.  ``inverse`` defaults to DCMTK's choice:
    an inverse (device value -> P-value) LUT for cameras and scanners.
    """
    kind = curve.kind
    inverse = kind.is_input if inverse is None else bool(inverse)
    count = curve.max_ddl + 1 if n_entries is None else _as_int(n_entries, "n_entries")
    if count < 2:
        raise ValueError(f"a LUT needs at least 2 entries, got {count}")

    amb = _resolve_ambient(curve, ambient)
    if kind.is_hardcopy:
        illum: float | None = _resolve_illumination(curve, illumination)
    else:  # softcopy light does not depend on it (DCMTK ignores +Ci), but check it
        illum = None if illumination is None else _as_float(illumination, "illumination")
    if (min_density is not None or max_density is not None) and kind is not DeviceKind.PRINTER:
        raise ValueError(f"min/max density only apply to printers, not a {kind.value}")
    restricted = lum_range is not None or min_density is not None or max_density is not None
    if lum_range is not None and (min_density is not None or max_density is not None):
        raise ValueError("give either lum_range or min/max density, not both")
    if restricted and inverse:
        raise ValueError("a luminance/density range only restricts forward (output) LUTs")

    def od_to_lum(od: float) -> float:
        """DCMTK's convertODtoLum, ambient included."""
        return amb + (illum or 0.0) * _pow10(-od)

    # Luminance limits (-1: unspecified, the DCMTK convention) and the JND range.
    lum_min = lum_max = -1.0
    if lum_range is not None:
        lo_req, hi_req = lum_range
        if lo_req is not None:
            lum_min = _as_float(lo_req, "lum_range minimum", positive=True)
        if hi_req is not None:
            lum_max = _as_float(hi_req, "lum_range maximum", positive=True)
    if max_density is not None:
        lum_min = od_to_lum(_as_float(max_density, "max_density"))
    if min_density is not None:
        lum_max = od_to_lum(_as_float(min_density, "min_density"))
    if min_density is not None and max_density is not None and min_density >= max_density:
        raise ValueError(f"min_density ({min_density}) must be < max_density ({max_density})")
    if lum_min >= 0 and lum_max >= 0 and lum_min >= lum_max:
        raise ValueError(f"minimum luminance {lum_min} must be < maximum {lum_max}")

    # DCMTK takes the device limits from the measured points, not the interpolation.
    if kind.is_hardcopy:
        device_min = od_to_lum(float(curve.values.max()))
        device_max = od_to_lum(float(curve.values.min()))
    else:
        device_min = float(curve.values.min()) + amb
        device_max = float(curve.values.max()) + amb
    jnd_min = _jnd_index(lum_min if lum_min >= 0 else device_min)
    jnd_max = _jnd_index(lum_max if lum_max >= 0 else device_max)
    if jnd_min < 0 or jnd_max < 0:
        raise ValueError(
            "the luminance range must be > 0 cd/m² for the GSDF "
            "(a black level of 0 needs ambient light)"
        )
    if jnd_min >= jnd_max:
        raise ValueError(f"empty JND range {jnd_min:g} - {jnd_max:g}: the device shows no contrast")

    device = device_luminance(curve, ambient=amb, illumination=illum, order=order)
    max_ddl = curve.max_ddl
    if inverse:
        target = _gsdf_targets(jnd_min, jnd_max, max_ddl + 1)
        # DCMTK scales the table index with a truncating cast.
        factor = float(max_ddl) / float(count - 1)
        index = (np.arange(count, dtype=np.float64) * factor).astype(np.int64)
        lut = _nearest_scan(target, device[index], 0, max_ddl)
        ddl_range = (0, max_ddl)
    else:
        target = _gsdf_targets(jnd_min, jnd_max, count)
        # DDLs reaching the requested limits, searched as DCMTK does (from either end).
        ddl_lo, ddl_hi = 0, max_ddl
        if lum_min >= 0:
            reached = np.flatnonzero(~(device[:max_ddl] < lum_min))
            ddl_lo = int(reached[0]) if reached.size else max_ddl
        if lum_max >= 0:
            within = np.flatnonzero(~(device[ddl_lo + 1 :] > lum_max))
            ddl_hi = ddl_lo + 1 + int(within[-1]) if within.size else ddl_lo
        lut = _nearest_scan(device, target, ddl_lo, ddl_hi)
        ddl_range = (ddl_lo, ddl_hi)
    for array in (device, target):
        array.setflags(write=False)
    lut16 = lut.astype(np.uint16)
    lut16.setflags(write=False)
    return Calibration(device, target, lut16, (jnd_min, jnd_max), ddl_range, inverse)


def calibration_lut(
    curve: CharacteristicCurve,
    *,
    ambient: float | None = None,
    illumination: float | None = None,
    min_density: float | None = None,
    max_density: float | None = None,
    lum_range: tuple[float | None, float | None] | None = None,
    order: int | None = None,
    input_bits: int = 8,
    n_entries: int | None = None,
) -> NDArray[np.uint16]:
    """The DCMTK calibration LUT for ``2**input_bits`` (or ``n_entries``) inputs.

    For monitors and printers entry ``p`` is the DDL to drive for P-value ``p``, so
    the device follows the GSDF between its (possibly restricted) Lmin and Lmax.
    For cameras and scanners it is DCMTK's inverse LUT (device value -> P-value).
    See :func:`calibrate` for the options.
    """
    if n_entries is None:
        bits = _as_int(input_bits, "input_bits")
        if not 1 <= bits <= 16:
            raise ValueError(f"input_bits must be in 1..16, got {bits}")
        n_entries = 1 << bits
    return calibrate(
        curve,
        n_entries,
        ambient=ambient,
        illumination=illumination,
        min_density=min_density,
        max_density=max_density,
        lum_range=lum_range,
        order=order,
    ).lut


def pvalue_to_ddl(curve: CharacteristicCurve, n_entries: int, **options: Any
                  ) -> NDArray[np.uint16]:
    """DDL to drive for each of ``n_entries`` equally spaced P-values (forward LUT).

    The film renderer's entry point: any table size (4096, 65536 ...), always the
    forward direction, DCMTK's algorithm, vectorised.  Callers cache the result.
    ``options`` are those of :func:`calibrate` (ambient, illumination, densities...).
    """
    return calibrate(curve, n_entries, inverse=False, **options).lut


def gsdf_target_luminance(curve: CharacteristicCurve, n_entries: int, **options: Any
                          ) -> NDArray[np.float64]:
    """GSDF luminance (cd/m², ambient included) each of ``n_entries`` P-values should get.

    Float counterpart of :func:`pvalue_to_ddl` (dcmdspfn's GSDF column): the ideal the
    calibrated device approximates with its discrete DDLs.
    """
    return calibrate(curve, n_entries, inverse=False, **options).target
