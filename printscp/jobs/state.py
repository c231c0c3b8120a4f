"""The job state machine's vocabulary, shared by the spool, the index and job control:
Execution Status values and the terms of Execution Status Info, the files and markers
of a spooled job, the job record (:class:`PrintJob`), and a spooled job's state as
its markers say (:func:`spooled_state`).

May import: :mod:`printscp.core` and the delivery state (:mod:`printscp.jobs.delivery`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printscp.core.files import safe_name
from printscp.jobs.delivery import load_delivery

PENDING = "PENDING"
PRINTING = "PRINTING"
DONE = "DONE"
FAILURE = "FAILURE"


#: File of a spooled job holding its pixel arrays by name.
PIXELS = "pixels.npz"
#: Marker in a job's spool folder while it is being rendered (Execution Status PRINTING);
#: it holds its owner (:func:`process_token`).
RENDERING_MARK = "rendering"
#: Marker of a held job: no worker renders it until it is released.
HELD_MARK = "held"
#: Marker of a job being cancelled: whoever finds it finishes the job as cancelled.
CANCEL_MARK = "cancelled"
#: Folder of ``spool/`` holding one empty file per job to queue in some worker.
REQUESTS = ".requests"
#: Folder of the data directory keeping finished jobs' sources (for reprints, previews).
HISTORY = "history"

#: Execution Status Info (2100,0030) of a held job (PENDING) and of a cancelled job
#: (FAILURE).  PS3.3 C.13.8 / C.13.9.1 define no term for either; JOB CANCELED is the
#: FAILURE term of the example Print SCP conformance statement in PS3.2 (Annex E), and
#: JOB HELD follows it (printscp's own Defined Term, in its conformance statement).
HELD_INFO = "JOB HELD"
CANCELED_INFO = "JOB CANCELED"
QUEUED_INFO = "QUEUED"


@dataclass
class PrintJob:
    """A print request: who sent it, the session settings and the films to print."""

    job_id: str
    created: str
    calling_ae: str
    called_ae: str
    peer: str
    session: dict[str, Any]
    films: list[dict[str, Any]]
    status: str = PENDING
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "created": self.created, "calling_ae": self.calling_ae,
            "called_ae": self.called_ae, "peer": self.peer, "session": self.session,
            "films": self.films, "status": self.status, **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrintJob:
        known = {"job_id", "created", "calling_ae", "called_ae", "peer", "session", "films",
                 "status"}
        return cls(**{k: data[k] for k in known if k in data},
                   extra={k: v for k, v in data.items() if k not in known})


def new_job_id() -> str:
    """Time-ordered, unique job id: UTC timestamp plus 8 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def spooled_state(folder: Path, live: bool = True) -> tuple[str, str]:
    """(Execution Status, Execution Status Info) of the job in spool ``folder`` from its
    markers: PENDING/QUEUED until rendering starts, PENDING/JOB HELD while held,
    PRINTING/NORMAL while it renders and is delivered, PENDING with the target's
    condition while a target waits for a retry.  Not ``live`` (read with the server
    maybe down): PENDING, the job waits for a node."""
    folder = Path(folder)
    if (folder / CANCEL_MARK).exists():
        return FAILURE, CANCELED_INFO
    if (folder / HELD_MARK).exists():
        return PENDING, HELD_INFO
    delivery = load_delivery(folder) if (folder / "delivery.json").exists() else None
    waiting = delivery.waiting if delivery is not None else None
    if waiting is not None:
        return PENDING, waiting.info
    if live and (folder / RENDERING_MARK).exists():
        return PRINTING, "NORMAL"
    return PENDING, QUEUED_INFO


def film_file_stem(job: PrintJob) -> str:
    """``YYYYMMDD-HHMMSS_<calling AE>[_<Film Session Label>]_<8 hex>``, filesystem-safe."""
    stamp = job.job_id[:8] + "-" + job.job_id[9:15]
    parts = [stamp, job.calling_ae.strip() or "UNKNOWN"]
    label = str(job.session.get("film_session_label") or "").strip()
    if label:
        parts.append(label[:40])
    parts.append(job.job_id.rsplit("-", 1)[-1])
    return "_".join(safe_name(p) for p in parts)
