"""Output profiles: how an output device turns optical densities into its levels.

A profile is a device characteristic curve (DCMTK's file format, see
:mod:`lut.device`).  For a printer curve (DDL -> optical density) the device
is driven so its luminance, seen at the film's Illumination and Reflected
Ambient Light, follows the GSDF between the film box's Min and Max Density — the
P-value → density mapping of PS3.14 reproduced on that device.  For a display
curve (DDL -> luminance) the P-values follow the GSDF between the display's own
Lmin and Lmax (ambient included).

The default profile, ``pdf-srgb``, describes a PDF page: a gray level ``v`` of
the page has relative luminance sRGB⁻¹(v/255), i.e. optical density
-log10(sRGB⁻¹(v/255)), the way a viewer shows it on an sRGB display or a printer
lays it on paper.  A film so rendered looks on screen as it would on a light box
relative to the unexposed light (Min Density 0.20 shows as gray level ~209,
Max Density 3.00 as ~3).  Any DCMTK printer or monitor file can replace it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numpy.typing import NDArray

from lut import device as lut_device

#: Number of P-value entries of the device tables (16-bit P-values).
PVALUE_ENTRIES = 65536
#: Optical density the default profile gives gray level 0 (sRGB black).
SRGB_BLACK_OD = 4.0


@dataclass(frozen=True, eq=False)
class OutputProfile:
    """A named device characteristic curve, with its device tables cached."""

    name: str
    curve: lut_device.CharacteristicCurve
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> OutputProfile:
        """Load a DCMTK characteristic file; its kind comes from its header comment.

        Files whose values are optical densities must say so: DCMTK's printer and
        scanner files start with ``# Printer``/``# Scanner``; anything else is
        read as a monitor file (luminance).
        """
        with open(path, encoding="latin-1") as f:
            head = f.read(200).lower()
        kind = (lut_device.DeviceKind.PRINTER if "printer" in head or "scanner" in head
                else lut_device.DeviceKind.MONITOR)
        curve = lut_device.read_characteristic_file(path, kind)
        return cls(os.path.basename(os.fspath(path)), curve)

    def table(self, bits: int, min_density: float, max_density: float,
              illumination: float, ambient: float) -> NDArray:
        """Device level per 16-bit P-value: uint8 for ``bits`` 8, uint16 (full range) for 16.

        8-bit levels are the device's own DDLs when it has 256 of them (the
        DCMTK-identical calibration); 16-bit levels place the P-value on the
        continuous device curve, scaled to 0..65535.
        """
        key = (bits, min_density, max_density, illumination, ambient)
        if key not in self._cache:
            self._cache[key] = self._build(*key)
        return self._cache[key]

    def _build(self, bits: int, dmin: float, dmax: float,
               illumination: float, ambient: float) -> NDArray:
        curve = self.curve
        kwargs: dict = {}
        if curve.kind.is_hardcopy:
            kwargs = dict(min_density=dmin, max_density=dmax,
                          illumination=illumination, ambient=ambient)
        if bits == 8:
            ddl = lut_device.pvalue_to_ddl(curve, PVALUE_ENTRIES, **kwargs).astype(np.float64)
        else:
            # Continuous inverse of the device curve: a 16-bit output distinguishes
            # what the device's integer DDLs would merge.
            device = lut_device.device_luminance(
                curve, **{k: v for k, v in kwargs.items() if k in ("illumination", "ambient")})
            device = np.maximum.accumulate(device)
            target = lut_device.gsdf_target_luminance(curve, PVALUE_ENTRIES, **kwargs)
            ddl = np.interp(target, device, np.arange(device.size, dtype=np.float64))
        top = 255 if bits == 8 else 65535
        out = np.rint(ddl * (top / curve.max_ddl))
        return np.clip(out, 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def srgb_page_curve() -> lut_device.CharacteristicCurve:
    """The default ``pdf-srgb`` curve: optical density of each 8-bit page gray level."""
    v = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    od = np.full(256, SRGB_BLACK_OD)
    od[1:] = np.minimum(-np.log10(linear[1:]), SRGB_BLACK_OD)
    return lut_device.CharacteristicCurve(
        kind=lut_device.DeviceKind.PRINTER, max_ddl=255,
        ddl=np.arange(256), values=np.round(od, 4),
        ambient=10.0, illumination=2000.0,
    )


@cache
def default_profile() -> OutputProfile:
    return OutputProfile("pdf-srgb", srgb_page_curve())
