"""What ``printscp mpps list`` and ``printscp mpps report`` show.

The listing answers the questions a department asks of its MPPS feed: when did
each examination run and for how long, what radiation did the modality report,
and has everything it says it produced reached the archive?  The usage report
sums procedures and time per station and modality over a period.

Dose comes from the Radiation Dose attributes a modality may N-SET (PS3.3
C.4.16 and Table F.7.2-1): Total Time of Fluoroscopy (0040,0300) in s, Total
Number of Exposures (0040,0301), Entrance Dose in mGy (0040,8302) - or Entrance
Dose (0040,0302) in dGy, converted - Image and Fluoroscopy Area Dose Product
(0018,115E) in dGy·cm², and the highest CTDIvol (0018,9345) of a CT Exposure
Sequence (0018,9321); Exposure Dose Sequence (0040,030E) items count as
exposures when no total is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydicom.dataset import Dataset

from printscp.mpps.steps import COMPLETED, DISCONTINUED, IN_PROGRESS, MppsStore, StepRecord


def _number(ds: Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def dose_of(ds: Dataset) -> dict[str, float]:
    """The dose figures a step carries, by name (units in the name); empty if none."""
    out: dict[str, float] = {}
    fluoro = _number(ds, "TotalTimeOfFluoroscopy")
    if fluoro is not None:
        out["fluoro_s"] = fluoro
    exposures = _number(ds, "TotalNumberOfExposures")
    if exposures is None and ds.get("ExposureDoseSequence"):
        exposures = float(len(ds.ExposureDoseSequence))
    if exposures is not None:
        out["exposures"] = exposures
    entrance = _number(ds, "EntranceDoseInmGy")
    if entrance is None:
        dgy = _number(ds, "EntranceDose")
        entrance = dgy * 100.0 if dgy is not None else None
    if entrance is not None:
        out["entrance_mGy"] = entrance
    dap = _number(ds, "ImageAndFluoroscopyAreaDoseProduct")
    if dap is not None:
        out["dap_dGycm2"] = dap
    ctdi = [v for item in ds.get("CTExposureSequence") or []
            if (v := _number(item, "CTDIvol")) is not None]
    if ctdi:
        out["ctdivol_mGy"] = max(ctdi)
    return out


_DOSE_FORMAT = {
    "fluoro_s": "fluoro {:g} s", "exposures": "{:g} exp", "entrance_mGy": "ED {:g} mGy",
    "dap_dGycm2": "DAP {:g} dGy·cm²", "ctdivol_mGy": "CTDIvol {:g} mGy",
}


def format_dose(dose: dict[str, float]) -> str:
    return ", ".join(_DOSE_FORMAT[key].format(value) for key, value in dose.items())


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"


@dataclass
class StepLine:
    """One step of the listing, with its archive completeness and dose."""

    step: StepRecord
    arrived: int
    expected: int
    dose: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.arrived >= self.expected

    def as_dict(self) -> dict[str, Any]:
        s = self.step
        return {
            "uid": s.uid, "status": s.status, "pps_id": s.pps_id, "station_ae": s.station_ae,
            "station_name": s.station_name, "calling_ae": s.calling_ae,
            "modality": s.modality, "start": s.start.isoformat() if s.start else None,
            "end": s.end.isoformat() if s.end else None, "duration_s": s.duration,
            "patient_id": s.patient_id, "patient_name": s.patient_name,
            "study_uid": s.study_uid, "accession_number": s.accession_number,
            "sps_id": s.sps_id, "requested_procedure_id": s.requested_procedure_id,
            "instances_expected": self.expected, "instances_arrived": self.arrived,
            "dose": self.dose, "updated_at": s.updated_at,
        }


def list_steps(store: MppsStore, since: date | None = None, until: date | None = None,
               status: str | None = None) -> list[StepLine]:
    lines = []
    for step in store.steps(since, until, status):
        arrived, expected = store.completeness(step)
        lines.append(StepLine(step, arrived, expected, dose_of(step.dataset)))
    return lines


def format_list(lines: Iterable[StepLine]) -> str:
    """A fixed-width table, one step a line; IMAGES is arrived/referenced."""
    rows = [("START", "END", "DURATION", "STATUS", "STATION", "MOD", "ACCESSION", "IMAGES",
             "DOSE", "SOP INSTANCE UID")]
    for line in lines:
        s = line.step
        images = f"{line.arrived}/{line.expected}"
        if line.expected and not line.complete:
            images += " missing"
        rows.append((s.start.isoformat(sep=" ") if s.start else "-",
                     s.end.isoformat(sep=" ") if s.end else "-",
                     format_duration(s.duration), s.status, s.station_ae or "-",
                     s.modality or "-", s.accession_number or "-", images,
                     format_dose(line.dose) or "-", s.uid))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                     + "  " + row[-1] for row in rows)


@dataclass
class UsageRow:
    """Use of one station and modality over the report's period."""

    station_ae: str
    modality: str
    procedures: int = 0
    completed: int = 0
    discontinued: int = 0
    in_progress: int = 0
    timed: int = 0  #: procedures with a known duration (the mean is over these)
    total_seconds: float = 0.0

    @property
    def mean_seconds(self) -> float | None:
        return self.total_seconds / self.timed if self.timed else None

    def as_dict(self) -> dict[str, Any]:
        return {"station_ae": self.station_ae, "modality": self.modality,
                "procedures": self.procedures, "completed": self.completed,
                "discontinued": self.discontinued, "in_progress": self.in_progress,
                "timed": self.timed, "total_seconds": self.total_seconds,
                "mean_seconds": self.mean_seconds}


def usage(store: MppsStore, since: date | None = None, until: date | None = None
          ) -> list[UsageRow]:
    """Procedures, total and mean duration per (station AE, modality), by start date.

    Every step started in the period counts as a procedure; durations only come
    from final steps with both start and end (an IN PROGRESS step has no end yet).
    """
    rows: dict[tuple[str, str], UsageRow] = {}
    for step in store.steps(since, until):
        key = (step.station_ae, step.modality)
        row = rows.setdefault(key, UsageRow(*key))
        row.procedures += 1
        if step.status == COMPLETED:
            row.completed += 1
        elif step.status == DISCONTINUED:
            row.discontinued += 1
        elif step.status == IN_PROGRESS:
            row.in_progress += 1
        if step.final and step.duration is not None:
            row.timed += 1
            row.total_seconds += step.duration
    return [rows[key] for key in sorted(rows)]


def format_usage(rows: list[UsageRow], since: date | None, until: date | None) -> str:
    period = f"{since.isoformat() if since else 'start'} .. {until.isoformat() if until else 'now'}"
    table = [("STATION", "MODALITY", "PROCEDURES", "COMPLETED", "DISCONTINUED", "IN PROGRESS",
              "TOTAL", "MEAN")]
    total = UsageRow("all", "")
    for row in rows:
        table.append((row.station_ae or "-", row.modality or "-", str(row.procedures),
                      str(row.completed), str(row.discontinued), str(row.in_progress),
                      format_duration(row.total_seconds if row.timed else None),
                      format_duration(row.mean_seconds)))
        for name in ("procedures", "completed", "discontinued", "in_progress", "timed",
                     "total_seconds"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    table.append(("all", "", str(total.procedures), str(total.completed),
                  str(total.discontinued), str(total.in_progress),
                  format_duration(total.total_seconds if total.timed else None),
                  format_duration(total.mean_seconds)))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [f"MPPS usage {period}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
              for r in table]
    return "\n".join(lines)
