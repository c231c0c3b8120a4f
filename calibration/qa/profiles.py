"""Printer profile versions: recalibration results kept for good, one of them current.

Each printer profile (``[printer]`` / ``[printers.NAME]``) gets a folder
``<data-dir>/qa/profiles/<printer>/`` holding ``v0001.lut``, ``v0002.lut`` ... — DCMTK
characteristic files (density per device level, as ``calibrate analyze --profile``
writes them) — each with a ``vNNNN.json`` saying when and from what it was made, a
``current`` file naming the version jobs render with, and ``log.txt`` (one line per
change of ``current``).  Version files are created once and never rewritten or
deleted: a rollback only moves ``current`` (written atomically), so a job spooled with
a version's path renders the same whenever it renders, and the renderer may cache a
profile by its path.

Recalibration (:func:`recalibrated_curve`) turns the densities read on a QC film into
a new characteristic curve: the QC film's step ``k`` was printed at device level
``level_k`` (what the renderer made of its P-value with the profile then current), and
the densitometer says the printer now gives it density ``D_k``.  Those pairs *are* the
printer's characteristic curve (PS3.14 Annex D.2.1), over the levels the wedge used;
outside them the previous curve's shape is kept, scaled by how the printer changed
at that end of the wedge.  The renderer's GSDF calibration
(DCMTK's algorithm, :mod:`lut.device`) then drives the printer so that it follows
the GSDF again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp.core.files import atomic_write, fsync_dir, safe_name

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lut.device import CharacteristicCurve

#: Folder of the data directory holding the profile versions, one folder per printer.
PROFILES = Path("qa") / "profiles"
CURRENT = "current"
LOG = "log.txt"
_VERSION = re.compile(r"^v(\d{4,})\.lut$")
#: Readings at each end of the wedge that set how the previous curve is continued.
END_FIT = 4


@dataclass(frozen=True)
class ProfileVersion:
    """One version of a printer's profile."""

    number: int
    path: Path
    created: str = ""  #: ISO time it was written
    note: str = ""  #: why: "recalibrated from readings.csv", "profile before QA"...
    source: str = ""  #: what it was made from (a readings file, a profile path)

    @property
    def name(self) -> str:
        return f"v{self.number:04d}"


def profile_dir(data_dir: str | os.PathLike[str], printer: str) -> Path:
    return Path(data_dir) / PROFILES / safe_name(printer)


def _version(path: Path) -> ProfileVersion:
    number = int(_VERSION.match(path.name).group(1))  # type: ignore[union-attr]
    meta: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(path.with_suffix(".json").read_text("utf-8"))
    return ProfileVersion(number, path, str(meta.get("created", "")),
                          str(meta.get("note", "")), str(meta.get("source", "")))


def versions(data_dir: str | os.PathLike[str], printer: str) -> list[ProfileVersion]:
    """Every version of ``printer``'s profile, oldest first."""
    folder = profile_dir(data_dir, printer)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _VERSION.match(p.name)]
    return [_version(p) for p in sorted(found, key=lambda p: int(p.stem[1:]))]


def current_profile(data_dir: str | os.PathLike[str], printer: str) -> Path | None:
    """The characteristic file ``printer``'s jobs render with, None when QA has not made
    one (the configured ``output_profile`` applies then).  Cheap: one small file read,
    on every job spooled."""
    folder = profile_dir(data_dir, printer)
    try:
        name = (folder / CURRENT).read_text("utf-8").strip()
    except OSError:
        return None
    path = folder / name
    return path if _VERSION.match(name) and path.is_file() else None


def current_version(data_dir: str | os.PathLike[str], printer: str) -> ProfileVersion | None:
    path = current_profile(data_dir, printer)
    return None if path is None else _version(path)


def find_version(data_dir: str | os.PathLike[str], printer: str,
                 version: int | str) -> ProfileVersion:
    """The version numbered ``version`` (``3``, ``"3"``, ``"v0003"``); KeyError naming
    the known ones."""
    text = str(version).strip().lower().lstrip("v")
    known = versions(data_dir, printer)
    if text.isdigit():
        for v in known:
            if v.number == int(text):
                return v
    names = ", ".join(v.name for v in known) or "none"
    raise KeyError(f"printer {printer!r} has no profile version {version!r} (known: {names})")


def _set_current(data_dir: str | os.PathLike[str], printer: str, version: ProfileVersion,
                 action: str) -> None:
    folder = profile_dir(data_dir, printer)
    atomic_write(folder / CURRENT, f"{version.path.name}\n".encode())
    line = (f"{dt.datetime.now().astimezone().isoformat(timespec='seconds')} {action} "
            f"{version.name}\n")
    with open(folder / LOG, "a", encoding="utf-8") as log:
        log.write(line)
        log.flush()
        os.fsync(log.fileno())


