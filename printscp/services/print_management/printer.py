"""Printer SOP Class (1.2.840.10008.5.1.1.16), PS3.4 H.4.6.

DIMSE operations:

- **N-GET** on the well-known instance 1.2.840.10008.5.1.1.17 of the attributes in
  :data:`PRINTER_ATTRIBUTES` (all of them, or those requested; unknown ones come back
  empty).  The printer's condition is checked again first;
- **N-EVENT-REPORT** (sent by :meth:`.service.PrintService.check_printer` when a
  printer's condition changes) to every association that negotiated a Meta SOP Class of
  :data:`META_CLASSES`: Event Type ID 1 NORMAL, 2 WARNING, 3 FAILURE, with
  :func:`event_information`.

Statuses:

======  ==================================================================
0x0000  Success
0x0112  No such SOP Instance: not the well-known Printer instance
======  ==================================================================
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from printscp import __version__
from printscp.config import PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.core.printer_state import last_calibration
from printscp.services.print_management.state import AssociationState, Service

#: Attributes of the Printer SOP Instance (PS3.3 C.13.9) returned by N-GET.
PRINTER_ATTRIBUTES = (
    "PrinterStatus", "PrinterStatusInfo", "PrinterName", "Manufacturer",
    "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions",
    "DateOfLastCalibration", "TimeOfLastCalibration",
)

#: Meta SOP Classes over which Printer events reach an SCU.
META_CLASSES = (uids.BASIC_GRAYSCALE_PRINT_META, uids.BASIC_COLOR_PRINT_META)


def n_get(service: Service, st: AssociationState, uid: str) -> Dataset:
    if uid != uids.PRINTER_INSTANCE:
        raise StatusError(status.NO_SUCH_SOP_INSTANCE,
                         f"the Printer SOP Instance is {uids.PRINTER_INSTANCE}")
    return dataset(service, st.printer)


def dataset(service: Service, p: PrinterConfig) -> Dataset:
    """The Printer SOP Instance of ``p``, its condition checked now."""
    service.check_printer()
    status_now, info_now = service.reported_condition(p)
    ds = Dataset()
    ds.PrinterStatus = status_now
    ds.PrinterStatusInfo = info_now
    ds.PrinterName = p.name[:16]
    ds.Manufacturer = p.manufacturer
    ds.ManufacturerModelName = p.model
    ds.DeviceSerialNumber = p.serial_number
    ds.SoftwareVersions = f"printscp {__version__}"
    cal = last_calibration(service.config.data_path, p.name)
    ds.DateOfLastCalibration = cal.when.strftime("%Y%m%d") if cal else None
    ds.TimeOfLastCalibration = cal.when.strftime("%H%M%S") if cal else None
    return ds


def event_information(p: PrinterConfig, info: str) -> Dataset:
    """Event Information of a Printer N-EVENT-REPORT (PS3.4 H.4.6.1.1)."""
    ds = Dataset()
    ds.PrinterStatusInfo = info
    ds.PrinterName = p.name[:16]
    return ds
