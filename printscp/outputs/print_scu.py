"""``printscp print``: send images as films to a DICOM printer (Print SCU).

The same Film Box and Image Box objects ``printscp film`` renders locally are sent
over DICOM Print Management, in the order real modalities use (PS3.4 H): Printer
N-GET, Presentation LUT (when the printer negotiates it and the film needs one),
Film Session, then per film Film Box N-CREATE, an Image Box N-SET per image, N-ACTION
and N-DELETE; finally the Film Session and Presentation LUT are deleted.  Every step's
status is reported; any failure stops the print and makes it fail.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.status import code_to_category

from printscp import net
from printscp.core import uids
from printscp.core.remote import RemoteAE
from printscp.net import channel
from printscp.printing.film_box import FilmBox
from printscp.printing.image_box import ImageBox
from printscp.printing.presentation_lut import PresentationLUT


class PrintError(Exception):
    """A step of the print failed; the message names the step and the status.

    ``status`` is the refused step's DIMSE status, None when the printer could not be
    reached or the association failed (worth trying again later).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Step:
    name: str
    status: int
    comment: str = ""

    def __str__(self) -> str:
        text = f"{self.name}: 0x{self.status:04X} {code_to_category(self.status)}"
        return text + (f" ({self.comment})" if self.comment else "")


@dataclass
class PrintResult:
    steps: list[Step] = field(default_factory=list)
    films: int = 0
    printer_status: str = ""
    #: The printer's Print Jobs (when it offers the Print Job SOP Class): UID ->
    #: (Execution Status, Execution Status Info) as last seen.
    print_jobs: dict[str, tuple[str, str]] = field(default_factory=dict)


def parse_destination(text: str) -> tuple[str, str, int]:
    """``AE@HOST:PORT`` -> (AE, HOST, PORT); ValueError naming the form otherwise."""
    remote = RemoteAE.parse(text)
    return remote.ae_title, remote.host, remote.port


def reference(sop_class: str, sop_instance: str) -> Sequence:
    """A one-item Referenced ... Sequence (class and instance UID)."""
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return Sequence([item])


def _film_box_dataset(fb: FilmBox, session_uid: str, plut_uid: str | None) -> Dataset:
    ds = Dataset()
    ds.ImageDisplayFormat = str(fb.image_display_format)
    ds.FilmOrientation = fb.film_orientation.value  # type: ignore[union-attr]
    ds.FilmSizeID = fb.film_size_id.value  # type: ignore[union-attr]
    ds.MagnificationType = fb.magnification_type.value  # type: ignore[union-attr]
    ds.BorderDensity = str(fb.border_density)
    ds.EmptyImageDensity = str(fb.empty_image_density)
    ds.MinDensity = fb.min_density
    ds.MaxDensity = fb.max_density
    if fb.smoothing_type:
        ds.SmoothingType = str(fb.smoothing_type)
    if fb.trim is not None and str(getattr(fb.trim, "value", fb.trim)) == "YES":
        ds.Trim = "YES"
    if fb.configuration_information:
        ds.ConfigurationInformation = fb.configuration_information
    ds.ReferencedFilmSessionSequence = reference(uids.BASIC_FILM_SESSION, session_uid)
    if plut_uid:
        ds.ReferencedPresentationLUTSequence = reference(uids.PRESENTATION_LUT, plut_uid)
    return ds


def _image_box_dataset(box: ImageBox) -> tuple[str, Dataset]:
    px = box.pixels
    assert px is not None
    item = Dataset()
    item.Rows, item.Columns = px.shape[:2]
    item.PixelRepresentation = 0
    if box.is_color:
        item.SamplesPerPixel = 3
        item.PhotometricInterpretation = "RGB"
        item.PlanarConfiguration = 1  # color-by-plane, as PS3.3 requires
        item.BitsAllocated = item.BitsStored = 8
        item.HighBit = 7
        data = np.ascontiguousarray(px.transpose(2, 0, 1), dtype=np.uint8).tobytes()
        item.add_new(0x7FE00010, "OB", data)
        sequence = "BasicColorImageSequence"
    else:
        item.SamplesPerPixel = 1
        item.PhotometricInterpretation = box.photometric_interpretation.value  # type: ignore[union-attr]
        eight = box.bits_stored == 8
        item.BitsAllocated = 8 if eight else 16
        item.BitsStored = box.bits_stored
        item.HighBit = box.bits_stored - 1
        data = px.astype(np.uint8 if eight else "<u2").tobytes()
        item.add_new(0x7FE00010, "OB" if eight else "OW", data)
        sequence = "BasicGrayscaleImageSequence"
    if box.pixel_aspect_ratio != (1, 1):
        item.PixelAspectRatio = list(box.pixel_aspect_ratio)
    ds = Dataset()
    ds.ImageBoxPosition = box.position
    ds.Polarity = box.polarity.value  # type: ignore[union-attr]
    setattr(ds, sequence, Sequence([item]))
    return sequence, ds


