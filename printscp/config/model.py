"""The configuration's typed sections, each checked completely when it is built.

Every field carries its rule (``field(metadata={"expect": ...})``, see
:mod:`printscp.config.checks`); ``__post_init__`` applies them in field order, stores
the typed value (tuples, enum members, floats) and then checks the rules that join
several fields.  So a section built from a TOML file, from command-line options or in
Python is valid, and a wrong value raises :class:`ConfigError` naming its key
(relative to the section; the loader adds the section and the file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from printscp.archive.archive import DuplicatePolicy
from printscp.config.checks import (
    CODE_STRING,
    Boolean,
    Choice,
    Custom,
    Expect,
    Fields,
    Instance,
    Integer,
    ListOf,
    Number,
    Range,
    TableOf,
    Text,
    sub,
)
from printscp.core.access import ACCESS_ENTRY_RULE, check_access_entry
from printscp.core.errors import ConfigError, wrong_type, wrong_value
from printscp.core.remote import (
    AE_TITLE_RULE,
    HOST_RULE,
    RemoteAE,
    check_ae_title,
    check_host,
    check_port,
)
from printscp.jobs.targets import DEFAULT_TARGETS, Target
from printscp.printing.display_format import DisplayFormatKind, ImageDisplayFormat
from printscp.printing.enums import (
    DecimateCropBehavior,
    DensityKeyword,
    FilmOrientation,
    FilmSize,
    MagnificationType,
    MediumType,
    PrintPriority,
    RequestedResolution,
    Trim,
    film_destination_is_valid,
)
from printscp.printing.errors import PrintAttributeError
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import MAX_COPIES, FilmSession
from printscp.worklist.items import CompletedSteps, WorklistConfig

__all__ = [
    "AccessConfig",
    "ArchiveConfig",
    "AuditConfig",
    "CompletedSteps",
    "DuplicatePolicy",
    "Hl7Config",
    "HttpConfig",
    "LimitsConfig",
    "NodeConfig",
    "PrinterConfig",
    "Replaceable",
    "TlsConfig",
    "WorklistConfig",
]


class Replaceable(StrEnum):
    """Film Box attributes a printer may replace by its default (``replace_unsupported``)."""

    FILM_SIZE_ID = "FilmSizeID"
    MAGNIFICATION_TYPE = "MagnificationType"
    SMOOTHING_TYPE = "SmoothingType"
    MIN_DENSITY = "MinDensity"
    MAX_DENSITY = "MaxDensity"


def expects(expect: Expect) -> dict[str, Expect]:
    """A field's metadata: the rule its values follow."""
    return {"expect": expect}


class _Checked:
    """``__post_init__`` applies each field's rule, then :meth:`_check`."""

    #: Prefix of the keys of this class's own (non-table) fields in error messages.
    _own_prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            expect = f.metadata.get("expect")
            if expect is None:
                continue
            key = f.name if isinstance(expect, Instance) or not self._own_prefix else \
                f"{self._own_prefix}.{f.name}"
            object.__setattr__(self, f.name, expect(getattr(self, f.name), key))
        self._check()

    def _check(self) -> None:
        """Rules joining several fields."""

    def validate(self) -> Any:
        """Kept for callers of the old API: a built section is already valid."""
        return self


# -- rules shared by several keys ----------------------------------------------------------
AE_TITLE = Custom(check_ae_title, AE_TITLE_RULE)
PRINTER_AE_TITLE = Custom(lambda v, k: v if v == "" else check_ae_title(v, k),
                          f'"" or {AE_TITLE_RULE}')
LONG_STRING = Text(max_len=64, dicom=True)  # LO: Manufacturer, Printer Name...
DENSITY = Integer(0, 65535)  # hundredths of OD (US)
DENSITY_RANGE = Range(DENSITY)
TIMEOUT = Number(0, open_low=True)
PATH = Text(nonempty=True, describe="a non-empty path")
PORT_OR_ZERO = Custom(lambda v, k: check_port(v, k, any_port=True), "an integer 0-65535")
CALLING_ENTRY_RULE = "an AE title, or AE@ADDRESS (an IP address)"
ACCESS_LIST = ListOf(Custom(check_access_entry, ACCESS_ENTRY_RULE))


def _calling_entry(value: Any, key: str) -> str:
    what = CALLING_ENTRY_RULE
    if not isinstance(value, str):
        raise wrong_type(value, what, key)
    title, at, host = value.partition("@")
    try:
        check_ae_title(title, key)
        if at:
            import ipaddress

            ipaddress.ip_address(host.strip())
    except (ConfigError, ValueError):
        raise wrong_value(value, what, key) from None
    return value


