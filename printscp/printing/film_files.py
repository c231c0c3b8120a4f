"""Writing rendered films: PDF (reportlab), PNG and 16-bit TIFF (Pillow).

The PDF page is the film's physical size.  Backgrounds, empty boxes, trim boxes
and text are vector shapes in the exact device gray; each image is its own
lossless (Flate) image XObject at the rendered resolution, compressed in the
render threads.  Never rasterising and compressing the whole film is what keeps a
300-DPI 14INX17IN film well under a second.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen import canvas as rl_canvas

from printscp.core.files import atomic_write
from printscp.printing.layout import MM_PER_INCH, Rect
from printscp.printing.render import RenderedFilm

try:  # Intel ISA-L deflate: same Flate stream, ~5x faster than zlib on film images
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - platforms without isal wheels
    import zlib as _deflate

POINTS_PER_MM = 72.0 / MM_PER_INCH
#: Deflate level for image data: level 1 is several times faster than 6 on film
#: images for a few percent in size, the better trade for a print spool.
FLATE_LEVEL = 1


def flate_image(levels: NDArray) -> tuple[bytes, int, int, str]:
    """Compress device levels for an 8-bit PDF image XObject (runs in render threads)."""
    data = np.ascontiguousarray(levels, dtype=np.uint8)
    h, w = data.shape[:2]
    space = "DeviceRGB" if data.ndim == 3 else "DeviceGray"
    return _deflate.compress(data, FLATE_LEVEL), w, h, space


class _FlateImage(pdfdoc.PDFImageXObject):
    """An image XObject from already-compressed samples (reportlab would recompress)."""

    def __init__(self, name: str, payload: tuple[bytes, int, int, str]) -> None:
        super().__init__(name)
        self.streamContent, self.width, self.height, self.colorSpace = payload
        self.bitsPerComponent = 8
        self._filters = ("FlateDecode",)
        self.mask = None


def _draw_image(c: rl_canvas.Canvas, name: str, payload: Callable[[], tuple[bytes, int, int, str]],
                x: float, y: float, w: float, h: float) -> None:
    # Mirrors what Canvas.drawImage does, with our own XObject: an image already
    # registered under ``name`` is only referenced again, so a film drawn on several
    # pages (tiles on paper) carries its image data once.  ``payload`` is only called
    # for a new image.
    doc = c._doc
    reg_name = doc.getXObjectName(name)
    if doc.idToObject.get(reg_name) is None:
        obj = _FlateImage(name, payload())
        c._setXObjects(obj)
        doc.Reference(obj, reg_name)
        doc.addForm(name, obj)
    c._currentPageHasImages = 1
    c.saveState()
    c.translate(x, y)
    c.scale(w, h)
    c._code.append(f"/{reg_name} Do")
    c.restoreState()
    c._formsinuse.append(name)


def _gray(c: rl_canvas.Canvas, level: int, color: bool, fill: bool = True) -> None:
    v = level / 255.0
    if color:
        (c.setFillColorRGB if fill else c.setStrokeColorRGB)(v, v, v)
    else:
        (c.setFillGray if fill else c.setStrokeGray)(v)


def _overlaps(a: Rect, b: Rect) -> bool:
    return (a.x < b.x + b.width and b.x < a.x + a.width
            and a.y < b.y + b.height and b.y < a.y + a.height)


def draw_film(c: rl_canvas.Canvas, film: RenderedFilm, prefix: str, *, x: float = 0.0,
              y: float = 0.0, scale: float = 1.0, visible: Rect | None = None) -> None:
    """Draw ``film`` on the current page: lower-left corner at (``x``, ``y``) points,
    ``scale`` times its physical size.

    Image XObjects are named ``{prefix}-img{position}``; drawing the same film again
    with the same prefix (another tile page) references the images already embedded.
    ``visible`` (film millimetres, origin top left) skips images, boxes and text
    wholly outside that part of the film, so a tile page references only its own
    images.  The caller owns the page: size, clipping and ``showPage``.
    """
    if film.bits != 8:
        raise ValueError("PDF output needs 8-bit device levels")
    film_h = film.height_mm * POINTS_PER_MM
    moved = scale != 1.0 or x != 0.0 or y != 0.0
    if moved:
        c.saveState()
        c.translate(x, y)
        c.scale(scale, scale)

    def shown(r: Rect) -> bool:
        return visible is None or _overlaps(r, visible)

    def rect(r: Rect, level: int) -> None:
        _gray(c, level, film.color)
        c.rect(r.x * POINTS_PER_MM, film_h - (r.y + r.height) * POINTS_PER_MM,
               r.width * POINTS_PER_MM, r.height * POINTS_PER_MM, stroke=0, fill=1)

    rect(Rect(0, 0, film.width_mm, film.height_mm), film.border_level)
    for r, level in film.empty_boxes:
        if shown(r):
            rect(r, level)
    for t in film.trims:
        if shown(t):
            rect(t, film.trim_level)
    for img in film.images:
        r = img.rect
        if not shown(r):
            continue
        _draw_image(c, f"{prefix}-img{img.position}",
                    lambda img=img: img.payload or flate_image(img.levels),
                    r.x * POINTS_PER_MM, film_h - (r.y + r.height) * POINTS_PER_MM,
                    r.width * POINTS_PER_MM, r.height * POINTS_PER_MM)
    for r, text in film.annotations:
        if not shown(r):
            continue
        size = r.height * POINTS_PER_MM * 0.55
        _gray(c, film.text_level, film.color)
        c.setFont("Helvetica", size)
        c.drawString((r.x + 1.0) * POINTS_PER_MM,
                     film_h - (r.y + r.height / 2) * POINTS_PER_MM - size * 0.35, text)
    if moved:
        c.restoreState()


def _page(c: rl_canvas.Canvas, film: RenderedFilm, page_no: int) -> None:
    if film.bits != 8:
        raise ValueError("PDF output needs 8-bit device levels")
    c.setPageSize((film.width_mm * POINTS_PER_MM, film.height_mm * POINTS_PER_MM))
    draw_film(c, film, f"film{page_no}")
    c.showPage()


def write_pdf(films: Iterable[RenderedFilm], path: str | os.PathLike[str], *,
              title: str = "printscp film", copies: int = 1) -> Path:
    """Write one page per film (each film ``copies`` times), atomically and durably."""
    buf = io.BytesIO()
    c = rl_canvas.Canvas(buf, pageCompression=1, invariant=1)
    c.setTitle(title)
    c.setCreator("printscp")
    page_no = 0
    for film in films:
        for _ in range(copies):
            page_no += 1
            _page(c, film, page_no)
    if page_no == 0:
        raise ValueError("no films to write")
    c.save()
    return atomic_write(path, buf.getvalue())


def write_png(film: RenderedFilm, path: str | os.PathLike[str]) -> Path:
    """The whole film as a PNG at the film's DPI (8 or 16 bit gray, or RGB)."""
    return _write_raster(film, path, "PNG", compress_level=1)


def write_tiff(film: RenderedFilm, path: str | os.PathLike[str]) -> Path:
    """The whole film as an uncompressed TIFF; 16-bit gray when rendered with bits=16."""
    return _write_raster(film, path, "TIFF")


def _write_raster(film: RenderedFilm, path: str | os.PathLike[str], fmt: str, **opts) -> Path:
    raster = film.raster()
    if raster.dtype == np.uint16:
        if raster.ndim == 3:
            raise ValueError("16-bit output is grayscale only")
        im = Image.fromarray(raster)  # uint16 -> mode I;16
    else:
        im = Image.fromarray(raster)
    buf = io.BytesIO()
    im.save(buf, fmt, dpi=(film.dpi, film.dpi), **opts)
    return atomic_write(path, buf.getvalue())
