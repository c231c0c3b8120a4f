"""The film renderer: image boxes to device levels laid out on a film.

Pipeline per grayscale image box (PS3.4 H, PS3.14)::

    stored pixels --polarity--> Presentation LUT --> P-values (16 bit)
        --magnify (Magnification Type)--> GSDF --> optical density
        --output profile (characteristic curve)--> device levels

Everything from the Presentation LUT to the device level is folded into two
look-up tables built once per film setting and cached: one indexed by stored
pixel value (at the image's own size) and one indexed by 16-bit P-value (after
magnification).  Magnifying P-values, not device levels, keeps interpolation in
the perceptually linear domain the standard defines.  Color (RGB) boxes skip the
GSDF: their 8-bit values are the device levels.

Image boxes are rendered on a small thread pool; numpy indexing, OpenCV's
resampling and deflate all release the GIL, so a 2-core machine renders two at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from lut import density as lut_density
from lut import presentation as lut_presentation
from lut.apply import apply_lut
from printscp.printing import values
from printscp.printing.display_format import Cell
from printscp.printing.enums import MagnificationType, Polarity, Trim
from printscp.printing.film_box import FilmBox
from printscp.printing.image_box import ImageBox
from printscp.printing.layout import (
    DEFAULT_MARGINS,
    FitOutcome,
    Margins,
    Rect,
    film_geometry,
    place_image,
)
from printscp.printing.profile import OutputProfile, default_profile

#: OpenCV interpolation for each Magnification Type when enlarging.  CUBIC is
#: cubic convolution (Keys, a = -0.75); REPLICATE is nearest neighbour.  When an
#: image is decimated, every type but REPLICATE averages pixel areas instead, so
#: shrinking never aliases.  OpenCV resizes 16-bit images about 20x faster than
#: Pillow, which is most of a film's rendering time.
_ENLARGE = {
    MagnificationType.REPLICATE: cv2.INTER_NEAREST,
    MagnificationType.BILINEAR: cv2.INTER_LINEAR,
    MagnificationType.CUBIC: cv2.INTER_CUBIC,
    MagnificationType.NONE: cv2.INTER_NEAREST,
}


#: Smoothing Type for CUBIC (the standard leaves the terms to the printer): SHARP is
#: Lanczos (8x8), MEDIUM (and none) cubic convolution, SMOOTH bilinear.
SMOOTHING_TYPES = {"SHARP": cv2.INTER_LANCZOS4, "MEDIUM": cv2.INTER_CUBIC,
                   "SMOOTH": cv2.INTER_LINEAR}


def magnify(pixels: NDArray, size: tuple[int, int], magnification: MagnificationType,
            smoothing: str | None = None) -> NDArray:
    """Resize (rows, columns[, 3]) ``pixels`` to ``size`` = (width, height)."""
    h, w = pixels.shape[:2]
    if (w, h) == size:
        return pixels
    method = _ENLARGE[magnification]
    if magnification is MagnificationType.CUBIC and smoothing in SMOOTHING_TYPES:
        method = SMOOTHING_TYPES[smoothing]
    if method != cv2.INTER_NEAREST and (size[0] < w or size[1] < h):
        method = cv2.INTER_AREA
    return cv2.resize(np.ascontiguousarray(pixels), size, interpolation=method)

# Image boxes are already rendered in parallel; OpenCV's own threads on top of
# that only oversubscribe the cores.
cv2.setNumThreads(1)

#: Width of the trim box drawn round each image when Trim is YES.
TRIM_MM = 0.5

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                   thread_name_prefix="render")
    return _POOL


@dataclass
class PlacedImage:
    """One rendered image: device levels and where they go on the film."""

    position: int
    rect: Rect
    pixel_box: tuple[int, int, int, int]
    levels: NDArray | None
    outcome: FitOutcome
    payload: Any = None


@dataclass
class RenderedFilm:
    """A film ready for output: background, empty boxes, images and text.

    ``levels`` are device levels of the output profile at ``bits`` per sample;
    the film is RGB when ``color`` is true.
    """

    width_mm: float
    height_mm: float
    dpi: float
    bits: int
    color: bool
    border_level: int
    empty_boxes: list[tuple[Rect, int]] = field(default_factory=list)
    images: list[PlacedImage] = field(default_factory=list)
    trims: list[Rect] = field(default_factory=list)
    trim_level: int = 0
    annotations: list[tuple[Rect, str]] = field(default_factory=list)
    text_level: int = 0

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width, height) of the whole film in pixels at ``dpi``."""
        _, _, w, h = Rect(0, 0, self.width_mm, self.height_mm).pixels(self.dpi)
        return w, h

    def raster(self) -> NDArray:
        """The whole film as one array (rows, columns[, 3]); for PNG/TIFF output."""
        w, h = self.pixel_size
        dtype = np.uint8 if self.bits == 8 else np.uint16
        shape = (h, w, 3) if self.color else (h, w)
        film = np.full(shape, self.border_level, dtype=dtype)
        for rect, level in self.empty_boxes:
            x0, y0, x1, y1 = rect.pixels(self.dpi)
            film[y0:y1, x0:x1] = level
        for t in self.trims:
            x0, y0, x1, y1 = t.pixels(self.dpi)
            film[y0:y1, x0:x1] = self.trim_level
        for img in self.images:
            x0, y0, x1, y1 = img.pixel_box
            if img.levels is None:
                raise ValueError("film was rendered without keeping its device levels")
            levels = img.levels
            film[y0:y1, x0:x1] = levels[..., None] if self.color and levels.ndim == 2 else levels
        if self.annotations:
            _draw_text(film, self)
        return film