DISPLAY_FORMAT_RULE = ("a kind (STANDARD, ROW, COL, SLIDE, SUPERSLIDE, CUSTOM) or a format "
                       "such as STANDARD\\2,3 or CUSTOM\\1")


def _display_format(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(value, DISPLAY_FORMAT_RULE, key)
    text = value.strip().upper()
    if text in tuple(DisplayFormatKind):
        return text
    try:
        return str(ImageDisplayFormat.parse(text))
    except PrintAttributeError:
        raise wrong_value(value, DISPLAY_FORMAT_RULE, key) from None


CUSTOM_FORMAT_RULE = "SLIDE, SUPERSLIDE or CUSTOM\\i"


def _custom_format(value: Any, key: str) -> str:
    try:
        fmt = ImageDisplayFormat.parse(value)
    except PrintAttributeError:
        fmt = None
    if fmt is None or fmt.kind not in (DisplayFormatKind.SLIDE, DisplayFormatKind.SUPERSLIDE,
                                       DisplayFormatKind.CUSTOM):
        raise wrong_value(value, CUSTOM_FORMAT_RULE, key)
    return str(fmt)


CELL_RULE = "[x, y, width, height], fractions inside the image area (width, height > 0)"
_FRACTION = Number(0, 1)


def _cell(value: Any, key: str) -> tuple[float, float, float, float]:
    if not isinstance(value, list | tuple):
        raise wrong_type(value, CELL_RULE, key)
    if len(value) != 4:
        raise wrong_value(value, CELL_RULE, key)
    x, y, w, h = (_FRACTION(v, f"{key}[{i}]") for i, v in enumerate(value))
    if w <= 0 or h <= 0 or x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
        raise wrong_value(value, CELL_RULE, key, "is not inside the image area")
    return x, y, w, h


DENSITY_RULE = "BLACK, WHITE or an integer 0-65535 (hundredths of OD)"


CUSTOM_LAYOUTS = TableOf(
    ListOf(Custom(_cell, CELL_RULE), min_len=1),
    key_rule=Custom(_custom_format, CUSTOM_FORMAT_RULE),
    describe=f"a table of SLIDE, SUPERSLIDE or CUSTOM\\i = a list of cells {CELL_RULE}")


def _density(value: Any, key: str) -> Any:
    if isinstance(value, str):
        if value.strip().upper() not in tuple(DensityKeyword):
            raise wrong_value(value, DENSITY_RULE, key)
        return DensityKeyword(value.strip().upper())
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(value, DENSITY_RULE, key)
    return DENSITY(value, key)


def _film_destination(value: Any, key: str) -> str:
    what = "MAGAZINE, PROCESSOR or BIN_i"
    if not isinstance(value, str):
        raise wrong_type(value, what, key)
    text = value.strip().upper()
    if not film_destination_is_valid(text):
        raise wrong_value(value, what, key)
    return text


#: Film Box attributes a printer may default, with their rules.
FILM_BOX_DEFAULTS: dict[str, Expect] = {
    "film_size_id": Choice(FilmSize),
    "film_orientation": Choice(FilmOrientation),
    "magnification_type": Choice(MagnificationType),
    "smoothing_type": CODE_STRING,
    "border_density": Custom(_density, DENSITY_RULE),
    "empty_image_density": Custom(_density, DENSITY_RULE),
    "min_density": DENSITY,
    "max_density": DENSITY,
    "trim": Choice(Trim),
    "configuration_information": Text(max_len=1024),
    "illumination": Integer(1, 65535),
    "reflected_ambient_light": Integer(0, 65535),
    "requested_resolution_id": Choice(RequestedResolution),
}

#: Film Session attributes a printer may default, with their rules.
FILM_SESSION_DEFAULTS: dict[str, Expect] = {
    "number_of_copies": Integer(1, MAX_COPIES),
    "print_priority": Choice(PrintPriority),
    "medium_type": Choice(MediumType),
    "film_destination": Custom(_film_destination, "MAGAZINE, PROCESSOR or BIN_i"),
    "film_session_label": Text(max_len=64),
    "owner_id": Text(max_len=16),
    "memory_allocation": Integer(0, 2**31 - 1),
    "illumination": Integer(1, 65535),
    "reflected_ambient_light": Integer(0, 65535),
}


def _grid(columns: int, rows: int) -> tuple[tuple[float, float, float, float], ...]:
    """Cells of a rows x columns grid in row-major order (SLIDE/SUPERSLIDE defaults)."""
    return tuple((c / columns, r / rows, 1 / columns, 1 / rows)
                 for r in range(rows) for c in range(columns))


# -- sections ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccessConfig(_Checked):
    """Who may associate, and who may use which service.

    ``calling_ae_titles`` (empty: any calling AE) are ``"AE"`` (any host) or
    ``"AE@address"`` (that IP address only); others get an A-ASSOCIATE-RJ.  The lists
    per service group are applied by :mod:`printscp.services.access`: a refused service's
    presentation contexts are rejected at negotiation, a refused request answered with
    the standard's status.
    """

    calling_ae_titles: tuple[str, ...] = field(default=(), metadata=expects(ListOf(
        Custom(_calling_entry, CALLING_ENTRY_RULE))))
    require_called_ae: bool = field(default=False, metadata=expects(Boolean()))
    # Who may use each service group (see printscp.core.access for the entries; the
    # reasons for the defaults are in docs/configuration.md): anyone may send what
    # the node is for, only the AE table may read the archive back.
    echo: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))
    store: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))
    query: tuple[str, ...] = field(default=("known",), metadata=expects(ACCESS_LIST))
    retrieve: tuple[str, ...] = field(default=("known",), metadata=expects(ACCESS_LIST))
    print: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))
    worklist: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))
    mpps: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))
    commitment: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))
    events: tuple[str, ...] = field(default=("any",), metadata=expects(ACCESS_LIST))


