"""Files that survive a crash: atomic writes, durable renames, safe names.

Whatever printscp acknowledges (a C-STORE, a print job, a delivery's state) is written
through these, so a crash leaves either the old file or the whole new one, never a
truncated file under the final name.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Temporary file in the same directory, fsync, rename, fsync of the directory:
    a crash never leaves a truncated film behind the final name.  ``mode``: films are
    for others to read (0644); secrets (password hashes) are 0600 from the first byte.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: object) -> str:
    """``value`` as a file name component: runs of anything but letters, digits, ``.``,
    ``_`` and ``-`` become ``_``, no leading or trailing ``_`` or ``.`` (so never
    ``..``), never empty.  Values from the network only become names through this."""
    return _UNSAFE.sub("_", str(value)).strip("_.") or "_"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or new entry in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
