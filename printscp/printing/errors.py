"""Errors raised by the film objects, each naming the DICOM attribute at fault.

The services layer turns them into DIMSE statuses: :class:`InvalidAttributeValue`
into 0x0106 and :class:`MissingAttribute` into 0x0120, with the attribute in the
Error Comment and Attribute Identifier List, so a modality operator can see which
setting the printer refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TypeVar

from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag


def _tag_text(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return "" if tag is None else f" {Tag(tag)}"


class PrintAttributeError(ValueError):
    """An attribute of a Print Management object is wrong."""

    def __init__(self, keyword: str, message: str) -> None:
        self.keyword = keyword
        self.tag = tag_for_keyword(keyword)
        super().__init__(f"{keyword}{_tag_text(keyword)}: {message}")


class InvalidAttributeValue(PrintAttributeError):
    """The value is not one the standard (or this printer) allows."""

    def __init__(self, keyword: str, value: object, allowed: str | Iterable[str]) -> None:
        if not isinstance(allowed, str):
            allowed = "one of " + ", ".join(str(a) for a in allowed)
        self.value = value
        super().__init__(keyword, f"invalid value {value!r}; expected {allowed}")


class MissingAttribute(PrintAttributeError):
    """A required attribute is absent."""

    def __init__(self, keyword: str, why: str = "is required") -> None:
        super().__init__(keyword, why)


E = TypeVar("E", bound=Enum)


def parse_enum(enum_type: type[E], keyword: str, value: object) -> E:
    """Convert ``value`` to ``enum_type`` or raise :class:`InvalidAttributeValue`."""
    if isinstance(value, enum_type):
        return value
    text = str(value).strip().upper() if value is not None else ""
    try:
        return enum_type(text)
    except ValueError:
        raise InvalidAttributeValue(
            keyword, value, [m.value for m in enum_type]
        ) from None
