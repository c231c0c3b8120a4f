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

from dataclasses import dataclass, field
from typing import Any, Protocol

from printscp.config import LimitsConfig, NodeConfig, PrinterConfig
from printscp.core import status, uids
from printscp.core.errors import StatusError
from printscp.jobs.spool import PrintJob
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession
from printscp.printing.presentation_lut import PresentationLUT


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
    #: [limits]: image boxes per film box, film boxes per session, declared pixel size.
    limits: LimitsConfig = field(default_factory=LimitsConfig)

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
