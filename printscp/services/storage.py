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
from collections.abc import Callable
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
from printscp.core import audit, status
from printscp.net import channel, pdata
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
_STORAGE_CLASS_SET = frozenset(STORAGE_CLASSES)


def handle_store(event: Any, archive: Archive) -> Dataset:
    """C-STORE: check, store durably, index; then answer."""
    request = event.request
    calling = str(event.assoc.requestor.ae_title).strip()
    offending: tuple[int, ...] = ()
    try:
        encoded = event.encoded_dataset(include_meta=True)
    except Exception as exc:
        outcome_status, comment = status.CANNOT_UNDERSTAND, \
            f"cannot read the data set: {exc}"[:64]
    else:
        outcome_status, comment, offending = _store(
            archive, encoded, str(request.AffectedSOPClassUID),
            str(request.AffectedSOPInstanceUID), calling, assoc=event.assoc)
    ds = status_dataset(outcome_status, comment)
    if offending:
        ds.OffendingElement = list(offending)
    return ds


def _store(archive: Archive, encoded: bytes, sop_class: str, sop_instance: str,
           calling: str, sha256: str | None = None, assoc: Any = None
           ) -> tuple[int, str, tuple[int, ...]]:
    """Status, Error Comment and Offending Element(s) of storing ``encoded``."""
    outcome = archive.receive(encoded, sop_class, sop_instance, calling, sha256=sha256)
    # Counted per association and study; one audit line a study when it closes.
    audit.received(assoc, outcome.patient, outcome.study, sop_class,
                   outcome.result.value if outcome.result is not None else "refused",
                   outcome.comment)
    if outcome.comment:
        LOGGER.warning("C-STORE %s from %s refused (0x%04X): %s",
                       sop_instance, calling, outcome.status, outcome.comment)
    return outcome.status, outcome.comment, outcome.offending


def store_prefix(assoc: Any, message: pdata.MessageAssembler) -> bytes:
    """The File Meta Information a C-STORE-RQ's data set will be stored behind, once
    its command set is in; empty when :func:`claim_store` will not store it."""
    if pdata.command_us(message.command or {}, pdata.COMMAND_FIELD) != pdata.C_STORE_RQ:
        return b""
    context = channel.accepted_context(assoc, message.context_id)
    if (context is None or str(context.abstract_syntax) not in _STORAGE_CLASS_SET
            or not context.as_scp):
        return b""
    command = message.command or {}
    sop_class = pdata.command_text(command, pdata.AFFECTED_SOP_CLASS)
    sop_instance = pdata.command_text(command, pdata.AFFECTED_SOP_INSTANCE)
    if not sop_class or not sop_instance:
        return b""
    return pdata.file_meta(sop_class, sop_instance, str(context.transfer_syntax[0]))


def claim_store(assoc: Any, message: pdata.MessageAssembler,
                archive: Archive) -> Callable[[], None] | None:
    """Serve the C-STORE-RQ ``message`` on the DUL thread: a callable that stores and
    answers it, or None, having done nothing, when :func:`store_prefix` gave the message
    no file (not for a storage context this node accepted as SCP, or a command without
    its UIDs) or its Message ID is missing; pynetdicom then serves (or refuses) it as
    usual.

    The same work as :func:`handle_store` without pynetdicom's per-message objects
    and thread hand-offs (see :mod:`printscp.net.reactors`).
    """
    command = message.command or {}
    message_id = pdata.command_us(command, pdata.MESSAGE_ID)
    if message_id is None or not message.prefix:
        return None  # pynetdicom refuses an incomplete command as the standard says

    def serve() -> None:
        sop_class = pdata.command_text(command, pdata.AFFECTED_SOP_CLASS)
        sop_instance = pdata.command_text(command, pdata.AFFECTED_SOP_INSTANCE)
        calling = str(assoc.requestor.ae_title).strip()
        # The file's bytes, and its SHA-256 taken as they arrived (printscp.net.reactors).
        encoded, digest = message.file_bytes(), message.hasher.hexdigest()
        offending: tuple[int, ...] = ()
        try:
            code, comment, offending = _store(archive, encoded, sop_class, sop_instance,
                                              calling, digest, assoc)
        except Exception:
            LOGGER.exception("C-STORE %s from %s: unexpected error", sop_instance, calling)
            code, comment = 0xC211, ""  # pynetdicom's status for a failing handler
        response = pdata.store_response(message_id, sop_class, sop_instance, code, comment,
                                        offending)
        channel.send_message(assoc, message.context_id or 0, response)

    return serve
