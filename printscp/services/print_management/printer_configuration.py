"""Printer Configuration Retrieval SOP Class (1.2.840.10008.5.1.1.16.376), PS3.4 H.4.11.

DIMSE operation:

- **N-GET** on the well-known instance 1.2.840.10008.5.1.1.17.376: Printer Configuration
  Sequence with one item (PS3.3 C.13.11): the SOP Classes supported
  (:data:`SUPPORTED_SOP_CLASSES`), bit depths, the media installed, one supported Image
  Display Format (STANDARD\\1,1) per film size, orientation and resolution with its
  printable Rows/Columns and pixel spacing, and the default resolution, magnification
  and decimate/crop result.

Statuses:

======  ======================================================================
0x0000  Success
0x0112  No such SOP Instance: not the well-known Printer Configuration instance
======  ======================================================================
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from printscp.config import PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.printing.enums import (
    FilmOrientation,
    FilmSize,
    MagnificationType,
    RequestedResolution,
)
from printscp.printing.layout import printable_area
from printscp.services.print_management.state import AssociationState, Service

#: SOP Classes of Print Management this printer supports (Printer Configuration).
SUPPORTED_SOP_CLASSES = (
    uids.BASIC_GRAYSCALE_PRINT_META, uids.BASIC_COLOR_PRINT_META, uids.BASIC_FILM_SESSION,
    uids.BASIC_FILM_BOX, uids.BASIC_GRAYSCALE_IMAGE_BOX, uids.BASIC_COLOR_IMAGE_BOX,
    uids.PRINTER, uids.PRESENTATION_LUT, uids.BASIC_ANNOTATION_BOX, uids.PRINT_JOB,
    uids.PRINTER_CONFIGURATION_RETRIEVAL,
)


def n_get(service: Service, st: AssociationState, uid: str) -> Dataset:
    if uid != uids.PRINTER_CONFIGURATION_INSTANCE:
        raise StatusError(status.NO_SUCH_SOP_INSTANCE, "the Printer Configuration "
                         f"SOP Instance is {uids.PRINTER_CONFIGURATION_INSTANCE}")
    return dataset(st.printer)


def dataset(p: PrinterConfig) -> Dataset:
    """Printer Configuration Module (PS3.3 C.13.11): what this printer supports."""
    box = p.film_box_defaults
    session = p.film_session_defaults
    item = Dataset()
    item.SOPClassesSupported = list(SUPPORTED_SOP_CLASSES)
    item.MemoryBitDepth = 16
    item.PrintingBitDepth = 8
    media = []
    sizes = [FilmSize(v) for v in p.film_sizes] or list(FilmSize)
    for number, size in enumerate(sizes, start=1):
        m = Dataset()
        m.ItemNumber = number
        m.MediumType = str(session.get("medium_type", "BLUE FILM"))
        m.FilmSizeID = size.value
        m.MinDensity = int(box.get("min_density", 20))
        m.MaxDensity = int(box.get("max_density", 300))
        media.append(m)
    item.MediaInstalledSequence = Sequence(media)
    formats = []
    for size in sizes:
        for orientation in FilmOrientation:
            for resolution in RequestedResolution:
                rows, columns, spacing = printable_area(size, orientation,
                                                        p.dpi or resolution.dpi)
                f = Dataset()
                f.Rows, f.Columns = rows, columns
                f.ImageDisplayFormat = "STANDARD\\1,1"
                f.FilmOrientation = orientation.value
                f.FilmSizeID = size.value
                f.PrinterResolutionID = resolution.value
                f.PrinterPixelSpacing = [spacing, spacing]
                f.RequestedImageSizeFlag = "YES"
                formats.append(f)
    item.SupportedImageDisplayFormatsSequence = Sequence(formats)
    item.DefaultPrinterResolutionID = str(box.get("requested_resolution_id", "STANDARD"))
    default_mag = str(box.get("magnification_type", "BILINEAR"))
    item.DefaultMagnificationType = default_mag
    item.OtherMagnificationTypesAvailable = [
        m for m in (p.magnification_types or [t.value for t in MagnificationType])
        if m != default_mag]
    item.ConfigurationInformationDescription = (
        "Configuration Information is recorded with the job and not interpreted.")
    item.DecimateCropResult = p.decimate_crop_default
    out = Dataset()
    out.PrinterConfigurationSequence = Sequence([item])
    return out
