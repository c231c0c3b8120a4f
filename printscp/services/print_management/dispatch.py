"""Print Management DIMSE-N requests dispatched by SOP Class, and the pynetdicom handlers.

Each request's Affected (N-CREATE) or Requested (N-SET, N-ACTION, N-DELETE, N-GET) SOP
Class UID chooses the handler of that class's module from the tables below
(:data:`N_CREATE`, :data:`N_SET`, :data:`N_ACTION`, :data:`N_DELETE`, :data:`N_GET`).
The checks common to every class come first: the new instance's UID must be unused
(N-CREATE), the instance must exist on this association and be of the requested class
(N-SET, N-ACTION, N-DELETE), the Action Type ID must be 1, print (N-ACTION).

The pynetdicom handlers (``handle_n_*``) are plain functions bound with the
:class:`~.service.PrintService` as argument (``evt_handlers=[(evt.EVT_N_CREATE,
handle_n_create, [service])]``, see :func:`event_handlers`); they see it as a
:class:`~.state.Service`, so this module does not import the service module.  Any
exception becomes a failure status (:func:`printscp.services.dimse.guarded`).  Print
Management is the node's default DIMSE-N service: :func:`printscp.services.dispatch.combine`
hands the requests of other SOP Classes (MPPS, Storage Commitment) to their own services.

Statuses answered here, for every class:

======  ======================================================================
0x0110  Processing failure: a malformed data set (the association is aborted);
        an unexpected error
0x0111  Duplicate SOP Instance: N-CREATE with a UID already in use
0x0112  No such SOP Instance: N-SET, N-ACTION or N-DELETE of an unknown UID
0x0118  No such SOP Class: the operation is not defined for that SOP Class
0x0119  Class-instance conflict: the instance belongs to another SOP Class
0x0123  No such action type: N-ACTION with an Action Type ID other than 1, or
        N-ACTION on a class that has no print action
======  ======================================================================

The other statuses are those of each SOP Class's module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.core.limits import sequence_depth
from printscp.services.dimse import create_failure, guarded
from printscp.services.print_management import (
    annotation_box,
    fast_decode,
    fast_path,
    film_box,
    film_session,
    image_box,
    presentation_lut,
    print_job,
    printer,
    printer_configuration,
)
from printscp.services.print_management.state import Service, check_instance

LOGGER = logging.getLogger("printscp.print")

PRINT_ACTION = 1  #: Action Type ID of "print" on Film Session and Film Box

#: N-CREATE: ``fn(state, uid, data_set, little_endian=..., meta=..., implicit_vr=...) ->
#: response`` (``implicit_vr`` and ``little_endian``: the response's encoding).
N_CREATE: dict[str, Callable[..., Dataset]] = {
    uids.BASIC_FILM_SESSION: film_session.n_create,
    uids.BASIC_FILM_BOX: film_box.n_create,
    uids.PRESENTATION_LUT: presentation_lut.n_create,
}
#: N-SET: ``fn(state, uid, data_set, little_endian=...) -> (status, response)``.
N_SET: dict[str, Callable[..., tuple[int, Dataset | None]]] = {
    uids.BASIC_FILM_SESSION: film_session.n_set,
    uids.BASIC_FILM_BOX: film_box.n_set,
    uids.BASIC_GRAYSCALE_IMAGE_BOX: image_box.n_set,
    uids.BASIC_COLOR_IMAGE_BOX: image_box.n_set,
    uids.BASIC_ANNOTATION_BOX: annotation_box.n_set,
}
#: N-ACTION print: ``fn(service, state, assoc, uid, with_print_job=...) -> (status, response)``.
N_ACTION: dict[str, Callable[..., tuple[int, Dataset | None]]] = {
    uids.BASIC_FILM_SESSION: film_session.n_action,
    uids.BASIC_FILM_BOX: film_box.n_action,
}
#: N-DELETE: ``fn(state, uid)``.
N_DELETE: dict[str, Callable[..., None]] = {
    uids.BASIC_FILM_SESSION: film_session.n_delete,
    uids.BASIC_FILM_BOX: film_box.n_delete,
    uids.PRESENTATION_LUT: presentation_lut.n_delete,
}
#: N-GET: ``fn(service, state, uid) -> every attribute of the instance``.
N_GET: dict[str, Callable[..., Dataset]] = {
    uids.PRINTER: printer.n_get,
    uids.PRINT_JOB: print_job.n_get,
    uids.PRINTER_CONFIGURATION_RETRIEVAL: printer_configuration.n_get,
}


# -- the operations, by SOP Class ------------------------------------------------------
def n_create(service: Service, assoc: Any, sop_class: str, uid: str | None,
             ds: Dataset, little_endian: bool = True,
             meta: str = uids.BASIC_GRAYSCALE_PRINT_META,
             implicit_vr: bool | None = None) -> Dataset:
    """N-CREATE; ``meta`` is the Meta SOP Class of the request's presentation context,
    which decides whether a Film Box holds grayscale or color image boxes."""
    st = service.state(assoc)
    if uid and st.class_of(uid) is not None:
        raise StatusError(status.DUPLICATE_SOP_INSTANCE, f"SOP Instance {uid} exists")
    uid = uid or generate_uid(uids.UID_ROOT)
    handler = N_CREATE.get(sop_class)
    if handler is None:
        raise StatusError(status.NO_SUCH_SOP_CLASS, f"N-CREATE not supported for {sop_class}")
    return handler(st, uid, ds, little_endian=little_endian, meta=meta,
                   implicit_vr=implicit_vr)


def n_set(service: Service, assoc: Any, sop_class: str, uid: str, ds: Dataset,
          little_endian: bool) -> tuple[int, Dataset | None]:
    st = service.state(assoc)
    check_instance(st, sop_class, uid)
    handler = N_SET.get(sop_class)
    if handler is None:
        raise StatusError(status.NO_SUCH_SOP_CLASS, f"N-SET not supported for {sop_class}")
    return handler(st, uid, ds, little_endian=little_endian)


def n_action(service: Service, assoc: Any, sop_class: str, uid: str, action_type: int,
             with_print_job: bool = False) -> tuple[int, Dataset | None]:
    """Print; with ``with_print_job`` (the Print Job SOP Class was negotiated) the
    answer carries Referenced Print Job Sequence (2100,0500)."""
    st = service.state(assoc)
    check_instance(st, sop_class, uid)
    if action_type != PRINT_ACTION:
        raise StatusError(status.NO_SUCH_ACTION, f"Action Type ID {action_type} not supported")
    handler = N_ACTION.get(sop_class)
    if handler is None:
        raise StatusError(status.NO_SUCH_ACTION, f"N-ACTION not supported for {sop_class}")
    return handler(service, st, assoc, uid, with_print_job=with_print_job)


def n_delete(service: Service, assoc: Any, sop_class: str, uid: str) -> int:
    st = service.state(assoc)
    check_instance(st, sop_class, uid)
    handler = N_DELETE.get(sop_class)
    if handler is None:
        raise StatusError(status.NO_SUCH_SOP_CLASS, f"N-DELETE not supported for {sop_class}")
    handler(st, uid)
    return status.SUCCESS


def n_get(service: Service, assoc: Any, sop_class: str, uid: str,
          tags: list[int] | None) -> Dataset:
    st = service.state(assoc)
    handler = N_GET.get(sop_class)
    if handler is None:
        raise StatusError(status.NO_SUCH_SOP_CLASS, f"N-GET not supported for {sop_class}")
    return _selected(handler(service, st, uid), tags)


def _selected(full: Dataset, tags: list[int] | None) -> Dataset:
    """The N-GET answer: everything, or the requested tags; unknown ones come back empty
    (strict clients fail on 0x0105 for attributes the SCP does not know)."""
    if not tags:
        return full
    out = Dataset()
    for tag in tags:
        if tag in full:
            out[tag] = full[tag]
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        keyword = keyword_for_tag(tag)
        if keyword:
            setattr(out, keyword, None)
        else:
            out.add_new(tag, vr, None)
    return out


# -- event handlers (bound with the service) -----------------------------------------
def _sop_class(req: Any, affected: bool) -> str:
    value = req.AffectedSOPClassUID if affected else req.RequestedSOPClassUID
    return str(value or "")


def _sop_instance(req: Any, affected: bool) -> str:
    value = req.AffectedSOPInstanceUID if affected else req.RequestedSOPInstanceUID
    return str(value or "")


def _little_endian(event: Any) -> bool:
    return bool(event.context.transfer_syntax.is_little_endian)


def _decode(event: Any, name: str, service: Service) -> Dataset:
    """The request's data set, fully decoded; an undecodable one aborts the association.

    pydicom decodes lazily, so every element (sequences included) is read here: a
    malformed message must end its own association, not surface later as a
    half-applied request.  Sequences nested deeper than [limits] max_sequence_depth are
    refused first, on the encoded bytes (0x0106 naming the sequence; pydicom would
    recurse into them): the association goes on.
    """
    _check_depth(event, name, service.config.limits.max_sequence_depth)
    try:
        ds = getattr(event, name)
        ds.walk(lambda _ds, elem: elem.value)
        return ds
    except Exception as exc:
        LOGGER.error("malformed data set from %s (%s); aborting the association",
                     str(event.assoc.requestor.ae_title).strip(), exc)
        event.assoc.abort()
        raise StatusError(status.PROCESSING_FAILURE, "malformed data set") from None


_IMAGE_BOX_CLASSES = frozenset({uids.BASIC_GRAYSCALE_IMAGE_BOX, uids.BASIC_COLOR_IMAGE_BOX})


def _image_box_fast(event: Any) -> Dataset | None:
    """An Image Box N-SET's data set read from its bytes by :mod:`.fast_decode` (the
    common case, ~30 us), or None: then :func:`_decode` (pydicom) reads it."""
    req = event.request
    raw = req.ModificationList
    syntax = event.context.transfer_syntax
    if (_sop_class(req, False) not in _IMAGE_BOX_CLASSES or not hasattr(raw, "getbuffer")
            or not syntax.is_little_endian or syntax.is_deflated):
        return None
    # The message's own buffer, not a copy: its Pixel Data becomes the image's pixels.
    ds = fast_decode.image_box_dataset(raw.getbuffer(), syntax.is_implicit_VR)
    return ds


#: The request's encoded data set, by the name of its decoded one on the event.
_ENCODED = {"attribute_list": "AttributeList", "modification_list": "ModificationList"}


def _check_depth(event: Any, name: str, limit: int) -> None:
    raw = getattr(event.request, _ENCODED[name], None)
    data = raw.getvalue() if hasattr(raw, "getvalue") else None
    if not data or not limit:
        return
    syntax = event.context.transfer_syntax
    deep = sequence_depth(data, implicit_vr=syntax.is_implicit_VR,
                          little_endian=syntax.is_little_endian, limit=limit)
    if deep is not None:
        LOGGER.warning("%s: data set refused, %s ([limits] max_sequence_depth)",
                       str(event.assoc.requestor.ae_title).strip(), deep.comment)
        raise StatusError(status.INVALID_ATTRIBUTE_VALUE, deep.comment, [deep.tag])


def _with_none(result: Dataset) -> tuple[Dataset, None]:
    return result, None


def handle_n_create(event: Any, service: Service) -> tuple[Any, Dataset | None]:
    req = event.request
    ds = _decode(event, "attribute_list", service)
    requested_uid = _sop_instance(req, True) or None
    out = n_create(service, event.assoc, _sop_class(req, True), requested_uid, ds,
                   _little_endian(event), meta=str(event.context.abstract_syntax),
                   implicit_vr=bool(event.context.transfer_syntax.is_implicit_VR))
    if requested_uid is not None:
        # pynetdicom echoes the request's UID itself and would leave ours in the data set.
        del out.AffectedSOPInstanceUID
    return status.SUCCESS, out


def handle_n_set(event: Any, service: Service) -> tuple[Any, Dataset | None]:
    req = event.request
    ds = _image_box_fast(event) or _decode(event, "modification_list", service)
    code, out = n_set(service, event.assoc, _sop_class(req, False), _sop_instance(req, False),
                      ds, _little_endian(event))
    return code, out


def handle_n_action(event: Any, service: Service) -> tuple[Any, Dataset | None]:
    req = event.request
    negotiated = {str(cx.abstract_syntax) for cx in event.assoc.accepted_contexts}
    return n_action(service, event.assoc, _sop_class(req, False), _sop_instance(req, False),
                    int(req.ActionTypeID or 0), uids.PRINT_JOB in negotiated)


def handle_n_delete(event: Any, service: Service) -> Any:
    req = event.request
    return n_delete(service, event.assoc, _sop_class(req, False), _sop_instance(req, False))


def handle_n_get(event: Any, service: Service) -> tuple[Any, Dataset | None]:
    req = event.request
    tags = req.AttributeIdentifierList or []
    if not isinstance(tags, list | tuple):  # a single tag decodes as one BaseTag
        tags = [tags]
    return status.SUCCESS, n_get(service, event.assoc, _sop_class(req, False),
                                 _sop_instance(req, False), tags)


def handle_association_end(event: Any, service: Service) -> None:
    service.forget(event.assoc)


HANDLERS: list[tuple[str, Callable[..., Any], Callable[[Dataset], Any]]] = [
    ("EVT_N_CREATE", handle_n_create, create_failure),
    ("EVT_N_SET", handle_n_set, _with_none),
    ("EVT_N_ACTION", handle_n_action, _with_none),
    ("EVT_N_DELETE", handle_n_delete, lambda ds: ds),
    ("EVT_N_GET", handle_n_get, _with_none),
]


def event_handlers(service: Service) -> list[tuple[Any, Callable[..., Any], list[Any]]]:
    """pynetdicom ``evt_handlers`` for the Print Management service."""
    from pynetdicom import evt

    bound = [(getattr(evt, name), guarded(fn, failure), [service])
             for name, fn, failure in HANDLERS]
    bound += [(evt.EVT_REQUESTED, fast_path.handle_requested, []),
              (evt.EVT_RELEASED, handle_association_end, [service]),
              (evt.EVT_ABORTED, handle_association_end, [service]),
              (evt.EVT_CONN_CLOSE, handle_association_end, [service])]
    return bound
