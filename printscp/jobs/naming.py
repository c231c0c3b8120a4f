"""File names of film outputs from a target's templates.

Every value put into a name comes from the network (calling AE title, Film Session
Label), so each is reduced to ``[A-Za-z0-9._-]`` before it is used: no value can
add a path separator or climb out of the directory with ``..``.  Only the
administrator's template itself may contain ``/`` to build a directory layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from printscp.core.files import safe_name
from printscp.jobs.spool import PrintJob, film_file_stem
from printscp.jobs.targets import FileTarget

EXTENSIONS = {"pdf": ".pdf", "png": ".png", "tiff": ".tif"}


def name_fields(job: PrintJob, film: int | None = None) -> dict[str, str]:
    """Values of the template fields for ``job`` (and its ``film``-th film, 1-based)."""
    return {
        "stem": film_file_stem(job),
        "date": job.job_id[:8],
        "time": job.job_id[9:15],
        "calling_ae": safe_name(job.calling_ae.strip() or "UNKNOWN"),
        "called_ae": safe_name(job.called_ae.strip() or "UNKNOWN"),
        "printer": safe_name(job.extra.get("printer") or "printscp"),
        "label": safe_name(str(job.session.get("film_session_label") or "").strip()[:40]
                       or "nolabel"),
        "job": job.job_id.rsplit("-", 1)[-1],
        "job_id": job.job_id,
        "film": f"{film or 1}",
        "copies": str(job.session.get("number_of_copies") or 1),
    }


def _expand(template: str, values: dict[str, Any]) -> list[str]:
    parts = [p for p in template.format(**values).split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"template {template!r} climbs out of its directory")
    return parts


def output_paths(target: FileTarget, job: PrintJob, data_dir: Path, films: int) -> list[Path]:
    """Where ``target`` writes the files of ``job``: one PDF, or one raster per film."""
    ext = EXTENSIONS[target.format.value]
    base = Path(target.directory.format(**name_fields(job)))
    if ".." in base.parts:
        raise ValueError(f"directory {target.directory!r} climbs out of its directory")
    folder = base if base.is_absolute() else Path(data_dir) / base
    def path(template: str, film: int | None) -> Path:
        parts = _expand(template, name_fields(job, film))
        if not parts:
            raise ValueError(f"name {target.name!r} is empty for job {job.job_id}")
        return folder.joinpath(*parts[:-1], parts[-1] + ext)

    if target.format.value == "pdf":
        return [path(target.name, None)]
    name = target.name if "{film}" in target.name or films == 1 else target.name + "_{film}"
    return [path(name, i) for i in range(1, films + 1)]
