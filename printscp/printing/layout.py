"""Film geometry in millimetres: where each image box and image lands.

All positions are measured from the film's top-left corner in the film's
orientation.  Pixel positions at a resolution come from rounding the rectangle's
edges (not its size), so neighbouring boxes tile without gaps or overlaps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from printscp.printing.display_format import Cell, ImageDisplayFormat
from printscp.printing.enums import DecimateCropBehavior, FilmOrientation, FilmSize
from printscp.printing.errors import PrintAttributeError

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class Rect:
    """A rectangle on the film, in millimetres from the top-left corner."""

    x: float
    y: float
    width: float
    height: float

    def pixels(self, dpi: float) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) pixel edges at ``dpi``; x1/y1 exclusive."""
        s = dpi / MM_PER_INCH
        return (round(self.x * s), round(self.y * s),
                round((self.x + self.width) * s), round((self.y + self.height) * s))

    def inset(self, mm: float) -> Rect:
        return Rect(self.x + mm, self.y + mm, max(self.width - 2 * mm, 0.0),
                    max(self.height - 2 * mm, 0.0))


@dataclass(frozen=True)
class Margins:
    """Unprinted spacing of the layout (the standard leaves it to the printer).

    ``edge_mm`` runs round the film, ``gap_mm`` separates image boxes, and
    ``annotation_mm`` is the strip reserved at the bottom for annotation text.
    """

    edge_mm: float = 4.0
    gap_mm: float = 2.0
    annotation_mm: float = 8.0


DEFAULT_MARGINS = Margins()


@dataclass(frozen=True)
class FilmGeometry:
    width_mm: float
    height_mm: float
    boxes: tuple[Rect, ...]
    annotation_area: Rect | None


def film_dimensions(size: FilmSize, orientation: FilmOrientation) -> tuple[float, float]:
    """(width, height) of the film in mm as it lies; LANDSCAPE swaps the portrait size."""
    w, h = size.dimensions_mm
    return (h, w) if orientation is FilmOrientation.LANDSCAPE else (w, h)


@functools.lru_cache(maxsize=256)
def film_geometry(
    size: FilmSize,
    orientation: FilmOrientation,
    cells: tuple[Cell, ...],
    margins: Margins = DEFAULT_MARGINS,
    annotation: bool = False,
) -> FilmGeometry:
    """Image box rectangles in position order for a film of ``size``.

    Cached (the result is immutable): every Image Box N-SET asks for its film's."""
    width, height = film_dimensions(size, orientation)
    e = margins.edge_mm
    bottom = margins.annotation_mm if annotation else 0.0
    area = Rect(e, e, width - 2 * e, height - 2 * e - bottom)
    half_gap = margins.gap_mm / 2
    boxes = []
    for c in cells:
        # Cells on the area's edge get no gap there; inner edges share the gap.
        left = 0.0 if c.x <= 1e-9 else half_gap
        right = 0.0 if c.x + c.width >= 1 - 1e-9 else half_gap
        top = 0.0 if c.y <= 1e-9 else half_gap
        bot = 0.0 if c.y + c.height >= 1 - 1e-9 else half_gap
        boxes.append(Rect(
            area.x + c.x * area.width + left,
            area.y + c.y * area.height + top,
            c.width * area.width - left - right,
            c.height * area.height - top - bot,
        ))
    annotation_area = (
        Rect(e, height - e - bottom, width - 2 * e, bottom) if annotation else None
    )
    return FilmGeometry(width, height, tuple(boxes), annotation_area)


class FitOutcome(StrEnum):
    FITTED = "FITTED"  #: magnified (or kept) to fit the box
    DECIMATED = "DECIMATED"  #: more pixels than the box prints: reduced
    CROPPED = "CROPPED"  #: more pixels than the box prints: centre kept


class ImageTooLarge(PrintAttributeError):
    """The image does not fit its box and Requested Decimate/Crop Behavior is FAIL."""

    def __init__(self, message: str) -> None:
        super().__init__("RequestedDecimateCropBehavior", message)


