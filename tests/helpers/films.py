"""Films to print, and printed films read back: PDF pages as pixels (poppler's
``pdftoppm``), page counts and sizes (``pdfinfo``).

The readers need poppler-utils: mark their tests ``@pytest.mark.poppler``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.images import ramp
from printscp.printing.film_box import FilmBox
from printscp.printing.image_box import ImageBox


def ramp_films(count: int = 1, size: str = "8INX10IN", fmt: str = "STANDARD\\1,1",
               annotation: str = "") -> list[FilmBox]:
    """``count`` portrait film boxes, each with a 12-bit :func:`ramp` in position 1 and,
    with ``annotation``, that text in a LABEL annotation box."""
    labelled = ({"annotation_display_format_id": "LABEL", "annotation_boxes": 1,
                 "annotations": {1: annotation}} if annotation else {})
    return [FilmBox(image_display_format=fmt, film_size_id=size, film_orientation="PORTRAIT",
                    image_boxes=[ImageBox(position=1, pixels=ramp(), bits_stored=12)],
                    **labelled)
            for _ in range(count)]


def pdf_page(pdf: str | Path, dpi: int, page: int = 1, *, color: bool = False) -> np.ndarray:
    """Page ``page`` of ``pdf`` rendered by pdftoppm at ``dpi``: an 8-bit gray array
    (pdftoppm -gray), or with ``color`` an RGB one (rows, columns, 3)."""
    with tempfile.TemporaryDirectory(prefix="printscp-page-") as tmp:
        out = Path(tmp) / "page"
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page),
                        *([] if color else ["-gray"]), "-png", "-singlefile", str(pdf),
                        str(out)], check=True, capture_output=True)
        with Image.open(out.with_suffix(".png")) as im:
            pixels = np.asarray(im.convert("RGB") if color else im)
    if not color and pixels.ndim == 3:  # some poppler versions write gray pages as RGB
        assert (pixels[..., 0] == pixels[..., 1]).all()
        assert (pixels[..., 0] == pixels[..., 2]).all()
        pixels = pixels[..., 0]
    return pixels


def pdf_info(pdf: str | Path) -> dict[str, str]:
    """pdfinfo's fields (``Pages``, ``Page size``...) as text."""
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                         check=True).stdout
    return {k.strip(): v.strip() for k, v in
            (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def pdf_pages(pdf: str | Path) -> tuple[int, tuple[float, float]]:
    """(page count, (width, height) of the first page in points)."""
    info = pdf_info(pdf)
    w, h = info["Page size"].split("pts")[0].split(" x ")
    return int(info["Pages"]), (float(w), float(h))


def page_sizes(pdf: str | Path) -> list[tuple[float, float]]:
    """(width, height) in points of every page."""
    out = subprocess.run(["pdfinfo", "-f", "1", "-l", "9999", str(pdf)], capture_output=True,
                         text=True, check=True).stdout
    return [(float(w), float(h)) for w, h in
            re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", out)]
