"""Image Display Format (2010,0010): how many image boxes a film has and where.

Cells are returned in Image Box Position order (PS3.3 C.13.5.1): row-major for
STANDARD and ROW, column-major for COL.  Geometry here is in fractions of the
film's image area; :mod:`printscp.printing.layout` turns it into millimetres.
SLIDE, SUPERSLIDE and CUSTOM are parsed, but their cell layouts come from the
printer profile (``custom_layouts``), since the standard leaves them to the
Conformance Statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from printscp.printing.errors import InvalidAttributeValue

KEYWORD = "ImageDisplayFormat"
#: Largest number of rows, columns or images in a row/column we accept.
MAX_PER_AXIS = 16


class DisplayFormatKind(StrEnum):
    STANDARD = "STANDARD"  #: STANDARD\C,R: R rows of C equal boxes
    ROW = "ROW"  #: ROW\R1,R2,...: row i holds Ri boxes
    COL = "COL"  #: COL\C1,C2,...: column i holds Ci boxes
    SLIDE = "SLIDE"  #: 35 mm slides, configuration dependent
    SUPERSLIDE = "SUPERSLIDE"  #: 40 mm slides, configuration dependent
    CUSTOM = "CUSTOM"  #: CUSTOM\i, defined in the Conformance Statement


@dataclass(frozen=True)
class Cell:
    """One image box area as fractions (0..1) of the image area, origin top left."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ImageDisplayFormat:
    kind: DisplayFormatKind
    values: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ImageDisplayFormat:
        """Parse ``STANDARD\\2,3``, ``ROW\\1,2``, ``COL\\2,1``, ``SLIDE``, ``CUSTOM\\1``..."""
        raw = str(text).strip()
        head, sep, tail = raw.partition("\\")
        try:
            kind = DisplayFormatKind(head.strip().upper())
        except ValueError:
            raise InvalidAttributeValue(KEYWORD, text, _ALLOWED) from None
        if kind in (DisplayFormatKind.SLIDE, DisplayFormatKind.SUPERSLIDE):
            if sep:
                raise InvalidAttributeValue(KEYWORD, text, f"{kind.value} without parameters")
            return cls(kind)
        try:
            values = tuple(int(v) for v in tail.replace(" ", "").split(","))
        except ValueError:
            raise InvalidAttributeValue(KEYWORD, text, _ALLOWED) from None
        if kind is DisplayFormatKind.STANDARD and len(values) != 2:
            raise InvalidAttributeValue(KEYWORD, text, "STANDARD\\C,R")
        if kind is DisplayFormatKind.CUSTOM and len(values) != 1:
            raise InvalidAttributeValue(KEYWORD, text, "CUSTOM\\i")
        limit = 1 << 16 if kind is DisplayFormatKind.CUSTOM else MAX_PER_AXIS
        if not values or any(not 1 <= v <= limit for v in values) or len(values) > MAX_PER_AXIS:
            raise InvalidAttributeValue(
                KEYWORD, text, f"counts between 1 and {MAX_PER_AXIS}"
            )
        return cls(kind, values)

    def __str__(self) -> str:
        if not self.values:
            return self.kind.value
        return self.kind.value + "\\" + ",".join(str(v) for v in self.values)

    def cells(self, custom_layouts: dict[str, tuple[Cell, ...]] | None = None) -> tuple[Cell, ...]:
        """Image box areas in position order.

        ``custom_layouts`` maps ``str(self)`` (e.g. ``"SLIDE"``, ``"CUSTOM\\1"``) to
        cells for the configuration-dependent formats.
        """
        k = self.kind
        if k is DisplayFormatKind.STANDARD:
            cols, rows = self.values
            return tuple(
                Cell(c / cols, r / rows, 1 / cols, 1 / rows)
                for r in range(rows)
                for c in range(cols)
            )
        if k is DisplayFormatKind.ROW:
            n = len(self.values)
            return tuple(
                Cell(c / per_row, r / n, 1 / per_row, 1 / n)
                for r, per_row in enumerate(self.values)
                for c in range(per_row)
            )
        if k is DisplayFormatKind.COL:
            n = len(self.values)
            return tuple(
                Cell(c / n, r / per_col, 1 / n, 1 / per_col)
                for c, per_col in enumerate(self.values)
                for r in range(per_col)
            )
        layouts = custom_layouts or {}
        if str(self) not in layouts:
            raise InvalidAttributeValue(
                KEYWORD, str(self), "a format this printer defines (STANDARD, ROW, COL"
                + "".join(", " + name for name in layouts) + ")"
            )
        return layouts[str(self)]

    def image_box_count(self, custom_layouts: dict[str, tuple[Cell, ...]] | None = None) -> int:
        if self.kind is DisplayFormatKind.STANDARD:
            return self.values[0] * self.values[1]
        if self.kind in (DisplayFormatKind.ROW, DisplayFormatKind.COL):
            return sum(self.values)
        return len(self.cells(custom_layouts))


_ALLOWED = "STANDARD\\C,R, ROW\\R1,R2,..., COL\\C1,C2,..., SLIDE, SUPERSLIDE or CUSTOM\\i"
