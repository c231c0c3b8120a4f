"""DCMTK's command-line tools by path: pynetdicom installs Python apps of the same names
(echoscu, storescu, findscu, movescu, getscu) that may come first on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path


def tool(name: str) -> str:
    """The DCMTK binary ``name`` (Debian's, in /usr/bin), else whatever PATH has."""
    debian = Path("/usr/bin") / name
    return str(debian) if debian.exists() else (shutil.which(name) or name)


HAVE_DCMTK = Path("/usr/bin/storescu").exists() and Path("/usr/bin/findscu").exists()
