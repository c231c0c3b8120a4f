"""Writing calibration results: LUT text table, DCMTK characteristic file, printer profile.

The profile is what closes the loop: ``printscp serve --config out.toml`` renders
with the measured curve (``[printer] output_profile``), which printscp turns into the
same DCMTK calibration LUT this tool reports, at the film's densities and light.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from calibration.measurements import Measurement
from lut import device as lut_device


def lut_text(lut: NDArray[np.integer], *, comments: tuple[str, ...] = ()) -> str:
    """One ``input output`` line per input level, ``#`` comments first."""
    head = [f"# {c}" for c in comments]
    head.append("# input output")
    body = [f"{i} {int(v)}" for i, v in enumerate(lut.tolist())]
    return "\n".join([*head, *body, ""])


def read_lut_text(path: str | os.PathLike[str]) -> NDArray[np.int64]:
    """Read back :func:`lut_text` output (inputs must be 0, 1, 2 ... in order)."""
    out: list[int] = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if len(tokens) != 2 or not all(t.isdigit() for t in tokens) or int(tokens[0]) != len(out):
            raise ValueError(f"{path}:{lineno}: expected 'input output' for input {len(out)}")
        out.append(int(tokens[1]))
    return np.array(out, dtype=np.int64)


def write_lut(path: str | os.PathLike[str], lut: NDArray[np.integer],
              comments: tuple[str, ...] = ()) -> Path:
    path = Path(path)
    path.write_text(lut_text(lut, comments=comments), encoding="ascii")
    return path


def write_profile(path: str | os.PathLike[str], measured: Measurement, *,
                  min_density: float | None = None,
                  max_density: float | None = None) -> tuple[Path, Path]:
    """Write ``out.toml`` and the DCMTK characteristic file ``out.lut`` beside it.

    The TOML names the curve by its file name only, which ``load_config`` resolves
    next to the TOML, so both can be moved together.  Printers also get the film box
    defaults their calibration assumes: the density range (requested, else what the
    printer reached, rounded inward to hundredths of OD), illumination and ambient.
    Returns (toml path, characteristic file path).
    """
    path = Path(path)
    curve_path = path.with_suffix(".lut")
    if curve_path == path:
        curve_path = path.with_name(path.name + ".lut")
    lut_device.write_characteristic_file(measured.to_curve(), curve_path)
    lines = [
        f"# printscp printer profile from {measured.source or 'measurements'}",
        "# (printscp calibrate analyze --profile); use: printscp serve --config "
        + path.name,
        "",
        "[printer]",
        f'output_profile = "{curve_path.name}"',
    ]
    if measured.is_printer:
        dmin = min_density if min_density is not None else float(measured.values.min())
        dmax = max_density if max_density is not None else float(measured.values.max())
        lo = math.ceil(round(dmin * 100, 6))
        hi = math.floor(round(dmax * 100, 6))
        lines += [
            "",
            "[printer.film_box_defaults]",
            f"min_density = {lo}",
            f"max_density = {hi}",
            f"illumination = {round(measured.illumination or 0)}",
            f"reflected_ambient_light = {round(measured.ambient)}",
        ]
    path.write_text("\n".join([*lines, ""]), encoding="utf-8")
    return path, curve_path
