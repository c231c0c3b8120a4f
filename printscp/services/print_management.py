"""Print Management SCP (PS3.4 Annex H): Film Session, Film Box, Image Box,
Presentation LUT and Printer, dispatched by the SOP Class of each request.

Every association has its own object hierarchy (PS3.4 H.4: a Film Session lives
for one association); it is discarded when the association ends, so an abort
loses only what that modality had not printed.  Printing (N-ACTION) writes the
job durably into the spool before the response goes out.

Handlers are plain functions bound with the :class:`PrintService` as argument
(``evt_handlers=[(evt.EVT_N_CREATE, handle_n_create, [service])]``).  Each returns
the standard's status; see ``docs/conformance.md`` for the table.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from printscp import __version__
from printscp.config import NodeConfig, PrinterConfig
from printscp.core import status, uids
from printscp.core.printer_state import PRINTER_EVENTS, last_calibration, printer_condition
from printscp.jobs.delivery import OFFLINE_INFO, unhealthy_targets
from printscp.jobs.spool import (
    DONE,
    FAILURE,
    PENDING,
    PRINTING,
    PrintJob,
    Spool,
    SpoolFull,
    find_job,
    job_id_from_uid,
    new_job_id,
    now_iso,
    print_job_uid,
)
from printscp.jobs.targets import ArchiveTarget, Target
from printscp.net.event_reports import PRINT_JOB_EVENTS, EventReporter
from printscp.printing.display_format import Cell, ImageDisplayFormat
from printscp.printing.enums import (
    DecimateCropBehavior,
    FilmOrientation,
    FilmSize,
    MagnificationType,
    RequestedResolution,
)
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession
from printscp.printing.image_box import ImageBox
from printscp.printing.layout import FitOutcome, film_geometry, place_image
from printscp.printing.pixel_data import decode_color, decode_grayscale
from printscp.printing.presentation_lut import PresentationLUT
from printscp.printing.records import film_box_record, session_record
from printscp.services.dimse import (
    DimseError,
    create_failure,
    dataset_values,
    guarded,
    referenced_uid,
)

LOGGER = logging.getLogger("printscp.print")

# DICOM keyword -> constructor argument, per object and operation (PS3.4 H.4).
SESSION_ATTRIBUTES = {
    "NumberOfCopies": "number_of_copies", "PrintPriority": "print_priority",
    "MediumType": "medium_type", "FilmDestination": "film_destination",
    "FilmSessionLabel": "film_session_label", "MemoryAllocation": "memory_allocation",
    "OwnerID": "owner_id", "Illumination": "illumination",
    "ReflectedAmbientLight": "reflected_ambient_light",
    "ReferencedPresentationLUTSequence": "",
}
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
_IMAGE_BOX_COMMON = {
    "ImageBoxPosition": "", "Polarity": "polarity", "MagnificationType": "magnification_type",
    "SmoothingType": "smoothing_type", "ConfigurationInformation": "configuration_information",
    "RequestedImageSize": "requested_image_size",
    "RequestedDecimateCropBehavior": "requested_decimate_crop_behavior",
}
IMAGE_BOX_ATTRIBUTES = {**_IMAGE_BOX_COMMON, "BasicGrayscaleImageSequence": ""}
COLOR_IMAGE_BOX_ATTRIBUTES = {**_IMAGE_BOX_COMMON, "BasicColorImageSequence": ""}
PLUT_ATTRIBUTES = {"PresentationLUTSequence": "", "PresentationLUTShape": "shape"}
ANNOTATION_BOX_ATTRIBUTES = {"AnnotationPosition": "", "TextString": ""}

#: Attributes of the Printer SOP Instance (PS3.3 C.13.9) returned by N-GET.
PRINTER_ATTRIBUTES = (
    "PrinterStatus", "PrinterStatusInfo", "PrinterName", "Manufacturer",
    "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions",
    "DateOfLastCalibration", "TimeOfLastCalibration",
)

PRINT_ACTION = 1  #: Action Type ID of "print" on Film Session and Film Box

#: Meta SOP Classes over which Printer events reach an SCU.
META_CLASSES = (uids.BASIC_GRAYSCALE_PRINT_META, uids.BASIC_COLOR_PRINT_META)

#: SOP Classes of Print Management this printer supports (Printer Configuration).
SUPPORTED_SOP_CLASSES = (
    uids.BASIC_GRAYSCALE_PRINT_META, uids.BASIC_COLOR_PRINT_META, uids.BASIC_FILM_SESSION,
    uids.BASIC_FILM_BOX, uids.BASIC_GRAYSCALE_IMAGE_BOX, uids.BASIC_COLOR_IMAGE_BOX,
    uids.PRINTER, uids.PRESENTATION_LUT, uids.BASIC_ANNOTATION_BOX, uids.PRINT_JOB,
    uids.PRINTER_CONFIGURATION_RETRIEVAL,
)

#: Print Job attributes returned by N-GET (PS3.3 C.13.8).
PRINT_JOB_ATTRIBUTES = (
    "ExecutionStatus", "ExecutionStatusInfo", "PrintPriority", "CreationDate",
    "CreationTime", "PrinterName", "Originator",
)
#: Execution Status Info (2100,0030) per Execution Status (PS3.3 C.13.9.1 defined terms).
EXECUTION_STATUS_INFO = {PENDING: "QUEUED", PRINTING: "NORMAL", DONE: "NORMAL",
                         FAILURE: "INVALID PAGE DES"}


@dataclass
class FilmBoxEntry:
    film_box: FilmBox
    image_box_uids: list[str]
    plut_uid: str | None = None
    annotation_box_uids: list[str] = field(default_factory=list)
    printed: bool = False


@dataclass
class AssociationState:
    """The print objects one association has created."""

    calling_ae: str
    called_ae: str
    peer: str
    printer: PrinterConfig
    assoc: Any = None
    session_uid: str | None = None
    session: FilmSession | None = None
    session_plut_uid: str | None = None
    film_boxes: dict[str, FilmBoxEntry] = field(default_factory=dict)
    image_boxes: dict[str, tuple[str, int]] = field(default_factory=dict)
    annotation_boxes: dict[str, tuple[str, int]] = field(default_factory=dict)
    pluts: dict[str, PresentationLUT] = field(default_factory=dict)

    def class_of(self, uid: str) -> str | None:
        if uid == self.session_uid:
            return uids.BASIC_FILM_SESSION
        if uid in self.film_boxes:
            return uids.BASIC_FILM_BOX
        if uid in self.image_boxes:
            fb_uid, _ = self.image_boxes[uid]
            color = self.film_boxes[fb_uid].film_box.color
            return uids.BASIC_COLOR_IMAGE_BOX if color else uids.BASIC_GRAYSCALE_IMAGE_BOX
        if uid in self.annotation_boxes:
            return uids.BASIC_ANNOTATION_BOX
        if uid in self.pluts:
            return uids.PRESENTATION_LUT
        return None


class PrintService:
    """Print Management state of a node: association hierarchies, printer, spool."""

    def __init__(self, config: NodeConfig, spool: Spool) -> None:
        self.config = config
        self.spool = spool
        self._states: dict[int, AssociationState] = {}
        self._lock = threading.Lock()
        #: job id -> (association, Print Job presentation context) awaiting events
        self._watchers: dict[str, tuple[Any, Any]] = {}
        self._events_lock = threading.Lock()  # keeps PENDING ahead of PRINTING
        self.events = EventReporter()
        spool.listeners.append(self._job_changed)
        self._monitor_stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._disk_condition = ("NORMAL", "NORMAL")
        #: Printer name -> (Printer Status, Printer Status Info) last reported.
        self._conditions: dict[str, tuple[str, str]] = {}

    # -- printer state --------------------------------------------------------------
    def printer_condition(self, printer: PrinterConfig) -> tuple[str, str]:
        """(Printer Status, Printer Status Info) of ``printer``: its supply (disk space),
        then its output targets: one waiting to retry makes it WARNING / PRINTER OFFLINE
        (films are still accepted and kept; the hardcopy follows when it is back)."""
        status_now, info_now = self._disk_condition
        if status_now == "FAILURE":
            return status_now, info_now
        if unhealthy_targets(self.config.data_path, printer.name):
            return "WARNING", OFFLINE_INFO
        return status_now, info_now

    def check_printer(self) -> tuple[str, str]:
        """Recompute the printers' status; report a change to every open association
        (the node's default printer's condition is returned)."""
        free = shutil.disk_usage(self.config.data_path).free
        self._disk_condition = printer_condition(free, self.config.disk_warning_mb << 20,
                                                 self.config.disk_failure_mb << 20)
        changed: dict[str, tuple[str, str]] = {}
        for p in (self.config.printer, *self.config.printers.values()):
            condition = self.printer_condition(p)
            if self._conditions.get(p.name, ("NORMAL", "NORMAL")) != condition:
                LOGGER.warning("printer %s status %s (%s): %d MiB free", p.name, *condition,
                               free >> 20)
                changed[p.name] = condition
            self._conditions[p.name] = condition
        if changed:
            with self._lock:
                states = list(self._states.values())
            for st in states:
                condition = changed.get(st.printer.name)
                context = next((cx for cx in st.assoc.accepted_contexts if str(
                    cx.abstract_syntax) in META_CLASSES), None) if st.assoc else None
                if condition is None or context is None or not st.assoc.is_established:
                    continue
                info = Dataset()
                info.PrinterStatusInfo = condition[1]
                info.PrinterName = st.printer.name[:16]
                self.events.report(st.assoc, context, info, PRINTER_EVENTS[condition[0]],
                                   uids.PRINTER, uids.PRINTER_INSTANCE)
        return self._conditions[self.config.printer.name]

    def start_monitor(self, interval: float = 5.0) -> None:
        def run() -> None:
            while not self._monitor_stop.wait(interval):
                try:
                    self.check_printer()
                except OSError:
                    LOGGER.exception("cannot check the printer's state")

        self.check_printer()
        self._monitor = threading.Thread(target=run, name="printer-monitor", daemon=True)
        self._monitor.start()

    def stop_monitor(self) -> None:
        self._monitor_stop.set()
        self.events.stop()

    # -- association bookkeeping ------------------------------------------------------
    def state(self, assoc: Any) -> AssociationState:
        with self._lock:
            st = self._states.get(id(assoc))
            if st is None:
                request = assoc.requestor.primitive
                called = str(request.called_ae_title if request is not None
                             else assoc.acceptor.ae_title).strip()
                st = AssociationState(
                    calling_ae=str(assoc.requestor.ae_title).strip(),
                    called_ae=called,
                    peer=f"{assoc.requestor.address}:{assoc.requestor.port}",
                    printer=self.config.printer_for(called),
                    assoc=assoc,
                )
                self._states[id(assoc)] = st
            return st

    def forget(self, assoc: Any) -> None:
        """Drop an ended association's unprinted objects (and its event subscriptions)."""
        with self._lock:
            st = self._states.pop(id(assoc), None)
        with self._events_lock:
            for job_id in [j for j, (a, _) in self._watchers.items() if a is assoc]:
                del self._watchers[job_id]
        if st is not None:
            unprinted = sum(not e.printed for e in st.film_boxes.values())
            if unprinted:
                LOGGER.info("%s: association ended, %d unprinted film box(es) discarded",
                            st.calling_ae, unprinted)


    # -- N-CREATE -----------------------------------------------------------------------
    def create(self, assoc: Any, sop_class: str, uid: str | None, ds: Dataset,
               little_endian: bool = True,
               meta: str = uids.BASIC_GRAYSCALE_PRINT_META) -> Dataset:
        """N-CREATE; ``meta`` is the Meta SOP Class of the request's presentation context,
        which decides whether a Film Box holds grayscale or color image boxes."""
        st = self.state(assoc)
        if uid and st.class_of(uid) is not None:
            raise DimseError(status.DUPLICATE_SOP_INSTANCE, f"SOP Instance {uid} exists")
        uid = uid or generate_uid(uids.UID_ROOT)
        if sop_class == uids.BASIC_FILM_SESSION:
            return self._create_session(st, uid, ds)
        if sop_class == uids.BASIC_FILM_BOX:
            return self._create_film_box(st, uid, ds, color=meta == uids.BASIC_COLOR_PRINT_META)
        if sop_class == uids.PRESENTATION_LUT:
            return self._create_plut(st, uid, ds, little_endian)
        raise DimseError(status.NO_SUCH_SOP_CLASS, f"N-CREATE not supported for {sop_class}")

    def _referenced_plut(self, st: AssociationState, ds: Dataset) -> str | None:
        uid = referenced_uid(ds, "ReferencedPresentationLUTSequence", uids.PRESENTATION_LUT,
                             required=False)
        if uid is not None and uid not in st.pluts:
            raise InvalidAttributeValue("ReferencedPresentationLUTSequence", uid,
                                        "a Presentation LUT created on this association")
        return uid

    def _create_session(self, st: AssociationState, uid: str, ds: Dataset) -> Dataset:
        if st.session is not None:
            raise DimseError(status.PROCESSING_FAILURE,
                             "a Film Session already exists on this association")
        values = dataset_values(ds, SESSION_ATTRIBUTES, "Film Session N-CREATE")
        plut_uid = self._referenced_plut(st, ds)
        st.session = FilmSession(**{**st.printer.film_session_defaults, **values})
        st.session_uid = uid
        st.session_plut_uid = plut_uid
        return self._session_dataset(st)

    def _session_dataset(self, st: AssociationState) -> Dataset:
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

    def _create_film_box(self, st: AssociationState, uid: str, ds: Dataset,
                         color: bool = False) -> Dataset:
        if st.session is None:
            raise DimseError(status.INVALID_ATTRIBUTE_VALUE,
                             "no Film Session exists on this association",
                             [0x20100500])
        if not st.printer.collation and any(not e.printed for e in st.film_boxes.values()):
            raise DimseError(status.UNPRINTED_FILM_BOX, "a Film Box has not been printed yet "
                             "and this printer does not collate")
        values = dataset_values(ds, FILM_BOX_CREATE_ATTRIBUTES, "Film Box N-CREATE")
        session_uid = referenced_uid(ds, "ReferencedFilmSessionSequence",
                                     uids.BASIC_FILM_SESSION, required=True)
        if session_uid != st.session_uid:
            raise InvalidAttributeValue("ReferencedFilmSessionSequence", session_uid,
                                        "the Film Session of this association")
        plut_uid = self._referenced_plut(st, ds) or st.session_plut_uid
        format_id = str(values.get("annotation_display_format_id", "")).strip().upper()
        formats = st.printer.annotation_formats
        if format_id and format_id not in formats:
            raise InvalidAttributeValue("AnnotationDisplayFormatID", format_id,
                                        sorted(formats) or "none (no annotation formats)")
        if format_id:
            values["annotation_boxes"] = int(formats[format_id])
        defaults = dict(st.printer.film_box_defaults)
        if st.session.illumination is not None:
            defaults["illumination"] = st.session.illumination
        if st.session.reflected_ambient_light is not None:
            defaults["reflected_ambient_light"] = st.session.reflected_ambient_light
        fb = FilmBox(**{**defaults, **values}, color=color,
                     custom_layouts=_layouts(st.printer),
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
        out = self._film_box_dataset(st, uid)
        out.AffectedSOPInstanceUID = uid
        return out

    def _film_box_dataset(self, st: AssociationState, uid: str) -> Dataset:
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
        ref = Dataset()
        ref.ReferencedSOPClassUID = uids.BASIC_FILM_SESSION
        ref.ReferencedSOPInstanceUID = st.session_uid
        out.ReferencedFilmSessionSequence = Sequence([ref])
        box_class = uids.BASIC_COLOR_IMAGE_BOX if fb.color else uids.BASIC_GRAYSCALE_IMAGE_BOX
        items = []
        for box_uid in entry.image_box_uids:
            item = Dataset()
            item.ReferencedSOPClassUID = box_class
            item.ReferencedSOPInstanceUID = box_uid
            items.append(item)
        out.ReferencedImageBoxSequence = Sequence(items)
        if entry.annotation_box_uids:
            refs = []
            for box_uid in entry.annotation_box_uids:
                item = Dataset()
                item.ReferencedSOPClassUID = uids.BASIC_ANNOTATION_BOX
                item.ReferencedSOPInstanceUID = box_uid
                refs.append(item)
            out.ReferencedBasicAnnotationBoxSequence = Sequence(refs)
        if entry.plut_uid:
            ref = Dataset()
            ref.ReferencedSOPClassUID = uids.PRESENTATION_LUT
            ref.ReferencedSOPInstanceUID = entry.plut_uid
            out.ReferencedPresentationLUTSequence = Sequence([ref])
        return out

    def _create_plut(self, st: AssociationState, uid: str, ds: Dataset,
                     little_endian: bool = True) -> Dataset:
        values = dataset_values(ds, PLUT_ATTRIBUTES, "Presentation LUT N-CREATE")
        seq = ds.get("PresentationLUTSequence") if ds is not None else None
        if seq:
            item = seq[0]
            descriptor = item.get("LUTDescriptor")
            data = item.get("LUTData")
            values.update(
                lut_descriptor=tuple(int(v) for v in descriptor) if descriptor else None,
                lut_data=_lut_words(item["LUTData"], little_endian) if data is not None
                else None,
                lut_explanation=str(item.get("LUTExplanation", "") or ""),
            )
        st.pluts[uid] = PresentationLUT(**values)
        out = Dataset()
        out.AffectedSOPInstanceUID = uid
        return out

    # -- N-SET ---------------------------------------------------------------------------
    def set(self, assoc: Any, sop_class: str, uid: str, ds: Dataset,
            little_endian: bool) -> tuple[int, Dataset | None]:
        st = self.state(assoc)
        self._check_instance(st, sop_class, uid)
        if sop_class == uids.BASIC_FILM_SESSION:
            values = dataset_values(ds, SESSION_ATTRIBUTES, "Film Session N-SET")
            plut_uid = self._referenced_plut(st, ds)
            st.session = replace(st.session, **values)  # type: ignore[type-var]
            if plut_uid:
                st.session_plut_uid = plut_uid
            # Memory is not reserved per session; the value is recorded (PS3.4 H.4.1).
            if "memory_allocation" in values:
                return status.MEMORY_ALLOCATION_NOT_SUPPORTED, None
            return status.SUCCESS, None
        if sop_class == uids.BASIC_FILM_BOX:
            values = dataset_values(ds, FILM_BOX_SET_ATTRIBUTES, "Film Box N-SET")
            entry = st.film_boxes[uid]
            plut_uid = self._referenced_plut(st, ds)
            if plut_uid:
                values["presentation_lut"] = st.pluts[plut_uid]
                entry.plut_uid = plut_uid
            updated, replaced = check_profile(st.printer, replace(entry.film_box, **values))
            entry.film_box = updated
            return replacement_status(replaced), None
        if sop_class in (uids.BASIC_GRAYSCALE_IMAGE_BOX, uids.BASIC_COLOR_IMAGE_BOX):
            return self._set_image_box(st, uid, ds, little_endian), None
        if sop_class == uids.BASIC_ANNOTATION_BOX:
            self._set_annotation_box(st, uid, ds)
            return status.SUCCESS, None
        raise DimseError(status.NO_SUCH_SOP_CLASS, f"N-SET not supported for {sop_class}")

    def _set_image_box(self, st: AssociationState, uid: str, ds: Dataset,
                       little_endian: bool) -> int:
        fb_uid, position = st.image_boxes[uid]
        fb = st.film_boxes[fb_uid].film_box
        table = COLOR_IMAGE_BOX_ATTRIBUTES if fb.color else IMAGE_BOX_ATTRIBUTES
        values = dataset_values(ds, table, "Image Box N-SET")
        given = ds.get("ImageBoxPosition") if ds is not None else None
        if given not in (None, "") and int(given) != position:
            raise InvalidAttributeValue("ImageBoxPosition", int(given), str(position))
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
            return status.SUCCESS
        if len(seq) != 1:
            raise InvalidAttributeValue(seq_kw, f"{len(seq)} items", "exactly one item")
        decoded = (decode_color if fb.color else decode_grayscale)(seq[0], little_endian)
        box = ImageBox(position=position, pixels=decoded.pixels,
                       photometric_interpretation=decoded.photometric_interpretation,
                       bits_stored=decoded.bits_stored,
                       pixel_aspect_ratio=decoded.pixel_aspect_ratio, **values)
        check_image_profile(st.printer, box)
        outcome = self._check_fit(fb, box, st.printer)
        fb.set_image(position, box)
        if explicit_behavior and outcome is FitOutcome.CROPPED:
            return status.IMAGE_CROPPED
        if explicit_behavior and outcome is FitOutcome.DECIMATED:
            return status.IMAGE_DECIMATED
        return status.SUCCESS

    def _set_annotation_box(self, st: AssociationState, uid: str, ds: Dataset) -> None:
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

    def _check_fit(self, fb: FilmBox, box: ImageBox, printer: PrinterConfig) -> FitOutcome:
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

    def _check_instance(self, st: AssociationState, sop_class: str, uid: str) -> None:
        actual = st.class_of(uid)
        if actual is None:
            raise DimseError(status.NO_SUCH_SOP_INSTANCE, f"no SOP Instance {uid}")
        if actual != sop_class:
            raise DimseError(status.CLASS_INSTANCE_CONFLICT,
                             f"{uid} is not an instance of {sop_class}")

    # -- N-ACTION -----------------------------------------------------------------------
    def _job_changed(self, job: PrintJob) -> None:
        """Spool listener: report PRINTING, DONE and FAILURE to a watching SCU."""
        with self._events_lock:
            watcher = self._watchers.get(job.job_id)
            if watcher is not None and job.status in (DONE, FAILURE):
                del self._watchers[job.job_id]
            if watcher is not None:
                assoc, context = watcher
                self._report(assoc, context, job.job_id, job.status,
                             str(job.session.get("film_session_label") or ""),
                             str(job.extra.get("printer") or ""),
                             str(job.extra.get("status_info") or ""))
        if job.status != PRINTING:  # a target may have failed or come back
            try:
                self.check_printer()
            except OSError:
                LOGGER.exception("cannot check the printer's state")

    def _report(self, assoc: Any, context: Any, job_id: str, execution: str, label: str,
                printer: str, status_info: str = "") -> None:
        info = Dataset()
        info.ExecutionStatusInfo = status_info or EXECUTION_STATUS_INFO[execution]
        info.FilmSessionLabel = label
        info.PrinterName = printer[:16]
        self.events.report(assoc, context, info, PRINT_JOB_EVENTS[execution], uids.PRINT_JOB,
                           print_job_uid(job_id, uids.UID_ROOT))

    def action(self, assoc: Any, sop_class: str, uid: str, action_type: int,
               with_print_job: bool = False) -> tuple[int, Dataset | None]:
        """Print; with ``with_print_job`` (the Print Job SOP Class was negotiated) the
        answer carries Referenced Print Job Sequence (2100,0500)."""
        st = self.state(assoc)
        self._check_instance(st, sop_class, uid)
        if action_type != PRINT_ACTION:
            raise DimseError(status.NO_SUCH_ACTION, f"Action Type ID {action_type} not supported")
        session_level = sop_class == uids.BASIC_FILM_SESSION
        if session_level:
            entries = list(st.film_boxes.values())
            if not entries:
                raise DimseError(status.NO_FILM_BOXES, "the Film Session has no Film Box")
        elif sop_class == uids.BASIC_FILM_BOX:
            entries = [st.film_boxes[uid]]
        else:
            raise DimseError(status.NO_SUCH_ACTION, f"N-ACTION not supported for {sop_class}")
        context = None
        if with_print_job:
            context = next((cx for cx in assoc.accepted_contexts
                            if str(cx.abstract_syntax) == uids.PRINT_JOB), None)
        if session_level and not st.printer.collation:
            # No collation: each film box is its own job, and the SCU is told so.
            jobs = [self._print(st, [e], assoc, context) for e in entries]
            job, code = jobs[0], status.COLLATION_NOT_SUPPORTED
        else:
            job = self._print(st, entries, assoc, context)
            empty = any(all(b.is_empty for b in e.film_box.image_boxes) for e in entries)
            code = status.SUCCESS
            if empty:
                code = status.EMPTY_FILM_SESSION if session_level else status.EMPTY_FILM_BOX
        if not with_print_job:
            return code, None
        ref = Dataset()
        ref.ReferencedSOPClassUID = uids.PRINT_JOB
        ref.ReferencedSOPInstanceUID = job.extra["print_job_uid"]
        out = Dataset()
        # (2100,0500): pydicom's keyword for it is ...PullStoredPrint; the tag is what counts.
        out.add_new(0x21000500, "SQ", Sequence([ref]))
        return code, out

    def _print(self, st: AssociationState, entries: list[FilmBoxEntry], assoc: Any = None,
               events_context: Any = None) -> PrintJob:
        """Spool ``entries`` as one job; with ``events_context`` (the Print Job context of
        ``assoc``) the SCU gets the job's N-EVENT-REPORTs, PENDING first."""
        assert st.session is not None
        arrays: dict = {}
        job_id = new_job_id()
        job = PrintJob(
            job_id=job_id, created=now_iso(), calling_ae=st.calling_ae,
            called_ae=st.called_ae, peer=st.peer, session=session_record(st.session),
            films=[film_box_record(e.film_box, arrays, f"film{i}")
                   for i, e in enumerate(entries, start=1)],
            extra={"print_job_uid": print_job_uid(job_id, uids.UID_ROOT),
                   "printer": st.printer.name, "output_profile": st.printer.output_profile,
                   "dpi": st.printer.dpi or None,
                   "targets": [t.to_json() for t in self._targets(st.printer)]},
        )
        try:
            with self._events_lock:
                if events_context is not None:
                    self._watchers[job.job_id] = (assoc, events_context)
                try:
                    self.spool.submit(job, arrays)
                except BaseException:
                    self._watchers.pop(job.job_id, None)
                    raise
                if events_context is not None:
                    self._report(assoc, events_context, job.job_id, PENDING,
                                 st.session.film_session_label, st.printer.name)
        except SpoolFull as exc:
            raise DimseError(status.PRINT_QUEUE_FULL, f"print queue is full ({exc})") from None
        except OSError as exc:
            raise DimseError(status.RESOURCE_LIMITATION,
                             f"cannot spool the job: {exc.strerror}") from None
        for e in entries:
            e.printed = True
        LOGGER.info("%s: print job %s spooled (%d film(s))", st.calling_ae, job.job_id,
                    len(entries))
        return job

    def _targets(self, printer: PrinterConfig) -> tuple[Target, ...]:
        """The printer's targets, plus the archive when it stores films."""
        targets = printer.targets
        archive = self.config.archive
        if archive.enabled and archive.store_films and not any(
                isinstance(t, ArchiveTarget) for t in targets):
            targets = (*targets, ArchiveTarget())
        return targets

    # -- N-DELETE -----------------------------------------------------------------------
    def delete(self, assoc: Any, sop_class: str, uid: str) -> int:
        st = self.state(assoc)
        self._check_instance(st, sop_class, uid)
        if sop_class == uids.BASIC_FILM_SESSION:
            st.session = None
            st.session_uid = None
            st.session_plut_uid = None
            st.film_boxes.clear()
            st.image_boxes.clear()
            st.annotation_boxes.clear()
        elif sop_class == uids.BASIC_FILM_BOX:
            entry = st.film_boxes.pop(uid)
            for box_uid in entry.image_box_uids:
                st.image_boxes.pop(box_uid, None)
            for box_uid in entry.annotation_box_uids:
                st.annotation_boxes.pop(box_uid, None)
        elif sop_class == uids.PRESENTATION_LUT:
            st.pluts.pop(uid)
        else:
            raise DimseError(status.NO_SUCH_SOP_CLASS, f"N-DELETE not supported for {sop_class}")
        return status.SUCCESS

    # -- N-GET (Printer) ----------------------------------------------------------------
    def get(self, assoc: Any, sop_class: str, uid: str, tags: list[int] | None) -> Dataset:
        printer = self.state(assoc).printer
        if sop_class == uids.PRINTER:
            if uid != uids.PRINTER_INSTANCE:
                raise DimseError(status.NO_SUCH_SOP_INSTANCE,
                                 f"the Printer SOP Instance is {uids.PRINTER_INSTANCE}")
            full = self.printer_dataset(printer)
        elif sop_class == uids.PRINT_JOB:
            full = self.print_job_dataset(uid, printer)
        elif sop_class == uids.PRINTER_CONFIGURATION_RETRIEVAL:
            if uid != uids.PRINTER_CONFIGURATION_INSTANCE:
                raise DimseError(status.NO_SUCH_SOP_INSTANCE, "the Printer Configuration "
                                 f"SOP Instance is {uids.PRINTER_CONFIGURATION_INSTANCE}")
            full = self.printer_configuration_dataset(printer)
        else:
            raise DimseError(status.NO_SUCH_SOP_CLASS, f"N-GET not supported for {sop_class}")
        return _selected(full, tags)

    def print_job_dataset(self, uid: str, printer: PrinterConfig) -> Dataset:
        """Print Job attributes (PS3.3 C.13.8) of any job of this node, from disk, so a
        later association (or another worker process) sees the same state."""
        job_id = job_id_from_uid(uid, uids.UID_ROOT)
        job = find_job(self.config.data_path, job_id) if job_id else None
        if job is None:
            raise DimseError(status.NO_SUCH_SOP_INSTANCE, f"no Print Job {uid}")
        execution = job.get("status", PENDING)
        created = datetime.fromisoformat(job["created"]).astimezone()
        ds = Dataset()
        ds.ExecutionStatus = execution
        ds.ExecutionStatusInfo = job.get("status_info") or EXECUTION_STATUS_INFO[execution]
        ds.PrintPriority = str(job.get("session", {}).get("print_priority") or "MED")
        ds.CreationDate = created.strftime("%Y%m%d")
        ds.CreationTime = created.strftime("%H%M%S")
        ds.PrinterName = str(job.get("printer") or printer.name)[:16]
        ds.Originator = str(job.get("calling_ae", ""))[:16]
        return ds

    def printer_configuration_dataset(self, p: PrinterConfig) -> Dataset:
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
                    cells = ImageDisplayFormat.parse("STANDARD\\1,1").cells()
                    area = film_geometry(size, orientation, cells).boxes[0]
                    x0, y0, x1, y1 = area.pixels(p.dpi or resolution.dpi)
                    f = Dataset()
                    f.Rows, f.Columns = y1 - y0, x1 - x0
                    f.ImageDisplayFormat = "STANDARD\\1,1"
                    f.FilmOrientation = orientation.value
                    f.FilmSizeID = size.value
                    f.PrinterResolutionID = resolution.value
                    spacing = round(25.4 / (p.dpi or resolution.dpi), 6)
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

    def printer_dataset(self, p: PrinterConfig) -> Dataset:
        self.check_printer()
        status_now, info_now = self._conditions[p.name]
        ds = Dataset()
        ds.PrinterStatus = status_now
        ds.PrinterStatusInfo = info_now
        ds.PrinterName = p.name[:16]
        ds.Manufacturer = p.manufacturer
        ds.ManufacturerModelName = p.model
        ds.DeviceSerialNumber = p.serial_number
        ds.SoftwareVersions = f"printscp {__version__}"
        cal = last_calibration(self.config.data_path)
        ds.DateOfLastCalibration = cal.when.strftime("%Y%m%d") if cal else None
        ds.TimeOfLastCalibration = cal.when.strftime("%H%M%S") if cal else None
        return ds


def _layouts(printer: PrinterConfig) -> dict[str, tuple[Cell, ...]]:
    return {fmt: tuple(Cell(*c) for c in cells) for fmt, cells in printer.custom_layouts.items()}


def _one_of(keyword: str, value: str, allowed: tuple[str, ...]) -> None:
    if allowed and value not in allowed:
        raise InvalidAttributeValue(keyword, value, allowed)


#: Film Box attributes a profile may replace by its default instead of refusing them.
REPLACEABLE = {"FilmSizeID": "film_size_id", "MagnificationType": "magnification_type",
               "SmoothingType": "smoothing_type", "MinDensity": "min_density",
               "MaxDensity": "max_density"}


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


def check_image_profile(printer: PrinterConfig, box: ImageBox) -> None:
    """Image Box overrides of magnification and smoothing must be supported too."""
    if box.magnification_type is not None:
        _one_of("MagnificationType", box.magnification_type.value,  # type: ignore[union-attr]
                printer.magnification_types)
    if box.smoothing_type:
        _one_of("SmoothingType", box.smoothing_type, printer.smoothing_types)


def _selected(full: Dataset, tags: list[int] | None) -> Dataset:
    """The N-GET answer: everything, or the requested tags; unknown ones come back empty
    (strict clients fail on 0x0105 for attributes the SCP does not know)."""
    if not tags:
        return full
    out = Dataset()
    for tag in tags:
        if tag in full:
            out[tag] = full[tag]
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        keyword = keyword_for_tag(tag)
        if keyword:
            setattr(out, keyword, None)
        else:
            out.add_new(tag, vr, None)
    return out


def _lut_words(elem: Any, little_endian: bool) -> NDArray:
    """LUT Data (0028,3006) as integers: OW bytes in the transfer syntax's byte order,
    or the US values pydicom already decoded (Implicit VR)."""
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return np.frombuffer(bytes(value), dtype="<u2" if little_endian else ">u2")
    if isinstance(value, int):
        return np.asarray([value])
    return np.asarray(list(value))


# -- event handlers (bound with the service) -----------------------------------------
def _sop_class(req: Any, affected: bool) -> str:
    value = req.AffectedSOPClassUID if affected else req.RequestedSOPClassUID
    return str(value or "")


def _sop_instance(req: Any, affected: bool) -> str:
    value = req.AffectedSOPInstanceUID if affected else req.RequestedSOPInstanceUID
    return str(value or "")


def _little_endian(event: Any) -> bool:
    return bool(event.context.transfer_syntax.is_little_endian)


def _decode(event: Any, name: str) -> Dataset:
    """The request's data set, fully decoded; an undecodable one aborts the association.

    pydicom decodes lazily, so every element (sequences included) is read here: a
    malformed message must end its own association, not surface later as a
    half-applied request.
    """
    try:
        ds = getattr(event, name)
        ds.walk(lambda _ds, elem: elem.value)
        return ds
    except Exception as exc:
        LOGGER.error("malformed data set from %s (%s); aborting the association",
                     str(event.assoc.requestor.ae_title).strip(), exc)
        event.assoc.abort()
        raise DimseError(status.PROCESSING_FAILURE, "malformed data set") from None


def _with_none(result: Dataset) -> tuple[Dataset, None]:
    return result, None


def handle_n_create(event: Any, service: PrintService) -> tuple[Any, Dataset | None]:
    req = event.request
    ds = _decode(event, "attribute_list")
    requested_uid = _sop_instance(req, True) or None
    out = service.create(event.assoc, _sop_class(req, True), requested_uid, ds,
                         _little_endian(event), meta=str(event.context.abstract_syntax))
    if requested_uid is not None:
        # pynetdicom echoes the request's UID itself and would leave ours in the data set.
        del out.AffectedSOPInstanceUID
    return status.SUCCESS, out


def handle_n_set(event: Any, service: PrintService) -> tuple[Any, Dataset | None]:
    req = event.request
    ds = _decode(event, "modification_list")
    code, out = service.set(event.assoc, _sop_class(req, False), _sop_instance(req, False), ds,
                            _little_endian(event))
    return code, out


def handle_n_action(event: Any, service: PrintService) -> tuple[Any, Dataset | None]:
    req = event.request
    negotiated = {str(cx.abstract_syntax) for cx in event.assoc.accepted_contexts}
    return service.action(event.assoc, _sop_class(req, False), _sop_instance(req, False),
                          int(req.ActionTypeID or 0), uids.PRINT_JOB in negotiated)


def handle_n_delete(event: Any, service: PrintService) -> Any:
    req = event.request
    return service.delete(event.assoc, _sop_class(req, False), _sop_instance(req, False))


def handle_n_get(event: Any, service: PrintService) -> tuple[Any, Dataset | None]:
    req = event.request
    tags = req.AttributeIdentifierList or []
    if not isinstance(tags, list | tuple):  # a single tag decodes as one BaseTag
        tags = [tags]
    return status.SUCCESS, service.get(event.assoc, _sop_class(req, False),
                                       _sop_instance(req, False), tags)


def handle_association_end(event: Any, service: PrintService) -> None:
    service.forget(event.assoc)


HANDLERS: list[tuple[str, Callable[..., Any], Callable[[Dataset], Any]]] = [
    ("EVT_N_CREATE", handle_n_create, create_failure),
    ("EVT_N_SET", handle_n_set, _with_none),
    ("EVT_N_ACTION", handle_n_action, _with_none),
    ("EVT_N_DELETE", handle_n_delete, lambda ds: ds),
    ("EVT_N_GET", handle_n_get, _with_none),
]


def event_handlers(service: PrintService) -> list[tuple[Any, Callable[..., Any], list[Any]]]:
    """pynetdicom ``evt_handlers`` for the Print Management service."""
    from pynetdicom import evt

    bound = [(getattr(evt, name), guarded(fn, failure), [service])
             for name, fn, failure in HANDLERS]
    bound += [(evt.EVT_RELEASED, handle_association_end, [service]),
              (evt.EVT_ABORTED, handle_association_end, [service]),
              (evt.EVT_CONN_CLOSE, handle_association_end, [service])]
    return bound
