"""The GSDF against its formula and PS3.14 Table B-1."""

import math

import numpy as np
import pytest

from lut import gsdf


def reference_luminance(j: float) -> float:
    """PS3.14 eq. 7.1 written out term by term with math, as an independent check."""
    a, b, c, d, e = -1.3011877, -2.5840191e-2, 8.0242636e-2, -1.0320229e-1, 1.3646699e-1
    f, g, h, k, m = 2.8745620e-2, -2.5468404e-2, -3.1978977e-3, 1.2992634e-4, 1.3635334e-3
    x = math.log(j)
    num = a + c * x + e * x**2 + g * x**3 + m * x**4
    den = 1 + b * x + d * x**2 + f * x**3 + h * x**4 + k * x**5
    return 10 ** (num / den)


def test_luminance_matches_formula_everywhere():
    j = np.linspace(1, 1023, 5000)
    ref = np.array([reference_luminance(v) for v in j])
    np.testing.assert_allclose(gsdf.luminance(j), ref, rtol=1e-9)


def test_luminance_matches_table_b1(ps314_tables):
    j, published = ps314_tables["B-1"]
    ours = gsdf.luminance(j)
    rel = np.abs(ours - published) / published
    assert j.size == 1023
    assert rel.max() < 1e-3
    assert rel[j >= 100].max() < 3e-5


def test_endpoints_of_the_gsdf():
    assert gsdf.luminance(1) == pytest.approx(0.05, rel=1e-3)
    assert gsdf.luminance(1023) == pytest.approx(3993.4, rel=1e-3)


def test_jnd_index_polynomial_inverts_luminance_within_a_tenth_of_a_jnd(ps314_tables):
    j, published = ps314_tables["B-1"]
    # Eq. 7.2 is an approximation of the inverse of eq. 7.1: a tenth of a JND at worst.
    np.testing.assert_allclose(gsdf.jnd_index(published), j, atol=0.1)
    np.testing.assert_allclose(gsdf.jnd_index(gsdf.luminance(j)), j, atol=0.1)


def test_exact_jnd_index_inverts_luminance():
    j = np.linspace(1, 1023, 20000)
    np.testing.assert_allclose(gsdf.jnd_index_exact(gsdf.luminance(j)), j, atol=1e-8)


def test_scalar_and_array_inputs_agree():
    assert gsdf.luminance(512) == pytest.approx(gsdf.luminance([512])[0])
    assert gsdf.luminance(np.array([[10, 20], [30, 40]])).shape == (2, 2)
