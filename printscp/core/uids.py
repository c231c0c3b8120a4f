"""SOP Class and well-known SOP Instance UIDs of the services printscp provides."""

from __future__ import annotations

from importlib import metadata

from printscp import __version__

VERIFICATION = "1.2.840.10008.1.1"

BASIC_FILM_SESSION = "1.2.840.10008.5.1.1.1"
BASIC_FILM_BOX = "1.2.840.10008.5.1.1.2"
BASIC_GRAYSCALE_IMAGE_BOX = "1.2.840.10008.5.1.1.4"
BASIC_COLOR_IMAGE_BOX = "1.2.840.10008.5.1.1.4.1"
BASIC_GRAYSCALE_PRINT_META = "1.2.840.10008.5.1.1.9"
BASIC_COLOR_PRINT_META = "1.2.840.10008.5.1.1.18"
BASIC_ANNOTATION_BOX = "1.2.840.10008.5.1.1.15"
PRINT_JOB = "1.2.840.10008.5.1.1.14"
PRINTER = "1.2.840.10008.5.1.1.16"
#: The Printer SOP Instance is well known (PS3.4 H.4.6).
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
PRESENTATION_LUT = "1.2.840.10008.5.1.1.23"
PRINTER_CONFIGURATION_RETRIEVAL = "1.2.840.10008.5.1.1.16.376"
#: The Printer Configuration Retrieval SOP Instance is well known too (PS3.4 H.4.11).
PRINTER_CONFIGURATION_INSTANCE = "1.2.840.10008.5.1.1.17.376"

#: Root of the instance UIDs printscp creates: pydicom's registered root, which
#: pydicom's generate_uid() completes with a random suffix (PS3.5 B.2 style).
UID_ROOT = "1.2.826.0.1.3680043.8.498."

#: The Implementation Version Name the node declares in its associations and writes in
#: the media it exports (SH, at most 16 characters).
IMPLEMENTATION_VERSION_NAME = f"PRINTSCP_{__version__}"[:16]
#: The Implementation Class UID the node declares: pynetdicom's, which names its release
#: (pynetdicom's own scheme, read from the package's metadata so that nothing below the
#: network layer imports pynetdicom; tests/net/test_compat.py checks they agree).
IMPLEMENTATION_CLASS_UID = f"1.2.826.0.1.3680043.9.3811.{metadata.version('pynetdicom')}"
