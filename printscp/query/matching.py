r"""C-FIND attribute matching (PS3.4 C.2.2.2), once in Python and once as SQLite conditions.

The archive's index answers a C-FIND in two passes: SQL on a few *normalised columns*
narrows the candidates quickly, then :func:`match_dataset` checks each candidate's stored
attributes exactly.  Both passes must agree, or a query silently loses records, so both
are built here from the same parsing and normalisation of key and stored values:

* :func:`normalise` is what the index writes into a column (``None`` = SQL ``NULL`` for an
  absent or empty value).  Python matching compares exactly these normalised strings, so
  for a single-valued column :func:`sql_condition` selects *exactly* what :func:`matches`
  accepts; for multi-valued columns and sequences it is a prefilter that may let through
  records the Python check then rejects, never the other way round.
* :func:`classify` tells which of the standard's matching types applies to a key.

Column normalisation (the contract with the index):

* every value is stripped of the padding its VR makes insignificant (PS3.5 6.2: leading
  and trailing spaces for AE, AS, CS, DS, IS, LO, SH, PN, DA, TM, DT; trailing only for
  LT, ST, UT, UC, UR; trailing NUL/space for UI); empty values are dropped and the rest
  joined with ``\`` (LT, ST and UT are never split: their text may hold backslashes);
* DA → ``YYYYMMDD`` (the ACR-NEMA ``YYYY.MM.DD`` is accepted);
* TM → ``HHMMSS.FFFFFF`` (missing parts as zeros: a value stands for the start of the
  period it names);
* DT → ``YYYYMMDDHHMMSS.FFFFFF``, converted to UTC when the value carries an offset
  (C.2.2.2.5: "the offset from UTC shall be taken into account"); values without an offset
  are left as they are (local time, unknown zone);
* a DA column followed by its TM column concatenates to the DT form, which is what the
  combined date-time matching of C.2.2.2.5.1 compares;
* IS → canonical integer (``+007`` → ``7``), DS and FL/FD → :func:`repr` of the float,
  binary integers → decimal, AT → ``GGGGEEEE``; so numeric equality is string equality
  (CP-2305 leaves IS/DS matching to the implementation; this is our choice);
* PN → per component group, components stripped and trailing empty components and groups
  removed (``DOE^JOHN^^`` → ``DOE^JOHN``), original case kept;
* values that do not parse (a stored DA of ``2026``) are kept stripped but otherwise raw,
  and compare as strings in both passes alike.

Decisions where the standard leaves room (to be stated in the Conformance Statement):

* Person names match component group by component group: a key group that is empty puts
  no constraint on that group, so ``DOE^JOHN`` matches ``DOE^JOHN=ドウ^ジョン``.
* PN matching is case-insensitive by default (C.2.2.2.1 lets the SCP choose).  Folding is
  per character (Unicode case folding where it maps one character to one, else lower
  case), so ``?`` still stands for one stored character and SQLite's ``GLOB`` can do the
  same with character classes, without any user-defined SQL function.  ``fuzzy_pn`` (the
  Extended Negotiation of fuzzy semantic matching) also ignores diacritics, again per
  character (``É`` → ``e``).  Every other VR is case-sensitive, as the standard requires.
* Wild card matching applies to AE, CS, LO, LT, PN, SH, ST, UC, UR, UT (C.2.2.2.4); a value
  of only ``*`` is Universal Matching for any string VR (the standard says so for wild card
  VRs; SCUs also send it for dates and UIDs).  SQL uses ``GLOB`` with the literal
  characters escaped, so ``%`` and ``_`` are never wild cards.
* Date/time single values and range bounds stand for the whole period they name: the TM
  key ``1015`` matches 10:15:00 to 10:15:59.999999, the upper bound ``-11`` runs to
  11:59:59.999999, the DT ``2026`` is the whole year.  A range whose start is after its end
  matches nothing (the standard requires start ≤ end; C.2.2.2.5.1 is the way to say
  "22:00 to 06:00 the next day").  ``-`` alone is Universal Matching.  A DT such as
  ``20260101-0800`` is read as one value with an offset when the offset is valid, else as
  a range.
* Several values in a key that is not a UID: any value may match (what most SCPs do);
  with ``multiple_value_matching`` (its Extended Negotiation, C.2.2.2.8) every key value
  must match some stored value.
* The key ``""`` (two QUOTATION MARKs) is Empty Value Matching: it matches records where
  the attribute is absent or empty.
* A stored value that is absent or empty matches only Universal and Empty Value Matching
  (PS3.4 K.2.2.1.1.1 for worklists; for Q/R, C.2.2.1.2's "unknown value" sentence is read,
  as by dcm4chee, not to make unknown values match non-empty keys).
* A sequence key whose single item holds only Universal keys is Universal Matching (it is
  a request to return the sequence), so records without the sequence are not lost.
* Keys that are malformed (a sequence key with several items, a date that is not a date)
  raise :class:`InvalidKeyError`; the SCP answers with a failure status.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pydicom.datadict import dictionary_VM, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

__all__ = [
    "DEFAULT_IGNORED",
    "InvalidKeyError",
    "MatchKind",
    "classify",
    "datetime_pairs",
    "fold_pn",
    "identifier_matcher",
    "match_dataset",
    "matches",
    "matches_datetime_pair",
    "normalise",
    "sql_condition",
    "sql_datetime_pair",
]


class InvalidKeyError(ValueError):
    """A key the standard gives no meaning to; the caller answers with a failure status."""


class MatchKind(enum.Enum):
    """The matching types of PS3.4 C.2.2.2, as :func:`classify` assigns them to a key."""

    UNIVERSAL = "universal"  #: zero length, ``*``, ``-``, or an all-universal sequence item
    EMPTY = "empty value"  #: ``""``: only absent or empty stored values match
    SINGLE_VALUE = "single value"
    WILDCARD = "wild card"
    RANGE = "range"  #: DA, TM, DT with ``-``
    UID_LIST = "list of UID"  #: UI with several values
    SEQUENCE = "sequence"
    MULTIPLE_VALUES = "multiple values"  #: any other key with several values


#: Identifier attributes that describe the query rather than select records: Specific
#: Character Set, Query/Retrieve Level and View, Retrieve AE Title, Instance Availability,
#: Timezone Offset From UTC.  Group 0000/0002 and group lengths are skipped as well.
DEFAULT_IGNORED: frozenset[int] = frozenset(
    {0x00080005, 0x00080052, 0x00080053, 0x00080054, 0x00080056, 0x00080201}
)

WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_DATETIME_VRS = frozenset({"DA", "TM", "DT"})
_STRIP_BOTH = frozenset({"AE", "AS", "CS", "DS", "IS", "LO", "SH", "PN", "DA", "TM", "DT"})
_STRIP_TRAILING = frozenset({"LT", "ST", "UT", "UC", "UR"})
_UNSPLIT = frozenset({"LT", "ST", "UT"})  # VM 1 text: a backslash is text, not a delimiter
_STRING_VRS = _STRIP_BOTH | _STRIP_TRAILING | {"UI"}
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})

_TM_MIN = "000000.000000"
_TM_MAX = "235959.999999"

Opts = dict[str, bool]


# -- value access and normalisation ---------------------------------------------------


def _raw_items(elem: DataElement) -> list[object]:
    """The element's values as a list, splitting a backslash string built by hand."""
    value = elem.value
    if value is None:
        return []
    if isinstance(value, str):
        if elem.VR not in _UNSPLIT and "\\" in value:
            return list(value.split("\\"))
        return [value]
    if isinstance(value, bytes | bytearray):
        return [bytes(value)]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _text(item: object) -> str:
    """A value as DICOM wrote it (IS/DS/DA keep their original string when pydicom has it)."""
    original = getattr(item, "original_string", None)
    return original if isinstance(original, str) else str(item)


