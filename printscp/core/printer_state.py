"""The printer's persistent state in the data directory: its last calibration.

``printscp calibrate analyze --record`` writes it; Printer N-GET reports it as Date
and Time of Last Calibration (0018,1200)/(0018,1201).  Kept as a small JSON file
written atomically, so a running server sees a new calibration at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from printscp.core.files import atomic_write

STATE_FILE = "printer-state.json"


@dataclass(frozen=True)
class Calibration:
    when: datetime  #: local time of the measurement
    profile: str = ""  #: characteristic file made from it, if any
    conforms: bool | None = None  #: verdict of the analysis, if known


def record_calibration(data_dir: str | Path, calibration: Calibration) -> Path:
    """Store ``calibration`` as the printer's last one."""
    data = {"last_calibration": calibration.when.isoformat(timespec="seconds"),
            "profile": calibration.profile, "conforms": calibration.conforms}
    return atomic_write(Path(data_dir) / STATE_FILE, json.dumps(data, indent=1).encode())


def last_calibration(data_dir: str | Path) -> Calibration | None:
    """The recorded calibration, or None when there is none (or the file is unreadable)."""
    path = Path(data_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
        return Calibration(datetime.fromisoformat(data["last_calibration"]),
                           str(data.get("profile") or ""), data.get("conforms"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: Printer Status (2110,0010) enumerated values and the Event Type ID of each
#: Printer N-EVENT-REPORT (PS3.4 H.4.6.1.1).
PRINTER_EVENTS = {"NORMAL": 1, "WARNING": 2, "FAILURE": 3}


def printer_condition(free_bytes: int, warning_bytes: int, failure_bytes: int
                      ) -> tuple[str, str]:
    """(Printer Status, Printer Status Info) of a virtual printer whose supply is disk.

    Its films and spool live on the data directory's disk, so free space plays the
    part of film supply: below ``warning_bytes`` it reports WARNING / SUPPLY LOW, below
    ``failure_bytes`` FAILURE / SUPPLY EMPTY (PS3.3 C.13.9.1 defined terms).
    """
    if free_bytes < failure_bytes:
        return "FAILURE", "SUPPLY EMPTY"
    if free_bytes < warning_bytes:
        return "WARNING", "SUPPLY LOW"
    return "NORMAL", "NORMAL"
