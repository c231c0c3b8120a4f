"""Basic Film Box SOP Class (1.2.840.10008.5.1.1.2), PS3.4 H.4.2.

DIMSE operations:

- **N-CREATE** with :data:`FILM_BOX_CREATE_ATTRIBUTES` over the printer's
  ``film_box_defaults``; it creates the film's Image Boxes (grayscale or color after the
  Meta SOP Class of the request's presentation context) and Annotation Boxes, and answers
  with their references;
- **N-SET** of :data:`FILM_BOX_SET_ATTRIBUTES`;
- **N-ACTION** print (Action Type ID 1): the Film Box spooled as one job;
- **N-DELETE**: the Film Box with its Image and Annotation Boxes.

Every value is checked against the printer profile (:func:`check_profile`): an
unsupported one is refused with 0x0106 unless the profile lists it in
``replace_unsupported``; then the default is used, silently on N-CREATE (pynetdicom drops
the new instance's UID from a warning response), with a warning on N-SET
(:func:`replacement_status`).

Statuses:

======  ======================================================================
0x0000  Success
0x0105  No such attribute: an attribute outside the tables of this operation
0x0106  Invalid attribute value: outside the standard's or the printer's values;
        no Film Session on this association; a reference to another Film
        Session or to a Presentation LUT not of this association
0x0111  Duplicate SOP Instance (N-CREATE)
0x0112  No such SOP Instance (N-SET, N-ACTION, N-DELETE)
0x0116  Warning: N-SET value replaced by the printer's default
0x0119  Class-instance conflict (N-SET, N-ACTION, N-DELETE)
0x0120  Missing attribute: Referenced Film Session Sequence (N-CREATE)
0x0123  No such action type: Action Type ID other than 1 (N-ACTION)
0x0213  Resource limitation: the spool cannot be written (N-ACTION)
0xB603  Warning: the printed Film Box has no image (empty page)
0xB605  Warning: N-SET Min/Max Density replaced by the printer's default
0xC602  Failure: print queue full (N-ACTION)
0xC616  Failure: an unprinted Film Box exists and the printer does not collate
======  ======================================================================
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from printscp.config import PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.printing.display_format import Cell, ImageDisplayFormat
from printscp.printing.errors import InvalidAttributeValue
from printscp.printing.film_box import FilmBox
from printscp.services.dimse import dataset_values, referenced_uid
from printscp.services.print_management import print_job
from printscp.services.print_management.presentation_lut import referenced_plut
from printscp.services.print_management.references import set_references
from printscp.services.print_management.state import AssociationState, FilmBoxEntry, Service

LOGGER = logging.getLogger("printscp.print")

FILM_BOX_SET_ATTRIBUTES = {
    "MagnificationType": "magnification_type", "SmoothingType": "smoothing_type",
    "BorderDensity": "border_density", "EmptyImageDensity": "empty_image_density",
    "MinDensity": "min_density", "MaxDensity": "max_density", "Trim": "trim",
    "ConfigurationInformation": "configuration_information", "Illumination": "illumination",
    "ReflectedAmbientLight": "reflected_ambient_light",
    "ReferencedPresentationLUTSequence": "",
}
FILM_BOX_CREATE_ATTRIBUTES = {
    **FILM_BOX_SET_ATTRIBUTES,
    "ImageDisplayFormat": "image_display_format",
    "AnnotationDisplayFormatID": "annotation_display_format_id",
    "FilmOrientation": "film_orientation", "FilmSizeID": "film_size_id",
    "RequestedResolutionID": "requested_resolution_id",
    "ReferencedFilmSessionSequence": "",
}

#: Film Box attributes a profile may replace by its default instead of refusing them.
REPLACEABLE = {"FilmSizeID": "film_size_id", "MagnificationType": "magnification_type",
               "SmoothingType": "smoothing_type", "MinDensity": "min_density",
               "MaxDensity": "max_density"}


def n_create(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True,
             meta: str = uids.BASIC_GRAYSCALE_PRINT_META, implicit_vr: bool | None = None
             ) -> Dataset:
    """``meta`` is the Meta SOP Class of the request's presentation context: it decides
    whether the Film Box holds grayscale or color image boxes.  ``implicit_vr`` (None:
    unknown) with ``little_endian`` is the response's encoding (see :func:`dataset`)."""
    color = meta == uids.BASIC_COLOR_PRINT_META
    if st.session is None:
        raise StatusError(status.INVALID_ATTRIBUTE_VALUE,
                         "no Film Session exists on this association",
                         [0x20100500])
    if not st.printer.collation and any(not e.printed for e in st.film_boxes.values()):
        raise StatusError(status.UNPRINTED_FILM_BOX, "a Film Box has not been printed yet "
                         "and this printer does not collate")
    if len(st.film_boxes) >= st.limits.max_film_boxes:
        LOGGER.warning("%s: Film Box N-CREATE refused: the session has %d film boxes "
                       "([limits] max_film_boxes)", st.calling_ae, len(st.film_boxes))
        raise StatusError(status.RESOURCE_LIMITATION,
                         f"the Film Session has {len(st.film_boxes)} Film Boxes, the most "
                         "accepted")
    values = dataset_values(ds, FILM_BOX_CREATE_ATTRIBUTES, "Film Box N-CREATE")
    session_uid = referenced_uid(ds, "ReferencedFilmSessionSequence",
                                 uids.BASIC_FILM_SESSION, required=True)
    if session_uid != st.session_uid:
        raise InvalidAttributeValue("ReferencedFilmSessionSequence", session_uid,
                                    "the Film Session of this association")
    plut_uid = referenced_plut(st, ds) or st.session_plut_uid
    format_id = str(values.get("annotation_display_format_id", "")).strip().upper()
    formats = st.printer.annotation_formats
    if format_id and format_id not in formats:
        raise InvalidAttributeValue("AnnotationDisplayFormatID", format_id,
                                    sorted(formats) or "none (no annotation formats)")
    if format_id:
        values["annotation_boxes"] = int(formats[format_id])
    defaults = dict(st.printer.film_box_defaults)
    check_image_box_count(st, values.get("image_display_format")
                          or defaults.get("image_display_format"))
    if st.session.illumination is not None:
        defaults["illumination"] = st.session.illumination
    if st.session.reflected_ambient_light is not None:
        defaults["reflected_ambient_light"] = st.session.reflected_ambient_light
    fb = FilmBox(**{**defaults, **values}, color=color,
                 custom_layouts=layouts(st.printer),
                 presentation_lut=st.pluts.get(plut_uid) if plut_uid else None)
    # N-CREATE replaces silently: with a warning pynetdicom would drop the new
    # instance's UID from the response (see docs/conformance.md).
    fb, _ = check_profile(st.printer, fb)
    box_uids = [generate_uid(uids.UID_ROOT) for _ in fb.image_boxes]
    annotation_uids = [generate_uid(uids.UID_ROOT)
                       for _ in range(int(fb.annotation_boxes))]  # type: ignore[arg-type]
    st.film_boxes[uid] = FilmBoxEntry(fb, box_uids, plut_uid, annotation_uids)
    for position, box_uid in enumerate(box_uids, start=1):
        st.image_boxes[box_uid] = (uid, position)
    for position, box_uid in enumerate(annotation_uids, start=1):
        st.annotation_boxes[box_uid] = (uid, position)
    out = dataset(st, uid, None if implicit_vr is None else (implicit_vr, little_endian))
    out.AffectedSOPInstanceUID = uid
    return out


