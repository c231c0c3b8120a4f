"""The Grayscale Standard Display Function of DICOM PS3.14 (Annex A / Annex B).

The GSDF gives the luminance, in cd/m², of every Just-Noticeable-Difference index
``j`` in [1, 1023], and its inverse the JND index of a luminance.  Everything that
maps P-values to light, on film or on screen, goes through these two functions.
Both accept scalars or arrays and always compute in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Smallest and largest JND index of the GSDF (PS3.14 §7.1).
JND_MIN = 1
JND_MAX = 1023
#: Luminance range covered by the GSDF, cd/m² (L(1) and L(1023)).
LUMINANCE_MIN = 0.05
LUMINANCE_MAX = 4000.0

# PS3.14 equation 7.1: rational polynomial in ln(j).
_A = -1.3011877
_B = -2.5840191e-2
_C = 8.0242636e-2
_D = -1.0320229e-1
_E = 1.3646699e-1
_F = 2.8745620e-2
_G = -2.5468404e-2
_H = -3.1978977e-3
_K = 1.2992634e-4
_M = 1.3635334e-3

# PS3.14 equation 7.2: polynomial in log10(L).
_INV = (71.498068, 94.593053, 41.912053, 9.8247004, 0.28175407,
        -1.1878455, -0.18014349, 0.14710899, -0.017046845)


def luminance(j: ArrayLike) -> NDArray[np.float64]:
    """Luminance in cd/m² of JND index ``j`` (PS3.14 eq. 7.1).

    ``j`` may be fractional; values outside [1, 1023] are evaluated by the same
    formula but have no meaning in the standard, so callers clip first.
    """
    x = np.log(np.asarray(j, dtype=np.float64))
    x2 = x * x
    x3 = x2 * x
    x4 = x2 * x2
    x5 = x4 * x
    num = _A + _C * x + _E * x2 + _G * x3 + _M * x4
    den = 1.0 + _B * x + _D * x2 + _F * x3 + _H * x4 + _K * x5
    return np.power(10.0, num / den)


def jnd_index(lum: ArrayLike) -> NDArray[np.float64]:
    """JND index of luminance ``lum`` in cd/m² (PS3.14 eq. 7.2), fractional.

    The polynomial is the standard's own inverse; it agrees with :func:`luminance`
    to about 0.03 JND, which is what PS3.14 publishes and what DCMTK uses.
    """
    x = np.log10(np.asarray(lum, dtype=np.float64))
    return np.polynomial.polynomial.polyval(x, _INV)


def jnd_index_exact(lum: ArrayLike, iterations: int = 3) -> NDArray[np.float64]:
    """JND index whose :func:`luminance` is ``lum`` to within 1e-12 relative.

    Starts from the standard's polynomial and refines with Newton steps on eq. 7.1,
    so a P-value -> luminance -> P-value round trip is exact, and P-value 0 and
    the top P-value land exactly on the luminances they were derived from.
    """
    target = np.log10(np.asarray(lum, dtype=np.float64))
    j = np.clip(jnd_index(lum), 0.5, 1100.0)
    for _ in range(iterations):
        h = 1e-4 * j
        f = np.log10(luminance(j)) - target
        slope = (np.log10(luminance(j + h)) - np.log10(luminance(j - h))) / (2 * h)
        j = j - f / slope
    return j