@dataclass(frozen=True)
class Placement:
    """Where an image lands inside its box, and which source pixels are printed.

    ``crop`` is (row0, row1, col0, col1) of the source pixels used.
    """

    rect: Rect
    crop: tuple[int, int, int, int]
    outcome: FitOutcome


def place_image(
    box: Rect,
    rows: int,
    columns: int,
    dpi: float,
    *,
    pixel_aspect_ratio: tuple[int, int] = (1, 1),
    requested_width_mm: float | None = None,
    no_magnification: bool = False,
    behavior: DecimateCropBehavior = DecimateCropBehavior.DECIMATE,
) -> Placement:
    """Size and centre an image of ``rows`` x ``columns`` pixels in ``box``.

    The image keeps its aspect ratio (Pixel Aspect Ratio is row\\column spacing).
    Without Requested Image Size it fills the box; with it, its width is the
    requested millimetres; with Magnification Type NONE each pixel is one printer
    pixel.  When the image is then larger than the box, Requested Decimate/Crop
    Behavior decides: DECIMATE shrinks it to fit, CROP keeps the centre, FAIL
    raises :class:`ImageTooLarge` (PS3.3 C.13.5).
    """
    ar_row, ar_col = pixel_aspect_ratio
    # Physical size of the image at scale 1, in units of one column pixel.
    unit_w = float(columns)
    unit_h = rows * ar_row / ar_col
    x0, y0, x1, y1 = box.pixels(dpi)
    printable_w, printable_h = x1 - x0, y1 - y0
    one_to_one = MM_PER_INCH / dpi
    if requested_width_mm is not None or no_magnification:
        scale = requested_width_mm / unit_w if requested_width_mm is not None else one_to_one
        too_large = unit_w * scale > box.width + 1e-6 or unit_h * scale > box.height + 1e-6
    else:
        scale = min(box.width / unit_w, box.height / unit_h)
        too_large = columns > printable_w or unit_h > printable_h
    crop = (0, rows, 0, columns)
    outcome = FitOutcome.FITTED
    if too_large:
        if behavior is DecimateCropBehavior.FAIL:
            raise ImageTooLarge(
                f"image of {columns}x{rows} pixels does not fit its "
                f"{box.width:.1f}x{box.height:.1f} mm image box ({printable_w}x{printable_h} "
                f"printer pixels) and Requested Decimate/Crop Behavior is FAIL"
            )
        if behavior is DecimateCropBehavior.CROP:
            if requested_width_mm is None and not no_magnification:
                scale = one_to_one  # cropping prints the kept pixels one to one
            keep_w = min(1.0, box.width / (unit_w * scale))
            keep_h = min(1.0, box.height / (unit_h * scale))
            c_keep = max(1, int(columns * keep_w + 1e-9))
            r_keep = max(1, int(rows * keep_h + 1e-9))
            c0 = (columns - c_keep) // 2
            r0 = (rows - r_keep) // 2
            crop = (r0, r0 + r_keep, c0, c0 + c_keep)
            unit_w, unit_h = float(c_keep), r_keep * ar_row / ar_col
            outcome = FitOutcome.CROPPED
        else:
            scale = min(scale, box.width / unit_w, box.height / unit_h)
            outcome = FitOutcome.DECIMATED
    width, height = unit_w * scale, unit_h * scale
    rect = Rect(box.x + (box.width - width) / 2, box.y + (box.height - height) / 2,
                width, height)
    return Placement(rect, crop, outcome)


def printable_area(size: FilmSize, orientation: FilmOrientation, dpi: float
                   ) -> tuple[int, int, float]:
    """(rows, columns, pixel spacing in mm) of a STANDARD\\1,1 film's one image box at
    ``dpi``: what Printer Configuration Retrieval reports per film size (PS3.3 C.13.9)."""
    cells = ImageDisplayFormat.parse("STANDARD\\1,1").cells()
    x0, y0, x1, y1 = film_geometry(size, orientation, cells).boxes[0].pixels(dpi)
    return y1 - y0, x1 - x0, round(MM_PER_INCH / dpi, 6)
