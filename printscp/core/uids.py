"""SOP Class and well-known SOP Instance UIDs of the services printscp provides."""

from __future__ import annotations

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
