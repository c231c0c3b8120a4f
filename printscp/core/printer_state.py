"""The printers' persistent state in the data directory: their last calibration.

``printscp calibrate analyze --record [--printer NAME]`` and ``printscp qa test-printer
--recalibrate`` write it; Printer N-GET reports it as Date and Time of Last Calibration
(0018,1200)/(0018,1201).  A calibration is recorded for one printer profile (by its
name) or for the node (no name: what ``calibrate analyze --record`` did before there
were several printers); a printer without its own record reports the node's.  Kept as
a small JSON file written atomically, so a running server sees a new calibration at
once.
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


def _entry(calibration: Calibration) -> dict[str, object]:
    return {"last_calibration": calibration.when.isoformat(timespec="seconds"),
            "profile": calibration.profile, "conforms": calibration.conforms}


def _calibration(data: dict[str, object]) -> Calibration:
    return Calibration(datetime.fromisoformat(str(data["last_calibration"])),
                       str(data.get("profile") or ""), data.get("conforms"))  # type: ignore[arg-type]


def _read(data_dir: str | Path) -> dict[str, object]:
    try:
        data = json.loads((Path(data_dir) / STATE_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_calibration(data_dir: str | Path, calibration: Calibration,
                       printer: str | None = None) -> Path:
    """Store ``calibration`` as printer profile ``printer``'s last one (None: the
    node's, which every printer without its own reports)."""
    data = _read(data_dir)
    if printer is None:
        data.update(_entry(calibration))
    else:
        printers = data.get("printers")
        data["printers"] = {**(printers if isinstance(printers, dict) else {}),
                            printer: _entry(calibration)}
    return atomic_write(Path(data_dir) / STATE_FILE, json.dumps(data, indent=1).encode())


def last_calibration(data_dir: str | Path, printer: str | None = None) -> Calibration | None:
    """Printer profile ``printer``'s recorded calibration, else the node's, or None when
    there is none (or the file is unreadable)."""
    data = _read(data_dir)
    printers = data.get("printers")
    own = printers.get(printer) if printer and isinstance(printers, dict) else None
    for entry in (own, data):
        try:
            if isinstance(entry, dict) and "last_calibration" in entry:
                return _calibration(entry)
        except (ValueError, KeyError, TypeError):
            continue
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
