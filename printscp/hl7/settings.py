"""How HL7 orders map onto worklist items, per sending application (``[hl7]``).

The defaults follow IHE RAD TF-2x Appendix B (the ORM v2.3.1 and OMI v2.5.1 mappings of
RAD-4/RAD-13): Accession Number from OBR-18 (Placer Field 1), Requested Procedure ID from
OBR-19, Scheduled Procedure Step ID from OBR-20, Study Instance UID from ZDS-1, Modality
from OBR-24; in an OMI each IPC segment gives these instead (IPC-1..5, station IPC-9).
RISes differ in where they put what, so each field reference is a list tried in order,
and :attr:`Hl7Settings.senders` overrides any of them for one sending application (MSH-3).

Field references are ``SEG-n`` or ``SEG-n.c`` (component) or ``SEG-n.c.s`` (subcomponent):
``"OBR-18"``, ``"ORC-3.1"``, ``"IPC-9"``.  They are checked when the settings are made,
so a typo in the configuration is an error at start, not a silently empty attribute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

__all__ = ["FIELD_REF", "Hl7Settings", "OrderMapping", "parse_ref"]

#: ``SEG-field[.component[.subcomponent]]``.
FIELD_REF = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,2}))?(?:\.(\d{1,2}))?$")


def parse_ref(ref: str) -> tuple[str, int, int, int]:
    """(segment, field, component, subcomponent) of a field reference; 0 = whole."""
    m = FIELD_REF.match(ref.strip())
    if m is None:
        raise ValueError(f"{ref!r} is not a field reference like OBR-18 or ORC-3.1")
    seg, fld, comp, sub = m.groups()
    if int(fld) < 1:
        raise ValueError(f"{ref!r}: fields are numbered from 1")
    return seg, int(fld), int(comp or 0), int(sub or 0)


def _refs(value: Any, name: str) -> tuple[str, ...]:
    refs = (value,) if isinstance(value, str) else tuple(value)
    for ref in refs:
        try:
            parse_ref(str(ref))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return tuple(str(r).strip() for r in refs)


@dataclass(frozen=True)
class OrderMapping:
    """Where an order's identifiers are found: each a list of field references, the
    first non-empty one wins (an empty list: not taken from the message)."""

    #: Accession Number (0008,0050): IHE's OBR-18, else the filler order number.
    accession: tuple[str, ...] = ("OBR-18", "ORC-3.1", "OBR-3.1")
    #: Requested Procedure ID (0040,1001): OBR-19, else the accession number.
    requested_procedure_id: tuple[str, ...] = ("OBR-19",)
    #: Scheduled Procedure Step ID (0040,0009): OBR-20, else the Requested Procedure ID.
    sps_id: tuple[str, ...] = ("OBR-20",)
    #: Study Instance UID (0020,000D): ZDS-1, else derived from accession and procedure.
    study_uid: tuple[str, ...] = ("ZDS-1.1",)
    #: Modality (0008,0060): OBR-24 (Diagnostic Service Section ID).
    modality: tuple[str, ...] = ("OBR-24",)
    #: Scheduled Station AE Title (0040,0001) from the message (none in IHE's ORM).
    station_ae: tuple[str, ...] = ()
    #: Scheduled Station Name (0040,0010).
    station_name: tuple[str, ...] = ()
    #: Modality -> Scheduled Station AE Title, when the message names none.
    station_aes: Mapping[str, str] = field(default_factory=dict)
    #: The station when neither the message nor :attr:`station_aes` names one.
    default_station_ae: str = ""
    #: Assigning authority (PID-3.4) of the patient ID to use when PID-3 repeats.
    patient_id_issuer: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in ("station_aes", "default_station_ae", "patient_id_issuer"):
                continue
            object.__setattr__(self, f.name, _refs(getattr(self, f.name), f.name))
        table = {str(k).strip().upper(): str(v).strip() for k, v in
                 dict(self.station_aes).items()}
        for modality, ae in table.items():
            if not ae or len(ae) > 16 or "\\" in ae:
                raise ValueError(f"station_aes[{modality}]: {ae!r} is not an AE title")
        object.__setattr__(self, "station_aes", MappingProxyType(table))
        if len(self.default_station_ae) > 16:
            raise ValueError(f"default_station_ae: {self.default_station_ae!r} is longer "
                             "than 16 characters")

    def with_overrides(self, overrides: Mapping[str, Any]) -> OrderMapping:
        """This mapping with some keys replaced (unknown keys are an error)."""
        known = {f.name for f in fields(self)}
        # ``accession_field = "OBR-18"`` reads as well as ``accession = ["OBR-18"]``.
        overrides = {k.removesuffix("_field") if k.removesuffix("_field") in known else k: v
                     for k, v in overrides.items()}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown mapping keys: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        return replace(self, **dict(overrides))


@dataclass(frozen=True)
class Hl7Settings:
    """The HL7 inbox's settings (``[hl7]``; built by :mod:`printscp.config`).

    ``application``/``facility``: this node's names in ACKs (MSH-3/4 of the ACK) when
    the message's MSH-5/6 are empty.  ``mapping``: the default :class:`OrderMapping`;
    ``senders``: overrides per sending application (MSH-3, namespace ID), each a
    mapping of :class:`OrderMapping` keys or an :class:`OrderMapping`.
    ``update_archive``: whether A08/A40 change the archive's patient level too.
    ``stations``: modality -> Scheduled Station AE Title, added to every mapping's
    ``station_aes`` (``[hl7.stations]``).
    """

    application: str = "PRINTSCP"
    facility: str = ""
    mapping: OrderMapping = field(default_factory=OrderMapping)
    senders: Mapping[str, Any] = field(default_factory=dict)
    update_archive: bool = True
    stations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.mapping, Mapping):
            object.__setattr__(self, "mapping", OrderMapping().with_overrides(self.mapping))
        if self.stations:
            try:
                object.__setattr__(self, "mapping", self.mapping.with_overrides(
                    {"station_aes": {**self.mapping.station_aes, **dict(self.stations)}}))
            except ValueError as exc:
                raise ValueError(f"stations: {exc}") from None
        built: dict[str, OrderMapping] = {}
        for app, value in dict(self.senders).items():
            try:
                built[str(app)] = value if isinstance(value, OrderMapping) else \
                    self.mapping.with_overrides(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"senders[{app}]: {exc}") from None
        object.__setattr__(self, "senders", MappingProxyType(built))

    def mapping_for(self, sending_application: str) -> OrderMapping:
        """The mapping for messages from ``sending_application`` (MSH-3.1)."""
        return self.senders.get(sending_application, self.mapping)
