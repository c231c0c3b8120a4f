"""Print Management SCP (PS3.4 Annex H), one module per SOP Class.

Basic Grayscale / Color Print Management Meta SOP Classes (1.2.840.10008.5.1.1.9 and
1.2.840.10008.5.1.1.18), with the optional Presentation LUT, Basic Annotation Box, Print
Job and Printer Configuration Retrieval SOP Classes.  Each module holds its class's DIMSE
operations, its attribute tables and, in its docstring, the statuses it answers:

=========================  ==================================================
:mod:`.film_session`       Basic Film Session: N-CREATE, N-SET, N-ACTION, N-DELETE
:mod:`.film_box`           Basic Film Box: N-CREATE, N-SET, N-ACTION, N-DELETE
:mod:`.image_box`          Basic Grayscale / Color Image Box: N-SET
:mod:`.annotation_box`     Basic Annotation Box: N-SET
:mod:`.presentation_lut`   Presentation LUT: N-CREATE, N-DELETE
:mod:`.printer`            Printer: N-GET, N-EVENT-REPORT
:mod:`.print_job`          Print Job: N-GET, N-EVENT-REPORT
:mod:`.printer_configuration`  Printer Configuration Retrieval: N-GET
=========================  ==================================================

:mod:`.state` holds the object hierarchy of one association (PS3.4 H.4: a Film Session
lives for one association; it is discarded when the association ends, so an abort loses
only what that modality had not printed).  :mod:`.service` holds the node's
:class:`PrintService`: association states, the printer monitor, the job watchers and
the spooling (a print N-ACTION writes the job durably into the spool before the response
goes out).  :mod:`.dispatch` chooses the module by the request's SOP Class and binds the
pynetdicom handlers, plain functions with the service as argument
(``evt_handlers=[(evt.EVT_N_CREATE, handle_n_create, [service])]``, see
:func:`event_handlers`).  ``docs/conformance.md`` has the full status table.

May import: :mod:`printscp.core`, :mod:`printscp.config`, :mod:`printscp.jobs`,
:mod:`printscp.printing` (the domain: no pixel work is done here),
:mod:`printscp.net.event_reports` (N-EVENT-REPORTs) and :mod:`printscp.services.dimse`;
pynetdicom only for ``evt`` when binding the handlers.  The modules import
:mod:`.state` and not :mod:`.service`, which imports them.
"""

from __future__ import annotations

from printscp.core import status, uids
from printscp.services.print_management.annotation_box import ANNOTATION_BOX_ATTRIBUTES
from printscp.services.print_management.dispatch import (
    HANDLERS,
    PRINT_ACTION,
    event_handlers,
    handle_association_end,
    handle_n_action,
    handle_n_create,
    handle_n_delete,
    handle_n_get,
    handle_n_set,
)
from printscp.services.print_management.film_box import (
    FILM_BOX_CREATE_ATTRIBUTES,
    FILM_BOX_SET_ATTRIBUTES,
    REPLACEABLE,
    check_profile,
    replacement_status,
)
from printscp.services.print_management.film_session import SESSION_ATTRIBUTES
from printscp.services.print_management.image_box import (
    COLOR_IMAGE_BOX_ATTRIBUTES,
    IMAGE_BOX_ATTRIBUTES,
    check_image_profile,
)
from printscp.services.print_management.presentation_lut import PLUT_ATTRIBUTES
from printscp.services.print_management.print_job import (
    EXECUTION_STATUS_INFO,
    PRINT_JOB_ATTRIBUTES,
)
from printscp.services.print_management.printer import META_CLASSES, PRINTER_ATTRIBUTES
from printscp.services.print_management.printer_configuration import SUPPORTED_SOP_CLASSES
from printscp.services.print_management.service import LOGGER, PrintService
from printscp.services.print_management.state import AssociationState, FilmBoxEntry

__all__ = [
    "ANNOTATION_BOX_ATTRIBUTES",
    "COLOR_IMAGE_BOX_ATTRIBUTES",
    "EXECUTION_STATUS_INFO",
    "FILM_BOX_CREATE_ATTRIBUTES",
    "FILM_BOX_SET_ATTRIBUTES",
    "HANDLERS",
    "IMAGE_BOX_ATTRIBUTES",
    "LOGGER",
    "META_CLASSES",
    "PLUT_ATTRIBUTES",
    "PRINTER_ATTRIBUTES",
    "PRINT_ACTION",
    "PRINT_JOB_ATTRIBUTES",
    "REPLACEABLE",
    "SESSION_ATTRIBUTES",
    "SUPPORTED_SOP_CLASSES",
    "AssociationState",
    "FilmBoxEntry",
    "PrintService",
    "check_image_profile",
    "check_profile",
    "event_handlers",
    "handle_association_end",
    "handle_n_action",
    "handle_n_create",
    "handle_n_delete",
    "handle_n_get",
    "handle_n_set",
    "replacement_status",
    "status",
    "uids",
]
