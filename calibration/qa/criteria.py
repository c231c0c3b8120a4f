"""The criteria sets a display is judged by, as one table of limits with their sources.

A QA verdict is only as good as the number behind it, and a physicist signing a report
must be able to find that number in the standard or report it came from.  So every
limit here is one :class:`Limit` row of :data:`LIMITS`, naming the document, its edition
and section, and saying in ``note`` how far the number could be checked.  Where a
source's number was not at hand when this table was written, the row says so and
carries ``None``: the figure is then computed and reported, but not judged.  A limit
guessed to fill a gap would make a pass that means nothing.

What could be checked, and against what (docs/qa.md has the table):

* The GSDF contrast limits ±10 % (diagnostic) / ±20 % (other) are those
  :mod:`calibration.analysis` applies (``printscp calibrate analyze``) and pacsDisplay
  (M. Flynn, Henry Ford Health, a TG18 author and TG270 co-chair) draws as its bands
  (its docs/MODULES.md, quoting ACR–AAPM–SIIM).
* Ambient: Lamb/Lmin above 2/3 fails, above 1/4 is a warning, as
  :mod:`calibration.analysis` and pacsDisplay grade it ("yellow for TG18 and ACR
  warning (<1/4), red for TG18 limit (<2/3)"); EIZO's RadiCS manual (FlexScan MX190,
  ch. 10, "Correlation between ACR and RadiCS") applies ACR's "Lamb < Lmin/1.5".
* Uniformity definitions: TG18's maximum luminance deviation
  ``200 · (Lmax - Lmin) / (Lmax + Lmin)`` and TG270's luminance uniformity deviation
  from the median ``100 · max |L - median| / median`` as pacsDisplay's uniLum computes
  them "as defined in AAPM reports 270 and TG-18"; the 30 % limit of the former as
  RadiCS applies it for ACR (TG18-UN80/UN10 levels).
* DIN 6868-157: the requirements per application class as EIZO publishes them for
  RadiCS (www.eizo.de, "RadiCS-Anwendungsklassen", Stand 2018/01, with the
  DIN 6868-157 room classes): projection radiography (class III) L'max ≥ 250 cd/m²,
  L'max/L'min ≥ 250, GSDF ±10 %, homogeneity < 25 %; CT and fluoroscopy (IV, V)
  ≥ 150 cd/m², ≥ 100, ±15 %, < 25 %.  Diagnostic displays are held to class III,
  others to IV/V.  How DIN 6868-157 computes homogeneity was not at hand: RadiCS
  judges it corner against centre, which is what is used.
* The TG18 schedule: "tests that medical physicists or QC technologists perform
  monthly / quarterly" (RadiCS manual, "Cautions" on AAPM constancy testing).
* The D65 white point (CIE 1931 2°: x 0.3127, y 0.3290; u' 0.1978, v' 0.4683).

TG18's 170 cd/m² and 250/100 are the report's as widely quoted; its text was not at
hand to re-read, which those rows say.  IEC 62563-2:2021 is a sold document whose
text was not at hand: its rows are ``None``.  No source at hand gave a limit on the
change since the baseline (L'max, L'min, response, white point drift) or on the
white point's distance from a target: those figures are reported, and judged only
against a site's own limit (``site_limits`` of
:func:`calibration.qa.display.evaluate_display`).
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
    #: Corner against centre: 100 · max |L - Lcentre| / Lcentre, in % (RadiCS for DIN).
    CENTRE_DEVIATION = "centre-deviation"


_BOTH = (TestKind.ACCEPTANCE, TestKind.CONSTANCY)
_CONSTANCY = (TestKind.CONSTANCY,)

TG18 = "AAPM On-line Report No. 03 (TG18, 2005)"
TG270 = "AAPM Report No. 270 (TG270, 2019)"
ACR = "ACR–AAPM–SIIM Technical Standard for Electronic Practice of Medical Imaging"
IEC = "IEC 62563-2:2021"
DIN = "DIN 6868-157:2014-11"
EIZO_DIN = ("as EIZO tabulates DIN 6868-157 for RadiCS (RadiCS-Anwendungsklassen, "
            "Stand 2018/01)")
RADICS_ACR = "as RadiCS applies ACR (RadiCS manual, chapter 10)"
PACSDISPLAY = "as pacsDisplay and calibrate analyze apply it"

_NOT_RE_READ = "as widely quoted; the report's text was not at hand to re-read"
_NOT_AT_HAND = "not in the sources at hand: reported, not judged"
_NO_CHANGE_LIMIT = ("no limit on the change since the baseline in the sources at hand: "
                    "reported, judged only against a site limit")


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

    @property
    def judged(self) -> bool:
        return self.low is not None or self.high is not None

    def applies(self, kind: TestKind, diagnostic: bool) -> bool:
        use = Use.DIAGNOSTIC if diagnostic else Use.OTHER
        return kind in self.kinds and self.use in (use, Use.ALL)


def _rows(criteria: CriteriaSet, source: str, note: str, keys: tuple[str, ...],
          kinds: tuple[TestKind, ...] = _BOTH) -> list[Limit]:
    return [Limit(criteria, kinds, Use.ALL, k, None, None, source, note) for k in keys]


_CHANGES = ("lmax_change", "lmin_change", "response_change", "white_point_drift")
_WHITE = ("the sources at hand judge u'v' differences across one screen or between the "
          "displays of a workstation (ACR: Δu'v' < 0.010), not the distance from a "
          "target: reported, judged only against a site limit")

#: The table.  Percent figures in %, luminance in cd/m² (ambient included: L'max),
#: ratios plain, u'v' distances plain.  A (set, kind, use, key) has at most one row; a
#: figure without a row is reported without a limit.
LIMITS: tuple[Limit, ...] = (
    # --- AAPM TG18 -------------------------------------------------------------------
    Limit(CriteriaSet.TG18, _BOTH, Use.DIAGNOSTIC, "response_max_error", None, 10.0,
          f"{TG18} §4.3 (luminance response); {ACR}",
          f"primary displays; {PACSDISPLAY}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.OTHER, "response_max_error", None, 20.0,
          f"{TG18} §4.3 (luminance response); {ACR}",
          f"secondary displays; {PACSDISPLAY}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.DIAGNOSTIC, "lmax", 170.0, None,
          f"{TG18} §4.3 (luminance response)", f"L'max, primary displays; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.OTHER, "lmax", None, None,
          f"{TG18} §4.3 (luminance response)", f"secondary displays: {_NOT_AT_HAND}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.DIAGNOSTIC, "luminance_ratio", 250.0, None,
          f"{TG18} §4.3 (luminance response)",
          f"L'max/L'min, primary; {_NOT_RE_READ} (RadiCS applies > 250 for ACR)"),
    Limit(CriteriaSet.TG18, _BOTH, Use.OTHER, "luminance_ratio", 100.0, None,
          f"{TG18} §4.3 (luminance response)", f"L'max/L'min, secondary; {_NOT_RE_READ}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.ALL, "ambient_ratio", None, 2.0 / 3.0,
          f"{TG18} §4.2 (reflection, ambient light); {ACR}",
          "Lamb/Lmin, Lmin without ambient; above 1/4 is a warning (TG18 and ACR), above "
          "2/3 fails, as pacsDisplay grades it (calibrate analyze divides by L'min); "
          f"ACR: Lamb < Lmin/1.5, {RADICS_ACR}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.ALL, "uniformity_max_dev", None, 30.0,
          f"{TG18} §4.4 (luminance uniformity, TG18-UNL10/UNL80); {ACR}",
          f"200·(Lmax-Lmin)/(Lmax+Lmin) over the positions; 30 % {RADICS_ACR}"),
    Limit(CriteriaSet.TG18, _BOTH, Use.ALL, "white_point_distance", None, None,
          f"{TG18} §4.8 (display chromaticity); {ACR}", _WHITE),
    *_rows(CriteriaSet.TG18, TG18, _NO_CHANGE_LIMIT, _CHANGES, _CONSTANCY),
    # --- AAPM TG270 ------------------------------------------------------------------
    Limit(CriteriaSet.TG270, _BOTH, Use.DIAGNOSTIC, "response_max_error", None, 10.0,
          f"{TG270} (luminance response, GSDF); {ACR}",
          f"diagnostic displays; {PACSDISPLAY} (pacsDisplay is by TG270's co-chair)"),
    Limit(CriteriaSet.TG270, _BOTH, Use.OTHER, "response_max_error", None, 20.0,
          f"{TG270} (luminance response, GSDF); {ACR}",
          f"modality and other displays; {PACSDISPLAY}"),
    Limit(CriteriaSet.TG270, _BOTH, Use.ALL, "lmax", None, None, f"{TG270}; {ACR}",
          f"{_NOT_AT_HAND} (the ACR figure differs between its editions: RadiCS shows "
          "L'max > 450 cd/m² for an ACR edition)"),
    *_rows(CriteriaSet.TG270, TG270, _NOT_AT_HAND,
           ("luminance_ratio", "ambient_ratio", "uniformity_max_dev")),
    Limit(CriteriaSet.TG270, _BOTH, Use.ALL, "white_point_distance", None, None,
          TG270, _WHITE),
    *_rows(CriteriaSet.TG270, TG270, _NO_CHANGE_LIMIT, _CHANGES, _CONSTANCY),
    # --- IEC 62563-2: not at hand ----------------------------------------------------
    *_rows(CriteriaSet.IEC62563_2, IEC, _NOT_AT_HAND,
           ("response_max_error", "lmax", "luminance_ratio", "ambient_ratio",
            "uniformity_max_dev", "white_point_distance")),
    *_rows(CriteriaSet.IEC62563_2, IEC, _NO_CHANGE_LIMIT, _CHANGES, _CONSTANCY),
    # --- DIN 6868-157, by application class (EIZO's table) ---------------------------
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.DIAGNOSTIC, "response_max_error", None, 10.0,
          f"{DIN}, application class III (projection radiography)", EIZO_DIN),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.OTHER, "response_max_error", None, 15.0,
          f"{DIN}, application classes IV/V (fluoroscopy, CT)", EIZO_DIN),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.DIAGNOSTIC, "lmax", 250.0, None,
          f"{DIN}, application class III (projection radiography)",
          f"L'max (DIN's Lmax includes the ambient light); {EIZO_DIN}"),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.OTHER, "lmax", 150.0, None,
          f"{DIN}, application classes IV/V (fluoroscopy, CT)",
          f"L'max (DIN's Lmax includes the ambient light); {EIZO_DIN}"),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.DIAGNOSTIC, "luminance_ratio", 250.0, None,
          f"{DIN}, application class III (projection radiography)",
          f"L'max/L'min; {EIZO_DIN}"),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.OTHER, "luminance_ratio", 100.0, None,
          f"{DIN}, application classes IV/V (fluoroscopy, CT)", f"L'max/L'min; {EIZO_DIN}"),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.ALL, "uniformity_max_dev", None, 25.0,
          f"{DIN}, application classes I-V (homogeneity)",
          f"< 25 % {EIZO_DIN}; computed corner against centre, as RadiCS does for DIN "
          "(DIN 6868-157's own formula was not at hand)"),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.ALL, "ambient_ratio", None, None, DIN,
          f"DIN limits the room's illuminance per room class, not Lamb/Lmin: "
          f"{_NOT_AT_HAND}"),
    Limit(CriteriaSet.DIN6868_157, _BOTH, Use.ALL, "white_point_distance", None, None,
          DIN, _NOT_AT_HAND),
    *_rows(CriteriaSet.DIN6868_157, DIN, _NO_CHANGE_LIMIT, _CHANGES, _CONSTANCY),
)

#: Each set's uniformity definition (its value is what ``uniformity_max_dev`` holds).
#: IEC 62563-2's own definition was not at hand: TG18's is used, and the figure's note
#: says so.
UNIFORMITY: dict[CriteriaSet, Uniformity] = {
    CriteriaSet.TG18: Uniformity.MAX_DEVIATION,
    CriteriaSet.TG270: Uniformity.MEDIAN_DEVIATION,
    CriteriaSet.IEC62563_2: Uniformity.MAX_DEVIATION,
    CriteriaSet.DIN6868_157: Uniformity.CENTRE_DEVIATION,
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


#: How long a test stays current, per criteria string.  Displays: 3 months, the longer
#: end of TG18's "monthly / quarterly" measured constancy tests by QC technologists (as
#: the RadiCS manual summarises AAPM's three tiers: daily by the user, monthly/quarterly
#: measured, annually by the physicist); TG270, IEC 62563-2 and DIN 6868-157's own
#: schedules were not at hand, and the same 3 months is used for them.  Printers: every
#: day, because PS3.14 sets no schedule and the film QC it borrows (sensitometric speed,
#: contrast and base+fog) is the daily processor/printer QC of film departments.
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
