"""The audit trail: who did what to which object, from where, and how it ended.

One JSON object a line in ``data_dir/audit/audit.jsonl``, appended and fsynced before
the action is reported done, so an acknowledged deletion is always on record.  The
console and the command line write the same lines for the same actions.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDIT_FILE = Path("audit") / "audit.jsonl"
_append = threading.Lock()


def record(data_dir: str | Path, action: str, target: str, *, user: str,
           source: str = "", outcome: str = "success", **details: Any) -> dict[str, Any]:
    """Append one line: ``action`` (``study.delete``, ``job.reprint``...) on ``target``
    (a UID, a job id) by ``user`` from ``source`` (an address, ``cli``)."""
    line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "action": action,
            "target": target, "user": user, "source": source, "outcome": outcome, **details}
    path = Path(data_dir) / AUDIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with _append:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    return line


def read(data_dir: str | Path, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` lines, newest first."""
    path = Path(data_dir) / AUDIT_FILE
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for text in reversed(lines[-limit:]):
        try:
            out.append(json.loads(text))
        except ValueError:
            continue
    return out
