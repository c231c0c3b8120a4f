"""Basic Grayscale Image Box (1.2.840.10008.5.1.1.4) and Basic Color Image Box
(1.2.840.10008.5.1.1.4.1) SOP Classes, PS3.4 H.4.3 and H.4.4.

Image Boxes are created by their Film Box's N-CREATE (grayscale or color after the Meta
SOP Class) and deleted with it.  DIMSE operation:

- **N-SET** of :data:`IMAGE_BOX_ATTRIBUTES` (grayscale) or
  :data:`COLOR_IMAGE_BOX_ATTRIBUTES` (color): the image's position, polarity,
  magnification and smoothing, requested size and decimate/crop behavior, and the image
  itself (one Basic Grayscale / Color Image Sequence item, decoded by
  :mod:`printscp.printing.pixel_data`).  Where the image lands in its box is decided by
  :func:`printscp.printing.layout.place_image`.

Statuses:

======  ======================================================================
0x0000  Success
0x0105  No such attribute: an attribute outside the table of the box's class
0x0106  Invalid attribute value: also Image Box Position other than the box's,
        an image sequence without exactly one item, a magnification or
        smoothing type the printer does not support
0x0112  No such SOP Instance
0x0119  Class-instance conflict (e.g. a color box set as a grayscale one)
0x0120  Missing attribute in the image item
0xB609  Warning: CROP requested and applied
0xB60A  Warning: DECIMATE requested and applied
0xC603  Failure: the image is larger than its box and may not be reduced (FAIL)
0xC605  Failure: insufficient memory in printer to store the image: the N-SET's
        data set is over [limits] max_image_box_mb (refused as it arrives,
        :mod:`printscp.services.limits`), or Rows x Columns x Samples per Pixel x
        Bits Allocated declare more than max_pixel_mb (refused before decoding)
======  ======================================================================
"""

from __future__ import annotations

from dataclasses import replace

from pydicom.dataset import Dataset

from printscp.config import PrinterConfig
from printscp.core import status
from printscp.printing.enums import DecimateCropBehavior, MagnificationType
from printscp.printing.errors import InvalidAttributeValue
from printscp.printing.film_box import FilmBox
from printscp.printing.image_box import ImageBox
from printscp.printing.layout import FitOutcome, film_geometry, place_image
from printscp.printing.pixel_data import decode_color, decode_grayscale
from printscp.services.dimse import dataset_values
from printscp.services.print_management.state import AssociationState

_IMAGE_BOX_COMMON = {
    "ImageBoxPosition": "", "Polarity": "polarity", "MagnificationType": "magnification_type",
    "SmoothingType": "smoothing_type", "ConfigurationInformation": "configuration_information",
    "RequestedImageSize": "requested_image_size",
    "RequestedDecimateCropBehavior": "requested_decimate_crop_behavior",
}
IMAGE_BOX_ATTRIBUTES = {**_IMAGE_BOX_COMMON, "BasicGrayscaleImageSequence": ""}
COLOR_IMAGE_BOX_ATTRIBUTES = {**_IMAGE_BOX_COMMON, "BasicColorImageSequence": ""}


def n_set(st: AssociationState, uid: str, ds: Dataset, *, little_endian: bool = True
          ) -> tuple[int, Dataset | None]:
    fb_uid, position = st.image_boxes[uid]
    fb = st.film_boxes[fb_uid].film_box
    table = COLOR_IMAGE_BOX_ATTRIBUTES if fb.color else IMAGE_BOX_ATTRIBUTES
    values = dataset_values(ds, table, "Image Box N-SET")
    given = ds.get("ImageBoxPosition") if ds is not None else None
    if given not in (None, "") and (not isinstance(given, int) or given != position):
        # several values (VM 1 in PS3.3 C.13.5) are as wrong as another position
        raise InvalidAttributeValue("ImageBoxPosition", str(given), str(position))
    seq_kw = "BasicColorImageSequence" if fb.color else "BasicGrayscaleImageSequence"
    seq = ds.get(seq_kw) if ds is not None else None
    explicit_behavior = "requested_decimate_crop_behavior" in values
    values.setdefault("requested_decimate_crop_behavior",
                      st.printer.decimate_crop_default)
    if seq is None:
        box = fb.image_box(position)
        updated = replace(box, **values)
        check_image_profile(st.printer, updated)
        fb.set_image(position, updated)
        return status.SUCCESS, None
    if len(seq) != 1:
        raise InvalidAttributeValue(seq_kw, f"{len(seq)} items", "exactly one item")
    decoded = (decode_color if fb.color else decode_grayscale)(
        seq[0], little_endian, max_bytes=st.limits.max_pixel_mb << 20)
    box = ImageBox(position=position, pixels=decoded.pixels,
                   photometric_interpretation=decoded.photometric_interpretation,
                   bits_stored=decoded.bits_stored,
                   pixel_aspect_ratio=decoded.pixel_aspect_ratio, **values)
    check_image_profile(st.printer, box)
    outcome = check_fit(fb, box, st.printer)
    fb.set_image(position, box)
    st.stage_image(fb_uid, position, box.pixels)  # on its way to disk while the SCU goes on
    if explicit_behavior and outcome is FitOutcome.CROPPED:
        return status.IMAGE_CROPPED, None
    if explicit_behavior and outcome is FitOutcome.DECIMATED:
        return status.IMAGE_DECIMATED, None
    return status.SUCCESS, None


def check_image_profile(printer: PrinterConfig, box: ImageBox) -> None:
    """Image Box overrides of magnification and smoothing must be supported too."""
    if box.magnification_type is not None:
        _one_of("MagnificationType", box.magnification_type.value,  # type: ignore[union-attr]
                printer.magnification_types)
    if box.smoothing_type:
        _one_of("SmoothingType", box.smoothing_type, printer.smoothing_types)


def _one_of(keyword: str, value: str, allowed: tuple[str, ...]) -> None:
    if allowed and value not in allowed:
        raise InvalidAttributeValue(keyword, value, allowed)


def check_fit(fb: FilmBox, box: ImageBox, printer: PrinterConfig) -> FitOutcome:
    """Where the image lands; raises ImageTooLarge (0xC603) for FAIL."""
    geometry = film_geometry(fb.film_size_id, fb.film_orientation,  # type: ignore[arg-type]
                             fb.image_display_format.cells(fb.custom_layouts),  # type: ignore[union-attr]
                             annotation=fb.has_annotation_strip)
    dpi = printer.dpi or fb.requested_resolution_id.dpi  # type: ignore[union-attr]
    magnification = box.magnification_type or fb.magnification_type
    return place_image(
        geometry.boxes[box.position - 1], box.rows, box.columns, dpi,
        pixel_aspect_ratio=box.pixel_aspect_ratio,
        requested_width_mm=box.requested_image_size,  # type: ignore[arg-type]
        no_magnification=magnification is MagnificationType.NONE,
        behavior=DecimateCropBehavior(box.requested_decimate_crop_behavior),
    ).outcome
