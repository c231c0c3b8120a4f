"""Rendering a spooled print job into its film file.

:func:`render_job` reads everything from the job's spool folder, so it can run in
a separate process: the node renders there, keeping the receiving threads free of
the rendering work (and a crash in a renderer from the server).

This module imports nothing heavy itself: a node's worker imports it (for
:func:`prepared_file` and to name :func:`render_job`), and so does a fresh render
process before anything else, at the normal priority.  The rendering stack (numpy,
OpenCV, Pillow, reportlab, the LUTs: about 0.5 s of CPU) is imported by
:func:`warm_up`, which the node asks for once it has been idle a moment, and mostly at
the lowest priority (:mod:`printscp.core.background`), so that a node that has just
started and already receives does not lose a core to it.  A job that comes first
imports what it needs itself.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp.core.background import Background

if TYPE_CHECKING:
    from printscp.printing.profile import OutputProfile

#: This render process's warm-up (:func:`warm_up`), None until it is asked for.
_warming: Background[bool] | None = None


@functools.lru_cache(maxsize=8)
def _profile(path: str) -> OutputProfile | None:
    from printscp.printing.profile import OutputProfile

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
    if _warming is not None and not _warming.done:  # a job in the first second
        _warming.boost()
        _warming.wait()
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
    from printscp.printing.records import film_box_from_record
    from printscp.printing.render import render_film

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


def started() -> bool:
    """Nothing: submitted to a new render process, it has the process started."""
    return True


def warm_up() -> bool:
    """Start importing and initialising the rendering stack at the lowest priority, in
    the background (run once in a render process); returns at once.

    A job submitted meanwhile waits for the warm-up (:func:`render_job`), which it
    then asks to run at the normal priority (if the process may raise it again).
    """
    global _warming
    if _warming is None:
        # Here, at the normal priority (0.1 s): numpy and OpenCV start threads of their
        # own when imported (OpenBLAS's, OpenCV's pool), and a thread keeps the nice
        # value of the thread that made it; made by the warm-up, they would render at 19.
        import cv2  # noqa: F401
        import numpy  # noqa: F401

        _warming = Background(_import_rendering, "printscp-render-warm-up")
    return True


def _import_rendering() -> bool:
    import printscp.jobs.naming
    import printscp.jobs.spool
    import printscp.printing.film_files
    import printscp.printing.records
    import printscp.printing.render  # noqa: F401  (what render_job imports)
    from printscp.printing.profile import default_profile

    default_profile().table(8, 0.2, 3.0, 2000.0, 10.0)
    return True
