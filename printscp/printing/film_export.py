"""``printscp film``: DICOM image files to a PDF of films.

Builds the same Film Box and Image Box objects a modality would create over the
network and hands them to the same renderer, so a PDF exported here looks exactly
like a film printed to ``printscp serve`` with the same settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from printscp.printing.film_box import FilmBox
from printscp.printing.film_files import flate_image, write_pdf
from printscp.printing.image_box import ImageBox
from printscp.printing.images import ImageReadError, PrintImage, read_print_images
from printscp.printing.profile import OutputProfile
from printscp.printing.render import RenderedFilm, render_film


@dataclass
class ExportResult:
    films: int = 0
    images: int = 0
    errors: list[ImageReadError] = field(default_factory=list)


def read_images(paths: Iterable[str], window: tuple[float, float] | None,
                errors: list[ImageReadError],
                on_file: Callable[[], None] = lambda: None) -> Iterator[PrintImage]:
    """Every frame of every readable file; unreadable files are added to ``errors``."""
    for path in paths:
        try:
            frames = list(read_print_images(path, window))
        except ImageReadError as err:
            errors.append(err)
            frames = []
        on_file()
        yield from frames


def films_from_images(
    images: Iterable[PrintImage],
    film_attributes: dict[str, object],
    image_attributes: dict[str, object] | None = None,
    annotation: str | None = None,
) -> Iterator[FilmBox]:
    """Fill film boxes with ``images`` in order, starting a new film when one is full."""
    film: FilmBox | None = None
    used = 0
    for image in images:
        if film is None or used == len(film.image_boxes):
            if film is not None:
                yield film
            film = FilmBox(**film_attributes)  # type: ignore[arg-type]
            if annotation:
                film.annotations[1] = annotation
            used = 0
        used += 1
        film.set_image(used, ImageBox(
            position=used,
            pixels=image.pixels,
            photometric_interpretation=image.photometric_interpretation,
            bits_stored=image.bits_stored,
            pixel_aspect_ratio=image.pixel_aspect_ratio,
            **(image_attributes or {}),  # type: ignore[arg-type]
        ))
    if film is not None:
        yield film


def export_pdf(
    paths: list[str],
    output: str | os.PathLike[str],
    *,
    film_attributes: dict[str, object],
    image_attributes: dict[str, object] | None = None,
    window: tuple[float, float] | None = None,
    annotation: str | None = None,
    dpi: float | None = None,
    profile: OutputProfile | None = None,
    on_file: Callable[[], None] = lambda: None,
) -> ExportResult:
    """Render every readable image of ``paths`` onto films and write one PDF.

    Unreadable files are collected in ``result.errors``; the rest still print.
    Nothing is written when no file had an image.
    """
    result = ExportResult()
    rendered: list[RenderedFilm] = []
    images = read_images(paths, window, result.errors, on_file)
    for film in films_from_images(images, film_attributes, image_attributes, annotation):
        # Keep only the compressed images: many pages must not hold every raster.
        rendered.append(render_film(film, dpi=dpi, profile=profile, postprocess=flate_image,
                                    keep_levels=False))
        result.images += sum(not b.is_empty for b in film.image_boxes)
    result.films = len(rendered)
    if rendered:
        write_pdf(rendered, output)
    return result
