"""VOI windowing to image-box pixel values (PS3.3 C.11.2).

``printscp film`` turns modality values into the unsigned 12-bit values an
image box holds; the same functions serve any tool that needs a window applied.
Output is always 0 .. 2**bits - 1 as unsigned integers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: VOI LUT Function (0028,1056) defined terms.
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def window(
    values: ArrayLike,
    center: float,
    width: float,
    *,
    function: str = "LINEAR",
    bits: int = 12,
) -> NDArray[np.uint16]:
    """Apply Window Center/Width with VOI LUT Function ``function``.

    LINEAR follows PS3.3 C.11.2.1.2.1 (width >= 1), LINEAR_EXACT
    C.11.2.1.3.2 and SIGMOID C.11.2.1.3.1 (width > 0).
    """
    fn = (function or "LINEAR").strip().upper()
    if fn not in VOI_FUNCTIONS:
        raise ValueError(f"VOI LUT Function must be one of {', '.join(VOI_FUNCTIONS)}, not {fn!r}")
    x = np.asarray(values, dtype=np.float64)
    top = float((1 << bits) - 1)
    if fn == "LINEAR":
        if width < 1:
            raise ValueError(f"Window Width must be >= 1 for LINEAR, not {width}")
        y = ((x - (center - 0.5)) / max(width - 1.0, 1e-12) + 0.5) * top
    elif fn == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError(f"Window Width must be > 0, not {width}")
        y = ((x - center) / width + 0.5) * top
    else:
        if width <= 0:
            raise ValueError(f"Window Width must be > 0, not {width}")
        y = top / (1.0 + np.exp(-4.0 * (x - center) / width))
    return np.rint(np.clip(y, 0.0, top)).astype(np.uint16)


def full_range(values: ArrayLike, *, bits: int = 12) -> NDArray[np.uint16]:
    """Stretch the data's own minimum..maximum over the output range."""
    x = np.asarray(values, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    top = float((1 << bits) - 1)
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint16)
    return np.rint((x - lo) * (top / (hi - lo))).astype(np.uint16)


def rescale_bits(values: ArrayLike, from_bits: int, bits: int = 12) -> NDArray[np.uint16]:
    """Rescale unsigned ``from_bits`` values (e.g. a VOI LUT's output) to ``bits``."""
    x = np.asarray(values, dtype=np.float64)
    src_top = float((1 << from_bits) - 1)
    top = float((1 << bits) - 1)
    return np.rint(np.clip(x, 0, src_top) * (top / src_top)).astype(np.uint16)
