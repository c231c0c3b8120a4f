"""The devices a QA program tests: displays and printer profiles, and their EDID.

A device is what the history hangs on, so its identity is checked when it is made:
a test recorded against a misspelt id, or a printer judged by display criteria, would
be a history nobody can use.  A display is named by the user (``RAD-1``) and described
by its manufacturer, model and serial number, best read from its EDID (what the display
itself reports, :func:`read_edid`), so that a swapped panel shows as a new serial; a
printer's id is the printer profile name (``[printer] name`` / ``[printers.NAME]``),
which is how the console's Printers page finds its QC.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibration.qa.criteria import PRINTER_CRITERIA, CriteriaSet
from calibration.qa.results import FIGURE_KEYS, DeviceKind

DISPLAY_CRITERIA: tuple[str, ...] = tuple(c.value for c in CriteriaSet)

#: The criteria a device of each kind may be judged by.
CRITERIA_OF_KIND: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.DISPLAY: DISPLAY_CRITERIA,
    DeviceKind.PRINTER: (PRINTER_CRITERIA,),
}
#: A device's criteria when none is given.
DEFAULT_CRITERIA: dict[DeviceKind, str] = {
    DeviceKind.DISPLAY: CriteriaSet.TG18.value,
    DeviceKind.PRINTER: PRINTER_CRITERIA,
}
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Device:
    """A display or printer under QA.

    ``criteria`` left empty is the kind's default (``tg18`` for displays,
    ``ps3.14-film`` for printers).  ``diagnostic`` chooses the stricter limits of a
    display used for diagnosis (TG18 primary vs secondary).  ``printer_ae`` is the
    called AE title of a printer (printers only).  ``site_limits`` are the site's own
    (figure key, low, high) for figures it judges beyond the criteria set — the change
    since the baseline, say, which no source at hand limits — kept with the device so
    that every test of it is held to the same (a mapping is accepted and sorted).
    ``interval_days`` is the site's own schedule: days a test keeps the device current
    (0: its criteria set's interval, :func:`calibration.qa.criteria.constancy_interval`).
    """

    id: str
    kind: DeviceKind
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    criteria: str = ""
    diagnostic: bool = True
    description: str = ""
    printer_ae: str = ""
    site_limits: tuple[tuple[str, float | None, float | None], ...] = ()
    interval_days: int = 0

    def __post_init__(self) -> None:
        check_device_id(self.id)
        object.__setattr__(self, "site_limits", check_site_limits(self.site_limits,
                                                                  f"device {self.id}"))
        try:
            kind = DeviceKind(self.kind)
        except ValueError:
            raise ValueError(f"device {self.id}: kind {self.kind!r} is not one of "
                             f"{', '.join(k.value for k in DeviceKind)}") from None
        object.__setattr__(self, "kind", kind)
        criteria = self.criteria or DEFAULT_CRITERIA[kind]
        if criteria not in CRITERIA_OF_KIND[kind]:
            raise ValueError(f"device {self.id}: criteria {criteria!r} is not one for a "
                             f"{kind.value} (one of {', '.join(CRITERIA_OF_KIND[kind])})")
        object.__setattr__(self, "criteria", criteria)
        for name in ("manufacturer", "model", "serial", "description", "printer_ae"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isprintable():
                raise ValueError(f"device {self.id}: {name} {value!r} is not printable text")
            object.__setattr__(self, name, value.strip())
        if self.printer_ae:
            if kind is not DeviceKind.PRINTER:
                raise ValueError(f"device {self.id}: a printer AE title is for printers only")
            if len(self.printer_ae) > 16 or "\\" in self.printer_ae:
                raise ValueError(f"device {self.id}: printer AE title {self.printer_ae!r} "
                                 "is not an AE title (at most 16 characters, no backslash)")
        if not isinstance(self.diagnostic, bool):
            raise ValueError(f"device {self.id}: diagnostic must be true or false")
        if (isinstance(self.interval_days, bool) or not isinstance(self.interval_days, int)
                or not 0 <= self.interval_days <= 3660):
            raise ValueError(f"device {self.id}: interval_days {self.interval_days!r} is not "
                             "a number of days 0-3660 (0: the criteria set's)")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "manufacturer": self.manufacturer,
                "model": self.model, "serial": self.serial, "criteria": self.criteria,
                "diagnostic": self.diagnostic, "description": self.description,
                "printer_ae": self.printer_ae,
                "site_limits": {k: [lo, hi] for k, lo, hi in self.site_limits},
                "interval_days": self.interval_days}

    @property
    def limits(self) -> dict[str, tuple[float | None, float | None]]:
        """:attr:`site_limits` as ``evaluate_display(site_limits=…)`` takes them."""
        return {k: (lo, hi) for k, lo, hi in self.site_limits}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Device:
        return cls(str(data["id"]), DeviceKind(data["kind"]),
                   str(data.get("manufacturer", "")), str(data.get("model", "")),
                   str(data.get("serial", "")), str(data.get("criteria", "")),
                   bool(data.get("diagnostic", True)), str(data.get("description", "")),
                   str(data.get("printer_ae", "")),
                   {k: tuple(v) for k, v in (data.get("site_limits") or {}).items()},
                   int(data.get("interval_days", 0)))


SiteLimits = (Mapping[str, tuple[float | None, float | None]]
              | tuple[tuple[str, float | None, float | None], ...])


def check_site_limits(limits: SiteLimits, where: str = "site limits"
                      ) -> tuple[tuple[str, float | None, float | None], ...]:
    """``limits`` as sorted (key, low, high) triples, each a known figure key with at
    least one finite bound and low ≤ high."""
    items = list(limits.items()) if isinstance(limits, Mapping) else \
        [(row[0], tuple(row[1:])) for row in limits]
    out = []
    for key, bounds in items:
        if key not in FIGURE_KEYS:
            raise ValueError(f"{where}: site limit for an unknown figure {key!r} (known: "
                             f"{', '.join(FIGURE_KEYS)})")
        try:
            low, high = (None if b is None else float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: site limit {key}: expected (low, high), got "
                             f"{bounds!r}") from None
        if (low, high) == (None, None) or any(b is not None and not math.isfinite(b)
                                              for b in (low, high)):
            raise ValueError(f"{where}: site limit {key}: give a finite low, high or both")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{where}: site limit {key}: low {low:g} is above high {high:g}")
        out.append((key, low, high))
    return tuple(sorted(out))


def check_device_id(device_id: object) -> str:
    """``device_id`` if it can name a device: non-empty printable text of at most
    :data:`MAX_ID_LENGTH` characters, without leading or trailing spaces (a command
    line would never find it again)."""
    if not isinstance(device_id, str) or not device_id:
        raise ValueError("a device id must be non-empty text")
    if len(device_id) > MAX_ID_LENGTH:
        raise ValueError(f"device id {device_id[:20]!r}… is longer than {MAX_ID_LENGTH} "
                         "characters")
    if not device_id.isprintable() or device_id != device_id.strip():
        raise ValueError(f"device id {device_id!r} must be printable, without leading or "
                         "trailing spaces")
    return device_id


# -- EDID (VESA E-EDID 1.3/1.4, the 128-byte base block) ------------------------------
EDID_HEADER = bytes.fromhex("00ffffffffffff00")
_DESCRIPTOR_OFFSETS = (54, 72, 90, 108)
_SERIAL_TAG, _NAME_TAG = 0xFF, 0xFC


class EdidError(ValueError):
    """An EDID file that is not one; the message names the file."""


def read_edid(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The identity a display reports in its EDID file (``/sys/class/drm/*/edid``, or a
    hex dump as ``xrandr --verbose`` and ``edid-decode`` print it).

    Returns ``manufacturer`` (the 3-letter PNP id, bytes 8-9), ``product_code``
    (bytes 10-11), ``serial_number`` (the 32-bit number of bytes 12-15; 0 if unset),
    ``serial`` (the serial descriptor 0xFF, else the number, else ""), ``model`` (the
    name descriptor 0xFC, else ""), ``week``, ``year`` and ``version``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EdidError(f"{path}: {exc.strerror or exc}") from None
    if not data.startswith(EDID_HEADER):
        data = _from_hex(data, path)
    return parse_edid(data, str(path))


_HEX_LINE = re.compile(r"^(?:[0-9a-fA-F]{2}\s*)+$")
_HEADER = "00ffffffffffff00"


def _from_hex(data: bytes, path: Path) -> bytes:
    """The EDID in a hex dump: a bare hex block (an ``EDID:`` label and ``0x`` allowed),
    or the block inside the whole output of ``xrandr --verbose`` (per connector, under
    ``EDID:``) or ``edid-decode`` (under ``edid-decode (hex):``): the first run of hex
    lines that holds the header ``00 FF FF FF FF FF FF 00``, from the header on."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise EdidError(f"{path}: not an EDID (no 00 FF FF FF FF FF FF 00 header)") from None
    blocks, run = [], ""
    for line in text.splitlines():
        line = re.sub(r"(?i)^\s*edid:|0x|[,:]", " ", line).strip()
        if line and _HEX_LINE.match(line):
            run += re.sub(r"\s", "", line)
        elif not line and run and not run.lower().startswith(_HEADER):
            continue  # a blank line inside a block that has not started yet
        else:
            if run:
                blocks.append(run)
            run = ""
    if run:
        blocks.append(run)
    for block in blocks:
        start = block.lower().find(_HEADER)
        if start >= 0 and start % 2 == 0:
            return bytes.fromhex(block[start:])
    raise EdidError(f"{path}: not an EDID (neither binary nor a hex dump holding the "
                    "00 FF FF FF FF FF FF 00 header)")


def parse_edid(data: bytes, name: str = "EDID") -> dict[str, Any]:
    """:func:`read_edid` of bytes already read; ``name`` names them in errors."""
    if len(data) < 128:
        raise EdidError(f"{name}: {len(data)} bytes, an EDID has at least 128")
    block = data[:128]
    if block[:8] != EDID_HEADER:
        raise EdidError(f"{name}: not an EDID (no 00 FF FF FF FF FF FF 00 header)")
    if sum(block) % 256:
        raise EdidError(f"{name}: EDID checksum is wrong (byte 127 is {block[127]:#04x}, "
                        f"the block sums to {sum(block) % 256} mod 256, not 0)")
    word = int.from_bytes(block[8:10], "big")
    letters = [(word >> shift) & 0x1F for shift in (10, 5, 0)]
    if word & 0x8000 or not all(1 <= c <= 26 for c in letters):
        raise EdidError(f"{name}: manufacturer id bytes {block[8]:02X} {block[9]:02X} are "
                        "not three letters")
    number = int.from_bytes(block[12:16], "little")
    descriptors = _descriptors(block)
    serial = descriptors.get(_SERIAL_TAG) or (str(number) if number else "")
    return {"manufacturer": "".join(chr(ord("A") - 1 + c) for c in letters),
            "product_code": int.from_bytes(block[10:12], "little"),
            "serial_number": number, "serial": serial,
            "model": descriptors.get(_NAME_TAG, ""),
            "week": block[16], "year": 1990 + block[17] if block[17] else None,
            "version": f"{block[18]}.{block[19]}"}


def _descriptors(block: bytes) -> dict[int, str]:
    """The text descriptors (serial 0xFF, name 0xFC) of the four 18-byte slots: a
    display descriptor starts 00 00 00 <tag> 00, its text ends at 0x0A."""
    out: dict[int, str] = {}
    for offset in _DESCRIPTOR_OFFSETS:
        d = block[offset:offset + 18]
        if d[:3] != b"\0\0\0" or d[3] not in (_SERIAL_TAG, _NAME_TAG):
            continue
        text = d[5:18].split(b"\x0a", 1)[0].decode("cp437").strip()
        text = "".join(ch for ch in text if ch.isprintable())
        if text and d[3] not in out:
            out[d[3]] = text
    return out
