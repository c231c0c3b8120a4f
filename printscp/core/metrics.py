"""The node's Prometheus metrics: what each process counts, by one name each.

Every process of a node (the workers receiving associations, the one serving HTTP)
counts into these.  ``printscp serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before anything
imports :mod:`prometheus_client`, so the worker processes write their counts to files
there and ``/metrics`` adds them up (prometheus-client's multiprocess mode); in a single
process (tests, ``Node`` used as a library) they live in the default registry.

Gauges that describe the node as a whole (spool depth, archive size, free disk, printer
status, open associations) are not kept here: the HTTP side reads them when scraped
(:mod:`printscp.http.metrics`), so no worker pays to keep them current.

The functions below are the only way the rest of the code counts: call sites never
name a metric object, and a label's values stay few (AE titles, printer names, DIMSE
command names, SOP class keywords; never UIDs of instances or job ids).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from pydicom.uid import UID

from printscp.core import uids

#: Seconds buckets for DIMSE operations (sub-millisecond C-STORE to minutes-long C-MOVE).
DIMSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                 2.5, 5.0, 10.0, 30.0, 60.0)
#: Seconds buckets for rendering a job and delivering it to a target.
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

ASSOCIATIONS = Counter(
    "printscp_associations", "Associations closed, by calling AE, service and how they ended",
    ["calling_ae", "service", "ended"])
DIMSE_SECONDS = Histogram(
    "printscp_dimse_seconds", "DIMSE requests served: time from the request's last "
    "fragment to the response sent, by command and SOP class", ["command", "sop_class"],
    buckets=DIMSE_BUCKETS)
JOBS = Counter("printscp_jobs", "Print jobs entering a state, by state and printer",
               ["state", "printer"])
FILMS = Counter("printscp_films_printed", "Films (film boxes) of jobs that finished DONE",
                ["printer"])
SHEETS = Counter("printscp_sheets_printed", "Paper or film sheets of jobs that finished DONE",
                 ["printer"])
RENDER_SECONDS = Histogram("printscp_render_seconds", "Time to render a job's films",
                           ["printer"], buckets=JOB_BUCKETS)
DELIVERY_SECONDS = Histogram(
    "printscp_delivery_seconds", "Time of one delivery attempt to a target, by kind and result",
    ["kind", "target", "result"], buckets=JOB_BUCKETS)
DELIVERY_RETRIES = Counter("printscp_delivery_retries",
                           "Delivery attempts that failed and were scheduled again",
                           ["kind", "target"])


#: Print Management SOP classes (and the meta classes), counted as the service "print".
PRINT_CLASSES = frozenset({
    uids.BASIC_FILM_SESSION, uids.BASIC_FILM_BOX, uids.BASIC_GRAYSCALE_IMAGE_BOX,
    uids.BASIC_COLOR_IMAGE_BOX, uids.BASIC_GRAYSCALE_PRINT_META, uids.BASIC_COLOR_PRINT_META,
    uids.BASIC_ANNOTATION_BOX, uids.PRINT_JOB, uids.PRINTER, uids.PRESENTATION_LUT,
    uids.PRINTER_CONFIGURATION_RETRIEVAL})
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@functools.lru_cache(maxsize=2048)
def sop_class_label(sop_class: str) -> str:
    """A SOP class as a label value: its keyword (``CTImageStorage``), a keyword as given,
    ``other`` for a UID pydicom does not know (a peer's private or made-up UIDs must not
    make new series), ``none`` for nothing."""
    if not sop_class:
        return "none"
    if not _UID.fullmatch(sop_class):
        return sop_class
    return UID(sop_class).keyword or "other"


@functools.lru_cache(maxsize=2048)
def service_of(sop_class: str) -> str:
    """The service a SOP class UID belongs to, as an administrator names it: verification,
    print, storage, query/retrieve, worklist, mpps, commitment (else its label)."""
    if sop_class == uids.VERIFICATION:
        return "verification"
    if sop_class in PRINT_CLASSES:
        return "print"
    keyword = sop_class_label(sop_class)
    if keyword.startswith("ModalityWorklist"):
        return "worklist"
    if "QueryRetrieve" in keyword or keyword.startswith("CompositeInstance"):
        return "query/retrieve"
    if keyword.startswith("ModalityPerformedProcedureStep"):
        return "mpps"
    if keyword.startswith("StorageCommitment"):
        return "commitment"
    if "Storage" in keyword:
        return "storage"
    return keyword


def ended_label(ended: str) -> str:
    """How an association ended, as a label: released, aborted, rejected, timeout, or
    the first word of what the log line says ("closed"...)."""
    head = ended.split(":", 1)[0]
    for word in ("released", "aborted", "rejected", "timeout"):
        if word in head:
            return word
    return head.split(" ", 1)[0] or "unknown"


def association_closed(calling_ae: str, sop_classes: Iterable[str], ended: str) -> None:
    """One association ended (``ended``: released..., aborted..., rejected...): counted
    once per service its requests' SOP classes (UIDs) belong to, or once as ``none``."""
    how = ended_label(ended)
    for service in sorted({service_of(uid) for uid in sop_classes}) or ["none"]:
        ASSOCIATIONS.labels(calling_ae or "?", service, how).inc()


#: (command, SOP class as given) -> the histogram's child: a request served pays for one
#: dict look-up, not for ``labels()`` (which builds a tuple and takes a lock every call).
_DIMSE_CHILDREN: dict[tuple[str, str], Any] = {}
_DIMSE_LOCK = threading.Lock()


def dimse(command: str, sop_class: str, seconds: float) -> None:
    """A DIMSE request (``C-STORE``, ``N-ACTION``...) was answered after ``seconds``;
    ``sop_class``: its Affected (or Requested) SOP Class, as a UID or a keyword."""
    key = (command, sop_class)
    child = _DIMSE_CHILDREN.get(key)
    if child is None:
        with _DIMSE_LOCK:
            child = DIMSE_SECONDS.labels(command, sop_class_label(sop_class))
            if len(_DIMSE_CHILDREN) < 4096:  # made-up UIDs share "other", uncached
                _DIMSE_CHILDREN[key] = child
    child.observe(seconds)


def job_state(state: str, printer: str) -> None:
    """A print job entered ``state`` (PENDING, PRINTING, DONE, FAILURE...)."""
    JOBS.labels(state, printer or "?").inc()


def printed(printer: str, films: int, sheets: int) -> None:
    """A job finished DONE with ``films`` film boxes on ``sheets`` sheets."""
    FILMS.labels(printer or "?").inc(films)
    SHEETS.labels(printer or "?").inc(sheets)


def rendered(printer: str, seconds: float) -> None:
    """A job's films were rendered in ``seconds``."""
    RENDER_SECONDS.labels(printer or "?").observe(seconds)


def delivery(kind: str, target: str, seconds: float, ok: bool) -> None:
    """One delivery attempt to ``target`` (a label; ``kind``: cups, dicom, archive...)."""
    DELIVERY_SECONDS.labels(kind, target, "ok" if ok else "failed").observe(seconds)


def delivery_retry(kind: str, target: str) -> None:
    """A failed delivery attempt was scheduled again."""
    DELIVERY_RETRIES.labels(kind, target).inc()
