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

from printscp.core.files import atomic_write
from printscp.jobs.naming import output_paths
from printscp.jobs.spool import PrintJob, load_arrays
from printscp.jobs.targets import (
    ArchiveTarget,
    CupsTarget,
    FileTarget,
    TargetKind,
    snapshot_targets,
)
from printscp.printing.film_files import flate_image, write_pdf, write_png, write_tiff
from printscp.printing.profile import OutputProfile
from printscp.printing.records import film_box_from_record
from printscp.printing.render import render_film


@functools.lru_cache(maxsize=8)
def _profile(path: str) -> OutputProfile | None:
    return OutputProfile.from_file(path) if path else None


def prepared_file(folder: Path, index: int) -> Path:
    """Where the render step leaves target ``index``'s document for its delivery."""
    return Path(folder) / f"target-{index}.pdf"


def render_job(folder: str | Path, data_dir: str | Path, profile_path: str = "",
               dpi: float | None = None) -> dict[str, Any]:
    """Render the job in spool ``folder`` for each of its targets.

    File targets are written to their final place (atomically); a CUPS target's
    paper document is left in the spool folder for its delivery, which happens
    outside the render process (it is network work, retried on its own).  Returns
    the sidecar fields: ``outputs`` (every file written), ``output`` (the first),
    pages, copies and film count.
    """
    folder = Path(folder)
    job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
    arrays = load_arrays(folder)
    # The printer that received the job decides; the node's settings are the fallback.
    profile = _profile(job.extra.get("output_profile", profile_path))
    dpi = job.extra.get("dpi", dpi)
    targets = snapshot_targets(job.extra.get("targets"))
    files = [t for t in targets if isinstance(t, FileTarget)]
    rasters = any(t.format is not TargetKind.PDF for t in files)
    films = [film_box_from_record(rec, arrays) for rec in job.films]
    rendered = [render_film(fb, dpi=dpi, profile=profile, postprocess=flate_image,
                            keep_levels=rasters) for fb in films]
    wide = [render_film(fb, dpi=dpi, profile=profile, bits=16) for fb in films] \
        if any(t.bits == 16 for t in files) else []
    copies = int(job.session.get("number_of_copies") or 1)
    label = job.session.get("film_session_label") or job.job_id
    title = f"printscp film {label}"
    outputs: list[str] = []
    paper_pages: dict[str, int] = {}
    for index, target in enumerate(targets):
        if isinstance(target, FileTarget):
            paths = output_paths(target, job, Path(data_dir), len(rendered))
            if target.format is TargetKind.PDF:
                write_pdf(rendered, paths[0], title=title, copies=copies)
            else:
                write = write_png if target.format is TargetKind.PNG else write_tiff
                for film, path in zip(wide if target.bits == 16 else rendered, paths,
                                      strict=True):
                    write(film, path)
            outputs.extend(str(p) for p in paths)
        elif isinstance(target, CupsTarget):
            from printscp.printing.paper import PaperPolicy, paper_pdf

            # Copies go to CUPS as the IPP copies attribute, not as repeated pages.
            document, pages = paper_pdf(rendered, target.paper.upper(),
                                        PaperPolicy(target.fit), margin_mm=target.margin_mm,
                                        title=title)
            atomic_write(prepared_file(folder, index), document)
            paper_pages[str(index)] = pages
        elif isinstance(target, ArchiveTarget):  # the films as they are, one page each
            write_pdf(rendered, prepared_file(folder, index), title=title)
    return {"output": outputs[0] if outputs else "", "outputs": outputs,
            "pages": len(rendered) * copies, "copies": copies, "film_count": len(rendered),
            "paper_pages": paper_pages}


def warm_up() -> bool:
    """Import and initialise the rendering stack (run once in a fresh render process)."""
    from printscp.printing.profile import default_profile

    default_profile().table(8, 0.2, 3.0, 2000.0, 10.0)
    return True
