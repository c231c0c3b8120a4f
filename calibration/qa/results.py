"""What a QA test produces: its figures, each against its limit, and the verdict.

Every criteria set, display or printer, reports the same shape: a tuple of
:class:`Figure` (a named value, its unit, the limit it was held to and the source of
that limit) and the series behind the plots.  The store keeps a :class:`TestResult`
as JSON, and the trend plots and ``qa status`` read figures back by their ``key``:
keys are stable names (:data:`FIGURE_KEYS`), never the labels shown to people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TestKind(StrEnum):
    """Why a device is tested (IEC 62563-2, DIN 6868-157 and AAPM TG18 wording)."""

    __test__ = False  # not a pytest class

    ACCEPTANCE = "acceptance"  #: at installation: sets the baseline
    CONSTANCY = "constancy"  #: on a schedule: compared with the baseline


class DeviceKind(StrEnum):
    DISPLAY = "display"
    PRINTER = "printer"


#: A site's own limits by figure key: (low, high), either None.
SiteLimits = dict[str, tuple[float | None, float | None]]


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"


#: Stable figure keys, with the unit each is reported in.  A criteria set reports the
#: subset it judges; a figure without a limit is informative (``passed`` None).
FIGURE_KEYS: dict[str, str] = {
    # displays
    "response_max_error": "%",  #: largest |δm/δe - 1| over the GSDF intervals
    "lmax": "cd/m²",  #: L'max, ambient included
    "lmin": "cd/m²",  #: L'min, ambient included
    "luminance_ratio": "",  #: L'max / L'min
    "lamb": "cd/m²",  #: ambient luminance Lamb
    "ambient_ratio": "",  #: Lamb / Lmin (Lmin without ambient)
    "uniformity_max_dev": "%",  #: largest deviation from the centre, TG18-UNL
    "white_point_distance": "",  #: Δu'v' from the target white point
    "white_point_drift": "",  #: Δu'v' from the baseline's white point
    "lmax_change": "%",  #: L'max change since the baseline
    "lmin_change": "%",  #: L'min change since the baseline
    "response_change": "%",  #: largest change of the response error since the baseline
    # printers (densities in OD)
    "base_fog": "OD",  #: base + fog (unexposed film)
    "dmin": "OD",  #: lowest density printed
    "dmax": "OD",  #: highest density printed
    "speed": "OD",  #: mid-density step's density (processor/printer QC "speed")
    "contrast": "OD",  #: density difference between the two contrast steps
    "speed_change": "OD",  #: since the baseline
    "contrast_change": "OD",  #: since the baseline
    "base_fog_change": "OD",  #: since the baseline
    "dmax_change": "OD",  #: since the baseline
}


@dataclass(frozen=True)
class Figure:
    """One computed figure and, when the criteria set judges it, its limit."""

    key: str  #: one of :data:`FIGURE_KEYS`
    value: float | None  #: None when the input did not allow it (``note`` says why)
    low: float | None = None  #: pass if value >= low (None: no lower limit)
    high: float | None = None  #: pass if value <= high (None: no upper limit)
    source: str = ""  #: where the limit comes from: "AAPM TG18 (2005) §4.3.1.3"
    note: str = ""

    def __post_init__(self) -> None:
        if self.key not in FIGURE_KEYS:
            raise ValueError(f"unknown figure key {self.key!r}")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"figure {self.key}: value {self.value!r} is not finite")

    @property
    def unit(self) -> str:
        return FIGURE_KEYS[self.key]

    @property
    def judged(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def passed(self) -> bool | None:
        """True/False against the limit; None when not judged or not computed."""
        if not self.judged or self.value is None:
            return None
        return (self.low is None or self.value >= self.low) and \
            (self.high is None or self.value <= self.high)

    @property
    def limit(self) -> str:
        """The limit as people read it: "≤ 10 %", "≥ 350 cd/m²", "250 … 300"."""
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{self.low:g} … {self.high:g}{unit}"
        if self.low is not None:
            return f"≥ {self.low:g}{unit}"
        if self.high is not None:
            return f"≤ {self.high:g}{unit}"
        return ""

    def held_to(self, site: SiteLimits) -> Figure:
        """This figure held to the site's limit for its key, if ``site`` has one (its
        source then says "site limit", and the note says which limit it replaced)."""
        if self.key not in site:
            return self
        low, high = site[self.key]
        notes = [self.note] if self.note else []
        if self.judged:
            notes.append(f"the set's limit ({self.source or self.limit}) replaced by the site's")
        return Figure(self.key, self.value, low, high, "site limit", "; ".join(notes))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "low": self.low, "high": self.high,
                "source": self.source, "note": self.note}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        return cls(str(data["key"]), data.get("value"), data.get("low"), data.get("high"),
                   str(data.get("source", "")), str(data.get("note", "")))


class Unjudged(ValueError):
    """A test none of whose figures has a limit: it cannot pass or fail."""


@dataclass(frozen=True)
class TestResult:
    """One test of one device: its figures, the series behind its plots, the verdict.

    ``series`` holds lists of numbers (JSON-able) by name, e.g. ``levels``,
    ``luminance``, ``error`` (δm/δe - 1 per GSDF interval, in %), ``uniformity`` (deviation per
    position), ``white_point`` ([u', v']); for printers ``steps``, ``density``,
    ``target_density``.  ``inputs`` is the parsed measurement input, kept with the
    test so that a figure can always be recomputed from what was measured.
    """

    __test__ = False

    device_kind: DeviceKind
    kind: TestKind
    criteria: str  #: a CriteriaSet value (``tg18`` …) or ``ps3.14-film`` for printers
    figures: tuple[Figure, ...]
    series: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys = [f.key for f in self.figures]
        if len(keys) != len(set(keys)):
            raise ValueError(f"a figure is reported twice: {keys}")


    def judged(self) -> TestResult:
        """This result, if at least one figure was held to a limit; else :class:`Unjudged`.

        A verdict needs a limit: a criteria set whose numbers were not at hand (IEC
        62563-2 here) would otherwise pass any device, and become its baseline."""
        if not any(f.passed is not None for f in self.figures):
            raise Unjudged(f"criteria {self.criteria}: no figure of this test is held to a "
                           "limit (the set's numbers are not at hand; see docs/qa.md), so "
                           "it has no verdict: choose another criteria set or give site "
                           "limits (--limit FIGURE=LOW:HIGH)")
        return self

    @property
    def verdict(self) -> Verdict:
        """FAIL when any judged figure fails its limit."""
        return Verdict.FAIL if any(f.passed is False for f in self.figures) else Verdict.PASS

    @property
    def failed(self) -> tuple[Figure, ...]:
        return tuple(f for f in self.figures if f.passed is False)

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)

    def value(self, key: str) -> float | None:
        fig = self.figure(key)
        return None if fig is None else fig.value

    def to_json(self) -> dict[str, Any]:
        return {"device_kind": self.device_kind.value, "kind": self.kind.value,
                "criteria": self.criteria, "verdict": self.verdict.value,
                "figures": [f.to_json() for f in self.figures], "series": self.series,
                "inputs": self.inputs, "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        return cls(DeviceKind(data["device_kind"]), TestKind(data["kind"]),
                   str(data["criteria"]),
                   tuple(Figure.from_json(f) for f in data.get("figures", ())),
                   dict(data.get("series") or {}), dict(data.get("inputs") or {}),
                   tuple(data.get("notes") or ()))
