"""Hardcopy densities against PS3.14 Table D.2-1."""

import numpy as np
import pytest

from lut import density


def test_table_d21_reproduced(ps314_tables):
    p, published = ps314_tables["D.2-1"]
    ours = density.pvalue_to_density(p, 8, 0.20, 3.00, illumination=2000, ambient=10)
    assert p.size == 256
    assert np.abs(ours - published).max() <= 0.0015


def test_pvalue_ends_hit_min_and_max_density():
    for bits in (8, 10, 12, 16):
        top = (1 << bits) - 1
        d = density.pvalue_to_density([0, top], bits, 0.25, 3.2)
        np.testing.assert_allclose(d, [3.2, 0.25], atol=1e-9)


def test_densities_are_monotonic_for_12_bits():
    d = density.pvalue_to_density(np.arange(4096), 12, 0.2, 3.0)
    assert np.all(np.diff(d) < 0)


def test_density_luminance_round_trip():
    d = np.linspace(0, 3.5, 50)
    lum = density.density_to_luminance(d, illumination=2000, ambient=10)
    assert lum[0] == pytest.approx(2010.0)
    np.testing.assert_allclose(density.luminance_to_density(lum, 2000, 10), d, atol=1e-12)


def test_luminance_at_or_below_ambient_has_no_density():
    with pytest.raises(ValueError, match="ambient"):
        density.luminance_to_density(10.0, 2000, 10)


def test_density_to_pvalue_inverts_pvalue_to_density():
    p = np.arange(256.0)
    d = density.pvalue_to_density(p, 8, 0.2, 3.0)
    assert np.abs(density.density_to_pvalue(d, 8, 0.2, 3.0) - p).max() < 1e-6


@pytest.mark.parametrize("args", [(0, 3.0, 3.0), (17, 0.2, 3.0), (8, -0.1, 3.0)])
def test_bad_ranges_are_refused(args):
    bits, dmin, dmax = args
    with pytest.raises(ValueError):
        density.pvalue_to_density([0], bits, dmin, dmax)
