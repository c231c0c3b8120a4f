"""The node's configuration: one typed object from a TOML file plus command-line overrides.

Every key, its default and its meaning is listed in ``docs/configuration.md``;
``docs/printscp.example.toml`` is a complete example.  Unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from printscp.core.errors import ConfigError
from printscp.core.remote import RemoteAE
from printscp.jobs.targets import DEFAULT_TARGETS, Target, TargetError, parse_targets
from printscp.printing.display_format import ImageDisplayFormat
from printscp.printing.enums import DecimateCropBehavior, FilmSize, MagnificationType
from printscp.printing.errors import PrintAttributeError, parse_enum
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession
from printscp.worklist.items import WorklistConfig


def _grid(columns: int, rows: int) -> tuple[tuple[float, float, float, float], ...]:
    """Cells of a rows x columns grid in row-major order (SLIDE/SUPERSLIDE defaults)."""
    return tuple((c / columns, r / rows, 1 / columns, 1 / rows)
                 for r in range(rows) for c in range(columns))


@dataclass(frozen=True)
class AccessConfig:
    """Who may associate.  Empty ``calling_ae_titles`` accepts any calling AE.

    Entries are ``"AE"`` (any host) or ``"AE@host"`` (that host only).
    """

    calling_ae_titles: tuple[str, ...] = ()
    require_called_ae: bool = False


@dataclass(frozen=True)
class ArchiveConfig:
    """The archive (Storage, Query/Retrieve): files under ``data_dir/archive``."""

    enabled: bool = True
    #: A second C-STORE of a stored SOP Instance UID: ``replace`` (the new copy wins)
    #: or ``keep`` (the first copy stays; the new one is acknowledged and discarded).
    duplicates: str = "replace"
    #: Store each printed job's films as an Encapsulated PDF instance (queryable and
    #: retrievable like any instance).
    store_films: bool = True


@dataclass(frozen=True)
class PrinterConfig:
    """One printer profile.  ``[printer]`` is the node's default printer; each
    ``[printers.NAME]`` is another one, reached by its own called AE title."""

    #: Called AE title that reaches this printer ("" for [printer]: the node's AE title;
    #: a [printers.NAME] section defaults to NAME).
    ae_title: str = ""
    name: str = "printscp"
    manufacturer: str = "printscp"
    model: str = "printscp virtual film printer"
    serial_number: str = "0001"
    #: DCMTK characteristic file of the output device; empty: built-in pdf-srgb.
    output_profile: str = ""
    #: Rendering resolution; 0: from Requested Resolution ID (STANDARD 300, HIGH 600).
    dpi: float = 0.0
    #: What to do with an image larger than its box when the SCU does not say.
    decimate_crop_default: str = DecimateCropBehavior.FAIL.value
    #: Film Session N-ACTION prints all film boxes as one job (collation).  When false,
    #: it prints them one by one with warning 0xB601, and a new Film Box while an
    #: unprinted one exists is refused with 0xC616 (PS3.4 H.4).
    collation: bool = True
    #: Film Box attributes whose unsupported values are replaced by the default (with
    #: warning 0x0116 / 0xB605 on N-SET) instead of refused with 0x0106: any of
    #: FilmSizeID, MagnificationType, SmoothingType, MinDensity, MaxDensity.
    replace_unsupported: tuple[str, ...] = ()
    #: Supported Film Size IDs; empty: all 12 defined terms.
    film_sizes: tuple[str, ...] = ()
    #: Supported Image Display Formats: kinds (STANDARD, ROW, COL, SLIDE, SUPERSLIDE,
    #: CUSTOM) or exact formats ("CUSTOM\\1"); empty: STANDARD, ROW, COL and every
    #: format of custom_layouts.
    display_formats: tuple[str, ...] = ()
    #: Supported Magnification Types; empty: all four.
    magnification_types: tuple[str, ...] = ()
    #: Accepted Smoothing Types (for CUBIC: SHARP Lanczos, MEDIUM cubic, SMOOTH
    #: bilinear; other accepted terms print as MEDIUM); empty: any code string.
    smoothing_types: tuple[str, ...] = ("SHARP", "MEDIUM", "SMOOTH")
    #: Ranges (hundredths of OD) the printer can produce for Min and Max Density.
    min_density_range: tuple[int, int] = (0, 100)
    max_density_range: tuple[int, int] = (150, 400)
    #: Cells (x, y, width, height as fractions of the image area, in position order) of
    #: the configuration-dependent formats: SLIDE, SUPERSLIDE, CUSTOM\\i.
    custom_layouts: dict[str, tuple[tuple[float, float, float, float], ...]] = field(
        default_factory=lambda: {"SLIDE": _grid(4, 5), "SUPERSLIDE": _grid(4, 4)})
    #: Annotation Display Format IDs: how many Basic Annotation Boxes each has
    #: (laid left to right in the strip below the images).
    annotation_formats: dict[str, int] = field(default_factory=lambda: {
        "ANNOTATION": 1, "LABEL": 1, "BOTTOM2": 2, "BOTTOM3": 3, "BOTTOM4": 4,
    })
    #: Film Box attributes used when the SCU does not send them.
    film_box_defaults: dict[str, Any] = field(default_factory=lambda: {
        "film_size_id": "14INX17IN", "film_orientation": "PORTRAIT",
        "magnification_type": "BILINEAR", "border_density": "BLACK",
        "empty_image_density": "BLACK", "min_density": 20, "max_density": 300,
        "trim": "NO", "requested_resolution_id": "STANDARD",
        "illumination": 2000, "reflected_ambient_light": 10,
    })
    #: Where printed films go: film files, CUPS queues, upstream DICOM printers
    #: (``[[printer.targets]]``, see docs/configuration.md); default one PDF per job.
    targets: tuple[Target, ...] = DEFAULT_TARGETS
    #: Film Session attributes used when the SCU does not send them.
    film_session_defaults: dict[str, Any] = field(default_factory=lambda: {
        "number_of_copies": 1, "print_priority": "MED", "medium_type": "BLUE FILM",
        "film_destination": "MAGAZINE",
    })


@dataclass(frozen=True)
class NodeConfig:
    ae_title: str = "PRINTSCP"
    port: int = 11112
    bind: str = "0.0.0.0"
    data_dir: str = "./printscp-data"
    max_pdu: int = 131072
    max_associations: int = 16
    network_timeout: float = 60.0
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    #: Print jobs waiting in a worker's spool queue before new ones are refused (0xC602).
    max_queued_jobs: int = 100
    #: Free disk space (MiB) in the data directory below which the Printer reports
    #: WARNING (SUPPLY LOW) and FAILURE (SUPPLY EMPTY), with N-EVENT-REPORTs.
    disk_warning_mb: int = 1024
    disk_failure_mb: int = 64
    #: Processes receiving associations on the shared port (each with its own render
    #: process); 0: one per CPU core, at most 4.
    workers: int = 0
    access: AccessConfig = field(default_factory=AccessConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    worklist: WorklistConfig = field(default_factory=WorklistConfig)
    #: Peers by AE title (``[[remote]]`` tables, and ``--remote AE@HOST:PORT``): where
    #: C-MOVE sends, where storage commitment results go.
    remote: tuple[RemoteAE, ...] = ()
    printer: PrinterConfig = field(default_factory=PrinterConfig)
    #: Further printer profiles by name, each reached by its own called AE title.
    printers: dict[str, PrinterConfig] = field(default_factory=dict)

    def remote_ae(self, ae_title: str) -> RemoteAE | None:
        title = ae_title.strip()
        return next((r for r in self.remote if r.ae_title == title), None)

    def printer_for(self, called_ae: str) -> PrinterConfig:
        """The printer profile a called AE title reaches (the default one otherwise)."""
        called = called_ae.strip()
        for printer in self.printers.values():
            if printer.ae_title == called:
                return printer
        return self.printer

    @property
    def called_ae_titles(self) -> tuple[str, ...]:
        """Every AE title this node answers to."""
        return (self.ae_title.strip(), *(p.ae_title for p in self.printers.values()))

    @property
    def worker_count(self) -> int:
        return self.workers or min(4, os.cpu_count() or 1)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    def validate(self) -> NodeConfig:
        title = self.ae_title.strip()
        if not 1 <= len(title) <= 16 or "\\" in title or not title.isprintable():
            raise ConfigError(f"node.ae_title: {self.ae_title!r} is not a valid AE title")
        if not 0 <= self.port <= 65535:  # 0: any free port (tests)
            raise ConfigError(f"node.port: {self.port} is not a TCP port")
        if not 0 <= self.workers <= 64:
            raise ConfigError(f"node.workers: {self.workers} outside 0..64")
        if self.max_pdu and not 4096 <= self.max_pdu <= 1 << 22:
            raise ConfigError(f"node.max_pdu: {self.max_pdu} outside 4096..4194304 (or 0)")
        for where, printer in [("printer", self.printer),
                               *((f"printers.{n}", p) for n, p in self.printers.items())]:
            _validate_printer(where, printer)
        titles = self.called_ae_titles
        if len(set(titles)) != len(titles):
            raise ConfigError(f"printers: called AE titles must differ, got {', '.join(titles)}")
        for entry in self.access.calling_ae_titles:
            if not entry.split("@", 1)[0].strip():
                raise ConfigError(f"access.calling_ae_titles: empty AE title in {entry!r}")
        return self


def _validate_printer(where: str, p: PrinterConfig) -> None:
    try:
        DecimateCropBehavior(p.decimate_crop_default)
    except ValueError:
        raise ConfigError(f"{where}.decimate_crop_default: must be DECIMATE, CROP or FAIL") \
            from None
    for format_id, boxes in p.annotation_formats.items():
        if not 1 <= boxes <= 64 or not format_id or len(format_id) > 16:
            raise ConfigError(f"{where}.annotation_formats.{format_id}: 1..64 boxes and "
                              "an ID of at most 16 characters")
    replaceable = {"FilmSizeID", "MagnificationType", "SmoothingType", "MinDensity",
                   "MaxDensity"}
    for keyword in p.replace_unsupported:
        if keyword not in replaceable:
            raise ConfigError(f"{where}.replace_unsupported: {keyword!r} is not one of "
                              + ", ".join(sorted(replaceable)))
    for key in ("min_density_range", "max_density_range"):
        low, high = getattr(p, key)
        if not 0 <= low <= high:
            raise ConfigError(f"{where}.{key}: need 0 <= low <= high, got {low}, {high}")
    try:
        box = FilmBox(image_display_format="STANDARD\\1,1", **p.film_box_defaults)
        FilmSession(**p.film_session_defaults)
        for key, value, allowed in [("film_size_id", box.film_size_id, p.film_sizes),
                                    ("magnification_type", box.magnification_type,
                                     p.magnification_types)]:
            if allowed and value.value not in allowed:  # type: ignore[union-attr]
                raise ConfigError(f"{where}.film_box_defaults.{key}: {value.value} is not "  # type: ignore[union-attr]
                                  "supported by this printer")
        for key, value, (low, high) in [("min_density", box.min_density, p.min_density_range),
                                        ("max_density", box.max_density, p.max_density_range)]:
            if not low <= int(value) <= high:  # type: ignore[call-overload]
                raise ConfigError(f"{where}.film_box_defaults.{key}: {value} outside the "
                                  f"printer's range {low}..{high}")
        for values, enum, key in [(p.film_sizes, FilmSize, "film_sizes"),
                                  (p.magnification_types, MagnificationType,
                                   "magnification_types")]:
            for v in values:
                parse_enum(enum, key, v)
        for fmt, cells in p.custom_layouts.items():
            ImageDisplayFormat.parse(fmt)
            if not cells or any(len(c) != 4 or min(c) < 0 or c[0] + c[2] > 1 + 1e-9
                                or c[1] + c[3] > 1 + 1e-9 for c in cells):
                raise ConfigError(f"{where}.custom_layouts.{fmt}: cells must be "
                                  "[x, y, width, height] fractions inside the image area")
    except (PrintAttributeError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
        if key == "access":
            value = _section(AccessConfig, value, "access")
        elif key == "archive":
            value = _section(ArchiveConfig, value, "archive")
            if value.duplicates not in ("replace", "keep"):
                raise ConfigError("archive.duplicates: 'replace' or 'keep'")
        elif key == "worklist":
            unknown = set(value) - {"enabled", "completed"}
            if unknown:
                raise ConfigError(f"worklist.{sorted(unknown)[0]}: unknown key "
                                  "(known: completed, enabled)")
            value = WorklistConfig(**value)
            try:
                value.validate()
            except ValueError as err:
                raise ConfigError(f"worklist: {err}") from None
        elif key == "remote":
            value = tuple(_remote(item, i) for i, item in enumerate(value))
        elif key == "printer":
            value = _section(PrinterConfig, value, "printer")
        elif key == "printers":
            value = {name: replace(_section(PrinterConfig, section, f"printers.{name}"),
                                   ae_title=str(section.get("ae_title", name)).strip())
                     for name, section in value.items()}
        elif key == "targets":
            try:
                value = parse_targets(list(value), f"{where}.targets")
            except TargetError as err:
                raise ConfigError(str(err)) from None
        elif key == "annotation_formats":
            value = {str(k).strip().upper(): int(v) for k, v in value.items()}
        elif key in ("film_box_defaults", "film_session_defaults"):
            default = getattr(cls(), key)
            value = {**default, **value}
        elif key == "replace_unsupported":
            value = tuple(str(v).strip() for v in value)
        elif key in ("calling_ae_titles", "film_sizes", "display_formats",
                     "magnification_types", "smoothing_types"):
            value = tuple(str(v).strip().upper() if key != "calling_ae_titles" else str(v)
                          for v in value)
        elif key in ("min_density_range", "max_density_range"):
            value = tuple(int(v) for v in value)
        elif key == "custom_layouts":
            value = {str(k).strip().upper(): tuple(tuple(float(x) for x in c) for c in cells)
                     for k, cells in value.items()}
        kwargs[key] = value
    return cls(**kwargs)


def _remote(item: Any, i: int) -> RemoteAE:
    if isinstance(item, str):
        return RemoteAE.parse(item)
    unknown = set(item) - {"ae_title", "host", "port"}
    if unknown or not {"ae_title", "host", "port"} <= set(item):
        raise ConfigError(f"remote[{i}]: needs exactly ae_title, host and port")
    return RemoteAE.parse(f"{item['ae_title']}@{item['host']}:{item['port']}")


def _resolve_profile(section: dict[str, Any], base: Path) -> dict[str, Any]:
    profile = section.get("output_profile")
    if profile and not Path(profile).is_absolute():
        return {**section, "output_profile": str(base / profile)}
    return section


def load_config(path: str | Path | None = None, **overrides: Any) -> NodeConfig:
    """Read ``path`` (TOML, sections ``[node]``, ``[access]``, ``[printer]``...) and apply
    the non-None ``overrides`` (node keys, as given on the command line)."""
    config = NodeConfig()
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"{path}: {err.strerror}") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: {err}") from None
        node = dict(raw.pop("node", {}))
        for section in ("access", "archive", "worklist", "remote", "printer", "printers"):
            if section in raw:
                node[section] = raw.pop(section)
        if raw:
            raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(raw))}")
        # A profile named in a config file is found next to that file.
        node["printer"] = _resolve_profile(node.get("printer", {}), Path(path).parent)
        node["printers"] = {name: _resolve_profile(section, Path(path).parent)
                            for name, section in node.get("printers", {}).items()}
        if not node["printers"]:
            del node["printers"]
        config = _section(NodeConfig, node, "node")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        config = replace(config, **changes)
    return config.validate()