def _strip(vr: str, text: str) -> str:
    """Remove the padding PS3.5 6.2 makes insignificant for ``vr``."""
    if vr in _STRIP_BOTH:
        return text.strip(" \x00")
    if vr in _STRIP_TRAILING:
        return text.rstrip(" \x00")
    if vr == "UI":
        return text.strip(" \x00")
    return text


def _norm_pn(text: str) -> str:
    """Strip each component, drop trailing empty components and groups."""
    groups = []
    for group in text.split("="):
        comps = [c.strip(" ") for c in group.split("^")]
        while comps and not comps[-1]:
            comps.pop()
        groups.append("^".join(comps))
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


_DA_RE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TM_RE = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?")
_DT_RE = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?"
)


def _da(text: str) -> str | None:
    """``YYYYMMDD`` for a valid date, else None."""
    if re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", text):
        text = text.replace(".", "")
    m = _DA_RE.fullmatch(text)
    if not m:
        return None
    try:
        dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    return text


def _tm(text: str, *, upper: bool) -> str | None:
    """``HHMMSS.FFFFFF`` at the start (or, with ``upper``, the end) of the period named."""
    m = _TM_RE.fullmatch(text)
    if not m:
        return None
    hh, mm, ss, frac = m.groups()
    if int(hh) > 23 or (mm and int(mm) > 59) or (ss and int(ss) > 60):
        return None
    fill = "9" if upper else "0"
    minute = mm or ("59" if upper else "00")
    second = ss or ("59" if upper else "00")
    return f"{hh}{minute}{second}.{(frac or '').ljust(6, fill)}"


