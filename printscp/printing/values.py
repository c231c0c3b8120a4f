"""Checks for the value representations of Print Management attributes.

Small, shared validators so every film object reports a bad value the same way,
naming the attribute.
"""

from __future__ import annotations

import re

from printscp.printing.enums import DensityKeyword
from printscp.printing.errors import InvalidAttributeValue

#: Border Density / Empty Image Density: a keyword or hundredths of OD.
Density = DensityKeyword | int

_CS = re.compile(r"^[A-Z0-9 _]{0,16}$")


def us(keyword: str, value: object, low: int = 0, high: int = 0xFFFF) -> int:
    """An unsigned short (or IS) within [low, high]."""
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidAttributeValue(keyword, value, f"an integer {low}..{high}") from None
    if not low <= number <= high:
        raise InvalidAttributeValue(keyword, value, f"an integer {low}..{high}")
    return number


def code_string(keyword: str, value: object) -> str:
    """A CS value: up to 16 upper-case letters, digits, space or underscore."""
    text = str(value).strip()
    if not _CS.match(text):
        raise InvalidAttributeValue(keyword, value, "a code string (A-Z, 0-9, space, _; 16 max)")
    return text


def text(keyword: str, value: object, max_length: int) -> str:
    """A free-text value (LO, SH, ST) no longer than its VR allows."""
    result = "" if value is None else str(value)
    if len(result) > max_length:
        raise InvalidAttributeValue(keyword, value, f"at most {max_length} characters")
    return result


def density(keyword: str, value: object) -> Density:
    """BLACK, WHITE, or an optical density in hundredths of OD (PS3.3 C.13.3)."""
    if isinstance(value, DensityKeyword):
        return value
    raw = str(value).strip().upper()
    if raw in DensityKeyword.__members__:
        return DensityKeyword(raw)
    if raw.isdigit():
        return us(keyword, raw)
    raise InvalidAttributeValue(keyword, value, "BLACK, WHITE or hundredths of OD (e.g. 150)")


def density_od(value: Density, min_density: float, max_density: float) -> float:
    """Resolve a Density to OD: BLACK is the film's Max Density, WHITE its Min Density."""
    if value is DensityKeyword.BLACK:
        return max_density
    if value is DensityKeyword.WHITE:
        return min_density
    return min(max(value / 100.0, min_density), max_density)
