"""Presentation LUTs for hardcopy (PS3.3 C.11.6, PS3.4 H.4.10): pixel value -> P-value.

Every table here is indexed by the stored pixel value of an image box and holds
P-values normalised to [0, 1] (0 = darkest, 1 = lightest).  The input range is
fixed by the image box's bit depth (2**bits entries), never by the image's own
minimum and maximum: a 12-bit image that only uses 0..1000 must print dark.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lut import density as _density


def _input_values(bits: int) -> NDArray[np.float64]:
    if not 1 <= bits <= 16:
        raise ValueError(f"image bit depth must be 1..16, not {bits}")
    return np.arange(1 << bits, dtype=np.float64)


def identity(bits: int) -> NDArray[np.float64]:
    """IDENTITY: the pixel values are the P-values (scaled to the input range)."""
    v = _input_values(bits)
    return v / v[-1]


def lin_od(
    bits: int,
    min_density: float,
    max_density: float,
    illumination: float = _density.DEFAULT_ILLUMINATION,
    ambient: float = _density.DEFAULT_AMBIENT,
) -> NDArray[np.float64]:
    """LIN OD: printed optical density linear in the pixel value.

    The lowest pixel value prints at Max Density and the highest at Min Density,
    equally spaced in OD; the P-values are whatever the GSDF needs to get there.
    """
    v = _input_values(bits)
    target = max_density - (max_density - min_density) * v / v[-1]
    p = _density.density_to_pvalue(target, 16, min_density, max_density, illumination, ambient)
    return p / 65535.0


def explicit(
    bits: int,
    lut_data: ArrayLike,
    entry_bits: int,
    first_mapped: int = 0,
) -> NDArray[np.float64]:
    """An explicit LUT (LUT Descriptor + LUT Data) of any length.

    The image's input range 0 .. 2**bits - 1 is spread over the LUT's entries
    (linearly interpolated when the lengths differ, as when DCMTK sends a
    4096-entry table for 8-bit images); entries are ``entry_bits`` wide and their
    full range 0 .. 2**entry_bits - 1 maps to P-values 0..1 (PS3.3 C.11.1.1).
    ``first_mapped`` is the input value of the first entry; values below it take
    the first entry and values past the end the last (PS3.3 C.11.1.1).
    """
    data = np.asarray(lut_data, dtype=np.float64).ravel()
    if data.size < 2:
        raise ValueError("an explicit Presentation LUT needs at least 2 entries")
    if not 8 <= entry_bits <= 16:
        raise ValueError(f"LUT entries must be 8..16 bits wide, not {entry_bits}")
    top = float((1 << entry_bits) - 1)
    if data.min() < 0 or data.max() > top:
        raise ValueError(f"LUT Data values must lie in 0..{int(top)} for {entry_bits}-bit entries")
    v = _input_values(bits)
    n = data.size
    if n == (1 << bits):
        index = v - first_mapped
    else:
        # Spread the image range over the table: input range fixed by bit depth.
        index = (v - first_mapped) * (n - 1) / max(v[-1] - first_mapped, 1.0)
    return np.interp(index, np.arange(n, dtype=np.float64), data) / top


def with_polarity(table: NDArray[np.float64], invert: bool) -> NDArray[np.float64]:
    """Apply polarity before the Presentation LUT: inverted inputs read the table backwards.

    ``invert`` is true for MONOCHROME1 pixels or Polarity REVERSE (not both).
    """
    return table[::-1] if invert else table


def quantize(table: NDArray[np.float64], bits: int = 16) -> NDArray[np.uint16]:
    """Round normalised P-values to ``bits``-bit integers for table look-ups."""
    top = (1 << bits) - 1
    return np.rint(np.clip(table, 0.0, 1.0) * top).astype(np.uint16)