def _dt(text: str, *, upper: bool) -> str | None:
    """``YYYYMMDDHHMMSS.FFFFFF`` (UTC when an offset is given) at the start or end."""
    m = _DT_RE.fullmatch(text)
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, sign, oh, om = m.groups()
    try:
        y = int(year)
        mo = int(month) if month else (12 if upper else 1)
        last = calendar.monthrange(y, mo)[1] if 1 <= mo <= 12 else 31
        d = int(day) if day else (last if upper else 1)
        value = dt.datetime(
            y, mo, d,
            int(hh) if hh else (23 if upper else 0),
            int(mm) if mm else (59 if upper else 0),
            min(int(ss), 59) if ss else (59 if upper else 0),
            int((frac or "").ljust(6, "9" if upper else "0")),
        )
        if sign:
            if int(oh) > 14 or int(om) > 59:
                return None
            offset = dt.timedelta(hours=int(oh), minutes=int(om))
            value -= offset if sign == "+" else -offset
    except (ValueError, OverflowError):
        return None
    return (f"{value.year:04d}{value.month:02d}{value.day:02d}{value.hour:02d}"
            f"{value.minute:02d}{value.second:02d}.{value.microsecond:06d}")


def _norm_text(vr: str, text: str) -> str:
    """The normalised form of one stored (or single key) string value of ``vr``."""
    text = _strip(vr, text)
    if vr == "PN":
        return _norm_pn(text)
    if vr == "DA":
        return _da(text) or text
    if vr == "TM":
        return _tm(text, upper=False) or text
    if vr == "DT":
        return _dt(text, upper=False) or text
    if vr == "IS":
        try:
            return str(int(text))
        except ValueError:
            return text
    if vr == "DS":
        try:
            return repr(float(text))
        except ValueError:
            return text
    return text


def _norm_item(vr: str, item: object) -> str | None:
    """One stored value normalised, or None when it is empty or not comparable as text."""
    if vr in _INT_VRS:
        return str(int(item))  # type: ignore[call-overload]
    if vr in _FLOAT_VRS:
        return repr(float(item))  # type: ignore[arg-type]
    if vr == "AT":
        return f"{int(Tag(item)):08X}"  # type: ignore[arg-type]
    if isinstance(item, bytes):
        return None
    return _norm_text(vr, _text(item)) or None


def _vr_of(elem: DataElement, fallback: str | None = None) -> str:
    vr = str(elem.VR)
    if fallback and (vr == "UN" or "or" in vr):
        return fallback
    return vr


def _stored_values(elem: DataElement | None, vr: str | None = None) -> list[str]:
    """The stored element's non-empty normalised values (what the column joins)."""
    if elem is None or elem.VR == "SQ":
        return []
    use = _vr_of(elem, vr)
    out = []
    for item in _raw_items(elem):
        value = _norm_item(use, item)
        if value:
            out.append(value)
    return out


def normalise(elem: DataElement) -> str | None:
    r"""The column value the index stores for ``elem``: normalised values joined by ``\``.

    ``None`` (SQL ``NULL``) for an absent, empty, binary or sequence value; see the module
    documentation for each VR's form.  The index must write columns with this function and
    nothing else, or :func:`sql_condition` and :func:`matches` disagree.
    """
    values = _stored_values(elem)
    return "\\".join(values) if values else None


# -- person name folding --------------------------------------------------------------

_PN_SPECIAL = frozenset("=^\\*?")


def _fold_case_char(c: str) -> str:
    folded = c.casefold()
    if len(folded) != 1:
        folded = c.lower()
        if len(folded) != 1:
            return c
    return c if folded in _PN_SPECIAL and c not in _PN_SPECIAL else folded


def _fold_fuzzy_char(c: str) -> str:
    decomposed = unicodedata.normalize("NFD", c)
    base = decomposed[0]
    if any(not unicodedata.combining(x) for x in decomposed[1:]) or base in _PN_SPECIAL:
        base = c
    return _fold_case_char(base)


_FOLDERS: dict[str, Callable[[str], str]] = {"case": _fold_case_char, "fuzzy": _fold_fuzzy_char}
_PREIMAGES: dict[str, dict[str, str]] = {}


