"""Presentation LUT semantics for print (PS3.3 C.11.6, PS3.4 H)."""

import numpy as np
import pytest

from lut import density, presentation
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute
from printscp.printing.presentation_lut import PresentationLUT


def test_identity_input_range_is_fixed_by_bit_depth():
    t = presentation.identity(12)
    assert t.size == 4096 and t[0] == 0 and t[-1] == 1
    # An image that only uses 0..1000 must stay dark: P-value 1000/4095, not 1.
    assert t[1000] == pytest.approx(1000 / 4095)


def test_lin_od_gives_densities_linear_in_pixel_value():
    p = presentation.lin_od(8, 0.2, 3.0) * 65535
    d = density.pvalue_to_density(p, 16, 0.2, 3.0)
    np.testing.assert_allclose(d, np.linspace(3.0, 0.2, 256), atol=2e-4)


def test_explicit_lut_same_length_is_used_as_is():
    data = np.arange(256)[::-1] * 16  # 12-bit entries, inverted ramp
    t = presentation.explicit(8, data, 12)
    np.testing.assert_allclose(t, data / 4095)


def test_explicit_lut_longer_than_input_is_spread_over_input_range():
    # DCMTK sends 4096-entry tables for 8-bit images: value 255 must hit the last entry.
    data = np.arange(4096) ** 2 // 4096
    t = presentation.explicit(8, data, 12)
    assert t[0] == 0 and t[-1] == pytest.approx(data[-1] / 4095)
    assert t[128] == pytest.approx(np.interp(128 * 4095 / 255, np.arange(4096), data) / 4095)


def test_explicit_lut_shorter_than_input_interpolates():
    t = presentation.explicit(12, [0, 255], 8)
    assert t[2048] == pytest.approx(2048 / 4095)


def test_polarity_reverses_the_table():
    t = presentation.identity(8)
    assert presentation.with_polarity(t, True)[0] == 1


def test_presentation_lut_object_validates_descriptor_and_data():
    with pytest.raises(InvalidAttributeValue, match="LUTData"):
        PresentationLUT(lut_descriptor=(256, 0, 12), lut_data=np.arange(255))
    with pytest.raises(InvalidAttributeValue, match="LUTDescriptor"):
        PresentationLUT(lut_descriptor=(256, 0, 20), lut_data=np.arange(256))
    with pytest.raises(MissingAttribute, match="PresentationLUTShape"):
        PresentationLUT()
    with pytest.raises(InvalidAttributeValue, match=r"\(2050,0020\)"):
        PresentationLUT(shape="GAMMA")
    lut = PresentationLUT(lut_descriptor=(0, 0, 16), lut_data=np.arange(65536))
    assert lut.lut_descriptor == (65536, 0, 16)
    assert PresentationLUT(shape="lin od").shape.value == "LIN OD"
