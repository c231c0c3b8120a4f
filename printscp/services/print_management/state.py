"""Per-association Print Management state: the object hierarchy one association built.

PS3.4 H.4: a Film Session lives for one association.  Each association has its own
:class:`AssociationState` (its Film Session, Film Boxes, Image Boxes, Annotation Boxes
and Presentation LUTs), kept by :class:`~.service.PrintService` and discarded when the
association ends, so an abort loses only what that modality had not printed.

:func:`check_instance` is the common first check of N-SET, N-ACTION and N-DELETE:

======  ==================================================================
0x0112  No such SOP Instance: the UID is not an object of this association
0x0119  Class-instance conflict: the UID is an instance of another SOP Class
======  ==================================================================

:class:`Service` is what the SOP Class modules and :mod:`.dispatch` use of the
:class:`~.service.PrintService`, so they need not import the service module (which
imports them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from printscp.config import LimitsConfig, NodeConfig, PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.jobs.spool import PrintJob
from printscp.jobs.staging import PixelStage
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession
from printscp.printing.presentation_lut import PresentationLUT

LOGGER = logging.getLogger("printscp.print")


@dataclass
class FilmBoxEntry:
    film_box: FilmBox
    image_box_uids: list[str]
    plut_uid: str | None = None
    annotation_box_uids: list[str] = field(default_factory=list)
    printed: bool = False
    #: The pixel file of the job this Film Box will be, written as its images arrive
    #: (:mod:`printscp.jobs.staging`); None before the first image, once used, or when
    #: it could not be made (``stage_failed``).
    stage: PixelStage | None = None
    #: Image Box Position -> the stage's member holding that box's current pixels.
    staged: dict[int, str] = field(default_factory=dict)
    stage_failed: bool = False

    def staged_names(self) -> dict[int, str] | None:
        """Position -> member for every image of the Film Box when its stage holds each
        one's current pixels (so the stage can become its job's pixel file), else None."""
        stage = self.stage
        if stage is None or not stage.usable:
            return None
        names = {}
        for box in self.film_box.image_boxes:
            if box.pixels is None:
                continue
            name = self.staged.get(box.position)
            if name is None or not stage.holds(name, box.pixels):
                return None
            names[box.position] = name
        return names

    def drop_stage(self) -> None:
        """Discard the stage (the Film Box is deleted or printed, its association ended)."""
        stage, self.stage = self.stage, None
        self.staged = {}
        if stage is not None:
            stage.discard()


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
    #: [limits]: image boxes per film box, film boxes per session, declared pixel size.
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    #: Where Film Boxes stage their jobs' pixels as images arrive (the spool's folder);
    #: None: not staged, the job's pixels are written at N-ACTION.
    stage_dir: Path | None = None

    def stage_image(self, fb_uid: str, position: int, pixels: Any) -> None:
        """Start writing an image just set into its Film Box's future job (see
        :mod:`printscp.jobs.staging`); never fails the N-SET (the job is then written
        at N-ACTION from the arrays in memory)."""
        entry = self.film_boxes[fb_uid]
        if self.stage_dir is None or entry.stage_failed:
            return
        if entry.stage is None:
            try:
                entry.stage = PixelStage(self.stage_dir)
            except OSError as exc:
                LOGGER.warning("%s: cannot stage the pixels of a film box (%s); its job "
                               "is written at N-ACTION", self.calling_ae, exc)
                entry.stage_failed = True
                return
        name = entry.stage.add(pixels, f"box{position}")
        if name is None:
            entry.staged.pop(position, None)
        else:
            entry.staged[position] = name

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


def check_instance(st: AssociationState, sop_class: str, uid: str) -> None:
    """``uid`` must be an object of this association, of SOP Class ``sop_class``."""
    actual = st.class_of(uid)
    if actual is None:
        raise StatusError(status.NO_SUCH_SOP_INSTANCE, f"no SOP Instance {uid}")
    if actual != sop_class:
        raise StatusError(status.CLASS_INSTANCE_CONFLICT,
                         f"{uid} is not an instance of {sop_class}")


class Service(Protocol):
    """What the SOP Class modules and the dispatch use of the node's print service."""

    config: NodeConfig

    def state(self, assoc: Any) -> AssociationState:
        """The association's state, created on its first request."""

    def forget(self, assoc: Any) -> None:
        """Drop an ended association's state and event subscriptions."""

    def check_printer(self) -> tuple[str, str]:
        """Recompute the printers' condition, reporting changes."""

    def reported_condition(self, printer: PrinterConfig) -> tuple[str, str]:
        """(Printer Status, Printer Status Info) of ``printer`` as last checked."""

    def spool_films(self, st: AssociationState, entries: list[FilmBoxEntry],
                    assoc: Any = None, events_context: Any = None) -> PrintJob:
        """Spool ``entries`` as one job, durably (0xC602 queue full, 0x0213 no space)."""