def _preimages(mode: str) -> dict[str, str]:
    """For each folded character, every character that folds to it (built once, lazily).

    Planes 3 and up hold no characters with case or canonical decompositions, so the scan
    stops at U+2FFFF (the CJK compatibility ideographs of plane 2 decompose).
    """
    table = _PREIMAGES.get(mode)
    if table is None:
        fold = _FOLDERS[mode]
        groups: dict[str, list[str]] = {}
        for cp in range(0x30000):
            if 0xD800 <= cp < 0xE000:
                continue
            c = chr(cp)
            f = fold(c)
            if f != c:
                groups.setdefault(f, [f]).append(c)
        table = {k: "".join(v) for k, v in groups.items()}
        _PREIMAGES[mode] = table
    return table


def _pn_mode(opts: Opts) -> str | None:
    if opts.get("fuzzy_pn"):
        return "fuzzy"
    if opts.get("case_insensitive_pn", True):
        return "case"
    return None


def fold_pn(text: str, *, fuzzy: bool = False) -> str:
    """Fold a person name the way case-insensitive (or fuzzy) PN matching compares it."""
    fold = _FOLDERS["fuzzy" if fuzzy else "case"]
    return "".join(fold(c) for c in text)


def _pn_groups(text: str) -> list[str]:
    return [*text.split("=", 2), "", ""][:3]


# -- key parsing ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One key value, parsed: its matching type, text, and date/time bounds."""

    kind: MatchKind
    text: str = ""
    lo: str | None = None
    hi: str | None = None


def _bounds(vr: str, text: str, *, upper: bool) -> str:
    if vr == "DA":
        value = _da(text)
    elif vr == "TM":
        value = _tm(text, upper=upper)
    else:
        value = _dt(text, upper=upper)
    if value is None:
        raise InvalidKeyError(f"not a valid {vr} value: {text!r}")
    return value


def _dt_valid(text: str) -> bool:
    return not text or _dt(text, upper=False) is not None


def _parse_datetime(vr: str, text: str) -> _Part:
    """Single value or range (C.2.2.2.5) of a DA, TM or DT key value."""
    if vr == "DT" and _dt(text, upper=False) is not None:
        return _Part(MatchKind.SINGLE_VALUE, text, _bounds(vr, text, upper=False),
                     _bounds(vr, text, upper=True))
    if "-" not in text:
        if vr == "DA":
            value = _bounds(vr, text, upper=False)
            return _Part(MatchKind.SINGLE_VALUE, text, value, value)
        return _Part(MatchKind.SINGLE_VALUE, text, _bounds(vr, text, upper=False),
                     _bounds(vr, text, upper=True))
    if vr == "DT":
        splits = [i for i, ch in enumerate(text) if ch == "-"
                  and _dt_valid(text[:i]) and _dt_valid(text[i + 1:])]
        if not splits:
            raise InvalidKeyError(f"not a valid DT range: {text!r}")
        start, end = text[:splits[0]], text[splits[0] + 1:]
    else:
        start, end = text.split("-", 1)
    start, end = start.strip(" "), end.strip(" ")
    if not start and not end:
        return _Part(MatchKind.UNIVERSAL)
    return _Part(MatchKind.RANGE, text,
                 _bounds(vr, start, upper=False) if start else None,
                 _bounds(vr, end, upper=True) if end else None)


def _parse_value(vr: str, raw: str) -> _Part | None:
    """Parse one key value; None when it is empty (no constraint from it)."""
    if raw.strip(" ") == '""':
        return _Part(MatchKind.EMPTY)
    text = _strip(vr, raw)
    if vr == "PN":
        text = _norm_pn(text)
    if not text:
        return None
    if vr in _STRING_VRS and set(text) == {"*"}:
        return _Part(MatchKind.UNIVERSAL)
    if vr in _DATETIME_VRS:
        return _parse_datetime(vr, text)
    if vr in WILDCARD_VRS and ("*" in text or "?" in text):
        return _Part(MatchKind.WILDCARD, text)
    return _Part(MatchKind.SINGLE_VALUE, _norm_text(vr, text))


def _parse_key(elem: DataElement) -> tuple[MatchKind, list[_Part]]:
    """The key's overall matching type and its parsed values (non-sequence keys)."""
    vr = str(elem.VR)
    parts: list[_Part] = []
    for item in _raw_items(elem):
        if vr in _INT_VRS | _FLOAT_VRS or vr == "AT":
            parts.append(_Part(MatchKind.SINGLE_VALUE, _norm_item(vr, item) or ""))
        elif isinstance(item, bytes):
            if item:
                parts.append(_Part(MatchKind.SINGLE_VALUE, item.hex()))
        else:
            part = _parse_value(vr, _text(item))
            if part is not None:
                parts.append(part)
    if not parts:
        return MatchKind.UNIVERSAL, []
    if len(parts) == 1:
        return parts[0].kind, parts
    if vr == "UI":
        return MatchKind.UID_LIST, parts
    return MatchKind.MULTIPLE_VALUES, parts


