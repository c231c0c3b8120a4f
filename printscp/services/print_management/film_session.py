"""Basic Film Session SOP Class (1.2.840.10008.5.1.1.1), PS3.4 H.4.1.

DIMSE operations:

- **N-CREATE**: one Film Session per association, with the attributes of
  :data:`SESSION_ATTRIBUTES` over the printer's ``film_session_defaults``;
- **N-SET** of the same attributes;
- **N-ACTION** print (Action Type ID 1): every Film Box of the session, in creation
  order, spooled as one job (collation), or one job per Film Box on a printer with
  ``collation = false``;
- **N-DELETE**: the session and its whole hierarchy.

Statuses:

======  =====================================================================
0x0000  Success
0x0105  No such attribute: an attribute outside :data:`SESSION_ATTRIBUTES`
0x0106  Invalid attribute value (also a Presentation LUT not of this association)
0x0110  Processing failure: a second Film Session on one association (N-CREATE)
0x0111  Duplicate SOP Instance (N-CREATE)
0x0112  No such SOP Instance (N-SET, N-ACTION, N-DELETE)
0x0119  Class-instance conflict (N-SET, N-ACTION, N-DELETE)
0x0120  Missing attribute: a reference item without its SOP Instance UID
0x0123  No such action type: Action Type ID other than 1 (N-ACTION)
0x0213  Resource limitation: the spool cannot be written (N-ACTION)
0xB600  Warning: N-SET of Memory Allocation (recorded, no memory is reserved)
0xB601  Warning: collation not supported, each Film Box printed as its own job
0xB602  Warning: the printed session has no image (empty page)
0xC600  Failure: the session has no Film Box (N-ACTION)
0xC602  Failure: print queue full (N-ACTION)
======  =====================================================================
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydicom.dataset import Dataset

from printscp.core import status
from printscp.core.errors import StatusError
from printscp.printing.film_session import FilmSession
from printscp.services.dimse import dataset_values
from printscp.services.print_management import print_job
from printscp.services.print_management.presentation_lut import referenced_plut
from printscp.services.print_management.state import AssociationState, Service

SESSION_ATTRIBUTES = {
    "NumberOfCopies": "number_of_copies", "PrintPriority": "print_priority",
    "MediumType": "medium_type", "FilmDestination": "film_destination",
    "FilmSessionLabel": "film_session_label", "MemoryAllocation": "memory_allocation",
    "OwnerID": "owner_id", "Illumination": "illumination",
    "ReflectedAmbientLight": "reflected_ambient_light",
    "ReferencedPresentationLUTSequence": "",
}


def n_create(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True,
             meta: str = "", implicit_vr: bool | None = None) -> Dataset:
    if st.session is not None:
        raise StatusError(status.PROCESSING_FAILURE,
                         "a Film Session already exists on this association")
    values = dataset_values(ds, SESSION_ATTRIBUTES, "Film Session N-CREATE")
    plut_uid = referenced_plut(st, ds)
    st.session = FilmSession(**{**st.printer.film_session_defaults, **values})
    st.session_uid = uid
    st.session_plut_uid = plut_uid
    return dataset(st)


def dataset(st: AssociationState) -> Dataset:
    """The N-CREATE response: the session's attributes with the defaults used."""
    s = st.session
    assert s is not None
    out = Dataset()
    out.NumberOfCopies = str(s.number_of_copies)
    out.PrintPriority = s.print_priority.value  # type: ignore[union-attr]
    out.MediumType = s.medium_type.value  # type: ignore[union-attr]
    out.FilmDestination = s.film_destination
    out.FilmSessionLabel = s.film_session_label
    if s.memory_allocation is not None:
        out.MemoryAllocation = str(s.memory_allocation)
    if s.owner_id:
        out.OwnerID = s.owner_id
    out.AffectedSOPInstanceUID = st.session_uid
    return out


def n_set(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True
          ) -> tuple[int, Dataset | None]:
    values = dataset_values(ds, SESSION_ATTRIBUTES, "Film Session N-SET")
    plut_uid = referenced_plut(st, ds)
    st.session = replace(st.session, **values)  # type: ignore[type-var]
    if plut_uid:
        st.session_plut_uid = plut_uid
    # Memory is not reserved per session; the value is recorded (PS3.4 H.4.1).
    if "memory_allocation" in values:
        return status.MEMORY_ALLOCATION_NOT_SUPPORTED, None
    return status.SUCCESS, None


def n_action(service: Service, st: AssociationState, assoc: Any, uid: str, *,
             with_print_job: bool = False) -> tuple[int, Dataset | None]:
    """Print the session's film boxes (see :func:`.print_job.action_response`)."""
    entries = list(st.film_boxes.values())
    if not entries:
        raise StatusError(status.NO_FILM_BOXES, "the Film Session has no Film Box")
    context = print_job.events_context(assoc, with_print_job)
    if not st.printer.collation:
        # No collation: each film box is its own job, and the SCU is told so.
        jobs = [service.spool_films(st, [e], assoc, context) for e in entries]
        job, code = jobs[0], status.COLLATION_NOT_SUPPORTED
    else:
        job = service.spool_films(st, entries, assoc, context)
        empty = any(all(b.is_empty for b in e.film_box.image_boxes) for e in entries)
        code = status.EMPTY_FILM_SESSION if empty else status.SUCCESS
    return print_job.action_response(code, job, with_print_job)


def n_delete(st: AssociationState, uid: str) -> None:
    st.session = None
    st.session_uid = None
    st.session_plut_uid = None
    st.film_boxes.clear()
    st.image_boxes.clear()
    st.annotation_boxes.clear()