class TlsVersion(StrEnum):
    """Lowest TLS version accepted (BCP 195: TLS 1.2 or later)."""

    TLS_1_2 = "1.2"
    TLS_1_3 = "1.3"


@dataclass(frozen=True)
class TlsConfig(_Checked):
    """DICOM TLS (PS3.15 B.9/B.10, BCP 195): a TLS listener beside, or instead of, the
    plain one.  Paths relative to the configuration file are next to it."""

    enabled: bool = field(default=False, metadata=expects(Boolean()))
    port: int = field(default=2762, metadata=expects(PORT_OR_ZERO))
    #: This node's certificate (PEM, the chain after it) and its private key (PEM).
    certificate: str = field(default="", metadata=expects(Text()))
    private_key: str = field(default="", metadata=expects(Text()))
    #: CA certificates (PEM bundle) that peers' certificates must chain to; "" : the
    #: system's trusted CAs.
    ca_certificates: str = field(default="", metadata=expects(Text()))
    require_client_certificate: bool = field(default=True, metadata=expects(Boolean()))
    min_version: TlsVersion = field(default=TlsVersion.TLS_1_2,
                                    metadata=expects(Choice(TlsVersion)))
    #: Also listen without TLS on [node] port (false: TLS only).
    plain: bool = field(default=True, metadata=expects(Boolean()))

    def _check(self) -> None:
        if self.enabled:
            for name in ("certificate", "private_key"):
                if not getattr(self, name):
                    raise ConfigError("missing; expected a PEM file (required when "
                                      "tls.enabled = true)", name)


@dataclass(frozen=True)
class LimitsConfig(_Checked):
    """Bounds against exhaustion; each, when hit, is answered with the standard's status
    or an A-ASSOCIATE-RJ (transient, local limit exceeded) and a log line."""

    #: Associations at once from one peer address (0: only [node] max_associations).
    associations_per_host: int = field(default=0, metadata=expects(Integer(0)))
    #: Largest data set of one C-STORE (MiB).
    max_dataset_mb: int = field(default=2048, metadata=expects(Integer(1)))
    #: Largest data set of one Image Box N-SET (MiB).
    max_image_box_mb: int = field(default=256, metadata=expects(Integer(1)))
    #: Largest Rows x Columns x Samples x Bits Allocated / 8 of one image (MiB).
    max_pixel_mb: int = field(default=1024, metadata=expects(Integer(1)))
    #: Deepest nesting of sequences in a received data set.
    max_sequence_depth: int = field(default=32, metadata=expects(Integer(1, 1000)))
    #: Image boxes of one film box, film boxes of one film session.
    max_image_boxes: int = field(default=256, metadata=expects(Integer(1)))
    max_film_boxes: int = field(default=64, metadata=expects(Integer(1)))
    #: Print jobs waiting from one calling AE title (0: only [node] max_queued_jobs).
    pending_jobs_per_ae: int = field(default=0, metadata=expects(Integer(0)))


