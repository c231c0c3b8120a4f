"""Rendering a spooled print job into its film file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from printscp.printing.output import flate_image, write_pdf
from printscp.printing.profile import OutputProfile
from printscp.printing.records import film_box_from_record
from printscp.printing.render import render_film
from printscp.printing.spool import PrintJob, Renderer, film_file_stem


def pdf_renderer(profile: OutputProfile | None = None, dpi: float | None = None) -> Renderer:
    """A spool renderer writing one PDF per job: a page per film, times Number of Copies."""

    def render(job: PrintJob, arrays: dict[str, NDArray], films_dir: Path) -> dict[str, Any]:
        films = [film_box_from_record(rec, arrays) for rec in job.films]
        rendered = [render_film(fb, dpi=dpi, profile=profile, postprocess=flate_image,
                                keep_levels=False) for fb in films]
        copies = int(job.session.get("number_of_copies") or 1)
        path = films_dir / f"{film_file_stem(job)}.pdf"
        label = job.session.get("film_session_label") or job.job_id
        write_pdf(rendered, path, title=f"printscp film {label}", copies=copies)
        return {"output": str(path), "pages": len(rendered) * copies, "copies": copies,
                "film_count": len(rendered)}

    return render
