"""Output targets of a printer profile: where a printed film goes.

A printer profile lists any combination of targets (``[[printer.targets]]`` in the
TOML): film files (PDF, PNG, TIFF) under a configurable naming scheme, a CUPS queue
for hardcopy on paper, and an upstream DICOM printer the film session is forwarded
to.  Targets are snapshotted into each spooled job, so a job recovered after a
restart goes where it was meant to go when it was acknowledged, even if the
configuration changed since.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar


class TargetError(ValueError):
    """A target's configuration is invalid; the message names the key."""


class TargetKind(StrEnum):
    PDF = "pdf"
    PNG = "png"
    TIFF = "tiff"
    CUPS = "cups"
    DICOM = "dicom"
    ARCHIVE = "archive"


#: Fields a file name template may use (see :mod:`printscp.jobs.naming`).
NAME_FIELDS = frozenset({"stem", "date", "time", "calling_ae", "called_ae", "printer",
                         "label", "job", "job_id", "film", "copies"})


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for a target that failed for a reason that may pass (printer down,
    network unreachable): waits double from ``initial_seconds`` up to
    ``max_seconds``; after ``max_attempts`` (0: never) the target is given up."""

    initial_seconds: float = 5.0
    max_seconds: float = 600.0
    max_attempts: int = 0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return float(min(self.max_seconds, self.initial_seconds * 2 ** max(0, attempts - 1)))

    def exhausted(self, attempts: int) -> bool:
        return bool(self.max_attempts) and attempts >= self.max_attempts


@dataclass(frozen=True)
class Target:
    #: Name in job records, logs and status ("" : derived from the kind and address).
    id: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    kind: ClassVar[TargetKind]

    @property
    def label(self) -> str:
        return self.id or self.default_id()

    def default_id(self) -> str:
        return self.kind.value

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["type"] = self.kind.value
        data.pop("format", None)
        return data


@dataclass(frozen=True)
class FileTarget(Target):
    """Film files.  ``directory`` (relative to the data directory, or absolute) and
    ``name`` (without extension) are templates of :data:`NAME_FIELDS`; PNG and TIFF
    are one file per film (``_{film}`` is appended when the name does not use it)."""

    format: TargetKind = TargetKind.PDF
    directory: str = "films"
    name: str = "{stem}"
    #: PNG/TIFF: 8-bit device levels, or 16 for 16-bit grayscale rasters.
    bits: int = 8

    @property  # type: ignore[misc]
    def kind(self) -> TargetKind:  # type: ignore[override]
        return self.format

    def default_id(self) -> str:
        return f"{self.format.value}:{self.directory}"


@dataclass(frozen=True)
class CupsTarget(Target):
    """Hardcopy on paper through a CUPS queue (IPP)."""

    queue: str = ""
    server: str = "localhost:631"
    #: Paper name (A4, A3, LETTER, LEGAL, TABLOID; FILM: a page of the film's size).
    paper: str = "A4"
    #: ``fit``: scaled to fit the paper; ``true-size``: 1:1, tiled over several sheets.
    fit: str = "fit"
    margin_mm: float = 5.0
    user: str = "printscp"
    #: Further IPP job attributes (e.g. {"print-color-mode" = "monochrome"}).
    options: dict[str, Any] = field(default_factory=dict)

    kind: ClassVar[TargetKind] = TargetKind.CUPS

    def default_id(self) -> str:
        return f"cups:{self.queue}@{self.server}"


@dataclass(frozen=True)
class DicomTarget(Target):
    """An upstream DICOM printer (film imager) the film session is forwarded to.

    The lists say what that printer supports; a film's attribute outside them is
    replaced (film size by the nearest supported one, the rest by the first listed)
    and the change recorded with the job.  Empty lists: send the value unchanged.
    """

    destination: str = ""  #: AE@HOST:PORT
    calling_ae: str = ""  #: "" : the node's AE title
    film_sizes: tuple[str, ...] = ()
    medium_types: tuple[str, ...] = ()
    magnification_types: tuple[str, ...] = ()
    smoothing_types: tuple[str, ...] = ()
    min_density_range: tuple[int, int] = (0, 400)
    max_density_range: tuple[int, int] = (0, 400)
    #: 8: send 12-bit images as 8 bits (printers without 12-bit support).
    max_bits: int = 12
    #: Send Film Session Label, Owner ID...; some printers refuse optional attributes.
    send_label: bool = True
    timeout: float = 60.0
    #: Seconds to follow the upstream Print Job (when it offers one) to DONE/FAILURE.
    follow_print_job: float = 300.0

    kind: ClassVar[TargetKind] = TargetKind.DICOM

    def default_id(self) -> str:
        return f"dicom:{self.destination}"


@dataclass(frozen=True)
class ArchiveTarget(Target):
    """The node's own archive: each job's films as one Encapsulated PDF instance,
    linked to its patient when the Film Session Label names an Accession Number or
    Patient ID the archive knows.  Added to every job when the archive stores films."""

    kind: ClassVar[TargetKind] = TargetKind.ARCHIVE

    def default_id(self) -> str:
        return "archive"


_CLASSES: dict[str, type[Target]] = {
    "pdf": FileTarget, "png": FileTarget, "tiff": FileTarget,
    "cups": CupsTarget, "dicom": DicomTarget, "archive": ArchiveTarget,
}

#: A printer profile without ``targets``: one PDF per job in ``films/``.
DEFAULT_TARGETS: tuple[Target, ...] = (FileTarget(),)


def _check_template(where: str, template: str) -> None:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:
        raise TargetError(f"{where}: {err}") from None
    unknown = names - NAME_FIELDS
    if unknown:
        raise TargetError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(NAME_FIELDS))})")


def target_class(kind: str) -> type[Target] | None:
    """The class of a target ``type`` (``pdf``, ``cups``...), None if there is none."""
    return _CLASSES.get(str(kind).strip().lower())


def parse_target(data: dict[str, Any], where: str = "targets") -> Target:
    """One target from its TOML table (or a job's snapshot); errors name the key."""
    data = dict(data)
    kind = str(data.pop("type", "")).strip().lower()
    cls = target_class(kind)
    if cls is None:
        raise TargetError(f"{where}.type: {kind!r} is not one of {', '.join(_CLASSES)}")
    known = {f.name for f in fields(cls)} - {"format"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise TargetError(f"{where}.{key}: unknown key for a {kind} target "
                              f"(known: type, {', '.join(sorted(known))})")
        if key == "retry":
            try:
                value = RetryPolicy(**value)
            except TypeError as err:
                raise TargetError(f"{where}.retry: {err}") from None
        elif key in ("film_sizes", "medium_types", "magnification_types", "smoothing_types"):
            value = tuple(str(v).strip().upper() for v in value)
        elif key in ("min_density_range", "max_density_range"):
            value = tuple(int(v) for v in value)
        kwargs[key] = value
    if cls is FileTarget:
        kwargs["format"] = TargetKind(kind)
    target = cls(**kwargs)
    _validate(target, where)
    return target


def _validate(t: Target, where: str) -> None:
    retry = t.retry
    if not retry.initial_seconds > 0:
        raise TargetError(f"{where}.retry.initial_seconds: {retry.initial_seconds} is out of "
                          "range; expected a number > 0")
    if not retry.max_seconds >= retry.initial_seconds:
        raise TargetError(f"{where}.retry.max_seconds: {retry.max_seconds} is out of range; "
                          f"expected a number >= initial_seconds ({retry.initial_seconds})")
    if retry.max_attempts < 0:
        raise TargetError(f"{where}.retry.max_attempts: {retry.max_attempts} is out of range; "
                          "expected an integer >= 0 (0: retry until it works)")
    if isinstance(t, FileTarget):
        _check_template(f"{where}.directory", t.directory)
        _check_template(f"{where}.name", t.name)
        if not t.name.strip():
            raise TargetError(f"{where}.name: empty; expected a file name template")
        if t.bits not in (8, 16) or (t.bits == 16 and t.format is TargetKind.PDF):
            raise TargetError(f"{where}.bits: {t.bits} is not allowed; expected 8, or 16 "
                              "for png/tiff")
    elif isinstance(t, CupsTarget):
        from printscp.printing.paper import PAPER_SIZES, PaperPolicy

        if not t.queue.strip():
            raise TargetError(f"{where}.queue: the CUPS queue name is required")
        if not t.server.strip() or any(c.isspace() for c in t.server.strip()):
            raise TargetError(f"{where}.server: {t.server!r} is not allowed; expected "
                              "host[:port]")
        if t.paper.upper() not in PAPER_SIZES:
            raise TargetError(f"{where}.paper: {t.paper!r} is not one of "
                              f"{', '.join(PAPER_SIZES)}")
        try:
            PaperPolicy(t.fit)
        except ValueError:
            raise TargetError(f"{where}.fit: {t.fit!r} is not allowed; expected 'fit' or "
                              "'true-size'") from None
        if not 0 <= t.margin_mm < 50:
            raise TargetError(f"{where}.margin_mm: {t.margin_mm} is out of range; expected "
                              "a number >= 0 and < 50")
    elif isinstance(t, DicomTarget):
        from printscp.core.remote import RemoteAE, check_ae_title
        from printscp.printing.enums import FilmSize, MagnificationType
        from printscp.printing.errors import PrintAttributeError, parse_enum

        try:
            RemoteAE.parse(t.destination)
        except ValueError as err:
            raise TargetError(f"{where}.destination: {err}") from None
        if t.calling_ae:
            try:
                check_ae_title(t.calling_ae, f"{where}.calling_ae")
            except ValueError as err:
                raise TargetError(str(err)) from None
        for key, enum in (("film_sizes", FilmSize), ("magnification_types", MagnificationType)):
            for i, v in enumerate(getattr(t, key)):
                try:
                    parse_enum(enum, key, v)
                except PrintAttributeError:
                    raise TargetError(f"{where}.{key}[{i}]: {v!r} is not allowed; expected one "
                                      f"of {', '.join(enum)}") from None
        if t.max_bits not in (8, 12):
            raise TargetError(f"{where}.max_bits: {t.max_bits} is not allowed; expected 8 or 12")
        for key in ("min_density_range", "max_density_range"):
            low, high = getattr(t, key)
            if not 0 <= low <= high:
                raise TargetError(f"{where}.{key}: [{low}, {high}] is not allowed; expected "
                                  "[low, high] with 0 <= low <= high")
        if not t.timeout > 0:
            raise TargetError(f"{where}.timeout: {t.timeout} is out of range; expected a "
                              "number > 0 (seconds)")
        if not t.follow_print_job >= 0:
            raise TargetError(f"{where}.follow_print_job: {t.follow_print_job} is out of "
                              "range; expected a number >= 0 (seconds; 0: do not follow)")


def parse_targets(items: list[dict[str, Any]], where: str) -> tuple[Target, ...]:
    targets = tuple(parse_target(item, f"{where}[{i}]") for i, item in enumerate(items))
    labels = [t.label for t in targets]
    duplicates = {x for x in labels if labels.count(x) > 1}
    if duplicates:
        raise TargetError(f"{where}: two targets named {', '.join(sorted(duplicates))}; "
                          "give them distinct ids")
    return targets


def snapshot_targets(snapshot: list[dict[str, Any]] | None) -> tuple[Target, ...]:
    """The targets a job was spooled with (none recorded: :data:`DEFAULT_TARGETS`)."""
    if not snapshot:
        return DEFAULT_TARGETS
    return tuple(parse_target(t, "job targets") for t in snapshot)