def check_image_box_count(st: AssociationState, display_format: Any) -> None:
    """An Image Display Format holding more image boxes than [limits] max_image_boxes is
    refused (0x0106) before any box is allocated (``STANDARD\\999,999`` is refused by
    the format's own bounds, 16 a row or column)."""
    if display_format in (None, ""):
        return  # FilmBox says it is missing
    fmt = display_format if isinstance(display_format, ImageDisplayFormat) else \
        ImageDisplayFormat.parse(str(display_format))
    count = fmt.image_box_count(layouts(st.printer))
    limit = st.limits.max_image_boxes
    if count > limit:
        LOGGER.warning("%s: Film Box N-CREATE refused: %s has %d image boxes ([limits] "
                       "max_image_boxes = %d)", st.calling_ae, fmt, count, limit)
        raise StatusError(status.INVALID_ATTRIBUTE_VALUE,
                          f"ImageDisplayFormat {fmt}: {count} image boxes, over {limit}",
                          [0x20100010])


def dataset(st: AssociationState, uid: str, encoding: tuple[bool, bool] | None = None
            ) -> Dataset:
    """The N-CREATE response: the Film Box attributes with the defaults used and the
    references to its session, Image Boxes, Annotation Boxes and Presentation LUT.
    ``encoding``: (implicit VR, little endian) of the response, in which the reference
    sequences are encoded at once (:mod:`.references`)."""
    entry = st.film_boxes[uid]
    fb = entry.film_box
    out = Dataset()
    out.ImageDisplayFormat = str(fb.image_display_format)
    if fb.annotation_display_format_id:
        out.AnnotationDisplayFormatID = fb.annotation_display_format_id
    out.FilmOrientation = fb.film_orientation.value  # type: ignore[union-attr]
    out.FilmSizeID = fb.film_size_id.value  # type: ignore[union-attr]
    out.MagnificationType = fb.magnification_type.value  # type: ignore[union-attr]
    if fb.smoothing_type:
        out.SmoothingType = fb.smoothing_type
    out.BorderDensity = str(fb.border_density)
    out.EmptyImageDensity = str(fb.empty_image_density)
    out.MinDensity = fb.min_density
    out.MaxDensity = fb.max_density
    out.Trim = fb.trim.value  # type: ignore[union-attr]
    if fb.configuration_information:
        out.ConfigurationInformation = fb.configuration_information
    out.Illumination = fb.illumination
    out.ReflectedAmbientLight = fb.reflected_ambient_light
    out.RequestedResolutionID = fb.requested_resolution_id.value  # type: ignore[union-attr]
    assert st.session_uid is not None
    set_references(out, "ReferencedFilmSessionSequence",
                   [(uids.BASIC_FILM_SESSION, st.session_uid)], encoding)
    box_class = uids.BASIC_COLOR_IMAGE_BOX if fb.color else uids.BASIC_GRAYSCALE_IMAGE_BOX
    set_references(out, "ReferencedImageBoxSequence",
                   [(box_class, box_uid) for box_uid in entry.image_box_uids], encoding)
    if entry.annotation_box_uids:
        set_references(out, "ReferencedBasicAnnotationBoxSequence",
                       [(uids.BASIC_ANNOTATION_BOX, box_uid)
                        for box_uid in entry.annotation_box_uids], encoding)
    if entry.plut_uid:
        set_references(out, "ReferencedPresentationLUTSequence",
                       [(uids.PRESENTATION_LUT, entry.plut_uid)], encoding)
    return out


