"""Presentation LUT SOP Class (1.2.840.10008.5.1.1.23), PS3.4 H.4.9.

DIMSE operations:

- **N-CREATE** with Presentation LUT Shape (IDENTITY, LIN OD) or a Presentation LUT
  Sequence item (LUT Descriptor, LUT Data, LUT Explanation);
- **N-DELETE**: film boxes and sessions that referenced it keep it.

Film Session and Film Box reference a Presentation LUT of their association through
Referenced Presentation LUT Sequence (:func:`referenced_plut`).

Statuses (besides those of :mod:`.dispatch`):

======  ==================================================================
0x0000  Success
0x0105  No such attribute: an attribute outside :data:`PLUT_ATTRIBUTES`
0x0106  Invalid attribute value (shape, descriptor, LUT Data length)
0x0120  Missing attribute: neither a shape nor a complete LUT Sequence item
0x0111  Duplicate SOP Instance (N-CREATE)
0x0112  No such SOP Instance (N-DELETE)
0x0119  Class-instance conflict (N-DELETE)
======  ==================================================================
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from printscp.core import uids
from printscp.printing.errors import InvalidAttributeValue
from printscp.printing.pixel_data import lut_data
from printscp.printing.presentation_lut import PresentationLUT
from printscp.services.dimse import dataset_values, referenced_uid
from printscp.services.print_management.state import AssociationState

PLUT_ATTRIBUTES = {"PresentationLUTSequence": "", "PresentationLUTShape": "shape"}


def referenced_plut(st: AssociationState, ds: Dataset) -> str | None:
    """The Presentation LUT a Film Session or Film Box references, if any; it must have
    been created on this association (else 0x0106)."""
    uid = referenced_uid(ds, "ReferencedPresentationLUTSequence", uids.PRESENTATION_LUT,
                         required=False)
    if uid is not None and uid not in st.pluts:
        raise InvalidAttributeValue("ReferencedPresentationLUTSequence", uid,
                                    "a Presentation LUT created on this association")
    return uid


def n_create(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True,
             meta: str = "", implicit_vr: bool | None = None) -> Dataset:
    values = dataset_values(ds, PLUT_ATTRIBUTES, "Presentation LUT N-CREATE")
    seq = ds.get("PresentationLUTSequence") if ds is not None else None
    if seq:
        item = seq[0]
        descriptor = item.get("LUTDescriptor")
        data = item.get("LUTData")
        values.update(
            lut_descriptor=tuple(int(v) for v in descriptor) if descriptor else None,
            lut_data=lut_data(item["LUTData"], little_endian) if data is not None
            else None,
            lut_explanation=str(item.get("LUTExplanation", "") or ""),
        )
    st.pluts[uid] = PresentationLUT(**values)
    out = Dataset()
    out.AffectedSOPInstanceUID = uid
    return out


def n_delete(st: AssociationState, uid: str) -> None:
    st.pluts.pop(uid)
