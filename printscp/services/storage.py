"""Storage SCP (C-STORE, PS3.4 Annex B): every storage SOP class pynetdicom knows.

The handler hands the data set, still encoded as the peer sent it, to the archive,
which answers with the status; success goes out only once the file and its index
row are durable.  Statuses (PS3.4 B.2.3): 0x0000 stored (also a duplicate kept under
the ``keep`` policy), 0xA700 out of resources (disk), 0xA900 data set does not match
the request or its SOP class (UIDs, Pixel Data shorter than its description),
0xC000 cannot understand (undecodable data set); the Error Comment names the cause.
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AllStoragePresentationContexts

from printscp.archive.archive import Archive
from printscp.services.dimse import status_dataset

LOGGER = logging.getLogger("printscp.storage")

#: Transfer syntaxes accepted for storage, stored as received (no transcoding).
#: pynetdicom accepts the first of ours that the requestor proposed, so compressed
#: syntaxes come first: a modality proposes one only for data it holds compressed
#: (and uncompressed ones as a fallback), and taking it spares a lossy image a
#: decompression and a lossless one its size.  Uncompressed data goes as Explicit VR
#: Little Endian when offered.
STORAGE_TRANSFER_SYNTAXES = [
    JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEG2000Lossless, RLELossless,
    JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000,
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]

#: Every storage SOP class pynetdicom knows.
STORAGE_CLASSES = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]


def handle_store(event: Any, archive: Archive) -> Dataset:
    """C-STORE: check, store durably, index; then answer."""
    request = event.request
    calling = str(event.assoc.requestor.ae_title).strip()
    try:
        encoded = event.encoded_dataset(include_meta=True)
    except Exception as exc:
        outcome_status, comment = 0xC000, f"cannot read the data set: {exc}"[:64]
    else:
        outcome = archive.receive(encoded, str(request.AffectedSOPClassUID),
                                  str(request.AffectedSOPInstanceUID), calling)
        outcome_status, comment = outcome.status, outcome.comment
    if comment:
        LOGGER.warning("C-STORE %s from %s refused (0x%04X): %s",
                       request.AffectedSOPInstanceUID, calling, outcome_status, comment)
    return status_dataset(outcome_status, comment)