def _ignored(tag: BaseTag, skip: Iterable[int] = ()) -> bool:
    return (tag.group in (0x0000, 0x0002) or tag.element == 0x0000
            or int(tag) in DEFAULT_IGNORED or int(tag) in skip)


def _sequence_item(elem: DataElement) -> Dataset | None:
    """The key item of a sequence key, or None when it is Universal Matching."""
    items = list(elem.value or [])
    if not items:
        return None
    if len(items) > 1:
        raise InvalidKeyError(f"sequence key {elem.tag} has {len(items)} items, not one")
    item = items[0]
    for sub in item:
        if not _ignored(sub.tag) and classify(sub) is not MatchKind.UNIVERSAL:
            return item
    return None


def classify(elem: DataElement) -> MatchKind:
    """How ``elem``, a key of a C-FIND Identifier, matches (PS3.4 C.2.2.2).

    Raises :class:`InvalidKeyError` for a key with no defined meaning (an unparseable date
    or time, a sequence key with more than one item).
    """
    if elem.VR == "SQ":
        return MatchKind.UNIVERSAL if _sequence_item(elem) is None else MatchKind.SEQUENCE
    return _parse_key(elem)[0]


# -- Python matching ------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL)


def _value_predicate(vr: str, part: _Part, opts: Opts) -> Callable[[str], bool]:
    """A test of one normalised stored value against one parsed key value."""
    if vr == "PN":
        mode = _pn_mode(opts)
        fold = _FOLDERS[mode] if mode else None
        key = "".join(fold(c) for c in part.text) if fold else part.text
        tests = [(i, _glob_regex(g)) for i, g in enumerate(_pn_groups(key)) if g]

        def pn(value: str) -> bool:
            folded = "".join(fold(c) for c in value) if fold else value
            groups = _pn_groups(folded)
            return all(rx.fullmatch(groups[i]) for i, rx in tests)

        return pn
    if part.kind is MatchKind.WILDCARD:
        return _glob_regex(part.text).fullmatch  # type: ignore[return-value]
    if vr in _DATETIME_VRS:
        lo, hi = part.lo, part.hi
        return lambda v: (lo is None or v >= lo) and (hi is None or v <= hi)
    text = part.text
    return lambda v: v == text


def _parts_test(vr: str, kind: MatchKind, parts: list[_Part], opts: Opts
                ) -> Callable[[list[str]], bool]:
    """A test of a record's normalised values against a key's parsed values, built
    once per key: the predicates (patterns compiled) serve every record."""
    if kind is MatchKind.UNIVERSAL:
        return lambda values: True
    tests: list[Callable[[list[str]], bool]] = []
    for part in parts:
        if part.kind is MatchKind.UNIVERSAL:
            tests.append(lambda values: True)
        elif part.kind is MatchKind.EMPTY:
            tests.append(lambda values: not values)
        else:
            predicate = _value_predicate(vr, part, opts)
            tests.append(lambda values, predicate=predicate: any(map(predicate, values)))
    if kind is MatchKind.MULTIPLE_VALUES and opts.get("multiple_value_matching"):
        return lambda values: all(test(values) for test in tests)
    return lambda values: any(test(values) for test in tests)


def matches(key: DataElement, stored: DataElement | None, *, fuzzy_pn: bool = False,
            case_insensitive_pn: bool = True, multiple_value_matching: bool = False,
            combined_datetime: bool = False) -> bool:
    """Whether the stored attribute ``stored`` (None: absent) satisfies the key ``key``.

    ``combined_datetime`` only matters inside sequence keys (see :func:`match_dataset`).
    """
    opts: Opts = {"fuzzy_pn": fuzzy_pn, "case_insensitive_pn": case_insensitive_pn,
                  "multiple_value_matching": multiple_value_matching,
                  "combined_datetime": combined_datetime}
    return _matches(key, stored, opts)


KeyTest = Callable[[DataElement | None], bool]


