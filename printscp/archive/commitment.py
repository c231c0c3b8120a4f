"""Storage Commitment (Push Model, PS3.4 Annex J): checking instances and keeping the
requests until their result is delivered.

A request is kept as a JSON file in ``<data_dir>/commitment/`` from the moment its
N-ACTION is answered until the N-EVENT-REPORT with its result has been accepted, so a
report still owed survives a restart.  The check itself is pure archive work: the
instance is indexed, its file is readable and still has the checksum recorded when it
was stored, and its SOP Class is the one the requester names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from printscp.archive.archive import Archive
from printscp.archive.files import sha256_of
from printscp.core import status
from printscp.core.files import atomic_write

#: Failure Reason (0008,1197) values: DIMSE status codes (PS3.4 J.3.3.1.1).
NO_SUCH_OBJECT_INSTANCE = status.NO_SUCH_SOP_INSTANCE
CLASS_INSTANCE_CONFLICT = status.CLASS_INSTANCE_CONFLICT
PROCESSING_FAILURE = status.PROCESSING_FAILURE

#: Event Type IDs of the N-EVENT-REPORT (PS3.4 J.3.3.1).
ALL_SUCCESSFUL = 1
FAILURES_EXIST = 2


@dataclass
class Commitment:
    """One Storage Commitment request and where its report goes."""

    transaction_uid: str
    requester_ae: str
    requester_address: str
    references: list[tuple[str, str]]  #: (SOP Class UID, SOP Instance UID)
    received: float = field(default_factory=time.time)
    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    #: Filled by :func:`check`: committed references and (class, instance, reason).
    succeeded: list[tuple[str, str]] | None = None
    failed: list[tuple[str, str, int]] | None = None

    @property
    def checked(self) -> bool:
        return self.succeeded is not None

    @property
    def event_type(self) -> int:
        return FAILURES_EXIST if self.failed else ALL_SUCCESSFUL


def check(archive: Archive, commitment: Commitment) -> None:
    """Decide each reference: committed, or failed with its Failure Reason."""
    succeeded: list[tuple[str, str]] = []
    failed: list[tuple[str, str, int]] = []
    for sop_class, sop_uid in commitment.references:
        record = archive.index.instance(sop_uid)
        if record is None:
            failed.append((sop_class, sop_uid, NO_SUCH_OBJECT_INSTANCE))
            continue
        if record.sop_class_uid != sop_class:
            failed.append((sop_class, sop_uid, CLASS_INSTANCE_CONFLICT))
            continue
        try:
            intact = sha256_of(archive.path_of(record)) == record.sha256
        except (OSError, ValueError):
            intact = False
        if intact:
            succeeded.append((sop_class, sop_uid))
        else:
            failed.append((sop_class, sop_uid, PROCESSING_FAILURE))
    commitment.succeeded, commitment.failed = succeeded, failed


class CommitmentStore:
    """Requests whose report is still owed, one JSON file each."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "commitment"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, transaction_uid: str) -> Path:
        return self.folder / f"{transaction_uid}.json"

    def save(self, commitment: Commitment) -> None:
        atomic_write(self._path(commitment.transaction_uid),
                     json.dumps(asdict(commitment), indent=1).encode())

    def done(self, commitment: Commitment) -> None:
        self._path(commitment.transaction_uid).unlink(missing_ok=True)
        (self.folder / f"{commitment.transaction_uid}.lock").unlink(missing_ok=True)

    @contextlib.contextmanager
    def claim(self, transaction_uid: str) -> Iterator[bool]:
        """Hold a request exclusively (worker processes share the folder); yields
        False when another process holds it or it is gone."""
        if not self._path(transaction_uid).exists():
            yield False
            return
        # A lock file of its own: the request file is replaced (new inode) on each save.
        fd = os.open(self.folder / f"{transaction_uid}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            yield self._path(transaction_uid).exists()  # another process may have finished
        finally:
            os.close(fd)

    def exists(self, transaction_uid: str) -> bool:
        return self._path(transaction_uid).exists()

    def pending(self) -> list[Commitment]:
        out = []
        for path in sorted(self.folder.glob("*.json"), key=os.path.getmtime):
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            data["references"] = [tuple(r) for r in data["references"]]
            if data.get("succeeded") is not None:
                data["succeeded"] = [tuple(r) for r in data["succeeded"]]
                data["failed"] = [tuple(r) for r in data["failed"]]
            out.append(Commitment(**data))
        return out
