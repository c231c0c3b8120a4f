"""Rendering a spooled print job into its film file.

:func:`render_job` reads everything from the job's spool folder, so it can run in
a separate process: the node renders there, keeping the receiving threads free of
the rendering work (and a crash in a renderer from the server).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from printscp.printing.output import flate_image, write_pdf
from printscp.printing.profile import OutputProfile
from printscp.printing.records import film_box_from_record
from printscp.printing.render import render_film
from printscp.printing.spool import PrintJob, film_file_stem, load_arrays


@functools.lru_cache(maxsize=8)
def _profile(path: str) -> OutputProfile | None:
    return OutputProfile.from_file(path) if path else None


def render_job(folder: str | Path, films_dir: str | Path, profile_path: str = "",
               dpi: float | None = None) -> dict[str, Any]:
    """Render the job in spool ``folder`` to one PDF in ``films_dir``.

    One page per film, repeated Number of Copies times.  Returns the sidecar fields
    (output path, pages, copies, film count).
    """
    folder = Path(folder)
    job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
    arrays = load_arrays(folder)
    # The printer that received the job decides; the node's settings are the fallback.
    profile = _profile(job.extra.get("output_profile", profile_path))
    dpi = job.extra.get("dpi", dpi)
    films = [film_box_from_record(rec, arrays) for rec in job.films]
    rendered = [render_film(fb, dpi=dpi, profile=profile, postprocess=flate_image,
                            keep_levels=False) for fb in films]
    copies = int(job.session.get("number_of_copies") or 1)
    path = Path(films_dir) / f"{film_file_stem(job)}.pdf"
    label = job.session.get("film_session_label") or job.job_id
    write_pdf(rendered, path, title=f"printscp film {label}", copies=copies)
    return {"output": str(path), "pages": len(rendered) * copies, "copies": copies,
            "film_count": len(rendered)}


def warm_up() -> bool:
    """Import and initialise the rendering stack (run once in a fresh render process)."""
    from printscp.printing.profile import default_profile

    default_profile().table(8, 0.2, 3.0, 2000.0, 10.0)
    return True
