"""The archive's files: each instance stored as received, durably, under validated UIDs.

A file is written to a temporary name in its series folder, fsynced, and renamed to
``<study>/<series>/<sop instance>.<8 hex>.dcm`` (the hex part is the start of its
SHA-256, so a replacement never overwrites the file the index still points to).  The
rename and the index update happen inside one SQLite write transaction (see
:mod:`printscp.archive.index`), so across threads and worker processes the index
always names a complete file whose checksum it holds; a crash leaves at worst an
orphan file, which ``printscp archive verify`` reports.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from printscp.printing.output import fsync_dir

#: A UID as PS3.5 9.1 defines it: digits and dots, no leading zeros in a component,
#: at most 64 characters.  Only such strings ever become path components.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def valid_uid(value: object) -> bool:
    text = str(value or "")
    return 0 < len(text) <= 64 and _UID.match(text) is not None


@dataclass(frozen=True)
class StagedFile:
    """A complete, fsynced file under a temporary name, ready to be renamed."""

    temp: Path
    final: Path
    sha256: str
    size: int


class ArchiveFiles:
    """Instance files under ``root`` (``<data_dir>/archive``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, study_uid: str, series_uid: str) -> Path:
        for uid in (study_uid, series_uid):
            if not valid_uid(uid):
                raise ValueError(f"{uid!r} is not a valid UID")
        return self.root / study_uid / series_uid

    def stage(self, data: bytes, study_uid: str, series_uid: str, sop_uid: str) -> StagedFile:
        """Write ``data`` (a Part 10 file) to a temporary name, fsynced."""
        if not valid_uid(sop_uid):
            raise ValueError(f"{sop_uid!r} is not a valid UID")
        folder = self.folder(study_uid, series_uid)
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return StagedFile(Path(temp), folder / f"{sop_uid}.{digest[:8]}.dcm", digest, len(data))

    def commit(self, staged: StagedFile) -> Path:
        """Rename the staged file into place (call inside the index's write transaction)."""
        os.replace(staged.temp, staged.final)
        fsync_dir(staged.final.parent)
        return staged.final

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def absolute(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"{relative!r} is outside the archive")
        return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
