"""The criteria sets a display is judged by, as one table of limits with their sources.

A QA verdict is only as good as the number behind it, and a physicist signing a report
must be able to find that number in the standard or report it came from.  So every
limit here is one :class:`Limit` row of :data:`LIMITS`, naming the document, its edition
and section, and saying in ``note`` how far the number could be checked.  Where a
source's number was not at hand when this table was written, the row says so and
carries ``None``: the figure is then computed and reported, but not judged.  A limit
guessed to fill a gap would make a pass that means nothing.

What could be checked, and against what (docs/qa.md has the table):

* The GSDF contrast limits ±10 % (diagnostic) / ±20 % (other) and the ambient ratio
  limits Lamb/Lmin ≤ 2/3 (TG18 limit) with a warning above 1/4 (TG18 and ACR) are
  those :mod:`calibration.analysis` already applies (``printscp calibrate analyze``),
  and pacsDisplay (M. Flynn, Henry Ford Health; a TG18 and TG270 author) applies the
  same (its docs/MODULES.md and CHANGELOG).
* The uniformity *definitions*: TG18's maximum luminance deviation
  ``200 · (Lmax - Lmin) / (Lmax + Lmin)`` and TG270's luminance uniformity deviation
  from the median ``100 · max |L - median| / median`` are as pacsDisplay's uniLum
  computes them "as defined in AAPM reports 270 and TG-18".
* The D65 white point (CIE 1931 2°: x 0.3127, y 0.3290; u' 0.1978, v' 0.4683).
* The other numbers (TG18's 170 cd/m², 250/100 and 30 %; TG270's 350 cd/m²) are the
  reports' as widely quoted; the reports' own text was not at hand to re-read, which
  each row's note says.  IEC 62563-2:2021 and DIN 6868-157:2014 are sold documents
  whose text was not at hand at all: their rows are ``None`` throughout.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum

from calibration.qa.results import FIGURE_KEYS, TestKind


class CriteriaSet(StrEnum):
    """The display criteria a test is judged by (``--criteria``)."""

    TG18 = "tg18"  #: AAPM On-line Report No. 03, TG18 (2005)
    TG270 = "tg270"  #: AAPM Report No. 270, TG270 (2019)
    IEC62563_2 = "iec62563-2"  #: IEC 62563-2:2021, acceptance and constancy tests
    DIN6868_157 = "din6868-157"  #: DIN 6868-157:2014-11, Bildwiedergabesysteme


#: The criteria string of printer tests (PS3.14 Annex D film QC; :mod:`calibration.qa.film`).
PRINTER_CRITERIA = "ps3.14-film"


class Use(StrEnum):
    """Which displays a row applies to.  TG18 says primary/secondary, TG270
    diagnostic/modality, ACR diagnostic/other; here: diagnostic and other."""

    DIAGNOSTIC = "diagnostic"
    OTHER = "other"
    ALL = "all"


class Uniformity(StrEnum):
    """How a set defines the uniformity figure from luminances at 5 or 9 positions."""

    #: TG18 maximum luminance deviation: 200 · (Lmax - Lmin) / (Lmax + Lmin), in %.
    MAX_DEVIATION = "max-deviation"
    #: TG270 LUDM: 100 · max |L - median| / median, in %.
    MEDIAN_DEVIATION = "median-deviation"


_BOTH = (TestKind.ACCEPTANCE, TestKind.CONSTANCY)
_CONSTANCY = (TestKind.CONSTANCY,)

TG18 = "AAPM On-line Report No. 03 (TG18, 2005)"
TG270 = "AAPM Report No. 270 (TG270, 2019)"
ACR = "ACR–AAPM–SIIM Technical Standard for Electronic Practice of Medical Imaging"
IEC = "IEC 62563-2:2021"
DIN = "DIN 6868-157:2014-11"

_NOT_RE_READ = "as widely quoted; the report's text was not at hand to re-read"
_NOT_AT_HAND = "not in the sources at hand: reported, not judged"


@dataclass(frozen=True)
class Limit:
    """One row of the table: a figure's limit for one set, test kind and display use.

    ``low``/``high`` None on both sides means the figure is reported without a limit,
    and ``note`` says why (mostly: the number was not at hand).
    """

    criteria: CriteriaSet
    kinds: tuple[TestKind, ...]
    use: Use
    key: str  #: a :data:`FIGURE_KEYS` key
    low: float | None
    high: float | None
    source: str  #: document, edition, section
    note: str = ""

    def __post_init__(self) -> None:
        if self.key not in FIGURE_KEYS:
            raise ValueError(f"unknown figure key {self.key!r}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"{self.criteria} {self.key}: low {self.low} > high {self.high}")

    def applies(self, kind: TestKind, diagnostic: bool) -> bool:
        use = Use.DIAGNOSTIC if diagnostic else Use.OTHER
        return kind in self.kinds and self.use in (use, Use.ALL)


def _rows(criteria: CriteriaSet, source: str, note: str, keys: tuple[str, ...],
          kinds: tuple[TestKind, ...] = _BOTH) -> list[Limit]:
    return [Limit(criteria, kinds, Use.ALL, k, None, None, source, note) for k in keys]


_CHANGES = ("lmax_change", "lmin_change", "response_change", "white_point_drift")

#: The table.  Percent figures in %, luminance in cd/m², ratios plain, u'v' distances
#: plain.  A (set, kind, use, key) has at most one row; a key without a row for a set
#: is reported without a limit.
LIMITS: tuple[Limit, ...] = (
    # --- AAPM TG18 -------------------------------------------------------------------
    Limit(CriteriaSet.TG18, _BOTH, Use.DIAGNOSTIC, "response_max_error", None, 10.0,
          f"{TG18} §4.3 (luminance response); {ACR}",
          "primary displays; the ±10 % of printscp calibrate analyze"),
    Limit(CriteriaSet.TG18, _BOTH, Use.OTHER, "response_max_error", None, 20.0,
          f"{TG18} §4.3 (luminance response); {ACR}",
          "secondary displays; the ±20 % of printscp calibrate analyze"),
    Limit(CriteriaSet.TG18, _BOTH, Use.DIAGNOSTIC, "lmax", 170.0, None,
          f"{TG18} §4.3 (luminance response)", f"primary displays; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.OTHER, "lmax", None, None,
          f"{TG18} §4.3 (luminance response)",
          f"secondary displays: {_NOT_AT_HAND}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.DIAGNOSTIC, "luminance_ratio", 250.0, None,
          f"{TG18} §4.3 (luminance response)", f"L'max/L'min, primary; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.OTHER, "luminance_ratio", 100.0, None,
          f"{TG18} §4.3 (luminance response)", f"L'max/L'min, secondary; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.ALL, "ambient_ratio", None, 2.0 / 3.0,
          f"{TG18} §4.2 (ambient light); {ACR}",
          "Lamb/Lmin (Lmin without ambient); above 1/4 is a warning (TG18 and ACR), "
          "above 2/3 fails (TG18), as pacsDisplay grades it"),
    Limit(CriteriaSet.TG18, _BOTH, Use.ALL, "uniformity_max_dev", None, 30.0,
          f"{TG18} §4.4 (luminance uniformity, TG18-UNL10/UNL80)",
          f"200·(Lmax-Lmin)/(Lmax+Lmin) over the positions; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.ALL, "white_point_distance", None, None,
          f"{TG18} (display chromaticity)",
          "TG18 compares the u'v' of the displays of one workstation with each other, "
          "not one display with a target: reported, not judged"),
    *_rows(CriteriaSet.TG18, TG18,
           "TG18 holds constancy tests to its acceptance limits; a limit on the change "
           "since the baseline is not in the sources at hand: reported, not judged",
           _CHANGES, _CONSTANCY),
    # --- AAPM TG270 ------------------------------------------------------------------
    Limit(CriteriaSet.TG270, _BOTH, Use.DIAGNOSTIC, "response_max_error", None, 10.0,
          f"{TG270} (luminance response, GSDF); {ACR}",
          f"diagnostic displays; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG270, _BOTH, Use.OTHER, "response_max_error", None, 20.0,
          f"{TG270} (luminance response, GSDF); {ACR}",
          f"modality and other displays; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG270, _BOTH, Use.DIAGNOSTIC, "lmax", 350.0, None,
          f"{TG270} (display categories: diagnostic); {ACR}",
          f"diagnostic displays (mammography asks more, not modelled); {_NOT_RE_READ}"),
    *_rows(CriteriaSet.TG270, TG270, _NOT_AT_HAND,
           ("luminance_ratio", "ambient_ratio", "uniformity_max_dev",
            "white_point_distance")),
    *_rows(CriteriaSet.TG270, TG270, _NOT_AT_HAND, _CHANGES, _CONSTANCY),
    # --- IEC 62563-2 and DIN 6868-157: not at hand ----------------------------------
    *_rows(CriteriaSet.IEC62563_2, IEC, _NOT_AT_HAND,
           ("response_max_error", "lmax", "luminance_ratio", "ambient_ratio",
            "uniformity_max_dev", "white_point_distance")),
    *_rows(CriteriaSet.IEC62563_2, IEC, _NOT_AT_HAND, _CHANGES, _CONSTANCY),
    *_rows(CriteriaSet.DIN6868_157, DIN, _NOT_AT_HAND,
           ("response_max_error", "lmax", "luminance_ratio", "ambient_ratio",
            "uniformity_max_dev", "white_point_distance")),
    *_rows(CriteriaSet.DIN6868_157, DIN, _NOT_AT_HAND, _CHANGES, _CONSTANCY),
)

#: Each set's uniformity definition (its value is what ``uniformity_max_dev`` holds).
#: IEC 62563-2 and DIN 6868-157's own definitions were not at hand: TG18's is used,
#: and the figure's note says so.
UNIFORMITY: dict[CriteriaSet, Uniformity] = {
    CriteriaSet.TG18: Uniformity.MAX_DEVIATION,
    CriteriaSet.TG270: Uniformity.MEDIAN_DEVIATION,
    CriteriaSet.IEC62563_2: Uniformity.MAX_DEVIATION,
    CriteriaSet.DIN6868_157: Uniformity.MAX_DEVIATION,
}

#: Lamb/Lmin above this is worth a note though it passes (TG18 and ACR; pacsDisplay).
AMBIENT_WARN = 0.25

#: CIE 1931 2° chromaticity of D65, the default white point target.
D65_XY = (0.3127, 0.3290)


def _check(limits: tuple[Limit, ...]) -> None:
    seen: set[tuple[CriteriaSet, TestKind, Use, str]] = set()
    for row in limits:
        uses = (Use.DIAGNOSTIC, Use.OTHER) if row.use is Use.ALL else (row.use,)
        for kind in row.kinds:
            for use in uses:
                key = (row.criteria, kind, use, row.key)
                if key in seen:
                    raise ValueError(f"two limits for {key}")
                seen.add(key)


_check(LIMITS)


def limits(criteria: CriteriaSet | str, kind: TestKind,
           diagnostic: bool = True) -> dict[str, Limit]:
    """The rows that apply to one test, by figure key."""
    criteria = CriteriaSet(criteria)
    return {row.key: row for row in LIMITS
            if row.criteria is criteria and row.applies(kind, diagnostic)}


#: How long a test stays current, per criteria string.  The sources' own schedules were
#: not at hand (TG18 and TG270 spread tests over daily visual checks, periodic
#: measurements and an annual physicist's test; DIN 6868-157 and IEC 62563-2 set their
#: own).  Chosen: a measured constancy test every 3 months for displays, the shortest
#: schedule for measured tests in the programmes this tool was modelled on; printers
#: every day, because PS3.14 sets no schedule and the film QC it borrows (sensitometric
#: speed, contrast and base+fog) is the daily processor/printer QC of film departments.
#: ``qa status`` may override these (issue 19 §5: "configurable").
CONSTANCY_INTERVALS: dict[str, datetime.timedelta] = {
    CriteriaSet.TG18.value: datetime.timedelta(days=91),
    CriteriaSet.TG270.value: datetime.timedelta(days=91),
    CriteriaSet.IEC62563_2.value: datetime.timedelta(days=91),
    CriteriaSet.DIN6868_157.value: datetime.timedelta(days=91),
    PRINTER_CRITERIA: datetime.timedelta(days=1),
}


def constancy_interval(criteria: str, kind: TestKind = TestKind.CONSTANCY
                       ) -> datetime.timedelta:
    """How long a test of ``criteria`` stays current: after it, a constancy test is due.

    The same for both kinds: an acceptance test is followed by the first constancy
    test one interval later.  ``ValueError`` for an unknown criteria string.
    """
    TestKind(kind)
    try:
        return CONSTANCY_INTERVALS[str(criteria)]
    except KeyError:
        known = ", ".join(CONSTANCY_INTERVALS)
        raise ValueError(f"unknown criteria {criteria!r} (known: {known})") from None