def _key_test(key: DataElement, opts: Opts) -> KeyTest | None:
    """A test of a record's attribute (None: absent) against ``key``, parsed once;
    None when the key is Universal Matching (every record matches it)."""
    if key.VR == "SQ":
        item = _sequence_item(key)
        if item is None:
            return None
        item_test = _dataset_test(item, (), opts)

        def sequence(stored: DataElement | None) -> bool:
            if stored is None or stored.VR != "SQ" or not stored.value:
                return False
            return any(item_test(candidate) for candidate in stored.value)

        return sequence
    kind, parts = _parse_key(key)
    if kind is MatchKind.UNIVERSAL:
        return None
    vr = str(key.VR)
    test = _parts_test(vr, kind, parts, opts)
    if vr not in _STRING_VRS | _INT_VRS | _FLOAT_VRS | {"AT"}:  # binary: compare the bytes
        def binary(stored: DataElement | None) -> bool:
            if stored is not None and stored.VR == "SQ":
                return False
            return test([item.hex() for item in _raw_items(stored)
                         if isinstance(item, bytes) and item] if stored is not None else [])

        return binary

    def text(stored: DataElement | None) -> bool:
        if stored is not None and stored.VR == "SQ":
            return False
        return test(_stored_values(stored, vr))

    return text


def _matches(key: DataElement, stored: DataElement | None, opts: Opts) -> bool:
    test = _key_test(key, opts)
    return test is None or test(stored)


def datetime_pairs(identifier: Dataset) -> list[tuple[BaseTag, BaseTag]]:
    """(date, time) key pairs for combined date-time matching (PS3.4 C.2.2.2.5.1).

    A DA key ``<Name>Date`` pairs with the TM key ``<Name>Time`` when both are in the
    Identifier (Study Date/Time, Scheduled Procedure Step Start Date/Time, ...).
    """
    pairs = []
    for elem in identifier:
        keyword = keyword_for_tag(elem.tag) if elem.VR == "DA" else ""
        if not keyword.endswith("Date"):
            continue
        for other in identifier:
            if other.VR == "TM" and keyword_for_tag(other.tag) == keyword[:-4] + "Time":
                pairs.append((elem.tag, other.tag))
    return pairs


def _combined_bounds(date_key: DataElement,
                     time_key: DataElement) -> tuple[str | None, str | None] | None:
    """The DT-form bounds of a date and time key pair, or None when not combinable."""
    d_kind, d_parts = _parse_key(date_key)
    t_kind, t_parts = _parse_key(time_key)
    if d_kind not in (MatchKind.SINGLE_VALUE, MatchKind.RANGE):
        return None
    if t_kind not in (MatchKind.SINGLE_VALUE, MatchKind.RANGE, MatchKind.UNIVERSAL):
        return None
    t_lo = t_parts[0].lo if t_parts else None
    t_hi = t_parts[0].hi if t_parts else None
    d = d_parts[0]
    lo = d.lo + (t_lo or _TM_MIN) if d.lo else None
    hi = d.hi + (t_hi or _TM_MAX) if d.hi else None
    return lo, hi


def matches_datetime_pair(date_key: DataElement, time_key: DataElement,
                          stored_date: DataElement | None, stored_time: DataElement | None,
                          **opts: bool) -> bool:
    """Combined date-time matching of a DA and TM pair (PS3.4 C.2.2.2.5.1).

    ``20261101-20261102`` with ``2200-0600`` is 1 November 22:00 to 2 November 06:00:59.
    A date key that is universal, empty or multi-valued (or such a time key) falls back to
    matching the two attributes separately.  A record without a time matches when any
    moment of its day lies in the range.
    """
    bounds = _combined_bounds(date_key, time_key)
    if bounds is None:
        return matches(date_key, stored_date, **opts) and matches(time_key, stored_time, **opts)
    dates = _stored_values(stored_date, "DA")
    if not dates:
        return False
    times = _stored_values(stored_time, "TM")
    lo, hi = bounds
    if times:
        latest = earliest = dates[0] + times[0]
    else:  # unknown time of day: the record matches if any moment of its day does
        latest, earliest = dates[0] + _TM_MAX, dates[0] + _TM_MIN
    return (lo is None or latest >= lo) and (hi is None or earliest <= hi)


def match_dataset(identifier: Dataset, stored: Dataset, *, skip: Iterable[int] = (),
                  fuzzy_pn: bool = False, case_insensitive_pn: bool = True,
                  multiple_value_matching: bool = False,
                  combined_datetime: bool = False) -> bool:
    """Whether every key of ``identifier`` matches ``stored`` (the record's attributes).

    Tags in ``skip`` and :data:`DEFAULT_IGNORED`, group 0000/0002 and group lengths are
    not matched.  With ``combined_datetime`` (its Extended Negotiation was accepted) the
    pairs of :func:`datetime_pairs` match as one date-time, at every sequence depth.
    To check many records against one identifier, :func:`identifier_matcher`.
    """
    return identifier_matcher(
        identifier, skip=skip, fuzzy_pn=fuzzy_pn, case_insensitive_pn=case_insensitive_pn,
        multiple_value_matching=multiple_value_matching,
        combined_datetime=combined_datetime)(stored)