def add_version(data_dir: str | os.PathLike[str], printer: str, curve: CharacteristicCurve,
                *, note: str = "", source: str = "", make_current: bool = True
                ) -> ProfileVersion:
    """Write ``curve`` as ``printer``'s next profile version (and make it current).

    The file is written beside its final name and linked into place, which fails if
    the name exists, so two writers never share a number and no version is ever
    rewritten; a crash leaves no half-written version.
    """
    from lut.device import write_characteristic_file

    folder = profile_dir(data_dir, printer)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".lut", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_characteristic_file(curve, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        number = max((v.number for v in versions(data_dir, printer)), default=0) + 1
        while True:
            target = folder / f"v{number:04d}.lut"
            try:
                os.link(tmp, target)
                break
            except FileExistsError:
                number += 1
    finally:
        tmp.unlink(missing_ok=True)
    created = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    atomic_write(target.with_suffix(".json"), json.dumps(
        {"created": created, "note": note, "source": source, "printer": printer},
        indent=1).encode())
    fsync_dir(folder)
    version = ProfileVersion(number, target, created, note, source)
    if make_current:
        _set_current(data_dir, printer, version, "add")
    return version


def rollback(data_dir: str | os.PathLike[str], printer: str, to: int | str | None = None
             ) -> ProfileVersion:
    """Make an older version current again: ``to`` (a number or ``vNNNN``), else the
    version before the current one.  Nothing is deleted: a later version stays
    available, and ``rollback(..., to=later)`` goes forward again.  ValueError when
    there is nothing to roll back to, KeyError for an unknown version."""
    known = versions(data_dir, printer)
    if not known:
        raise ValueError(f"printer {printer!r} has no QA profile versions")
    current = current_version(data_dir, printer)
    if to is not None:
        target = find_version(data_dir, printer, to)
    else:
        if current is None:
            raise ValueError(f"printer {printer!r} has no current QA profile version")
        older = [v for v in known if v.number < current.number]
        if not older:
            raise ValueError(f"printer {printer!r}: {current.name} is the oldest version; "
                             "nothing to roll back to")
        target = older[-1]
    _set_current(data_dir, printer, target, "rollback to")
    return target


# -- recalibration ---------------------------------------------------------------------
def _decreasing_fit(y: Any, w: Any) -> Any:
    """Weighted least-squares non-increasing fit (pool adjacent violators): densities
    must not rise with the device level, and one noisy reading must not break that."""
    import numpy as np

    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(y.tolist(), w.tolist(), strict=True):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks])


def recalibrated_curve(levels: ArrayLike, density: ArrayLike, previous: CharacteristicCurve,
                       *, max_level: int | None = None) -> CharacteristicCurve:
    """The printer's characteristic curve from a QC film's readings.

    ``levels``: the device level (DDL, 0..``max_level``: the previous curve's maximum
    DDL unless given) each step was printed at; ``density``: what the densitometer read there;
    ``previous``: the curve the film was printed with.  Readings at the same level are
    averaged and the densities made non-increasing with the level; below and above the
    measured levels the previous curve continues, its density changes scaled by the
    ratio new/old fitted over the :data:`END_FIT` readings nearest that end (a printer
    that got steeper there stays steeper beyond), joined continuously.
    The curve keeps the previous one's illumination and ambient light.
    """
    import numpy as np

    from lut.device import CharacteristicCurve, DeviceKind, interpolate_curve

    max_level = previous.max_ddl if max_level is None else int(max_level)
    lv = np.asarray(levels, dtype=np.int64)
    od = np.asarray(density, dtype=np.float64)
    if lv.shape != od.shape or lv.ndim != 1 or lv.size < 3:
        raise ValueError("need at least 3 (level, density) readings of the same length")
    if np.any(lv < 0) or np.any(lv > max_level):
        raise ValueError(f"device levels must be in 0..{max_level}")
    uniq, inverse, counts = np.unique(lv, return_inverse=True, return_counts=True)
    if uniq.size < 3:
        raise ValueError("the readings cover fewer than 3 device levels: the wedge printed "
                         "almost flat; nothing to calibrate from")
    mean = np.bincount(inverse, weights=od) / counts
    measured = _decreasing_fit(mean, counts.astype(np.float64))

    # The previous curve at every level 0..max_level (its own DDL scale mapped onto ours).
    old_full = interpolate_curve(previous)
    grid = np.arange(max_level + 1, dtype=np.float64)
    old = np.interp(grid * (previous.max_ddl / max_level),
                    np.arange(previous.max_ddl + 1, dtype=np.float64), old_full)
    lo, hi = int(uniq[0]), int(uniq[-1])

    def mapped(part: slice, ends: slice, at: int, value: float) -> Any:
        """The previous curve over ``part``, scaled by the slope ratio new/old fitted
        over the readings ``ends`` (the few nearest that end) and joined at ``at``."""
        x, y = old[uniq[ends]], measured[ends]
        a = np.polyfit(x, y, 1)[0] if np.ptp(x) > 1e-6 else 1.0
        return value + max(a, 0.0) * (old[part] - old[at])

    k = min(END_FIT, uniq.size)
    below = mapped(slice(0, lo), slice(0, k), lo, measured[0])
    above = mapped(slice(hi + 1, None), slice(-k, None), hi, measured[-1])
    ddl = np.concatenate([np.arange(lo), uniq, np.arange(hi + 1, max_level + 1)])
    values = np.concatenate([below, measured, above])
    values = np.minimum.accumulate(np.clip(values, 0.0, None))  # never rising with the level
    return CharacteristicCurve(
        kind=DeviceKind.PRINTER, max_ddl=max_level, ddl=ddl, values=np.round(values, 4),
        ambient=previous.ambient, illumination=previous.illumination)
