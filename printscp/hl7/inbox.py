"""The HL7 inbox: one message in, its ACK out, the worklist and the log changed durably.

:meth:`Inbox.receive` is the whole inbound path, independent of the network: the MLLP
server (:mod:`printscp.hl7.mllp`), ``printscp hl7 replay`` and the tests call it alike.
In order, under the database's writer lock (so two connections delivering the same
message at once apply it once):

1. parse (:func:`printscp.hl7.messages.parse`); not HL7, a bad MSH, a message type or
   version not supported: AR with the ERR naming the field;
2. de-duplicate: a message whose (MSH-3, MSH-4, MSH-10) and text were applied before
   (AA or AE) is not applied again: the ACK sent then is sent again, and the receipt
   logged as DUPLICATE.  The text counts too because RISes reuse control ids (counters
   reset at a restart or each day): a different message under a used id is applied,
   and its log row says the id was seen before;
3. log the message as RECEIVED; apply it (orders: :mod:`printscp.hl7.orders`; patient
   updates: :mod:`printscp.hl7.patients`); log the outcome with its ACK;
4. flush the database's WAL (``fdatasync``) when the writer lock is released: the log
   row and the worklist's change are on disk before the ACK is returned.

It never raises for what a peer sends: anything unexpected is an AE with 207
(application internal error), logged.  It blocks (SQLite, fsync): an asyncio caller
runs it in a thread.

Patient updates and merges are audited (Patient Record, update; written with an fsync
once the writer lock is released, so other writers do not wait on the audit file), and
undone by :meth:`Inbox.unmerge` from the record the log keeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from printscp.archive.index import Index
from printscp.core import audit
from printscp.hl7.log import HL7Log, Status
from printscp.hl7.messages import (
    CHARSETS,
    AckCode,
    ErrorCode,
    Header,
    Hl7Error,
    Location,
    Parsed,
    build_ack,
    header_guess,
    parse,
)
from printscp.hl7.orders import ORDER_TYPES, apply_order
from printscp.hl7.patients import ADT_TYPES, apply_adt, undo
from printscp.hl7.settings import Hl7Settings
from printscp.worklist.items import WorklistStore

__all__ = ["SUPPORTED_VERSIONS", "Inbox"]

LOGGER = logging.getLogger("printscp.hl7")

#: MSH-12 versions accepted (the fields used here mean the same in all of them).
SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")
#: MSH-11 processing IDs accepted: production, training, debugging.
PROCESSING_IDS = ("P", "T", "D")


class Inbox:
    """Applies HL7 messages to the node in ``data_dir`` (its ``index.sqlite``)."""

    def __init__(self, data_dir: Path, config: Hl7Settings | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.settings = config or Hl7Settings()
        self.store = WorklistStore.for_data_dir(self.data_dir)
        # The log writes with the store's connection: a message's log rows and worklist
        # change are flushed to disk by one fdatasync (HL7Log.writer), not one each.
        self.log = HL7Log(self.store.path, share=self.store)
        self._index: Index | None = None

    @property
    def index(self) -> Index | None:
        """The archive's index (patient updates), opened on first use."""
        if not self.settings.update_archive:
            return None
        if self._index is None:
            self._index = Index(self.data_dir / "index.sqlite")
        return self._index

    # -- receiving -------------------------------------------------------------------
    def receive(self, message: bytes, peer: str = "") -> bytes:
        """Apply one message; its ACK, after what it changed is on disk.

        Never raises for what the message holds (AR/AE instead); raises only when the
        database cannot be written (``sqlite3.Error``, ``OSError``): then nothing may be
        acknowledged, and the MLLP server sends no ACK, so the sender tries again."""
        raw_text = _text(message)
        after: list[Callable[[], None]] = []  # audit lines: written once the lock is free
        try:
            return self._receive(message, raw_text, peer, after)
        finally:
            for done in after:
                done()

    def _receive(self, message: bytes, raw_text: str, peer: str,
                 after: list[Callable[[], None]]) -> bytes:
        with self.log.writer():  # held to the end; the WAL is flushed on leaving
            try:
                parsed = parse(message)
            except Hl7Error as err:
                header = header_guess(message)
                return self._finish_new(raw_text, peer, header, AckCode.REJECT, [err])
            except Exception as exc:  # never raise for a peer's bytes
                LOGGER.exception("HL7: cannot parse a message from %s", peer)
                err = Hl7Error(ErrorCode.APPLICATION_INTERNAL_ERROR, f"cannot parse: {exc}")
                return self._finish_new(raw_text, peer, header_guess(message),
                                        AckCode.REJECT, [err])
            header = parsed.header
            refusal = self._refusal(header)
            if refusal is not None:
                return self._finish_new(parsed.text, peer, header, AckCode.REJECT, [refusal])
            original = self.log.original(header.sending_application,
                                         header.sending_facility, header.control_id,
                                         parsed.text)
            if original is not None and original.ack:
                entry = self.log.start(parsed.text, peer=peer,
                                       sending_application=header.sending_application,
                                       sending_facility=header.sending_facility,
                                       message_type=header.type,
                                       control_id=header.control_id,
                                       original_id=original.id)
                self.log.finish(entry, Status.DUPLICATE, original.ack,
                                error=f"already received as #{original.id}")
                return self._encode(original.ack, header)
            reused = self.log.original(header.sending_application,
                                       header.sending_facility, header.control_id)
            note = f"control id already used by #{reused.id}" if reused is not None else ""
            return self._apply(parsed, peer, after=after, note=note)

    def replay(self, message_id: int) -> bytes:
        """Apply the logged message ``message_id`` again (no de-duplication); its new
        ACK.  The replay is logged as a row of its own naming the original."""
        entry = self.log.get(message_id)
        if entry is None:
            raise KeyError(f"no HL7 message #{message_id} in the log")
        after: list[Callable[[], None]] = []
        with self.log.writer():
            try:
                parsed = parse(entry.raw)
            except Hl7Error as err:
                return self._finish_new(entry.raw, "replay", header_guess(entry.raw),
                                        AckCode.REJECT, [err], original_id=entry.id)
            refusal = self._refusal(parsed.header)
            if refusal is not None:
                return self._finish_new(parsed.text, "replay", parsed.header,
                                        AckCode.REJECT, [refusal], original_id=entry.id)
            ack = self._apply(parsed, "replay", original_id=entry.id, after=after)
        for done in after:
            done()
        return ack

    def unmerge(self, message_id: int) -> dict[str, int]:
        """Undo what the logged message ``message_id`` (an applied A40, or A08/A31)
        changed, from the record it left: items and archive patient rows as they were
        (items keep a status reached since).  Audited; the row becomes UNDONE."""
        entry = self.log.get(message_id)
        if entry is None:
            raise KeyError(f"no HL7 message #{message_id} in the log")
        if entry.status != Status.ACCEPTED or not entry.message_type.startswith("ADT"):
            raise ValueError(f"message #{message_id} is {entry.message_type} "
                             f"{entry.status}: only an applied ADT update or merge is undone")
        with self.log.writer():
            restored = undo(entry.record, self.store, self.index)
            self.log.set_status(message_id, Status.UNDONE)
        record = entry.record
        patients = [m[k] for m in record.get("merges", []) for k in ("prior", "into")] \
            or record.get("patients", [])
        audit.emit(audit.AuditEvent.PATIENT_RECORD, action=audit.EventActionCode.UPDATE,
                   user="hl7", patient=patients, word="hl7.unmerge",
                   target=str(message_id), description=f"undone: HL7 message #{message_id}"
                   f" ({entry.message_type}): {json.dumps(restored)}")
        return restored

    # -- the steps -------------------------------------------------------------------
    def _refusal(self, header: Header) -> Hl7Error | None:
        key = (header.message_type.upper(), header.trigger.upper())
        if key not in ORDER_TYPES | ADT_TYPES:
            known = {t for t, _ in ORDER_TYPES | ADT_TYPES}
            if header.message_type.upper() in known:
                return Hl7Error(ErrorCode.UNSUPPORTED_EVENT_CODE,
                                f"trigger event {header.trigger or '(empty)'} of "
                                f"{header.message_type} is not supported", Location("MSH", 9, 2))
            return Hl7Error(ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
                            f"message type {header.type} is not supported (ORM^O01, OMI^O23, "
                            "ADT^A08, ADT^A31, ADT^A40)", Location("MSH", 9, 1))
        if header.version and header.version not in SUPPORTED_VERSIONS:
            return Hl7Error(ErrorCode.UNSUPPORTED_VERSION_ID,
                            f"version {header.version} is not supported "
                            f"({', '.join(SUPPORTED_VERSIONS)})", Location("MSH", 12))
        if header.processing_id and header.processing_id.upper()[:1] not in PROCESSING_IDS:
            return Hl7Error(ErrorCode.UNSUPPORTED_PROCESSING_ID,
                            f"processing ID {header.processing_id} is not P, T or D",
                            Location("MSH", 11))
        return None

    def _apply(self, parsed: Parsed, peer: str, original_id: int | None = None, *,
               after: list[Callable[[], None]], note: str = "") -> bytes:
        header = parsed.header
        entry = self.log.start(parsed.text, peer=peer,
                               sending_application=header.sending_application,
                               sending_facility=header.sending_facility,
                               message_type=header.type, control_id=header.control_id,
                               original_id=original_id)
        mapping = self.settings.mapping_for(header.sending_application)
        record: dict[str, Any] = {}
        try:
            if header.message_type.upper() == "ADT":
                record = apply_adt(parsed, mapping, self.store, self.index)
            else:
                changes = apply_order(parsed, mapping, self.store,
                                      source=f"hl7:{header.sending_application}")
                record = {"items": [c.to_json() for c in changes]}
        except Hl7Error as err:
            ack = self._ack(header, AckCode.ERROR, [err])
            self.log.finish(entry, Status.ERROR, ack, error=str(err))
            return self._encode(ack, header)
        except Exception as exc:
            LOGGER.exception("HL7: cannot apply %s %s from %s", header.type,
                             header.control_id, peer)
            err = Hl7Error(ErrorCode.APPLICATION_INTERNAL_ERROR,
                           f"{type(exc).__name__}: {exc}")
            ack = self._ack(header, AckCode.ERROR, [err])
            self.log.finish(entry, Status.ERROR, ack, error=str(err), changes=record or None)
            return self._encode(ack, header)
        notes = "; ".join(record.get("notes", []))
        ack = self._ack(header, AckCode.ACCEPT, [], text=notes)
        self.log.finish(entry, Status.ACCEPTED, ack, error="; ".join(filter(None, (
            notes, note))), changes=record)
        after.append(lambda: self._audit(header, peer, entry, record))
        return self._encode(ack, header)

    def _audit(self, header: Header, peer: str, entry: int, record: dict[str, Any]) -> None:
        trigger = header.trigger.upper()
        user = header.sending_application or "hl7"
        if header.message_type.upper() == "ADT":
            merges = record.get("merges", [])
            patients = [m[k] for m in merges for k in ("prior", "into")] or \
                record.get("patients", [])
            audit.emit(audit.AuditEvent.PATIENT_RECORD, action=audit.EventActionCode.UPDATE,
                       host=peer if peer != "replay" else "", user=user, patient=patients,
                       word="hl7.merge" if trigger == "A40" else "hl7.patient-update",
                       target=str(entry),
                       description=f"HL7 {header.type} {header.control_id}: "
                       f"{len(record.get('items', []))} worklist items, "
                       f"{len(record.get('archive', []))} archive changes (log #{entry})")
        else:
            items = record.get("items", [])
            audit.emit(audit.AuditEvent.ORDER_RECORD, action=audit.EventActionCode.UPDATE,
                       host=peer if peer != "replay" else "", user=user,
                       study=sorted({i["study_uid"] for i in items}), word="hl7.order",
                       target=str(entry), wait=False,
                       description=f"HL7 {header.type} {header.control_id}: " + ", ".join(
                           f"{i['action']} {i['sps_id']}" for i in items))

    def _finish_new(self, raw: str, peer: str, header: Header, code: AckCode,
                    errors: list[Hl7Error], original_id: int | None = None) -> bytes:
        entry = self.log.start(raw, peer=peer, sending_application=header.sending_application,
                               sending_facility=header.sending_facility,
                               message_type=header.type, control_id=header.control_id,
                               original_id=original_id)
        ack = self._ack(header, code, errors)
        status = Status.REJECTED if code is AckCode.REJECT else Status.ERROR
        self.log.finish(entry, status, ack, error="; ".join(str(e) for e in errors))
        return self._encode(ack, header)

    def _ack(self, header: Header, code: AckCode, errors: list[Hl7Error],
             text: str = "") -> str:
        return build_ack(header, code, errors, text, application=self.settings.application,
                         facility=self.settings.facility)

    @staticmethod
    def _encode(ack: str, header: Header) -> bytes:
        codec = CHARSETS.get(header.charset.strip().upper(), "utf-8")
        try:
            return ack.encode(codec)
        except (UnicodeEncodeError, LookupError):
            return ack.encode("utf-8")


def _text(message: bytes | str) -> str:
    if isinstance(message, str):
        return message
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")
