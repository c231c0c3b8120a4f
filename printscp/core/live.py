"""The node's open associations, as files every receiving process publishes.

A node is several processes (:mod:`printscp.app.workers`), and the console runs in yet
another, so no one process knows every open association.  Each receiving process
writes its own to ``<data_dir>/run/associations-<pid>.json``
(:class:`printscp.app.live.LiveAssociations`), and whoever wants the whole picture (the
console's API, ``/metrics``) merges the files whose process is alive
(:func:`read_live`).  The files are a live view, not a record: written atomically but
without fsync, removed when the process has none open or stops.

Pure file handling, so that the HTTP layer can read what the network layer writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Folder of the data directory for what running processes publish about themselves.
RUN_DIR = "run"
_PREFIX = "associations-"


def live_file(data_dir: str | os.PathLike[str], pid: int | None = None) -> Path:
    """The file process ``pid`` (this one by default) publishes its associations to."""
    return Path(data_dir) / RUN_DIR / f"{_PREFIX}{pid or os.getpid()}.json"


def publish(data_dir: str | os.PathLike[str], associations: list[dict[str, Any]]) -> None:
    """Replace this process's file with ``associations``, or remove it when there are
    none.  Readers see the old list or the new one (rename), never a part."""
    path = live_file(data_dir)
    if not associations:
        withdraw(data_dir)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(associations, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def withdraw(data_dir: str | os.PathLike[str]) -> None:
    """Remove this process's file (it has no association open, or it stops)."""
    live_file(data_dir).unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def read_live(data_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every open association of the node's processes, oldest first.

    The file of a process that is gone (killed before it could remove it) is ignored
    and removed, so a later process given the same pid cannot revive its list.
    """
    folder = Path(data_dir) / RUN_DIR
    out: list[dict[str, Any]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return out
    for entry in entries:
        name = entry.name
        if not (name.startswith(_PREFIX) and name.endswith(".json")):
            continue
        try:
            pid = int(name[len(_PREFIX):-len(".json")])
        except ValueError:
            continue
        if not alive(pid):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
            continue
        try:
            with open(entry.path, encoding="utf-8") as f:
                records = json.load(f)
        except (OSError, ValueError):
            continue  # gone between the listing and the read: it had none left
        out.extend(r for r in records if isinstance(r, dict))
    out.sort(key=lambda r: (str(r.get("since", "")), str(r.get("id", ""))))
    return out
