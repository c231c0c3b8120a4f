"""The test patterns of a display QA program: the AAPM TG18 set and TG270's pQC.

AAPM On-line Report No. 03 (TG18, Samei et al. 2005, "Assessment of display
performance for medical imaging systems") §3 describes its patterns in 1k (1024 x 1024)
and 2k (2048 x 2048) versions with 12-bit pixel values (its files are named -1k-/-2k-,
and the report's executive summary displays its 16-bit files at WL 2048 / WW 4096, its
8-bit ones at 128 / 256); AAPM Report 270 (2019, "Display
quality assurance") adds the 8-bit TG270-pQC, a revision of TG18-PQC.  Each generator
here lays its pattern out on the 1k design grid (:data:`DESIGN` units) and scales it to
the requested :class:`Geometry`: a display's resolution, or a film's size at the
printer's DPI so that one image pixel is one printer pixel and the printed pattern is
true size.  Line and modulation patterns that test a device's *pixels* keep their
period in pixels and are never scaled.

Sources.  The report text itself was not at hand when this was written (the search
corpus holds the TG270 report's front matter, not TG18 §3), so no subsection number
below is more precise than "§3".  What could be checked: the TG18-UN/-UNL/-AD/-MP
definitions of DICOM PS3.16's codes DCM 109841-109846 ("UNL ... with added defining
lines"); EIZO RadiCS user's manual ch. 9 (TG18-QC elements: 5 %/95 % patches,
16 patches with ±4-of-255 corner squares, 0-255 ramps, "QUALITY CONTROL" letters at
0/128/255; uniformity at 204 and 26 of 255); GRAD Engineering's
TG18-QC notes (18 squares; letters one level apart, 14 ... 1 levels from the background);
PocketHealth's viewer guide (TG18-CT: 16 zones on a uniform background with half-moon
targets; TG18-MP: grayscale ramps with contouring bands); pacsDisplay's and an AAPM
Report 270 ImageJ macro's pQC description (1k grid: side strips 87, top/bottom 62,
18 bars of 50 at 0, 15 ... 255; modulation periods 18, 12, 6, 4 px at contrasts 2 and 8;
line pairs of period 2, 4, 6 px at 0/128 and 128/255).  Every other number is a
documented choice, marked "chosen" in the generator's docstring.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from calibration.patterns import MM_PER_INCH, write_image

#: The side of the reports' 1k versions: every layout below is in these units.
DESIGN = 1024
#: Smallest and largest side accepted: below 256 the 1k layout's 8-unit details vanish;
#: above 16384 a 12-bit image passes 500 MB.
MIN_SIDE, MAX_SIDE = 256, 16384

Box = tuple[int, int, int, int]  #: pixel box (y0, y1, x0, x1), half-open


class Pattern(StrEnum):
    """The patterns generated here, by the names the reports give them."""

    QC = "TG18-QC"
    UNL10 = "TG18-UNL10"
    UNL80 = "TG18-UNL80"
    CT = "TG18-CT"
    AD = "TG18-AD"
    MP = "TG18-MP"
    PQC = "TG270-pQC"

    @property
    def default_bits(self) -> int:
        """TG18 distributes 12-bit DICOM patterns; TG270's pQC is an 8-bit pattern."""
        return 8 if self is Pattern.PQC else 12


