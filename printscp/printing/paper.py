"""Rendered films laid out on paper pages, as one PDF for a paper printer.

A film is 14x17 inches; paper is A4 or Letter.  Two policies:

* ``FIT``: one page per film, the paper turned to suit the film (landscape paper for
  a landscape film: whichever orientation gives the larger scale) and the film scaled
  uniformly to fill the area inside the margins, centred.  Small films are enlarged
  too: a physician asking for "fit" expects the page filled.  Because a fitted print
  cannot be measured with a ruler, the bottom margin says so ("scaled to 57 %, not
  true size").
* ``TRUE_SIZE``: the film at exactly 1:1, cut into tiles of the printable area (paper
  minus margins), in the paper orientation that needs fewer sheets (portrait on a
  tie).  Tiles are laid out row by row from the film's top left; each tile's piece of
  film starts at the top-left corner of the printable area and is clipped to it, so
  trimming the margins off and butting the sheets together reassembles the film.  The
  bottom margin labels each sheet ("tile 2/4, row 1 col 2, 1:1").  A film that fits
  on one sheet is one page at 1:1, centred.

Paper ``FILM`` means a page of the film's own size (as :func:`write_pdf` writes it):
no margins, no scaling, for printers loaded with film-sized media.

Image data is embedded once per film however many tile pages show it (each page
references the same image XObjects).  Copies: ``copies`` repeats a film's pages in the
PDF (all tiles of a copy together), for printers that ignore the IPP copies attribute;
the print server leaves it at 1 and asks CUPS for copies instead, with
:func:`ipp_job_attributes` so that the tiles of each copy come out collated.
"""

from __future__ import annotations

import enum
import io
import math
from dataclasses import dataclass

from reportlab.pdfgen import canvas as rl_canvas

from printscp.printing.film_files import POINTS_PER_MM, draw_film
from printscp.printing.layout import Rect
from printscp.printing.render import RenderedFilm

#: Paper sizes in millimetres, portrait (width, height).  ``FILM`` is the film's own
#: size (0 x 0 here: it depends on the film).
PAPER_SIZES: dict[str, tuple[float, float]] = {
    "A4": (210.0, 297.0),
    "A3": (297.0, 420.0),
    "LETTER": (215.9, 279.4),
    "LEGAL": (215.9, 355.6),
    "TABLOID": (279.4, 431.8),
    "FILM": (0.0, 0.0),
}

#: PWG 5101.1 self-describing media names (the IPP ``media`` keyword) per paper.
#: FILM has none: the queue's default media is used.
IPP_MEDIA: dict[str, str] = {
    "A4": "iso_a4_210x297mm",
    "A3": "iso_a3_297x420mm",
    "LETTER": "na_letter_8.5x11in",
    "LEGAL": "na_legal_8.5x14in",
    "TABLOID": "na_ledger_11x17in",
}

#: Margin text size in points, and the least margin (mm) that has room for it.
LABEL_POINTS = 6.0
_LABEL_MIN_MARGIN_MM = 3.0
#: Slack (mm) when counting tiles, so float noise never adds an empty sheet.
_EPSILON_MM = 1e-6


class PaperPolicy(enum.Enum):
    """How a film goes on paper: scaled to fit one sheet, or 1:1 over several."""

    FIT = "fit"
    TRUE_SIZE = "true-size"


@dataclass(frozen=True)
class Tile:
    """One sheet of a true-size film: which piece of the film (mm, from its top left)."""

    index: int
    count: int
    row: int
    col: int
    region: Rect


@dataclass(frozen=True)
class Sheet:
    """The paper (mm, as oriented) for one film, and its tiles (one when it fits)."""

    width_mm: float
    height_mm: float
    tiles: tuple[Tile, ...]


def paper_size(paper: str) -> tuple[float, float]:
    """Portrait (width, height) in mm of a paper name (any case); KeyError if unknown."""
    key = paper.upper()
    if key == "FILM":
        raise KeyError("FILM has no fixed size")
    return PAPER_SIZES[key]


def true_size_sheet(film_w: float, film_h: float, paper: str,
                    margin_mm: float = 5.0) -> Sheet:
    """The paper orientation and tiles for a film of ``film_w`` x ``film_h`` mm at 1:1.

    The orientation needing fewer sheets wins; portrait on a tie.
    """
    pw, ph = paper_size(paper)
    best: Sheet | None = None
    for w, h in ((pw, ph), (ph, pw)):
        aw, ah = w - 2 * margin_mm, h - 2 * margin_mm
        if aw <= 0 or ah <= 0:
            raise ValueError(f"margin {margin_mm} mm leaves no printable area on {paper}")
        cols = max(1, math.ceil(film_w / aw - _EPSILON_MM))
        rows = max(1, math.ceil(film_h / ah - _EPSILON_MM))
        tiles = tuple(
            Tile(r * cols + c + 1, rows * cols, r + 1, c + 1, Rect(c * aw, r * ah, aw, ah))
            for r in range(rows) for c in range(cols))
        if best is None or len(tiles) < len(best.tiles):
            best = Sheet(w, h, tiles)
    assert best is not None
    return best


def fit_scale(film_w: float, film_h: float, paper: str,
              margin_mm: float = 5.0) -> tuple[float, float, float]:
    """(page width mm, page height mm, scale) for a film fitted to ``paper``: the
    orientation with the larger scale (portrait on a tie)."""
    pw, ph = paper_size(paper)
    best = (pw, ph, -1.0)
    for w, h in ((pw, ph), (ph, pw)):
        aw, ah = w - 2 * margin_mm, h - 2 * margin_mm
        if aw <= 0 or ah <= 0:
            raise ValueError(f"margin {margin_mm} mm leaves no printable area on {paper}")
        scale = min(aw / film_w, ah / film_h)
        if scale > best[2] + 1e-12:
            best = (w, h, scale)
    return best