@dataclass(frozen=True)
class AuditConfig(_Checked):
    """The audit trail (``DATA_DIR/audit/``), PS3.15 A.5 vocabulary."""

    enabled: bool = field(default=True, metadata=expects(Boolean()))
    #: A file is closed and a new one begun past this size (MiB); whole files rotate.
    rotate_mb: int = field(default=64, metadata=expects(Integer(1)))
    #: Days a closed file is kept (0: for ever).
    keep_days: int = field(default=0, metadata=expects(Integer(0)))
    #: One Network Entry line per accepted association (who connected, what it did);
    #: refused associations, and what associations store, query and retrieve, are
    #: recorded whatever this says.  A node polled by C-ECHO every few seconds may
    #: turn it off.
    associations: bool = field(default=True, metadata=expects(Boolean()))


@dataclass(frozen=True)
class ArchiveConfig(_Checked):
    """The archive (Storage, Query/Retrieve): files under ``data_dir/archive``."""

    enabled: bool = field(default=True, metadata=expects(Boolean()))
    #: A second C-STORE of a stored SOP Instance UID: ``replace`` (the new copy wins)
    #: or ``keep`` (the first copy stays; the new one is acknowledged and discarded).
    duplicates: DuplicatePolicy = field(default=DuplicatePolicy.REPLACE,
                                        metadata=expects(Choice(DuplicatePolicy)))
    #: Store each printed job's films as an Encapsulated PDF instance (queryable and
    #: retrievable like any instance).
    store_films: bool = field(default=True, metadata=expects(Boolean()))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) only reaches this machine."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HttpConfig(_Checked):
    """The console and its API (``[http]``): where they listen.

    Bound to anything but a loopback address they require users
    (``printscp users add``); ``printscp serve`` refuses to start otherwise.
    """

    _own_prefix: ClassVar[str] = "http"

    enabled: bool = field(default=True, metadata=expects(Boolean()))
    bind: str = field(default="127.0.0.1", metadata=expects(Custom(check_host, HOST_RULE)))
    port: int = field(default=8080, metadata=expects(PORT_OR_ZERO))

    @property
    def loopback(self) -> bool:
        return is_loopback(self.bind)


HL7_BIND_RULE = '"" (the node\'s bind) or a host name or IP address'
HL7_OVERRIDE_RULE = ('a field reference ("OBR-18"), a list of them tried in order, a '
                     "string, or a table of strings")


def _hl7_bind(value: Any, key: str) -> str:
    return value if value == "" else check_host(value, key)


def _hl7_override(value: Any, key: str) -> Any:
    """A mapping override's value, as :class:`~printscp.hl7.settings.OrderMapping` takes
    it (it checks the field references themselves)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    raise wrong_type(value, HL7_OVERRIDE_RULE, key)


HL7_MAPPING = TableOf(Custom(_hl7_override, HL7_OVERRIDE_RULE),
                      describe='a table of mapping name = field, e.g. accession = "OBR-18"')


def _settings_error(exc: Exception, key: str) -> ConfigError:
    """Hl7Settings' ``ValueError("name: problem")`` as a ConfigError naming the key."""
    text = str(exc)
    name, sep, rest = text.partition(": ")
    name = name.split("[", 1)[0]
    if sep and name.isidentifier():
        return ConfigError(rest, sub(key, name))
    return ConfigError(text, key)


