"""Film previews: a PNG of one film of a job at a requested width, cached on disk.

A preview is rendered from the job's stored source (``history/<job_id>/`` once it is
finished, ``spool/<job_id>/`` before: ``job.json`` and ``pixels.npz``) through the
same renderer as the films themselves (:func:`printscp.printing.render.render_film`,
with the printer's output profile), at the resolution that gives the requested width
— never by rasterising the PDF.  It is written atomically to
``previews/<job_id>/<film>-<width>.png``; the source never changes, so the cache never
goes stale (deleting a job removes its previews).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from printscp.core.files import atomic_write
from printscp.jobs.control import PREVIEWS, JobNotFound
from printscp.jobs.spool import PIXELS, PrintJob, find_job, job_source

#: Preview widths are clamped to this range (pixels).
MIN_WIDTH, MAX_WIDTH = 64, 2048
#: The width of a thumbnail (print queue).
THUMBNAIL_WIDTH = 160


def preview_path(data_dir: Path, job_id: str, film_index: int, width: int) -> Path:
    """Where the preview of film ``film_index`` (0-based) at ``width`` is cached."""
    return Path(data_dir) / PREVIEWS / job_id / f"{int(film_index)}-{int(width)}.png"


def film_preview(data_dir: Path, job_id: str, film_index: int, width: int) -> Path:
    """The PNG of film ``film_index`` (0-based) of job ``job_id``, ``width`` pixels wide
    (clamped to 64..2048), rendered once and then served from the cache.

    Raises :class:`~printscp.jobs.control.JobNotFound` for an unknown job or one whose
    source is no longer kept, IndexError for a film the job does not have."""
    width = max(MIN_WIDTH, min(MAX_WIDTH, int(width)))
    if not isinstance(film_index, int) or film_index < 0:
        raise IndexError(f"film {film_index}: expected an index >= 0")
    path = preview_path(data_dir, job_id, film_index, width)
    if path.is_file():
        return path
    folder = job_source(data_dir, job_id)
    if folder is None:
        if find_job(data_dir, job_id) is None:
            raise JobNotFound(job_id)
        raise JobNotFound(job_id, f"print job {job_id}: its films are no longer kept")
    job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
    if film_index >= len(job.films):
        raise IndexError(f"film {film_index}: job {job_id} has {len(job.films)} film(s)")
    atomic_write(path, render_preview(folder, job, film_index, width))
    return path


def thumbnail(data_dir: Path, job_id: str, film_index: int = 0) -> Path:
    """The print queue's thumbnail of a film: :func:`film_preview` 160 pixels wide."""
    return film_preview(data_dir, job_id, film_index, THUMBNAIL_WIDTH)


def render_preview(folder: Path, job: PrintJob, film_index: int, width: int) -> bytes:
    """PNG bytes of one film of the job in ``folder``, ``width`` pixels wide: the film
    rendered as a PNG film target renders it, at ``width / film width`` dots per inch."""
    from PIL import Image

    from printscp.jobs.render import _profile
    from printscp.printing.enums import DecimateCropBehavior
    from printscp.printing.layout import film_dimensions
    from printscp.printing.records import film_box_from_record
    from printscp.printing.render import render_film

    with np.load(folder / PIXELS, allow_pickle=False) as arrays:  # read lazily, by name
        film_box = film_box_from_record(job.films[film_index], arrays)
    # The film itself was printed at full resolution; its preview is smaller than an
    # image may be, and FAIL (a printer's default) would refuse it: previews decimate.
    for box in film_box.image_boxes:
        if box.requested_decimate_crop_behavior == DecimateCropBehavior.FAIL:
            box.requested_decimate_crop_behavior = DecimateCropBehavior.DECIMATE
    width_mm, _ = film_dimensions(film_box.film_size_id, film_box.film_orientation)
    dpi = width * 25.4 / width_mm
    profile = _profile(str(job.extra.get("output_profile") or ""))
    film = render_film(film_box, dpi=dpi, profile=profile)
    raster = film.raster()
    buf = io.BytesIO()
    Image.fromarray(raster).save(buf, "PNG", compress_level=1)
    return buf.getvalue()