@dataclass(frozen=True)
class Geometry:
    """The pixel grid a pattern is made for, and its pixel size when known.

    ``pixel_spacing_mm`` (square pixels) is what makes a pattern true size: for a film,
    25.4 / DPI; for a display, its pixel pitch if the user gives it, else None.
    """

    columns: int
    rows: int
    pixel_spacing_mm: float | None = None

    def __post_init__(self) -> None:
        for name in ("columns", "rows"):
            value = getattr(self, name)
            if not MIN_SIDE <= value <= MAX_SIDE:
                raise ValueError(f"{name} must be {MIN_SIDE}..{MAX_SIDE} pixels, got {value}")
        spacing = self.pixel_spacing_mm
        if spacing is not None and not (math.isfinite(spacing) and 0 < spacing <= 10):
            raise ValueError(f"pixel spacing must be in (0, 10] mm, got {spacing}")

    @classmethod
    def film(cls, width_mm: float, height_mm: float, dpi: int) -> Geometry:
        """The whole film at the printer's resolution: as many whole pixels as fit."""
        if not 50 <= dpi <= 2400:
            raise ValueError(f"dpi must be 50..2400, got {dpi}")
        if not (width_mm > 0 and height_mm > 0):
            raise ValueError(f"film size must be positive, got {width_mm} x {height_mm} mm")
        per_mm = dpi / MM_PER_INCH
        return cls(math.floor(width_mm * per_mm + 1e-6), math.floor(height_mm * per_mm + 1e-6),
                   MM_PER_INCH / dpi)

    @property
    def side(self) -> int:
        """The design square's side in pixels: the shorter side of the image."""
        return min(self.columns, self.rows)

    @property
    def unit(self) -> float:
        """Pixels per design unit (1.0 for the 1k version, 2.0 for 2k)."""
        return self.side / DESIGN

    @property
    def line(self) -> int:
        """Width of a drawn line: one pixel at 1k, scaled, never zero."""
        return max(1, round(self.unit))

    @property
    def origin(self) -> tuple[int, int]:
        """(y, x) of the design square's corner: the square is centred in the image."""
        return (self.rows - self.side) // 2, (self.columns - self.side) // 2

    def px(self, v: float) -> int:
        """A design coordinate as a pixel offset from the square's corner."""
        return round(v * self.unit)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> Box:
        """Design rectangle [x0, x1) x [y0, y1) as a pixel box."""
        oy, ox = self.origin
        return oy + self.px(y0), oy + self.px(y1), ox + self.px(x0), ox + self.px(x1)

    @property
    def width_mm(self) -> float | None:
        return None if self.pixel_spacing_mm is None else self.columns * self.pixel_spacing_mm

    @property
    def height_mm(self) -> float | None:
        return None if self.pixel_spacing_mm is None else self.rows * self.pixel_spacing_mm


# -- levels and drawing ------------------------------------------------------------------

def full_scale(bits: int) -> int:
    if bits not in (8, 10, 12, 16):
        raise ValueError(f"bits must be 8, 10, 12 or 16, got {bits}")
    return (1 << bits) - 1


def fraction(f: float, bits: int) -> int:
    """The level at fraction ``f`` of full scale (10 % of 12 bits: 410)."""
    return round(f * full_scale(bits))


def steps(n: float, bits: int) -> int:
    """``n`` levels of an 8-bit scale expressed at ``bits`` (4 of 255 at 12 bits: 64).

    The reports state small contrasts in 8-bit levels; this keeps them the same
    fraction of full scale at any depth.
    """
    return round(n * full_scale(bits) / 255)


def _canvas(geometry: Geometry, level: int) -> NDArray[np.uint16]:
    return np.full((geometry.rows, geometry.columns), level, dtype=np.uint16)


def _fill(image: NDArray[np.uint16], box: Box, level: int) -> None:
    y0, y1, x0, x1 = box
    image[max(y0, 0):y1, max(x0, 0):x1] = level


def _outline(image: NDArray[np.uint16], box: Box, level: int, width: int) -> None:
    y0, y1, x0, x1 = box
    image[y0:y0 + width, x0:x1] = level
    image[y1 - width:y1, x0:x1] = level
    image[y0:y1, x0:x0 + width] = level
    image[y0:y1, x1 - width:x1] = level


def _stripes(box: Box, period: int, a: int, b: int, *, vertical: bool) -> NDArray[np.uint16]:
    """Lines of ``period`` pixels (half at ``a``, half at ``b``), counted from the box's
    corner; vertical lines vary along x."""
    y0, y1, x0, x1 = box
    yy, xx = np.ogrid[0:y1 - y0, 0:x1 - x0]
    phase = (xx if vertical else yy) % period < period // 2
    return np.broadcast_to(np.where(phase, a, b), (y1 - y0, x1 - x0)).astype(np.uint16)


def _disc_halves(box: Box, top: int, bottom: int, background: int) -> NDArray[np.uint16]:
    """A disc filling ``box``, its upper half at ``top`` and lower half at ``bottom``."""
    y0, y1, x0, x1 = box
    h, w = y1 - y0, x1 - x0
    yy, xx = np.ogrid[0:h, 0:w]
    cy, cx, r = (h - 1) / 2, (w - 1) / 2, min(h, w) / 2
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return np.where(inside, np.where(yy < cy, top, bottom), background).astype(np.uint16)


@cache
def _font(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, height))


