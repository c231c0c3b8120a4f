"""Image sequence items to pixel arrays: bit depths, byte orders, planar configuration."""

import numpy as np
import pytest
from pydicom.dataset import Dataset

from printscp.printing.errors import InvalidAttributeValue, MissingAttribute
from printscp.printing.pixel_data import decode_color, decode_grayscale


def item(**kw) -> Dataset:
    ds = Dataset()
    for k, v in {"SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2", "Rows": 2,
                 "Columns": 3, "BitsAllocated": 16, "BitsStored": 12, "HighBit": 11,
                 "PixelRepresentation": 0, **kw}.items():
        setattr(ds, k, v)
    return ds


def test_12_bit_little_and_big_endian_and_high_bits_masked():
    values = np.array([[0, 1, 4095], [2048, 100, 7]], dtype=np.uint16)
    le = item(PixelData=values.astype("<u2").tobytes())
    np.testing.assert_array_equal(decode_grayscale(le).pixels, values)
    be = item(PixelData=values.astype(">u2").tobytes())
    np.testing.assert_array_equal(decode_grayscale(be, little_endian=False).pixels, values)
    noisy = item(PixelData=(values | 0xF000).astype("<u2").tobytes())  # overlay bits set
    np.testing.assert_array_equal(decode_grayscale(noisy).pixels, values)


def test_8_bit_in_ow_big_endian_is_byte_swapped_back():
    values = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw = values.tobytes()
    swapped = b"".join(raw[i:i + 2][::-1] for i in range(0, 6, 2))
    ds = item(BitsAllocated=8, BitsStored=8, HighBit=7)
    ds.add_new(0x7FE00010, "OW", swapped)
    np.testing.assert_array_equal(decode_grayscale(ds, little_endian=False).pixels, values)
    ds = item(BitsAllocated=8, BitsStored=8, HighBit=7)
    ds.add_new(0x7FE00010, "OB", raw)
    np.testing.assert_array_equal(decode_grayscale(ds).pixels, values)


@pytest.mark.parametrize("change, error, keyword", [
    ({"BitsStored": 10}, InvalidAttributeValue, "BitsStored"),
    ({"PhotometricInterpretation": "RGB"}, InvalidAttributeValue, "PhotometricInterpretation"),
    ({"PixelRepresentation": 1}, InvalidAttributeValue, "PixelRepresentation"),
    ({"HighBit": 15}, InvalidAttributeValue, "HighBit"),
    ({"PixelData": b"\0" * 4}, InvalidAttributeValue, "PixelData"),
    ({"Rows": None}, MissingAttribute, "Rows"),
])
def test_bad_items_name_the_attribute(change, error, keyword):
    ds = item(PixelData=b"\0" * 12)
    for k, v in change.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    with pytest.raises(error, match=keyword):
        decode_grayscale(ds)


def test_color_by_plane_and_by_pixel():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    base = dict(SamplesPerPixel=3, PhotometricInterpretation="RGB", BitsAllocated=8,
                BitsStored=8, HighBit=7)
    planes = item(PlanarConfiguration=1, PixelData=rgb.transpose(2, 0, 1).tobytes(), **base)
    np.testing.assert_array_equal(decode_color(planes).pixels, rgb)
    pixels = item(PlanarConfiguration=0, PixelData=rgb.tobytes(), **base)
    np.testing.assert_array_equal(decode_color(pixels).pixels, rgb)