def _plut_dataset(plut: PresentationLUT) -> Dataset:
    ds = Dataset()
    if plut.lut_data is not None and plut.lut_descriptor is not None:
        item = Dataset()
        item.LUTDescriptor = list(plut.lut_descriptor)
        item.LUTExplanation = plut.lut_explanation or "printscp"
        item.add_new(0x00283006, "US", [int(v) for v in np.asarray(plut.lut_data)])
        ds.PresentationLUTSequence = Sequence([item])
    else:
        shape = plut.shape
        ds.PresentationLUTShape = str(getattr(shape, "value", shape) or "IDENTITY")
    return ds


#: Print Job N-EVENT-REPORT Event Type ID -> Execution Status (PS3.4 H.4.5.1.1).
PRINT_JOB_EVENT_STATUS = {1: "PENDING", 2: "PRINTING", 3: "DONE", 4: "FAILURE"}


def _number_messages(assoc: Any) -> None:
    """Give each request its own Message ID (pynetdicom's senders default to 1)."""
    ids = itertools.count(1)

    def numbered(send: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args, **kw: send(*args, msg_id=next(ids) & 0xFFFF, **kw)

    for name in ("send_n_get", "send_n_set", "send_n_create", "send_n_action",
                 "send_n_delete"):
        setattr(assoc, name, numbered(getattr(assoc, name)))


#: Execution Status values after which a Print Job changes no more.
FINAL_EXECUTION = ("DONE", "FAILURE")


def _follow_print_jobs(assoc: Any, result: PrintResult, seconds: float) -> None:
    end = time.monotonic() + seconds
    wait = 0.1
    while True:
        for uid, (execution, _) in list(result.print_jobs.items()):
            if execution in FINAL_EXECUTION:
                continue
            _, ds = assoc.send_n_get([0x21000020, 0x21000030], uids.PRINT_JOB, uid)
            if ds is not None and "ExecutionStatus" in ds:
                result.print_jobs[uid] = (str(ds.ExecutionStatus),
                                          str(ds.get("ExecutionStatusInfo", "")))
        if all(e in FINAL_EXECUTION for e, _ in result.print_jobs.values()) \
                or time.monotonic() + wait > end:
            return
        time.sleep(wait)
        wait = min(2.0, wait * 2)


def print_films(
    films: list[FilmBox],
    destination: tuple[str, str, int],
    *,
    calling_ae: str = "PRINTSCU",
    session: dict[str, Any] | None = None,
    on_step: Callable[[Step], None] = lambda step: None,
    timeout: float = 60.0,
    follow_print_job: float = 0.0,
    collate: bool = False,
    tls_args: tuple[Any, str] | None = None,
) -> PrintResult:
    """Print ``films`` on the printer at ``destination`` (AE, host, port).

    With ``follow_print_job`` seconds, a printer that offers the Print Job SOP Class
    is asked (N-GET) for each job's Execution Status until it is DONE or FAILURE or
    the time is up, before the association is released.  With ``collate`` the films
    are printed as one job by a Film Session N-ACTION (else one Film Box N-ACTION each).
    ``tls_args``: DICOM TLS (:func:`printscp.core.tls.tls_args`), None for plain TCP.
    """
    called, host, port = destination
    color = any(b.is_color for fb in films for b in fb.image_boxes)
    meta = uids.BASIC_COLOR_PRINT_META if color else uids.BASIC_GRAYSCALE_PRINT_META
    ae = AE(ae_title=calling_ae)
    ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = timeout
    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    ae.add_requested_context(meta, syntaxes)
    ae.add_requested_context(uids.PRESENTATION_LUT, syntaxes)
    ae.add_requested_context(uids.PRINT_JOB, syntaxes)
    if any(fb.annotations for fb in films):
        ae.add_requested_context(uids.BASIC_ANNOTATION_BOX, syntaxes)
    commands: list[Dataset] = []
    result = PrintResult()

    def on_event_report(event: Any) -> tuple[int, None]:
        """The printer's Print Job events (PS3.4 H.4.5.1.1) update what we know."""
        request = event.request
        if str(request.AffectedSOPClassUID) == uids.PRINT_JOB:
            info = event.event_information
            execution = PRINT_JOB_EVENT_STATUS.get(int(request.EventTypeID))
            if execution:
                result.print_jobs[str(request.AffectedSOPInstanceUID)] = (
                    execution, str(info.get("ExecutionStatusInfo", "")))
        return 0x0000, None

    assoc = net.associate(ae, host, port, ae_title=called, evt_handlers=[
        (evt.EVT_DIMSE_RECV, lambda event: commands.append(event.message.command_set)),
        (evt.EVT_N_EVENT_REPORT, on_event_report)], tls_args=tls_args)
    if not assoc.is_established:
        raise PrintError(f"association with {called}@{host}:{port} was not accepted")
    _number_messages(assoc)
    # Like the server's sockets: no message's last segment waits on a delayed ACK.
    channel.no_delay(assoc)
    accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
    print_job_accepted = uids.PRINT_JOB in accepted
    # Annotations go only to a printer that takes the Basic Annotation Box SOP Class.
    annotate = uids.BASIC_ANNOTATION_BOX in accepted

    def step(name: str, status_ds: Dataset, required: bool = True) -> int:
        code = int(status_ds.get("Status", 0x0110)) if status_ds else 0x0110
        item = Step(name, code, str(status_ds.get("ErrorComment", "")) if status_ds else
                    "no response")
        result.steps.append(item)
        on_step(item)
        if required and code_to_category(code) not in ("Success", "Warning"):
            raise PrintError(str(item), None if not status_ds else code)
        return code

    def remember_jobs(reply: Dataset | None) -> None:
        for ref in (reply.get(0x21000500).value if reply is not None
                    and 0x21000500 in reply else []):
            result.print_jobs[str(ref.ReferencedSOPInstanceUID)] = ("PENDING", "")

    def created_uid() -> str:
        return str(commands[-1].AffectedSOPInstanceUID)

    try:
        # No attribute list: some printers (DCMTK's) refuse optional ones with 0x0105.
        # The printer's state is for the report; printing does not depend on it.
        st, printer = assoc.send_n_get([], uids.PRINTER, uids.PRINTER_INSTANCE, meta_uid=meta)
        step("Printer N-GET", st, required=False)
        if printer is not None and "PrinterStatus" in printer:
            info = printer.get("PrinterStatusInfo", "")
            result.printer_status = f"{printer.PrinterStatus} ({info})"
        plut_accepted = any(str(cx.abstract_syntax) == uids.PRESENTATION_LUT
                            for cx in assoc.accepted_contexts)
        plut_uid = None
        if plut_accepted and not color:
            st, _ = assoc.send_n_create(_plut_dataset(films[0].effective_presentation_lut),
                                        uids.PRESENTATION_LUT, None)
            step("Presentation LUT N-CREATE", st)
            plut_uid = created_uid()
        ds = None
        if session:
            ds = Dataset()
            for keyword, value in session.items():
                setattr(ds, keyword, value)
        st, _ = assoc.send_n_create(ds, uids.BASIC_FILM_SESSION, None, meta_uid=meta)
        step("Film Session N-CREATE", st)
        session_uid = created_uid()
        for number, fb in enumerate(films, start=1):
            ds = _film_box_dataset(fb, session_uid, plut_uid)
            if annotate and fb.annotations and fb.annotation_display_format_id:
                ds.AnnotationDisplayFormatID = fb.annotation_display_format_id
            st, rsp = assoc.send_n_create(ds, uids.BASIC_FILM_BOX, None, meta_uid=meta)
            step(f"film {number}: Film Box N-CREATE", st)
            fb_uid = created_uid()
            boxes = [i for i in rsp.ReferencedImageBoxSequence] if rsp else []
            for box in fb.image_boxes:
                if box.is_empty:
                    continue
                ref = boxes[box.position - 1]
                _, ds = _image_box_dataset(box)
                st, _ = assoc.send_n_set(ds, ref.ReferencedSOPClassUID,
                                         ref.ReferencedSOPInstanceUID, meta_uid=meta)
                step(f"film {number}: Image Box {box.position} N-SET", st)
            notes = list(rsp.get("ReferencedBasicAnnotationBoxSequence", [])) \
                if annotate and rsp else []
            for position, text in sorted(fb.annotations.items()):
                if position > len(notes):
                    continue
                ds = Dataset()
                ds.AnnotationPosition = position
                ds.TextString = text[:64]
                st, _ = assoc.send_n_set(ds, uids.BASIC_ANNOTATION_BOX,
                                         notes[position - 1].ReferencedSOPInstanceUID)
                step(f"film {number}: Annotation Box {position} N-SET", st, required=False)
            if collate:
                continue
            st, reply = assoc.send_n_action(None, 1, uids.BASIC_FILM_BOX, fb_uid,
                                            meta_uid=meta)
            step(f"film {number}: Film Box N-ACTION (print)", st)
            result.films += 1
            remember_jobs(reply)
            st = assoc.send_n_delete(uids.BASIC_FILM_BOX, fb_uid, meta_uid=meta)
            step(f"film {number}: Film Box N-DELETE", st)
        if collate:
            st, reply = assoc.send_n_action(None, 1, uids.BASIC_FILM_SESSION, session_uid,
                                            meta_uid=meta)
            step("Film Session N-ACTION (print)", st)
            result.films = len(films)
            remember_jobs(reply)
        step("Film Session N-DELETE", assoc.send_n_delete(uids.BASIC_FILM_SESSION, session_uid,
                                                          meta_uid=meta))
        if plut_uid:
            step("Presentation LUT N-DELETE", assoc.send_n_delete(uids.PRESENTATION_LUT,
                                                                  plut_uid))
        if print_job_accepted and follow_print_job > 0:
            _follow_print_jobs(assoc, result, follow_print_job)
    finally:
        if assoc.is_established:
            assoc.release()
    return result