def draw_text(image: NDArray[np.uint16], y: int, x: int, text: str, height: int,
              levels: int | Sequence[int]) -> None:
    """Write ``text`` with its top-left near (y, x), each character at its own level when
    ``levels`` is a sequence.  Rendered without anti-aliasing: every text pixel has
    exactly its stated level, so a test can find it."""
    font = _font(height)
    per_char = [levels] * len(text) if isinstance(levels, int) else list(levels)
    if len(per_char) != len(text):
        raise ValueError("one level per character")
    for i, (char, level) in enumerate(zip(text, per_char, strict=True)):
        if char == " ":
            continue
        cx = x + round(font.getlength(text[:i]))
        w, h = math.ceil(font.getlength(char)) + 2, round(height * 1.4) + 2
        glyph = Image.new("L", (w, h))
        draw = ImageDraw.Draw(glyph)
        draw.fontmode = "1"
        draw.text((0, 0), char, fill=255, font=font)
        mask = np.asarray(glyph) > 127
        ys, xs = slice(max(y, 0), min(y + h, image.shape[0])), slice(
            max(cx, 0), min(cx + w, image.shape[1]))
        region = image[ys, xs]
        region[mask[ys.start - y:ys.stop - y, xs.start - cx:xs.stop - cx]] = level


def _label(image: NDArray[np.uint16], geometry: Geometry, text: str, level: int) -> None:
    """The pattern's name and size, small, in the bottom margin of the design square."""
    oy, ox = geometry.origin
    draw_text(image, oy + geometry.px(DESIGN - 44), ox + geometry.px(72), text,
              max(8, geometry.px(16)), level)


def _describe(name: str, geometry: Geometry, bits: int) -> str:
    size = f"{geometry.columns}x{geometry.rows}"
    if geometry.pixel_spacing_mm is not None:
        size += f" @ {geometry.pixel_spacing_mm:.4g} mm"
    return f"{name}  {size}  {bits}-bit  printscp"


# -- TG18-QC -----------------------------------------------------------------------------

#: TG18-QC's luminance patches: 18 levels equally spaced over full scale (as TG18-LN's),
#: 3 rows of 6 cells of 64 units from (320, 192); patches of 48 in the cells.
QC_PATCH_ORIGIN, QC_PITCH, QC_PATCH = (320, 192), 64, 48
#: Line-pair sites: the four corners and the centre (design x, y of their corner).
QC_SITES = ((64, 64), (832, 64), (64, 832), (832, 832), (448, 448))
#: The two ramps, full scale over design y 256 .. 768: left rising, right falling.
QC_RAMPS = ((64, 128), (896, 960))
QC_RAMP_Y = (256, 768)


def qc_levels(bits: int) -> list[int]:
    """The 18 patch levels, 0 ... full scale (0, 15, ... 255 at 8 bits)."""
    top = full_scale(bits)
    return [round(k * top / 17) for k in range(18)]


def qc_patch_boxes(geometry: Geometry) -> list[Box]:
    """Pixel boxes of the 18 luminance patches, darkest first, row by row."""
    (x0, y0), inset = QC_PATCH_ORIGIN, (QC_PITCH - QC_PATCH) // 2
    boxes = []
    for k in range(18):
        r, c = divmod(k, 6)
        x, y = x0 + c * QC_PITCH + inset, y0 + r * QC_PITCH + inset
        boxes.append(geometry.box(x, y, x + QC_PATCH, y + QC_PATCH))
    return boxes


def qc_ramp_boxes(geometry: Geometry) -> list[Box]:
    """Pixel boxes of the (rising, falling) ramps."""
    return [geometry.box(x0, QC_RAMP_Y[0], x1, QC_RAMP_Y[1]) for x0, x1 in QC_RAMPS]


def _line_pair_site(image: NDArray[np.uint16], geometry: Geometry, x: float, y: float,
                    bits: int) -> None:
    """A 128 x 64 site: horizontal and vertical lines of period 2 (Nyquist) and 4
    (half Nyquist) pixels, at high contrast (0 / full scale) in the upper row and low
    contrast (128 / 130 of 255, RadiCS's reading of TG18-QC) in the lower row."""
    top = full_scale(bits)
    contrasts = ((0, top), (steps(128, bits), steps(130, bits)))
    for row, (a, b) in enumerate(contrasts):
        for col, (period, vertical) in enumerate(((2, False), (2, True), (4, False),
                                                  (4, True))):
            box = geometry.box(x + 32 * col, y + 32 * row, x + 32 * (col + 1),
                               y + 32 * (row + 1))
            y0, y1, x0, x1 = box
            image[y0:y1, x0:x1] = _stripes(box, period, a, b, vertical=vertical)