@dataclass(frozen=True)
class Hl7Config(_Checked):
    """HL7 v2 over MLLP (``[hl7]``): orders and patient updates from the RIS into the
    worklist (:mod:`printscp.hl7`).  Off by default: a node takes orders only when
    told where from.  ``mapping``, ``senders`` and ``stations`` are the overrides of
    :class:`printscp.hl7.settings.Hl7Settings`: ``[hl7.mapping]`` for every sender,
    ``[hl7.senders.RIS]`` for one (MSH-3), ``[hl7.stations]`` modality = station AE."""

    _own_prefix: ClassVar[str] = "hl7"

    enabled: bool = field(default=False, metadata=expects(Boolean()))
    #: 2575: the port IANA registered for HL7 over MLLP.
    port: int = field(default=2575, metadata=expects(PORT_OR_ZERO))
    bind: str = field(default="", metadata=expects(Custom(_hl7_bind, HL7_BIND_RULE)))
    #: A larger message closes the connection (with a log line).
    max_message_kb: int = field(default=1024, metadata=expects(Integer(1, 65536)))
    #: Seconds a connection may stay silent before it is closed.
    idle_timeout: float = field(default=300.0, metadata=expects(TIMEOUT))
    max_connections: int = field(default=16, metadata=expects(Integer(1, 1024)))
    #: MLLP inside TLS, with the node's [tls] certificate, key and CA certificates.
    tls: bool = field(default=False, metadata=expects(Boolean()))
    #: This node's names in ACKs (MSH-3/4) when a message's MSH-5/6 are empty.
    application: str = field(default="PRINTSCP", metadata=expects(Text(nonempty=True,
                                                                       max_len=227)))
    facility: str = field(default="", metadata=expects(Text(max_len=227)))
    #: A08/A40 change the archive's patient level too, not only the worklist.
    update_archive: bool = field(default=True, metadata=expects(Boolean()))
    #: Overrides of the IHE mapping for every sender: name = field reference(s).
    mapping: dict[str, Any] = field(default_factory=dict, metadata=expects(HL7_MAPPING))
    #: Per sending application (MSH-3): overrides of the mapping for its messages.
    senders: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=expects(
        TableOf(HL7_MAPPING, describe="a table of [hl7.senders.APP] tables")))
    #: Modality = Scheduled Station AE Title, when a message names no station.
    stations: dict[str, str] = field(default_factory=dict, metadata=expects(
        TableOf(Custom(check_ae_title, AE_TITLE_RULE),
                describe=f"a table of modality = {AE_TITLE_RULE}")))

    def _check(self) -> None:
        self.settings()  # a bad override: one line naming its key, at load time

    def settings(self) -> Any:
        """The :class:`~printscp.hl7.settings.Hl7Settings` of this section (keys
        relative to it in errors)."""
        from printscp.hl7.settings import Hl7Settings, OrderMapping

        try:  # checked part by part, so that the error names the key
            mapping = OrderMapping().with_overrides(self.mapping)
        except (ValueError, TypeError) as exc:
            raise _settings_error(exc, "mapping") from None
        for app, overrides in self.senders.items():
            try:
                mapping.with_overrides(overrides)
            except (ValueError, TypeError) as exc:
                raise _settings_error(exc, sub("senders", app)) from None
        try:
            return Hl7Settings(application=self.application, facility=self.facility,
                               mapping=mapping, senders=self.senders,
                               update_archive=self.update_archive, stations=self.stations)
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc), "") from None