def identifier_matcher(identifier: Dataset, *, skip: Iterable[int] = (),
                       fuzzy_pn: bool = False, case_insensitive_pn: bool = True,
                       multiple_value_matching: bool = False,
                       combined_datetime: bool = False) -> Callable[[Dataset], bool]:
    """:func:`match_dataset` for one identifier, as a test of records.

    The keys are parsed once and Universal Matching keys dropped: a query's records
    are then each checked against the few keys that constrain them (a study query by
    name checks one key per record, not nine), with patterns compiled once.
    """
    opts: Opts = {"fuzzy_pn": fuzzy_pn, "case_insensitive_pn": case_insensitive_pn,
                  "multiple_value_matching": multiple_value_matching,
                  "combined_datetime": combined_datetime}
    return _dataset_test(identifier, skip, opts)


def _dataset_test(identifier: Dataset, skip: Iterable[int], opts: Opts
                  ) -> Callable[[Dataset], bool]:
    skip = set(skip)
    done: set[int] = set()
    pairs: list[tuple[BaseTag, BaseTag, DataElement, DataElement]] = []
    if opts.get("combined_datetime"):
        for date_tag, time_tag in datetime_pairs(identifier):
            if _ignored(date_tag, skip) or _ignored(time_tag, skip):
                continue
            done |= {int(date_tag), int(time_tag)}
            pairs.append((date_tag, time_tag, identifier[date_tag], identifier[time_tag]))
    tests: list[tuple[BaseTag, KeyTest]] = []
    for elem in identifier:
        if int(elem.tag) in done or _ignored(elem.tag, skip):
            continue
        test = _key_test(elem, opts)
        if test is not None:
            tests.append((elem.tag, test))

    def matcher(stored: Dataset) -> bool:
        for date_tag, time_tag, date_key, time_key in pairs:
            if not matches_datetime_pair(date_key, time_key, stored.get(date_tag),
                                         stored.get(time_tag), **opts):
                return False
        return all(test(stored.get(tag)) for tag, test in tests)

    return matcher


# -- SQL ------------------------------------------------------------------------------

_COLUMN_RE = re.compile(r'(?:[A-Za-z_]\w*\.)?(?:[A-Za-z_]\w*|"[^"]+")')


def _check_column(column: str) -> None:
    if not _COLUMN_RE.fullmatch(column):
        raise ValueError(f"not a column name: {column!r}")


