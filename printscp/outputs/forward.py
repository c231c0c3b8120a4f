"""Forwarding a print job to an upstream DICOM printer (a real film imager).

The job's films are rebuilt from its spool record with the attributes the modality
sent, adjusted to what the upstream printer supports (the target's lists), and sent
as a Print SCU.  The upstream outcome becomes ours: a refused step or an upstream
Print Job that ends in FAILURE fails the target; an unreachable printer or a full
print queue is retried.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from printscp.core.remote import RemoteAE
from printscp.core.tls import tls_args
from printscp.jobs.delivery import DeliveryError
from printscp.jobs.spool import PrintJob, load_arrays
from printscp.jobs.targets import DicomTarget
from printscp.outputs.print_scu import PrintError, parse_destination, print_films
from printscp.printing.enums import FilmSize
from printscp.printing.film_box import FilmBox
from printscp.printing.records import film_box_from_record

#: Statuses after which the same request may succeed later: print queue full
#: (0xC602), resource limitation (0x0213), out of resources (0xA700-0xA7FF).
RETRIABLE_STATUSES = frozenset({0xC602, 0x0213})


def _nearest_size(size: str, supported: tuple[str, ...]) -> str:
    """The supported film size closest in area to ``size``, preferring one at least as
    large (so no image has to shrink more than the aspect change requires)."""
    w, h = FilmSize(size).dimensions_mm
    area = w * h

    def key(candidate: str) -> tuple[bool, float]:
        cw, ch = FilmSize(candidate).dimensions_mm
        return (cw * ch < area * 0.999, abs(cw * ch - area))

    return min(supported, key=key)


def adjust_film(fb: FilmBox, target: DicomTarget) -> tuple[FilmBox, list[str]]:
    """``fb`` changed to what the upstream printer supports, and what was changed."""
    changes: dict[str, Any] = {}
    notes: list[str] = []

    def pick(name: str, value: Any, allowed: tuple[str, ...], replacement: str) -> None:
        text = str(getattr(value, "value", value)) if value is not None else ""
        if allowed and text and text not in allowed:
            changes[name] = replacement
            notes.append(f"{name} {text} -> {replacement}")

    size = fb.film_size_id.value  # type: ignore[union-attr]
    if target.film_sizes and size not in target.film_sizes:
        pick("film_size_id", size, target.film_sizes, _nearest_size(size, target.film_sizes))
    magnification = fb.magnification_type
    pick("magnification_type", magnification, target.magnification_types,
         target.magnification_types[0] if target.magnification_types else "")
    if target.smoothing_types and fb.smoothing_type and \
            str(fb.smoothing_type) not in target.smoothing_types:
        changes["smoothing_type"] = None
        notes.append(f"smoothing_type {fb.smoothing_type} dropped")
    for name, (low, high) in (("min_density", target.min_density_range),
                              ("max_density", target.max_density_range)):
        value = getattr(fb, name)
        if value is not None and not low <= int(value) <= high:
            changes[name] = min(max(int(value), low), high)
            notes.append(f"{name} {value} -> {changes[name]}")
    boxes = []
    for box in fb.image_boxes:
        if box.pixels is not None and not box.is_color and box.bits_stored > target.max_bits:
            shift = box.bits_stored - 8
            px = (np.asarray(box.pixels, dtype=np.uint16) >> shift).astype(np.uint8)
            box = dataclasses.replace(box, pixels=px, bits_stored=8)
            notes.append(f"image box {box.position}: 12 -> 8 bits")
        boxes.append(box)
    changes["image_boxes"] = boxes
    return dataclasses.replace(fb, **changes), notes


def _session(job: PrintJob, target: DicomTarget) -> dict[str, Any]:
    s = job.session
    out: dict[str, Any] = {"NumberOfCopies": int(s.get("number_of_copies") or 1),
                           "PrintPriority": str(s.get("print_priority") or "MED")}
    medium = str(s.get("medium_type") or "")
    if medium and (not target.medium_types or medium in target.medium_types):
        out["MediumType"] = medium
    elif target.medium_types:
        out["MediumType"] = target.medium_types[0]
    if s.get("film_destination"):
        out["FilmDestination"] = str(s["film_destination"])
    if target.send_label:
        if s.get("film_session_label"):
            out["FilmSessionLabel"] = str(s["film_session_label"])[:64]
        if s.get("owner_id"):
            out["OwnerID"] = str(s["owner_id"])[:16]
    return out


def forward(target: DicomTarget, folder: Path, node_ae: str, *,
            remote: RemoteAE | None = None, tls: Any = None) -> dict[str, Any]:
    """Print the job in spool ``folder`` on ``target``; the record of what happened.

    ``remote``: the AE table's entry of the destination's AE title, whose TLS settings
    (``tls = true``, client certificate, CAs) the association takes; ``tls``: the
    node's [tls] section (its CAs and certificate are the defaults)."""
    folder = Path(folder)
    job = PrintJob.from_json(json.loads((folder / "job.json").read_text("utf-8")))
    arrays = load_arrays(folder)
    films, notes = [], []
    for number, record in enumerate(job.films, start=1):
        fb, changed = adjust_film(film_box_from_record(record, arrays), target)
        films.append(fb)
        notes.extend(f"film {number}: {c}" for c in changed)
    try:
        destination = parse_destination(target.destination)
    except ValueError as exc:
        raise DeliveryError(str(exc), retriable=False) from None
    try:
        result = print_films(films, destination, calling_ae=target.calling_ae or node_ae,
                             session=_session(job, target), timeout=target.timeout,
                             follow_print_job=target.follow_print_job,
                             tls_args=tls_args(remote, tls) if remote is not None else None)
    except PrintError as exc:
        retriable = exc.status is None or exc.status in RETRIABLE_STATUSES \
            or 0xA700 <= exc.status <= 0xA7FF
        raise DeliveryError(f"{target.destination}: {exc}", retriable=retriable) from None
    except (OSError, RuntimeError, TimeoutError) as exc:  # network trouble
        raise DeliveryError(f"{target.destination}: {exc}", retriable=True) from None
    failed = {uid: s for uid, s in result.print_jobs.items() if s[0] == "FAILURE"}
    if failed:
        info = next(iter(failed.values()))[1] or "PRINTER DOWN"
        raise DeliveryError(f"{target.destination}: upstream Print Job failed ({info})",
                            retriable=False, info=info)
    return {
        "destination": target.destination, "films": result.films,
        "steps": [str(s) for s in result.steps], "adjusted": notes,
        "upstream_printer_status": result.printer_status,
        "upstream_print_jobs": {uid: {"status": s, "info": i}
                                for uid, (s, i) in result.print_jobs.items()},
    }

