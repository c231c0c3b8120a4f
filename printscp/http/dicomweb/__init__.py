"""DICOMweb (PS3.18) on the console's HTTP side, under ``/dicom-web``.

QIDO-RS (:mod:`.qido`) searches the archive with the C-FIND SCP's own query
(:meth:`printscp.archive.index.Index.query`); WADO-RS (:mod:`.wado`) returns the stored
files byte for byte, their metadata as DICOM JSON, bulk data and frames; the rendered
resources (:mod:`.rendered`) give PNG or JPEG, and a printed film's PDF.  STOW-RS is
:mod:`.stow`.  Every route has the console's authentication (:func:`printscp.http.auth.viewer`,
as ``/api``) and the DIMSE side's audit events (Query; Begin Transferring DICOM Instances).

May import what :mod:`printscp.http` may import (the archive, query, worklist, outputs;
never pynetdicom or the network layer), and printscp.http's own modules.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from printscp.http.auth import viewer
from printscp.http.dicomweb import qido, rendered, stow, wado

__all__ = ["router"]

router = APIRouter(prefix="/dicom-web", tags=["dicomweb"], dependencies=[Depends(viewer)])
router.include_router(qido.router)
router.include_router(rendered.router)
router.include_router(wado.router)
router.include_router(stow.router)