def _glob_literal(text: str) -> str:
    """``text`` as a GLOB pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _glob_pattern(pattern: str, mode: str | None) -> str:
    """A DICOM wild card pattern as GLOB; folded PN characters become character classes."""
    table = _preimages(mode) if mode else {}
    out = []
    for c in pattern:
        if c in "*?":
            out.append(c)
        elif c in table:
            out.append("[" + table[c] + "]")
        else:
            out.append(_glob_literal(c))
    return "".join(out)


def _sql_group(expr: str, index: int) -> str:
    """SQL for component group ``index`` of a PN in ``expr``, as ``str.split('=', 2)``."""
    if index == 0:
        return f"substr({expr} || '=', 1, instr({expr} || '=', '=') - 1)"
    rest = f"substr({expr}, instr({expr} || '=', '=') + 1)"
    if index == 1:
        return _sql_group(rest, 0)
    return f"substr({rest}, instr({rest} || '=', '=') + 1)"


def _is_multi_valued(tag: BaseTag, vr: str) -> bool:
    if vr in _UNSPLIT:
        return False
    try:
        return dictionary_VM(tag) != "1"
    except KeyError:
        return True


Cond = tuple[str, list[object]]


def _sql_part(column: str, vr: str, part: _Part, multi: bool, opts: Opts) -> Cond | None:
    """SQL for one parsed key value; None when no restriction can be expressed."""
    if part.kind is MatchKind.UNIVERSAL:
        return None
    if part.kind is MatchKind.EMPTY:
        return f"{column} IS NULL", []
    wrapped = f"('\\' || {column} || '\\')"
    if vr == "PN":
        mode = _pn_mode(opts)
        fold = _FOLDERS[mode] if mode else None
        key = "".join(fold(c) for c in part.text) if fold else part.text
        groups = _pn_groups(key)
        if multi:  # each constrained group's text occurs somewhere: a superset
            conds = [f"{column} GLOB ?" for g in groups if g]
            return " AND ".join(conds), [f"*{_glob_pattern(g, mode)}*" for g in groups if g]
        conds, params = [], []
        for i, g in enumerate(groups):
            if g:
                conds.append(f"{_sql_group(column, i)} GLOB ?")
                params.append(_glob_pattern(g, mode))
        return "(" + " AND ".join(conds) + ")", params
    if part.kind is MatchKind.WILDCARD:
        if multi:
            return f"{wrapped} GLOB ?", [f"*\\{_glob_pattern(part.text, None)}\\*"]
        return f"{column} GLOB ?", [_glob_pattern(part.text, None)]
    if vr in _DATETIME_VRS:
        if multi:
            return None
        if part.lo is not None and part.lo == part.hi:
            return f"{column} = ?", [part.lo]
        if part.lo is not None and part.hi is not None:
            return f"{column} BETWEEN ? AND ?", [part.lo, part.hi]
        if part.lo is not None:
            return f"{column} >= ?", [part.lo]
        return f"{column} <= ?", [part.hi]
    if multi:
        return f"{wrapped} GLOB ?", [f"*\\{_glob_literal(part.text)}\\*"]
    return f"{column} = ?", [part.text]


def sql_condition(column: str, key: DataElement, *, case_insensitive_pn: bool = True,
                  fuzzy_pn: bool = False, multiple_value_matching: bool = False,
                  multi_valued: bool | None = None) -> tuple[str, list[object]] | None:
    """An SQLite condition on ``column`` (holding :func:`normalise` values) for ``key``.

    Returns ``(sql, params)`` with ``?`` placeholders, or None when SQL adds no
    restriction: Universal Matching, sequence keys, ranges on multi-valued columns.
    ``multi_valued`` says whether the column may hold several values; by default it is
    taken from the data dictionary's VM for the key's tag (private tags: yes).  For a
    single-valued column the condition selects exactly the rows :func:`matches` accepts;
    for a multi-valued one it is a superset.  Only SQLite built-ins are used (``GLOB``,
    ``substr``, ``instr``), so any connection can run it.
    """
    _check_column(column)
    if key.VR == "SQ":
        classify(key)  # validate
        return None
    kind, parts = _parse_key(key)
    if kind is MatchKind.UNIVERSAL:
        return None
    vr = str(key.VR)
    if vr not in _STRING_VRS | _INT_VRS | _FLOAT_VRS | {"AT"}:
        return None
    multi = _is_multi_valued(key.tag, vr) if multi_valued is None else multi_valued
    opts: Opts = {"fuzzy_pn": fuzzy_pn, "case_insensitive_pn": case_insensitive_pn}
    if kind is MatchKind.UID_LIST and not multi:
        if any(p.kind is MatchKind.UNIVERSAL for p in parts):
            return None
        texts = [p.text for p in parts if p.kind is MatchKind.SINGLE_VALUE]
        conds = [f"{column} IN ({', '.join('?' * len(texts))})"] if texts else []
        if any(p.kind is MatchKind.EMPTY for p in parts):
            conds.append(f"{column} IS NULL")
        return "(" + " OR ".join(conds) + ")", list(texts)
    conditions = [_sql_part(column, vr, p, multi, opts) for p in parts]
    if kind is MatchKind.MULTIPLE_VALUES and multiple_value_matching:
        kept = [c for c in conditions if c is not None]
        if not kept:
            return None
        joiner = " AND "
    else:
        if any(c is None for c in conditions):
            return None
        kept = [c for c in conditions if c is not None]
        joiner = " OR "
    if len(kept) == 1:
        return kept[0]
    params: list[object] = [p for c in kept for p in c[1]]
    return "(" + joiner.join(c[0] for c in kept) + ")", params


def sql_datetime_pair(date_column: str, time_column: str, date_key: DataElement,
                      time_key: DataElement, **opts: bool) -> tuple[str, list[object]] | None:
    """The SQL of :func:`matches_datetime_pair` on a DA column and its TM column.

    Exact when both columns are single-valued; when the keys do not combine, it is the
    conjunction of the two keys' own conditions.
    """
    _check_column(date_column)
    _check_column(time_column)
    bounds = _combined_bounds(date_key, time_key)
    if bounds is None:
        conds = [c for c in (sql_condition(date_column, date_key, **opts),
                             sql_condition(time_column, time_key, **opts)) if c is not None]
        if not conds:
            return None
        return " AND ".join(c[0] for c in conds), [p for c in conds for p in c[1]]
    lo, hi = bounds
    sql, params = [f"{date_column} IS NOT NULL"], []
    if lo is not None:
        sql.append(f"{date_column} || COALESCE({time_column}, '{_TM_MAX}') >= ?")
        params.append(lo)
    if hi is not None:
        sql.append(f"{date_column} || COALESCE({time_column}, '{_TM_MIN}') <= ?")
        params.append(hi)
    return "(" + " AND ".join(sql) + ")", list(params)