@dataclass(frozen=True)
class PrinterConfig(_Checked):
    """One printer profile.  ``[printer]`` is the node's default printer; each
    ``[printers.NAME]`` is another one, reached by its own called AE title."""

    #: Called AE title that reaches this printer ("" for [printer]: the node's AE title;
    #: a [printers.NAME] section defaults to NAME).
    ae_title: str = field(default="", metadata=expects(PRINTER_AE_TITLE))
    name: str = field(default="printscp", metadata=expects(
        Text(max_len=64, nonempty=True, dicom=True)))
    manufacturer: str = field(default="printscp", metadata=expects(LONG_STRING))
    model: str = field(default="printscp virtual film printer",
                       metadata=expects(LONG_STRING))
    serial_number: str = field(default="0001", metadata=expects(LONG_STRING))
    #: DCMTK characteristic file of the output device; empty: built-in pdf-srgb.
    output_profile: str = field(default="", metadata=expects(
        Text(describe='"" or a file path')))
    #: Rendering resolution; 0: from Requested Resolution ID (STANDARD 300, HIGH 600).
    dpi: float = field(default=0.0, metadata=expects(
        Number(0, 1200, open_low=True, zero=True)))
    #: What to do with an image larger than its box when the SCU does not say.
    decimate_crop_default: DecimateCropBehavior = field(
        default=DecimateCropBehavior.FAIL, metadata=expects(Choice(DecimateCropBehavior)))
    #: Film Session N-ACTION prints all film boxes as one job (collation).  When false,
    #: it prints them one by one with warning 0xB601, and a new Film Box while an
    #: unprinted one exists is refused with 0xC616 (PS3.4 H.4).
    collation: bool = field(default=True, metadata=expects(Boolean()))
    #: Film Box attributes whose unsupported values are replaced by the default (with
    #: warning 0x0116 / 0xB605 on N-SET) instead of refused with 0x0106.
    replace_unsupported: tuple[Replaceable, ...] = field(default=(), metadata=expects(
        ListOf(Choice(Replaceable), unique=True)))
    #: Supported Film Size IDs; empty: all 12 defined terms.
    film_sizes: tuple[FilmSize, ...] = field(default=(), metadata=expects(
        ListOf(Choice(FilmSize), unique=True)))
    #: Supported Image Display Formats: kinds (STANDARD, ROW, COL, SLIDE, SUPERSLIDE,
    #: CUSTOM) or exact formats ("CUSTOM\\1"); empty: STANDARD, ROW, COL and every
    #: format of custom_layouts.
    display_formats: tuple[str, ...] = field(default=(), metadata=expects(
        ListOf(Custom(_display_format, DISPLAY_FORMAT_RULE), unique=True)))
    #: Supported Magnification Types; empty: all four.
    magnification_types: tuple[MagnificationType, ...] = field(default=(), metadata=expects(
        ListOf(Choice(MagnificationType), unique=True)))
    #: Accepted Smoothing Types (for CUBIC: SHARP Lanczos, MEDIUM cubic, SMOOTH
    #: bilinear; other accepted terms print as MEDIUM); empty: any code string.
    smoothing_types: tuple[str, ...] = field(default=("SHARP", "MEDIUM", "SMOOTH"),
                                             metadata=expects(ListOf(CODE_STRING, unique=True)))
    #: Ranges (hundredths of OD) the printer can produce for Min and Max Density.
    min_density_range: tuple[int, int] = field(default=(0, 100),
                                               metadata=expects(DENSITY_RANGE))
    max_density_range: tuple[int, int] = field(default=(150, 400),
                                               metadata=expects(DENSITY_RANGE))
    #: Cells (x, y, width, height as fractions of the image area, in position order) of
    #: the configuration-dependent formats: SLIDE, SUPERSLIDE, CUSTOM\\i.
    custom_layouts: dict[str, tuple[tuple[float, float, float, float], ...]] = field(
        default_factory=lambda: {"SLIDE": _grid(4, 5), "SUPERSLIDE": _grid(4, 4)},
        metadata=expects(CUSTOM_LAYOUTS))
    #: Annotation Display Format IDs: how many Basic Annotation Boxes each has
    #: (laid left to right in the strip below the images).
    annotation_formats: dict[str, int] = field(
        default_factory=lambda: {"ANNOTATION": 1, "LABEL": 1, "BOTTOM2": 2, "BOTTOM3": 3,
                                 "BOTTOM4": 4},
        metadata=expects(TableOf(Integer(1, 64), key_rule=CODE_STRING,
                                 describe="a table of format ID = number of boxes 1-64")))
    #: Film Box attributes used when the SCU does not send them.
    film_box_defaults: dict[str, Any] = field(default_factory=lambda: {
        "film_size_id": "14INX17IN", "film_orientation": "PORTRAIT",
        "magnification_type": "BILINEAR", "border_density": "BLACK",
        "empty_image_density": "BLACK", "min_density": 20, "max_density": 300,
        "trim": "NO", "requested_resolution_id": "STANDARD",
        "illumination": 2000, "reflected_ambient_light": 10,
    }, metadata=expects(Fields(FILM_BOX_DEFAULTS, "a table of Film Box attributes")))
    #: Where printed films go: film files, CUPS queues, upstream DICOM printers
    #: (``[[printer.targets]]``, see docs/configuration.md); default one PDF per job.
    targets: tuple[Target, ...] = field(default=DEFAULT_TARGETS, metadata=expects(ListOf(
        Instance(Target, "a [[printer.targets]] table"),
        describe="a list of [[printer.targets]] tables")))
    #: Film Session attributes used when the SCU does not send them.
    film_session_defaults: dict[str, Any] = field(default_factory=lambda: {
        "number_of_copies": 1, "print_priority": "MED", "medium_type": "BLUE FILM",
        "film_destination": "MAGAZINE",
    }, metadata=expects(Fields(FILM_SESSION_DEFAULTS, "a table of Film Session attributes")))

    def _check(self) -> None:
        box = self.film_box_defaults
        for key, allowed, name in [
            ("film_size_id", self.film_sizes, "film_sizes"),
            ("magnification_type", self.magnification_types, "magnification_types"),
            ("smoothing_type", self.smoothing_types, "smoothing_types"),
        ]:
            if allowed and key in box and box[key] not in allowed:
                raise wrong_value(box[key], "one of " + ", ".join(allowed),
                                  f"film_box_defaults.{key}", f"is not in {name}")
        for key, (low, high) in [("min_density", self.min_density_range),
                                 ("max_density", self.max_density_range)]:
            if key in box and not low <= box[key] <= high:
                raise wrong_value(box[key], f"an integer {low}-{high}",
                                  f"film_box_defaults.{key}", f"is outside {key}_range")
        configured = (DisplayFormatKind.SLIDE, DisplayFormatKind.SUPERSLIDE,
                      DisplayFormatKind.CUSTOM)
        for i, fmt in enumerate(self.display_formats):
            exact = fmt not in tuple(DisplayFormatKind) or fmt in configured[:2]
            if exact and ImageDisplayFormat.parse(fmt).kind in configured \
                    and fmt not in self.custom_layouts:
                raise wrong_value(fmt, "a format with cells in custom_layouts",
                                  f"display_formats[{i}]", "has no layout")
        # What the rules above cannot see (Min Density below Max Density...): the film
        # objects themselves, whose errors name the DICOM attribute.
        for name, build in [
            ("film_box_defaults",
             lambda: FilmBox(image_display_format="STANDARD\\1,1", **box)),
            ("film_session_defaults", lambda: FilmSession(**self.film_session_defaults)),
        ]:
            try:
                build()
            except PrintAttributeError as err:
                keyword = err.keyword.lower()
                fieldname = next((k for k in getattr(self, name)
                                  if k.replace("_", "") == keyword), "")
                raise ConfigError(str(err).split(": ", 1)[-1], sub(name, fieldname)
                                  if fieldname else name) from None


