"""Modality Performed Procedure Step (PS3.4 Annex F): what the modalities report they did.

:mod:`printscp.mpps.steps` keeps each step in the node's ``index.sqlite``,
:mod:`printscp.mpps.report` lists them and sums up use per station, and
:mod:`printscp.services.mpps` is the DIMSE side (N-CREATE / N-SET).

May import: :mod:`printscp.core` and :mod:`printscp.query`; never pynetdicom,
:mod:`printscp.net`, the archive or the worklist (the node links MPPS to the worklist).
"""

from printscp.mpps.steps import (
    COMPLETED,
    DISCONTINUED,
    FINAL_STATUSES,
    IN_PROGRESS,
    MppsStore,
    StepExists,
    StepFinal,
    StepNotFound,
    StepRecord,
)

__all__ = [
    "COMPLETED",
    "DISCONTINUED",
    "FINAL_STATUSES",
    "IN_PROGRESS",
    "MppsStore",
    "StepExists",
    "StepFinal",
    "StepNotFound",
    "StepRecord",
]