def _draw_text(film: NDArray, rendered: RenderedFilm) -> None:
    from PIL import ImageDraw, ImageFont

    for rect, text in rendered.annotations:
        x0, y0, x1, y1 = rect.pixels(rendered.dpi)
        if x1 <= x0 or y1 <= y0:
            continue
        strip = film[y0:y1, x0:x1]
        size = max(8, int((y1 - y0) * 0.6))
        font = ImageFont.load_default(size)
        if film.dtype == np.uint8:
            im = Image.fromarray(np.ascontiguousarray(strip))
            ImageDraw.Draw(im).text((2, (y1 - y0) // 2), text, anchor="lm", font=font,
                                    fill=(rendered.text_level,) * 3 if rendered.color
                                    else rendered.text_level)
            strip[...] = np.asarray(im)
        else:
            mask = Image.new("L", (x1 - x0, y1 - y0), 0)
            ImageDraw.Draw(mask).text((2, (y1 - y0) // 2), text, anchor="lm", font=font, fill=255)
            m = np.asarray(mask) > 127
            strip[m] = rendered.text_level


def pvalue_table(film_box: FilmBox, box: ImageBox) -> NDArray[np.uint16]:
    """16-bit P-value per stored pixel value of ``box`` (polarity + Presentation LUT)."""
    plut = film_box.effective_presentation_lut
    args = (box.bits_stored, film_box.min_density_od, film_box.max_density_od,
            float(film_box.illumination), float(film_box.reflected_ambient_light))
    table = plut.table(*args)
    return lut_presentation.quantize(lut_presentation.with_polarity(table, box.inverted))


def density_pvalue(film_box: FilmBox, od: float) -> int:
    """16-bit P-value at which the film prints optical density ``od``."""
    p = lut_density.density_to_pvalue(
        od, 16, film_box.min_density_od, film_box.max_density_od,
        float(film_box.illumination), float(film_box.reflected_ambient_light),
    )
    return int(np.rint(p))


def render_film(
    film_box: FilmBox,
    *,
    dpi: float | None = None,
    profile: OutputProfile | None = None,
    bits: int = 8,
    margins: Margins = DEFAULT_MARGINS,
    custom_layouts: dict[str, tuple[Cell, ...]] | None = None,
    postprocess: Callable[[NDArray], Any] | None = None,
    keep_levels: bool = True,
) -> RenderedFilm:
    """Lay out and render ``film_box`` at ``dpi`` (default: its Requested Resolution ID).

    ``postprocess`` runs on each image's device levels in the render thread (the
    PDF writer compresses there) and its result is kept as ``payload``; with
    ``keep_levels`` false the levels themselves are then dropped to save memory.
    """
    if bits not in (8, 16):
        raise ValueError("output bits must be 8 or 16")
    dpi = float(dpi or film_box.requested_resolution_id.dpi)  # type: ignore[union-attr]
    profile = profile or default_profile()
    fb = film_box
    cells = fb.image_display_format.cells(custom_layouts or fb.custom_layouts)  # type: ignore[union-attr]
    geometry = film_geometry(fb.film_size_id, fb.film_orientation, cells,  # type: ignore[arg-type]
                             margins, annotation=fb.has_annotation_strip)
    dmin, dmax = fb.min_density_od, fb.max_density_od
    device = profile.table(bits, dmin, dmax, float(fb.illumination),
                           float(fb.reflected_ambient_light))

    def level(density: values.Density) -> int:
        return int(device[density_pvalue(fb, values.density_od(density, dmin, dmax))])

    color = any(b.is_color for b in fb.image_boxes)
    film = RenderedFilm(
        geometry.width_mm, geometry.height_mm, dpi, bits, color,
        border_level=level(fb.border_density),  # type: ignore[arg-type]
    )
    empty_level = level(fb.empty_image_density)  # type: ignore[arg-type]
    jobs = []
    for box, rect in zip(fb.image_boxes, geometry.boxes, strict=True):
        if box.is_empty:
            film.empty_boxes.append((rect, empty_level))
            continue
        placement = place_image(
            rect, box.rows, box.columns, dpi,
            pixel_aspect_ratio=box.pixel_aspect_ratio,
            requested_width_mm=box.requested_image_size,  # type: ignore[arg-type]
            no_magnification=(box.magnification_type or fb.magnification_type)
            is MagnificationType.NONE,
            behavior=box.requested_decimate_crop_behavior,  # type: ignore[arg-type]
        )
        table = None if box.is_color else pvalue_table(fb, box)
        jobs.append(_pool().submit(
            _render_box, box, placement, table, device, dpi,
            box.magnification_type or fb.magnification_type, bits, postprocess,
            keep_levels or postprocess is None, box.smoothing_type or fb.smoothing_type,
        ))
        if fb.trim is Trim.YES:
            r = placement.rect
            t = TRIM_MM
            film.trims.extend([
                Rect(r.x - t, r.y - t, r.width + 2 * t, t),
                Rect(r.x - t, r.y + r.height, r.width + 2 * t, t),
                Rect(r.x - t, r.y, t, r.height), Rect(r.x + r.width, r.y, t, r.height),
            ])
    film.images = [j.result() for j in jobs]
    # Trim and text contrast with the border: light on a dark border, dark on a light one.
    light = int(device[-1])
    dark = int(device[0])
    border_is_dark = abs(film.border_level - dark) < abs(film.border_level - light)
    film.trim_level = light if border_is_dark else dark
    film.text_level = film.trim_level
    if fb.annotations and geometry.annotation_area is not None:
        film.annotations = _annotation_rects(geometry.annotation_area, fb.annotations,
                                             int(fb.annotation_boxes))
    return film


def _annotation_rects(area: Rect, texts: dict[int, str], boxes: int = 0
                      ) -> list[tuple[Rect, str]]:
    """Annotation positions split the strip below the images into equal parts, left to
    right, one per annotation box of the format (or per position used)."""
    n = max(boxes, *texts)
    w = area.width / n
    return [(Rect(area.x + (pos - 1) * w, area.y, w, area.height), text)
            for pos, text in sorted(texts.items()) if text]


def _render_box(
    box: ImageBox,
    placement: Any,
    table: NDArray[np.uint16] | None,
    device: NDArray,
    dpi: float,
    magnification: MagnificationType,
    bits: int,
    postprocess: Callable[[NDArray], Any] | None,
    keep_levels: bool,
    smoothing: str | None = None,
) -> PlacedImage:
    x0, y0, x1, y1 = placement.rect.pixels(dpi)
    size = (max(1, x1 - x0), max(1, y1 - y0))
    r0, r1, c0, c1 = placement.crop
    pixels = box.pixels[r0:r1, c0:c1]  # type: ignore[index]
    if table is not None:
        pv = apply_lut(table, pixels, threads=1)  # P-values at the image's own size
        levels = apply_lut(device, magnify(pv, size, magnification, smoothing), threads=1)
    else:
        if box.polarity is Polarity.REVERSE:
            pixels = 255 - pixels  # color REVERSE: the complementary color
        levels = magnify(pixels, size, magnification, smoothing)
        if bits == 16:
            levels = levels.astype(np.uint16) * 257
    payload = postprocess(levels) if postprocess else None
    return PlacedImage(box.position, placement.rect, (x0, y0, x0 + size[0], y0 + size[1]),
                       levels if keep_levels else None, placement.outcome, payload)
