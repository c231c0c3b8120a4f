"""Hardcopy: optical density, luminance and P-values (PS3.14 §7.2, Annex D.2).

A film or print is seen by the light it sends back: for transmissive film on a
light box ``L = La + L0 * 10**-D`` with Illumination ``L0`` and Reflected Ambient
Light ``La`` (PS3.4 H / PS3.3 C.13.6, both in cd/m²).  P-values are spread
linearly in JND index between the luminances of Max Density and Min Density, so
equal P-value steps are equally visible on the viewed film.

Densities are optical densities (OD), not the hundredths used on the wire.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lut import gsdf

#: PS3.3 defaults of Illumination (2010,015E) and Reflected Ambient Light (2010,0160).
DEFAULT_ILLUMINATION = 2000.0
DEFAULT_AMBIENT = 10.0


def density_to_luminance(
    density: ArrayLike,
    illumination: float = DEFAULT_ILLUMINATION,
    ambient: float = DEFAULT_AMBIENT,
) -> NDArray[np.float64]:
    """Luminance (cd/m²) seen through/off a patch of optical density ``density``."""
    d = np.asarray(density, dtype=np.float64)
    return ambient + illumination * np.power(10.0, -d)


def luminance_to_density(
    lum: ArrayLike,
    illumination: float = DEFAULT_ILLUMINATION,
    ambient: float = DEFAULT_AMBIENT,
) -> NDArray[np.float64]:
    """Optical density that gives luminance ``lum``; inverse of :func:`density_to_luminance`.

    Luminances at or below the ambient level have no finite density; they raise
    ``ValueError`` rather than silently returning ``inf``.
    """
    lum = np.asarray(lum, dtype=np.float64)
    if np.any(lum <= ambient):
        raise ValueError(
            f"luminance must exceed the reflected ambient light ({ambient} cd/m²)"
        )
    return -np.log10((lum - ambient) / illumination)


def _checked_jnd_range(bits: int, min_density: float, max_density: float,
                       illumination: float, ambient: float) -> tuple[float, float]:
    if not 1 <= bits <= 16:
        raise ValueError(f"P-value bit depth must be 1..16, not {bits}")
    if not 0 <= min_density < max_density:
        raise ValueError(
            f"need 0 <= Min Density < Max Density, got {min_density} and {max_density}"
        )
    if illumination <= 0 or ambient < 0:
        raise ValueError("Illumination must be > 0 and Reflected Ambient Light >= 0")
    return jnd_range(min_density, max_density, illumination, ambient)


def jnd_range(
    min_density: float,
    max_density: float,
    illumination: float = DEFAULT_ILLUMINATION,
    ambient: float = DEFAULT_AMBIENT,
) -> tuple[float, float]:
    """JND indices of the darkest (Max Density) and lightest (Min Density) patches."""
    lmin, lmax = density_to_luminance([max_density, min_density], illumination, ambient)
    jmin, jmax = gsdf.jnd_index_exact([lmin, lmax])
    return float(jmin), float(jmax)


def pvalue_to_density(
    p: ArrayLike,
    bits: int,
    min_density: float,
    max_density: float,
    illumination: float = DEFAULT_ILLUMINATION,
    ambient: float = DEFAULT_AMBIENT,
) -> NDArray[np.float64]:
    """Optical density of P-value ``p`` (0 .. 2**bits - 1) on a GSDF-calibrated film.

    P-value 0 gives Max Density (darkest), the top P-value gives Min Density; in
    between the JND index is linear in the P-value (PS3.14 Annex D.2.3).
    ``p`` may be fractional (the renderer passes normalised values times the range).
    """
    jmin, jmax = _checked_jnd_range(bits, min_density, max_density, illumination, ambient)
    frac = np.asarray(p, dtype=np.float64) / float((1 << bits) - 1)
    j = jmin + frac * (jmax - jmin)
    d = luminance_to_density(gsdf.luminance(j), illumination, ambient)
    # The JND range comes from the exact inverse of eq. 7.1, so the ends already
    # land on Max and Min Density; the clip only removes rounding noise.
    return np.clip(d, min_density, max_density)


def density_to_pvalue(
    density: ArrayLike,
    bits: int,
    min_density: float,
    max_density: float,
    illumination: float = DEFAULT_ILLUMINATION,
    ambient: float = DEFAULT_AMBIENT,
) -> NDArray[np.float64]:
    """Fractional P-value (0 .. 2**bits - 1) that prints as ``density``.

    Inverse of :func:`pvalue_to_density`; densities outside [Min, Max] are clipped,
    since the film cannot render them.  Used for the LIN OD Presentation LUT.
    """
    jmin, jmax = _checked_jnd_range(bits, min_density, max_density, illumination, ambient)
    d = np.clip(np.asarray(density, dtype=np.float64), min_density, max_density)
    j = gsdf.jnd_index_exact(density_to_luminance(d, illumination, ambient))
    frac = np.clip((j - jmin) / (jmax - jmin), 0.0, 1.0)
    return frac * float((1 << bits) - 1)