def tg18_qc(geometry: Geometry, bits: int = 12) -> NDArray[np.uint16]:
    """TG18-QC, the multi-purpose pattern (AAPM OR-03 §3, "multi-purpose patterns";
    derived from SMPTE RP 133).

    Elements and levels:

    * background 50 % of full scale, *chosen* (SMPTE RP 133's background; the report's
      value not at hand); a grid of lines every 64 units at full scale (RadiCS: "a white
      grid"), and a border line at the image edge, so distortion and centring show;
    * 18 luminance patches at 0 ... full scale in 17 equal steps (GRAD: 18 squares; the
      same levels as TG18-LN), :func:`qc_patch_boxes`; the darkest holds a 5 % square and
      the brightest a 95 % square (RadiCS (1)); the 16 others hold corner squares at
      ±4 of 255 (RadiCS (2); GRAD reads ±1): upper-left and lower-right +, the others -;
    * two full-scale ramps (RadiCS (3)): the left rising downwards, the right falling;
    * black-to-white transitions: a 0-level bar in a full-scale rectangle beside a
      full-scale bar in a 0-level rectangle (RadiCS (9));
    * line-pair sites at the centre and the four corners (RadiCS (5), (6)); the Cx
      targets are *not* drawn (their bitmap was not at hand);
    * "QUALITY CONTROL" on backgrounds 0, 50 % and 100 %, letter ``i`` of 14 differing
      from its background by 14 - i levels of 255 (GRAD, RadiCS (10)).
    """
    top = full_scale(bits)
    image = _canvas(geometry, fraction(0.5, bits))
    oy, ox = geometry.origin
    lw = geometry.line
    # grid every 64 units, continued over the whole image, and the border
    pitch = 64 * geometry.unit
    for axis, size, origin in ((0, geometry.rows, oy), (1, geometry.columns, ox)):
        first = origin - math.floor(origin / pitch) * pitch
        for k in range(int((size - first) / pitch) + 1):
            at = round(first + k * pitch)
            if axis == 0:
                image[at:at + lw, :] = top
            else:
                image[:, at:at + lw] = top
    _outline(image, (0, geometry.rows, 0, geometry.columns), top, lw)
    # luminance patches
    delta = steps(4, bits)
    for k, (box, level) in enumerate(zip(qc_patch_boxes(geometry), qc_levels(bits),
                                         strict=True)):
        _fill(image, box, level)
        y0, y1, x0, x1 = box
        if k in (0, 17):
            inner = fraction(0.05 if k == 0 else 0.95, bits)
            h, w = (y1 - y0) // 4, (x1 - x0) // 4
            _fill(image, (y0 + h, y1 - h, x0 + w, x1 - w), inner)
            continue
        s = max(1, (y1 - y0) // 6)
        corners = (((y0, y0 + s, x0, x0 + s), +1), ((y1 - s, y1, x1 - s, x1), +1),
                   ((y0, y0 + s, x1 - s, x1), -1), ((y1 - s, y1, x0, x0 + s), -1))
        for corner, sign in corners:
            _fill(image, corner, min(top, max(0, level + sign * delta)))
    # ramps
    for (y0, y1, x0, x1), rising in zip(qc_ramp_boxes(geometry), (True, False),
                                        strict=True):
        ramp = np.rint(np.linspace(0, top, y1 - y0)).astype(np.uint16)
        image[y0:y1, x0:x1] = (ramp if rising else ramp[::-1])[:, None]
    # transitions
    _fill(image, geometry.box(320, 640, 512, 704), top)
    _fill(image, geometry.box(352, 664, 480, 680), 0)
    _fill(image, geometry.box(512, 640, 704, 704), 0)
    _fill(image, geometry.box(544, 664, 672, 680), top)
    for x, y in QC_SITES:
        _line_pair_site(image, geometry, x, y, bits)
    # QUALITY CONTROL, three times
    text = "QUALITY CONTROL"
    for row, background in enumerate((0, fraction(0.5, bits), top)):
        box = geometry.box(320, 736 + 64 * row, 704, 800 + 64 * row)
        _fill(image, box, background)
        sign = -1 if background == top else 1
        levels, i = [], 0
        for char in text:
            if char == " ":
                levels.append(background)
                continue
            levels.append(background + sign * steps(14 - i, bits))
            i += 1
        draw_text(image, box[0] + geometry.px(14), box[2] + geometry.px(24), text,
                  geometry.px(30), levels)
    _label(image, geometry, _describe("TG18-QC", geometry, bits), top)
    return image


# -- TG18-UNL10 / UNL80 ------------------------------------------------------------------

#: The five positions TG18 measures uniformity at (centre and the four corners: PS3.3's
#: QA Results module, Number of Luminance Points, "as defined by the TG18-UNL80 or
#: TG18-UNL10 test pattern"), as
#: cells of a 3 x 3 division of the image; TG270's nine points are all nine cells.
UNL_POSITIONS = (("centre", 1, 1), ("upper-left", 0, 0), ("upper-right", 0, 2),
                 ("lower-left", 2, 0), ("lower-right", 2, 2))
#: Side of a measurement square, as a fraction of the image's shorter side (*chosen*).
UNL_BOX = 0.10


def unl_boxes(geometry: Geometry) -> dict[str, Box]:
    """The outlined measurement squares, by position, centred in their 3 x 3 cell."""
    half = round(UNL_BOX * geometry.side / 2)
    boxes = {}
    for name, r, c in UNL_POSITIONS:
        cy = round((r + 0.5) * geometry.rows / 3)
        cx = round((c + 0.5) * geometry.columns / 3)
        boxes[name] = (cy - half, cy + half, cx - half, cx + half)
    return boxes


def tg18_unl(geometry: Geometry, level_fraction: float, bits: int = 12) -> NDArray[np.uint16]:
    """TG18-UNL10 / TG18-UNL80: uniform at 10 % / 80 % of full scale with lines defining
    the measurement positions (AAPM OR-03 §3, luminance patterns; PS3.16 code 109843/4:
    "the TG18-UN pattern with added defining lines").

    The field is exactly ``round(fraction * full scale)`` (12 bits: 410 and 3276; 8 bits:
    26 and 204, RadiCS's uniformity levels).  *Chosen* (the report's drawing not at
    hand): lines divide the image into 3 x 3 equal cells, and an outlined square of 10 %
    of the shorter side marks the photometer's place at the centre of the centre and
    corner cells (:func:`unl_boxes`).  Lines are one pixel at 1k, at the far end of the
    scale (full scale on UNL10, 0 on UNL80) so the eye finds them; a square's inside is
    the field.
    """
    field = fraction(level_fraction, bits)
    ink = full_scale(bits) if level_fraction < 0.5 else 0
    image = _canvas(geometry, field)
    lw = geometry.line
    for k in (1, 2):
        y, x = round(k * geometry.rows / 3), round(k * geometry.columns / 3)
        image[y:y + lw, :] = ink
        image[:, x:x + lw] = ink
    for box in unl_boxes(geometry).values():
        y0, y1, x0, x1 = box
        _fill(image, box, field)
        _outline(image, (y0 - lw, y1 + lw, x0 - lw, x1 + lw), ink, lw)
    name = f"TG18-UNL{round(level_fraction * 100)}"
    # in the lower middle cell, clear of every measurement square
    draw_text(image, geometry.rows - geometry.px(40), geometry.columns // 3 + geometry.px(24),
              _describe(name, geometry, bits), max(8, geometry.px(16)), ink)
    return image


# -- TG18-CT -----------------------------------------------------------------------------

#: 4 x 4 patches of 160 units in cells of 224 from (64, 64).
CT_ORIGIN, CT_PITCH, CT_PATCH = 64, 224, 160
#: Target contrast, in levels of 255 (*chosen*: the report's value not at hand).
CT_CONTRAST = 4


def ct_levels(bits: int) -> list[int]:
    """The 16 patch levels, 0 ... full scale in 15 equal steps."""
    top = full_scale(bits)
    return [round(k * top / 15) for k in range(16)]


def ct_patch_boxes(geometry: Geometry) -> list[Box]:
    inset = (CT_PITCH - CT_PATCH) // 2
    boxes = []
    for k in range(16):
        r, c = divmod(k, 4)
        x, y = CT_ORIGIN + c * CT_PITCH + inset, CT_ORIGIN + r * CT_PITCH + inset
        boxes.append(geometry.box(x, y, x + CT_PATCH, y + CT_PATCH))
    return boxes


def ct_target_levels(level: int, bits: int) -> tuple[int, int]:
    """(upper, lower) half-moon levels in a patch at ``level``: level + δ and level - δ;
    at the ends of the scale, where one would fall outside it, δ and 2δ on the side that
    exists."""
    top, d = full_scale(bits), steps(CT_CONTRAST, bits)
    if level - d < 0:
        return level + d, level + 2 * d
    if level + d > top:
        return level - d, level - 2 * d
    return level + d, level - d


def tg18_ct(geometry: Geometry, bits: int = 12) -> NDArray[np.uint16]:
    """TG18-CT, the contrast-threshold pattern (AAPM OR-03 §3, luminance patterns):
    16 patches at levels 0 ... full scale on a uniform background, each with a pair of
    low-contrast half-moon targets (PocketHealth: "verify that all squares and inner
    half-moons are visible").

    *Chosen* (report values not at hand): background 50 % of full scale; a centred disc
    of half the patch's side whose upper half is δ above and lower half δ below the
    patch (:func:`ct_target_levels`), δ = 4 levels of 255 (64 at 12 bits), the TG18-QC
    corner squares' contrast.
    """
    image = _canvas(geometry, fraction(0.5, bits))
    for box, level in zip(ct_patch_boxes(geometry), ct_levels(bits), strict=True):
        _fill(image, box, level)
        y0, y1, x0, x1 = box
        qy, qx = (y1 - y0) // 4, (x1 - x0) // 4
        disc = (y0 + qy, y1 - qy, x0 + qx, x1 - qx)
        upper, lower = ct_target_levels(level, bits)
        image[disc[0]:disc[1], disc[2]:disc[3]] = _disc_halves(disc, upper, lower, level)
    _label(image, geometry, _describe("TG18-CT", geometry, bits), full_scale(bits))
    return image


# -- TG18-AD -----------------------------------------------------------------------------

#: 8 x 8 squares of 96 units in cells of 112 from (64, 64); stripes of 8 units.
AD_ORIGIN, AD_PITCH, AD_SQUARE, AD_STRIPE = 64, 112, 96, 8


def ad_square_boxes(geometry: Geometry) -> list[list[Box]]:
    """Pixel boxes of the squares, [row][column]."""
    inset = (AD_PITCH - AD_SQUARE) // 2
    return [[geometry.box(AD_ORIGIN + c * AD_PITCH + inset, AD_ORIGIN + r * AD_PITCH + inset,
                          AD_ORIGIN + c * AD_PITCH + inset + AD_SQUARE,
                          AD_ORIGIN + r * AD_PITCH + inset + AD_SQUARE)
             for c in range(8)] for r in range(8)]


def ad_levels(row: int, column: int, bits: int) -> tuple[int, int]:
    """(base, stripe) levels of square [row][column]: base ``row`` and stripes
    ``column + 1`` levels of 255 above it."""
    return steps(row, bits), steps(row + column + 1, bits)


def tg18_ad(geometry: Geometry, bits: int = 12) -> NDArray[np.uint16]:
    """TG18-AD, for the visual evaluation of ambient light's reflection (AAPM OR-03 §3,
    luminance patterns; PS3.16 code 109845): low-contrast patterns at the dark end of
    the scale, viewed with the room lights on and off; the faintest one seen should not
    change.

    *Chosen* (report values not at hand): on a 0-level background, 8 x 8 squares of
    horizontal stripes; row r has base level r and column c stripes c + 1 levels of 255
    above it (:func:`ad_levels`), so contrast grows to the right and base luminance
    downwards.
    """
    image = _canvas(geometry, 0)
    stripe = max(1, geometry.px(AD_STRIPE))
    for r, row in enumerate(ad_square_boxes(geometry)):
        for c, box in enumerate(row):
            base, line = ad_levels(r, c, bits)
            y0, y1, x0, x1 = box
            image[y0:y1, x0:x1] = _stripes(box, 2 * stripe, line, base, vertical=False)
    _label(image, geometry, _describe("TG18-AD", geometry, bits), steps(24, bits))
    return image


# -- TG18-MP -----------------------------------------------------------------------------

MP_BANDS = 16
#: Marker strip at the top of each band, as a fraction of its height.
MP_MARKER = 0.2


def mp_band_rows(geometry: Geometry) -> list[tuple[int, int]]:
    """(first, end) image rows of each band."""
    edges = np.rint(np.linspace(0, geometry.rows, MP_BANDS + 1)).astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def mp_ramp(geometry: Geometry, band: int, bits: int) -> NDArray[np.uint16]:
    """One band's row: 1/16 of the scale across the width, rising in even bands."""
    span = (full_scale(bits) + 1) // MP_BANDS
    x = np.arange(geometry.columns)
    offset = (x * span) // geometry.columns
    if band % 2:
        offset = span - 1 - offset
    return (band * span + offset).astype(np.uint16)


def tg18_mp(geometry: Geometry, bits: int = 12) -> NDArray[np.uint16]:
    """TG18-MP, for the luminance response's bit depth (AAPM OR-03 §3; PS3.16 code
    109846): the scale in 16 bands, each a ramp over 1/16 of it across the width,
    alternately rising and falling, so contouring shows as vertical bands.

    Markers in a strip at each band's top: long ones where an 8-bit level begins, short
    ones where a 10-bit level begins (at 12 bits), so the bands seen can be counted
    against the bit depth.  *Chosen*: the layout details (the report's drawing not at
    hand); markers at 0 on bright bands and full scale on dark ones.
    """
    top = full_scale(bits)
    image = np.empty((geometry.rows, geometry.columns), np.uint16)
    for band, (y0, y1) in enumerate(mp_band_rows(geometry)):
        row = mp_ramp(geometry, band, bits)
        image[y0:y1] = row
        strip = max(2, round((y1 - y0) * MP_MARKER))
        ink = 0 if row.mean() > top / 2 else top
        starts = np.flatnonzero(np.diff(row.astype(np.int32))) + 1
        # a boundary between levels a and a + 1 begins an n-bit level when a + 1 is a
        # multiple of that level's size (rising and falling bands alike)
        boundary = np.maximum(row[starts], row[starts - 1]).astype(np.int64)
        coarse = 1 << (bits - 8)
        fine = 1 << (bits - 10) if bits >= 10 else coarse
        for size, length in ((fine, strip // 2), (coarse, strip)):
            image[y0:y0 + length, starts[boundary % size == 0]] = ink
    return image


# -- TG270-pQC ---------------------------------------------------------------------------

#: Report 270 pQC on the 1k grid: side strips, top/bottom regions, 18 bars.
PQC_SIDE, PQC_TOP, PQC_BAR = 87, 62, 50
PQC_PERIODS = (18, 12, 6, 4)  #: modulation periods, pixels (not scaled)
PQC_CONTRASTS = (2, 8)  #: modulation contrasts, levels of 255: outer, inner columns
PQC_LINE_PAIRS = ((2, 0, 128), (4, 0, 128), (6, 0, 128), (2, 128, 255), (4, 128, 255),
                  (6, 128, 255))  #: (period px, low, high of 255)


def pqc_levels(bits: int) -> list[int]:
    """The 18 bar levels: 0, 15, ... 255 at 8 bits."""
    return qc_levels(bits)


def pqc_bar_boxes(geometry: Geometry) -> list[Box]:
    return [geometry.box(PQC_SIDE, PQC_TOP + k * PQC_BAR, DESIGN - PQC_SIDE,
                         PQC_TOP + (k + 1) * PQC_BAR) for k in range(18)]


def pqc_modulation_boxes(geometry: Geometry, bar: int) -> list[tuple[Box, int, int, bool]]:
    """(box, period px, contrast of 255, vertical?) of the 16 modulation patches of a bar:
    left half horizontal lines at periods 18, 12, 6, 4 (outer: contrast 2, then inner:
    8); right half vertical lines mirrored (inner 8 at 4, 6, 12, 18, then outer 2)."""
    width = (DESIGN - 2 * PQC_SIDE) / 16
    y0 = PQC_TOP + bar * PQC_BAR + 5
    left = [(p, c, False) for c in PQC_CONTRASTS for p in PQC_PERIODS]
    right = [(p, c, True) for c in PQC_CONTRASTS[::-1] for p in PQC_PERIODS[::-1]]
    out = []
    for i, (period, contrast, vertical) in enumerate(left + right):
        x0 = PQC_SIDE + i * width
        out.append((geometry.box(x0 + 4, y0, x0 + width - 4, y0 + PQC_BAR - 10), period,
                    contrast, vertical))
    return out


def tg270_pqc(geometry: Geometry, bits: int = 8) -> NDArray[np.uint16]:
    """TG270-pQC, the physicist's QC pattern (AAPM Report 270 (2019), its pQC pattern,
    a revision of TG18-PQC; geometry as pacsDisplay's pQC and the Report 270 ImageJ
    macro give it on the 1k grid).

    18 horizontal bars at 0, 15, ... 255 (of 255) between top and bottom regions of 62
    units; in each bar, 16 modulation patches of periods 18, 12, 6 and 4 *pixels* at
    contrasts of 2 and 8 levels (above the bar, below it near full scale), horizontal
    lines in the left half and vertical in the right; line pairs of period 2, 4 and 6
    pixels at 0/128 and 128/255 in the top (vertical lines) and bottom (horizontal)
    regions; full-range vertical gradients in the side strips of 87 units (left rising
    downwards, right falling).  Outside the design square (non-square displays) the
    image is 0.  *Not drawn*: the side strips' modulation bands (not at hand).
    """
    top = full_scale(bits)
    image = _canvas(geometry, 0)
    for k, (box, level) in enumerate(zip(pqc_bar_boxes(geometry), pqc_levels(bits),
                                         strict=True)):
        _fill(image, box, level)
        for mbox, period, contrast, vertical in pqc_modulation_boxes(geometry, k):
            c = steps(contrast, bits)
            other = level + c if level + c <= top else level - c
            y0, y1, x0, x1 = mbox
            image[y0:y1, x0:x1] = _stripes(mbox, period, level, other, vertical=vertical)
    width = (DESIGN - 2 * PQC_SIDE) / 6
    for region_y, vertical in ((0, True), (DESIGN - PQC_TOP, False)):
        for i, (period, low, high) in enumerate(PQC_LINE_PAIRS):
            x0 = PQC_SIDE + i * width
            box = geometry.box(x0 + 8, region_y + 8, x0 + width - 8, region_y + PQC_TOP - 8)
            y0, y1, bx0, bx1 = box
            image[y0:y1, bx0:bx1] = _stripes(box, period, steps(low, bits),
                                             steps(high, bits), vertical=vertical)
    for (x0, x1), rising in (((0, PQC_SIDE), True), ((DESIGN - PQC_SIDE, DESIGN), False)):
        y0, y1, bx0, bx1 = geometry.box(x0, 0, x1, DESIGN)
        ramp = np.rint(np.linspace(0, top, y1 - y0)).astype(np.uint16)
        image[y0:y1, bx0:bx1] = (ramp if rising else ramp[::-1])[:, None]
    return image


#: Each pattern's generator: (geometry, bits) -> pixels.
GENERATORS: dict[Pattern, Callable[[Geometry, int], NDArray[np.uint16]]] = {
    Pattern.QC: tg18_qc,
    Pattern.UNL10: lambda g, bits: tg18_unl(g, 0.10, bits),
    Pattern.UNL80: lambda g, bits: tg18_unl(g, 0.80, bits),
    Pattern.CT: tg18_ct,
    Pattern.AD: tg18_ad,
    Pattern.MP: tg18_mp,
    Pattern.PQC: tg270_pqc,
}


def generate(pattern: Pattern | str, geometry: Geometry,
             bits: int | None = None) -> NDArray[np.uint16]:
    """The pixels of ``pattern`` at ``geometry`` (bits: the pattern's own by default)."""
    pattern = Pattern(pattern)
    bits = pattern.default_bits if bits is None else bits
    full_scale(bits)  # validates
    return GENERATORS[pattern](geometry, bits)


def write_qa_patterns(directory: str | os.PathLike[str], patterns: Sequence[Pattern | str],
                      geometry: Geometry, bits: int | None = None) -> list[Path]:
    """Write each pattern as ``<name>.dcm`` (Secondary Capture, with Pixel Spacing and
    Imager Pixel Spacing when the geometry knows its pixel size) and ``<name>.png``
    holding the same values; returns the files written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in dict.fromkeys(Pattern(p) for p in patterns):
        depth = name.default_bits if bits is None else bits
        pixels = generate(name, geometry, depth)
        written += write_image(pixels, depth, out / name.value, _describe(name, geometry, depth),
                               geometry.pixel_spacing_mm)
    return written
