"""Basic Annotation Box SOP Class (1.2.840.10008.5.1.1.15), PS3.4 H.4.5.

Annotation Boxes are created by their Film Box's N-CREATE (as many as the printer's
``annotation_formats`` give the Annotation Display Format ID) and deleted with it.
DIMSE operation:

- **N-SET** of :data:`ANNOTATION_BOX_ATTRIBUTES`: Annotation Position (required, equal to
  the box's) and Text String, drawn on the film; an empty Text String clears the box.

Statuses:

======  ==================================================================
0x0000  Success
0x0105  No such attribute: an attribute outside :data:`ANNOTATION_BOX_ATTRIBUTES`
0x0106  Invalid attribute value: another position; a Text String too long
0x0112  No such SOP Instance
0x0119  Class-instance conflict
0x0120  Missing attribute: Annotation Position
======  ==================================================================
"""

from __future__ import annotations

from dataclasses import replace

from pydicom.dataset import Dataset

from printscp.core import status
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute
from printscp.services.dimse import dataset_values
from printscp.services.print_management.state import AssociationState

ANNOTATION_BOX_ATTRIBUTES = {"AnnotationPosition": "", "TextString": ""}


def n_set(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True
          ) -> tuple[int, Dataset | None]:
    fb_uid, position = st.annotation_boxes[uid]
    dataset_values(ds, ANNOTATION_BOX_ATTRIBUTES, "Annotation Box N-SET")
    given = ds.get("AnnotationPosition") if ds is not None else None
    if given in (None, ""):
        raise MissingAttribute("AnnotationPosition")
    if int(given) != position:
        raise InvalidAttributeValue("AnnotationPosition", int(given), str(position))
    text = str(ds.get("TextString", "") or "") if ds is not None else ""
    fb = st.film_boxes[fb_uid].film_box
    if text:
        fb.annotations[position] = text
    else:
        fb.annotations.pop(position, None)
    replace(fb)  # revalidate (Text String length)
    return status.SUCCESS, None
