"""Modality Worklist SCP: C-FIND of the Modality Worklist Information Model – FIND SOP
Class (PS3.4 Annex K, 1.2.840.10008.5.1.4.31) on the items of
:class:`~printscp.worklist.items.WorklistStore`.

The handler is a pynetdicom generator bound with the store and the node's config, like
the Q/R handlers.  pynetdicom has one EVT_C_FIND handler per AE, shared by every FIND SOP
class, so :func:`event_handlers` takes the Q/R handler (if any) and returns one
dispatcher that sends worklist requests here and the rest there.

Matching (PS3.4 K.2.2.1, C.2.2.2) applies to every key of the identifier, top level and
inside the Scheduled Procedure Step Sequence (sequence matching); Scheduled Procedure Step
Start Date and Time match as one date-time (C.2.2.2.5.1) whenever both are given.
Every attribute of an item is matchable, so no key is ever "not supported" and pending
responses are always 0xFF00, never 0xFF01.  Return keys are filled from the item,
zero-length when the item has no value; a sequence key with no item, or with one empty
item, returns the whole stored sequence.

Statuses: 0xFF00 pending (one per item); 0x0000 done; 0xFE00 cancelled (C-CANCEL);
0xA900 identifier does not match the SOP class (a key with the wrong VR); 0xC000 unable
to process (undecodable identifier, or a key with no meaning: a sequence key with several
items, a date that is none; the Error Comment names the key).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.sop_class import ModalityWorklistInformationFind

from printscp.core import status
from printscp.core.errors import StatusError
from printscp.services import audit_events
from printscp.services.dimse import status_dataset
from printscp.worklist.items import WorklistConfig, WorklistStore

LOGGER = logging.getLogger("printscp.worklist")

WORKLIST_CLASSES = [ModalityWorklistInformationFind]




def worklist_config(config: Any) -> WorklistConfig:
    """The worklist settings: ``config`` itself when it is a :class:`WorklistConfig`,
    else its ``worklist`` attribute (the node's config), else the defaults."""
    if isinstance(config, WorklistConfig):
        return config
    found = getattr(config, "worklist", None)
    return found if isinstance(found, WorklistConfig) else WorklistConfig()


def _ignored(tag: Any) -> bool:
    return tag.group in (0x0000, 0x0002) or tag.element == 0x0000 or tag == 0x00080005


def response(identifier: Dataset, item: Dataset) -> Dataset:
    """The C-FIND response identifier: each key with the item's value (zero-length when it
    has none), sequence keys item by item; the item's Specific Character Set."""
    rsp = _returned(identifier, item)
    if "SpecificCharacterSet" in item:
        rsp.SpecificCharacterSet = item.SpecificCharacterSet
    return rsp


def _returned(keys: Dataset, stored: Dataset) -> Dataset:
    out = Dataset()
    for elem in keys:
        if _ignored(elem.tag):
            continue
        value = stored.get(elem.tag)
        if elem.VR == "SQ":
            if value is None or value.VR != "SQ":
                out.add_new(elem.tag, "SQ", [])
                continue
            key_items = list(elem.value or [])
            if not key_items or not any(not _ignored(e.tag) for e in key_items[0]):
                out.add(copy.deepcopy(value))
            else:
                out.add_new(elem.tag, "SQ", [_returned(key_items[0], s) for s in value.value])
        elif value is not None and value.VR != "SQ":
            out.add(value)
        else:
            out.add_new(elem.tag, elem.VR, None)
    return out


def handle_worklist_find(event: Any, store: WorklistStore, config: Any
                         ) -> Iterator[tuple[Any, Any]]:
    """C-FIND (Modality Worklist): one 0xFF00 response per matching item.

    ``config`` is the node's config (its ``worklist`` section decides whether completed
    steps are hidden or returned with their status) or a :class:`WorklistConfig`.
    """
    include_done = worklist_config(config).completed == "mark"
    try:
        identifier = event.identifier
    except Exception as exc:
        audit_events.query(event.assoc, str(event.request.AffectedSOPClassUID), None, exc)
        yield status_dataset(status.CANNOT_UNDERSTAND, f"cannot decode the identifier: {exc}"), None
        return
    try:
        matches = store.query(identifier, include_done=include_done)
        first = next(matches, None)
    except StatusError as exc:
        LOGGER.info("worklist C-FIND refused (0x%04X): %s", exc.status, exc)
        audit_events.query(event.assoc, str(event.request.AffectedSOPClassUID), identifier,
                           exc)
        yield status_dataset(exc.status, str(exc)), None
        return
    audit_events.query(event.assoc, str(event.request.AffectedSOPClassUID), identifier)
    if first is None:
        return
    for _, item in _chain(first, matches):
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        yield status.PENDING, response(identifier, item)


def _chain(first: tuple[int, Dataset], rest: Iterator[tuple[int, Dataset]]
           ) -> Iterator[tuple[int, Dataset]]:
    yield first
    yield from rest


def is_worklist_request(event: Any) -> bool:
    return str(event.request.AffectedSOPClassUID) == str(ModalityWorklistInformationFind)


def event_handlers(store: WorklistStore, config: Any) -> list[tuple[Any, Any, list[Any]]]:
    """The EVT_C_FIND binding: worklist requests to :func:`handle_worklist_find`; any
    other FIND SOP class reaching pynetdicom gets 0xC000 (Q/R C-FIND is served before
    it, by :func:`printscp.services.query_retrieve.serve_qr`)."""

    def dispatch(event: Any, *_: Any) -> Iterator[tuple[Any, Any]]:
        if is_worklist_request(event):
            yield from handle_worklist_find(event, store, config)
        else:
            yield status_dataset(status.CANNOT_UNDERSTAND, "SOP class not served here"), None

    return [(evt.EVT_C_FIND, dispatch, [])]