def ipp_job_attributes(policy: PaperPolicy, *, pages: int = 1) -> dict[str, str | int | bool]:
    """IPP Job Template attributes that make a print server keep our layout.

    TRUE_SIZE: ``print-scaling=none`` so CUPS (pdftopdf, cups-filters 1.28 / CUPS 2.4
    honour it) never shrinks the 1:1 pages to the printer's imageable area.  FIT: our
    page already is the paper, ``print-scaling=fit`` only absorbs a printer whose
    loaded paper differs slightly.  Several pages per copy: collated copies, so each
    copy's tiles come out together.
    """
    attrs: dict[str, str | int | bool] = {
        "print-scaling": "none" if policy is PaperPolicy.TRUE_SIZE else "fit"}
    if pages > 1:
        attrs["multiple-document-handling"] = "separate-documents-collated-copies"
    return attrs


def paper_pdf(films: list[RenderedFilm], paper: str, policy: PaperPolicy, *,
              margin_mm: float = 5.0, copies: int = 1,
              title: str = "printscp film") -> tuple[bytes, int]:
    """Lay ``films`` out on ``paper`` by ``policy``; return (PDF bytes, page count).

    The page count includes the ``copies`` repetitions.
    """
    if not films:
        raise ValueError("no films to lay out")
    if copies < 1:
        raise ValueError("copies must be at least 1")
    key = paper.upper()
    if key not in PAPER_SIZES:
        raise ValueError(f"unknown paper {paper!r}: one of {', '.join(PAPER_SIZES)}")
    if margin_mm < 0:
        raise ValueError("margin must not be negative")
    buf = io.BytesIO()
    c = rl_canvas.Canvas(buf, pageCompression=1, invariant=1)
    c.setTitle(title)
    c.setCreator("printscp")
    pages = 0
    for n, film in enumerate(films, start=1):
        prefix = f"film{n}"
        for _ in range(copies):
            if key == "FILM":
                pages += _film_page(c, film, prefix)
            elif policy is PaperPolicy.FIT:
                pages += _fit_page(c, film, prefix, key, margin_mm)
            else:
                pages += _tile_pages(c, film, prefix, key, margin_mm)
    c.save()
    return buf.getvalue(), pages


def _film_page(c: rl_canvas.Canvas, film: RenderedFilm, prefix: str) -> int:
    c.setPageSize((film.width_mm * POINTS_PER_MM, film.height_mm * POINTS_PER_MM))
    draw_film(c, film, prefix)
    c.showPage()
    return 1


def _fit_page(c: rl_canvas.Canvas, film: RenderedFilm, prefix: str, paper: str,
              margin_mm: float) -> int:
    w, h, scale = fit_scale(film.width_mm, film.height_mm, paper, margin_mm)
    c.setPageSize((w * POINTS_PER_MM, h * POINTS_PER_MM))
    x = (w - film.width_mm * scale) / 2 * POINTS_PER_MM
    y = (h - film.height_mm * scale) / 2 * POINTS_PER_MM
    draw_film(c, film, prefix, x=x, y=y, scale=scale)
    if abs(scale - 1.0) > 5e-4:
        _label(c, margin_mm, f"scaled to {scale * 100:.0f} %, not true size")
    else:
        _label(c, margin_mm, "1:1")
    c.showPage()
    return 1


def _tile_pages(c: rl_canvas.Canvas, film: RenderedFilm, prefix: str, paper: str,
                margin_mm: float) -> int:
    sheet = true_size_sheet(film.width_mm, film.height_mm, paper, margin_mm)
    page_w, page_h = sheet.width_mm * POINTS_PER_MM, sheet.height_mm * POINTS_PER_MM
    m = margin_mm * POINTS_PER_MM
    for tile in sheet.tiles:
        c.setPageSize((page_w, page_h))
        if tile.count == 1:  # fits: centred, nothing to clip
            x = (page_w - film.width_mm * POINTS_PER_MM) / 2
            y = (page_h - film.height_mm * POINTS_PER_MM) / 2
            draw_film(c, film, prefix, x=x, y=y)
            _label(c, margin_mm, "1:1")
        else:
            region = tile.region
            c.saveState()
            clip = c.beginPath()
            clip.rect(m, m, page_w - 2 * m, page_h - 2 * m)
            c.clipPath(clip, stroke=0, fill=0)
            # The film's point at (region.x, region.y) lands on the printable area's
            # top-left corner.
            x = m - region.x * POINTS_PER_MM
            y = page_h - m + region.y * POINTS_PER_MM - film.height_mm * POINTS_PER_MM
            draw_film(c, film, prefix, x=x, y=y, visible=region)
            c.restoreState()
            _label(c, margin_mm,
                   f"tile {tile.index}/{tile.count}, row {tile.row} col {tile.col}, 1:1")
        c.showPage()
    return len(sheet.tiles)


def _label(c: rl_canvas.Canvas, margin_mm: float, text: str) -> None:
    """Small black text in the bottom margin, when the margin has room for it."""
    if margin_mm < _LABEL_MIN_MARGIN_MM:
        return
    m = margin_mm * POINTS_PER_MM
    c.setFillGray(0.0)
    c.setFont("Helvetica", LABEL_POINTS)
    c.drawString(m, (m - LABEL_POINTS * 0.7) / 2, text)