def n_set(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True
          ) -> tuple[int, Dataset | None]:
    values = dataset_values(ds, FILM_BOX_SET_ATTRIBUTES, "Film Box N-SET")
    entry = st.film_boxes[uid]
    plut_uid = referenced_plut(st, ds)
    if plut_uid:
        values["presentation_lut"] = st.pluts[plut_uid]
        entry.plut_uid = plut_uid
    updated, replaced = check_profile(st.printer, replace(entry.film_box, **values))
    entry.film_box = updated
    return replacement_status(replaced), None


def n_action(service: Service, st: AssociationState, assoc: Any, uid: str, *,
             with_print_job: bool = False) -> tuple[int, Dataset | None]:
    """Print this film box as one job (see :func:`.print_job.action_response`)."""
    entry = st.film_boxes[uid]
    context = print_job.events_context(assoc, with_print_job)
    job = service.spool_films(st, [entry], assoc, context)
    empty = all(b.is_empty for b in entry.film_box.image_boxes)
    code = status.EMPTY_FILM_BOX if empty else status.SUCCESS
    return print_job.action_response(code, job, with_print_job)


def n_delete(st: AssociationState, uid: str) -> None:
    entry = st.film_boxes.pop(uid)
    entry.drop_stage()
    for box_uid in entry.image_box_uids:
        st.image_boxes.pop(box_uid, None)
    for box_uid in entry.annotation_box_uids:
        st.annotation_boxes.pop(box_uid, None)


def layouts(printer: PrinterConfig) -> dict[str, tuple[Cell, ...]]:
    """The printer's custom Image Display Formats (SLIDE, SUPERSLIDE, CUSTOM\\i)."""
    return {fmt: tuple(Cell(*c) for c in cells) for fmt, cells in printer.custom_layouts.items()}


def check_profile(printer: PrinterConfig, fb: FilmBox) -> tuple[FilmBox, list[str]]:
    """Check a Film Box against the printer profile.

    An unsupported value is refused (0x0106) unless the profile lists the attribute in
    ``replace_unsupported``: then the printer's default is used instead.  Returns the
    film box to keep and the keywords that were replaced.
    """
    fmt = fb.image_display_format
    allowed = printer.display_formats or ("STANDARD", "ROW", "COL", *printer.custom_layouts)
    if fmt.kind.value not in allowed and str(fmt) not in allowed:  # type: ignore[union-attr]
        raise InvalidAttributeValue("ImageDisplayFormat", str(fmt), allowed)
    problems: dict[str, InvalidAttributeValue] = {}
    for keyword, value, choices in [
        ("FilmSizeID", fb.film_size_id.value, printer.film_sizes),  # type: ignore[union-attr]
        ("MagnificationType", fb.magnification_type.value,  # type: ignore[union-attr]
         printer.magnification_types),
        ("SmoothingType", fb.smoothing_type or "", printer.smoothing_types),
    ]:
        if value and choices and value not in choices:
            problems[keyword] = InvalidAttributeValue(keyword, value, choices)
    for keyword, value, (low, high) in [
        ("MinDensity", fb.min_density, printer.min_density_range),
        ("MaxDensity", fb.max_density, printer.max_density_range),
    ]:
        if not low <= int(value) <= high:  # type: ignore[call-overload]
            problems[keyword] = InvalidAttributeValue(keyword, value, f"{low}..{high} on this "
                                                      "printer")
    for keyword, error in problems.items():
        if keyword not in printer.replace_unsupported:
            raise error
    if not problems:
        return fb, []
    defaults = printer.film_box_defaults
    changes = {REPLACEABLE[k]: defaults.get(REPLACEABLE[k]) for k in problems}
    LOGGER.info("printer %s replaced unsupported %s by its defaults", printer.name,
                ", ".join(problems))
    return replace(fb, **changes), list(problems)


def replacement_status(replaced: list[str]) -> int:
    """The warning for values replaced by defaults on N-SET (PS3.4 H.4, PS3.7 C.4)."""
    if not replaced:
        return status.SUCCESS
    if set(replaced) <= {"MinDensity", "MaxDensity"}:
        return status.DENSITY_OUT_OF_RANGE
    return status.ATTRIBUTE_VALUE_OUT_OF_RANGE
