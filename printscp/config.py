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

from printscp.printing.enums import DecimateCropBehavior
from printscp.printing.errors import PrintAttributeError
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


@dataclass(frozen=True)
class AccessConfig:
    """Who may associate.  Empty ``calling_ae_titles`` accepts any calling AE.

    Entries are ``"AE"`` (any host) or ``"AE@host"`` (that host only).
    """

    calling_ae_titles: tuple[str, ...] = ()
    require_called_ae: bool = False


@dataclass(frozen=True)
class PrinterConfig:
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
    max_pdu: int = 65536
    max_associations: int = 16
    network_timeout: float = 60.0
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    #: Print jobs waiting in a worker's spool queue before new ones are refused (0xC602).
    max_queued_jobs: int = 100
    #: Processes receiving associations on the shared port (each with its own render
    #: process); 0: one per CPU core, at most 4.
    workers: int = 0
    access: AccessConfig = field(default_factory=AccessConfig)
    printer: PrinterConfig = field(default_factory=PrinterConfig)

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
        try:
            DecimateCropBehavior(self.printer.decimate_crop_default)
        except ValueError:
            raise ConfigError("printer.decimate_crop_default: must be DECIMATE, CROP or FAIL") \
                from None
        try:
            FilmBox(image_display_format="STANDARD\\1,1", **self.printer.film_box_defaults)
            FilmSession(**self.printer.film_session_defaults)
        except (PrintAttributeError, TypeError) as err:
            raise ConfigError(f"printer defaults: {err}") from None
        for format_id, boxes in self.printer.annotation_formats.items():
            if not 1 <= boxes <= 64 or not format_id or len(format_id) > 16:
                raise ConfigError(f"printer.annotation_formats.{format_id}: 1..64 boxes and "
                                  "an ID of at most 16 characters")
        for entry in self.access.calling_ae_titles:
            if not entry.split("@", 1)[0].strip():
                raise ConfigError(f"access.calling_ae_titles: empty AE title in {entry!r}")
        return self


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
        if key == "access":
            value = _section(AccessConfig, value, "access")
        elif key == "printer":
            value = _section(PrinterConfig, value, "printer")
        elif key == "annotation_formats":
            value = {str(k).strip().upper(): int(v) for k, v in value.items()}
        elif key in ("film_box_defaults", "film_session_defaults"):
            default = getattr(cls(), key)
            value = {**default, **value}
        elif key == "calling_ae_titles":
            value = tuple(str(v) for v in value)
        kwargs[key] = value
    return cls(**kwargs)


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
        for section in ("access", "printer"):
            if section in raw:
                node[section] = raw.pop(section)
        if raw:
            raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(raw))}")
        printer = node.get("printer", {})
        profile = printer.get("output_profile")
        if profile and not Path(profile).is_absolute():
            # A profile named in a config file is found next to that file.
            printer = {**printer, "output_profile": str(Path(path).parent / profile)}
            node["printer"] = printer
        config = _section(NodeConfig, node, "node")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        config = replace(config, **changes)
    return config.validate()