@dataclass(frozen=True)
class NodeConfig(_Checked):
    """The node: ``[node]`` keys, and every other section as a field."""

    _own_prefix: ClassVar[str] = "node"

    ae_title: str = field(default="PRINTSCP", metadata=expects(AE_TITLE))
    port: int = field(default=11112, metadata=expects(PORT_OR_ZERO))
    bind: str = field(default="0.0.0.0", metadata=expects(Custom(check_host, HOST_RULE)))
    data_dir: str = field(default="./printscp-data", metadata=expects(PATH))
    max_pdu: int = field(default=131072, metadata=expects(Integer(4096, 1 << 22, zero=True)))
    max_associations: int = field(default=16, metadata=expects(Integer(1)))
    network_timeout: float = field(default=60.0, metadata=expects(TIMEOUT))
    acse_timeout: float = field(default=30.0, metadata=expects(TIMEOUT))
    dimse_timeout: float = field(default=60.0, metadata=expects(TIMEOUT))
    #: Print jobs waiting in a worker's spool queue before new ones are refused (0xC602).
    max_queued_jobs: int = field(default=100, metadata=expects(Integer(1)))
    #: Free disk space (MiB) in the data directory below which the Printer reports
    #: WARNING (SUPPLY LOW) and FAILURE (SUPPLY EMPTY), with N-EVENT-REPORTs.
    disk_warning_mb: int = field(default=1024, metadata=expects(Integer(0)))
    disk_failure_mb: int = field(default=64, metadata=expects(Integer(0)))
    #: Processes receiving associations on the shared port (each with its own render
    #: process); 0: one per CPU core, at most 4.
    workers: int = field(default=0, metadata=expects(Integer(0, 64)))
    #: Days a finished print job's source (its films' pixels) is kept for reprinting.
    job_history_days: int = field(default=7, metadata=expects(Integer(0)))
    access: AccessConfig = field(default_factory=AccessConfig, metadata=expects(
        Instance(AccessConfig, "an [access] table")))
    archive: ArchiveConfig = field(default_factory=ArchiveConfig, metadata=expects(
        Instance(ArchiveConfig, "an [archive] table")))
    worklist: WorklistConfig = field(default_factory=WorklistConfig, metadata=expects(
        Instance(WorklistConfig, "a [worklist] table")))
    http: HttpConfig = field(default_factory=HttpConfig, metadata=expects(
        Instance(HttpConfig, "an [http] table")))
    tls: TlsConfig = field(default_factory=TlsConfig, metadata=expects(
        Instance(TlsConfig, "a [tls] table")))
    limits: LimitsConfig = field(default_factory=LimitsConfig, metadata=expects(
        Instance(LimitsConfig, "a [limits] table")))
    audit: AuditConfig = field(default_factory=AuditConfig, metadata=expects(
        Instance(AuditConfig, "an [audit] table")))
    hl7: Hl7Config = field(default_factory=Hl7Config, metadata=expects(
        Instance(Hl7Config, "an [hl7] table")))
    #: Peers by AE title (``[[remote]]`` tables, and ``--remote AE@HOST:PORT``): where
    #: C-MOVE sends, where storage commitment results go.
    remote: tuple[RemoteAE, ...] = field(default=(), metadata=expects(ListOf(
        Instance(RemoteAE, "a table {ae_title, host, port} or AE@HOST:PORT"))))
    printer: PrinterConfig = field(default_factory=PrinterConfig, metadata=expects(
        Instance(PrinterConfig, "a [printer] table")))
    #: Further printer profiles by name, each reached by its own called AE title.
    printers: dict[str, PrinterConfig] = field(default_factory=dict, metadata=expects(
        TableOf(Instance(PrinterConfig, "a [printers.NAME] table"),
                describe="a table of [printers.NAME] tables")))

    def _check(self) -> None:
        if self.disk_failure_mb > self.disk_warning_mb:
            raise wrong_value(self.disk_failure_mb,
                              f"an integer 0-{self.disk_warning_mb} (node.disk_warning_mb)",
                              "node.disk_failure_mb", "is above the warning level")
        seen = {self.ae_title: "node.ae_title"}
        for name, printer in self.printers.items():
            key = sub(sub("printers", name), "ae_title")
            if printer.ae_title in seen or printer.ae_title == "":
                raise wrong_value(printer.ae_title, "a called AE title no other printer "
                                  f"uses ({seen.get(printer.ae_title, 'node.ae_title')} "
                                  "has it)", key)
            seen[printer.ae_title] = key
        if self.hl7.tls and not (self.tls.certificate and self.tls.private_key):
            raise ConfigError("needs the node's certificate: set [tls] certificate and "
                              "private_key", "hl7.tls")
        titles: dict[str, int] = {}
        for i, remote in enumerate(self.remote):
            if remote.ae_title in titles:
                raise wrong_value(remote.ae_title, "each AE title once in the AE table",
                                  f"remote[{i}].ae_title",
                                  f"is also remote[{titles[remote.ae_title]}]")
            titles[remote.ae_title] = i

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
    def all_printers(self) -> tuple[PrinterConfig, ...]:
        """The default printer profile, then the ``[printers.NAME]`` ones."""
        return (self.printer, *self.printers.values())

    def printer_named(self, name: str) -> PrinterConfig:
        """The printer profile called ``name``; KeyError naming the known ones."""
        for printer in self.all_printers:
            if printer.name == name:
                return printer
        known = ", ".join(p.name for p in self.all_printers)
        raise KeyError(f"no printer profile {name!r} (known: {known})")

    def job_targets(self, printer: PrinterConfig) -> tuple[Target, ...]:
        """Where a job printed on ``printer`` goes: its targets, plus the archive when
        it stores films (``[archive] store_films``)."""
        from printscp.jobs.targets import ArchiveTarget

        targets = printer.targets
        if self.archive.enabled and self.archive.store_films and not any(
                isinstance(t, ArchiveTarget) for t in targets):
            targets = (*targets, ArchiveTarget())
        return targets

    def job_printing(self, printer: PrinterConfig) -> dict[str, Any]:
        """The fields of a print job that say how and where ``printer`` prints it
        (recorded in the job when spooled, replaced when it is reprinted elsewhere).
        The output profile is the printer's current QA profile version
        (``printscp qa test-printer --recalibrate``, ``qa rollback``) when it has one."""
        from calibration.qa.profiles import current_profile  # QA recalibration's version

        current = current_profile(self.data_path, printer.name)
        return {"printer": printer.name,
                "output_profile": str(current) if current else printer.output_profile,
                "dpi": printer.dpi or None,
                "targets": [t.to_json() for t in self.job_targets(printer)]}

    def reprint_printing(self, printer: str | None, target: str | None
                         ) -> tuple[str, tuple[Target, ...], dict[str, Any]]:
        """Where and how a reprint goes (the ``resolve_targets`` of
        :class:`printscp.jobs.control.JobControl`): the printer profile named ``printer``
        (None: the default one), its targets or only the one labelled (or with the id)
        ``target``, and how it prints (output profile, dpi).  ValueError starting
        ``printer:`` or ``target:`` names what is unknown and what is known."""
        try:
            profile = self.printer_named(printer) if printer else self.printer
        except KeyError as exc:
            raise ValueError(f"printer: {exc.args[0]}") from None
        targets = self.job_targets(profile)
        if target:
            chosen = tuple(t for t in targets if target in (t.label, t.id))
            if not chosen:
                raise ValueError(f"target: printer {profile.name!r} has no target {target!r} "
                                 f"(known: {', '.join(t.label for t in targets)})")
            targets = chosen
        printing = self.job_printing(profile)
        return profile.name, targets, {k: printing[k] for k in ("output_profile", "dpi")}

    @property
    def called_ae_titles(self) -> tuple[str, ...]:
        """Every AE title this node answers to."""
        return (self.ae_title.strip(), *(p.ae_title for p in self.printers.values()))

    @property
    def worker_count(self) -> int:
        return self.workers or min(4, os.cpu_count() or 1)

    @property
    def hl7_bind(self) -> str:
        """Where the MLLP listener binds: ``[hl7] bind``, else the node's."""
        return self.hl7.bind or self.bind

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()
