"""The Image Box N-SET data set read from its bytes (fast_decode) is pydicom's, or None."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from printscp.printing.pixel_data import decode_color, decode_grayscale
from printscp.services.print_management.fast_decode import image_box_dataset


def encode(ds: Dataset, implicit: bool, undefined: bool = False) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    if undefined:
        for elem in ds:
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for item in elem.value:
                    item.is_undefined_length_sequence_item = True
    write_dataset(fp, ds)
    return fp.getvalue()


def gray_set(bits: int = 12, **top: object) -> Dataset:
    item = Dataset()
    item.SamplesPerPixel = 1
    item.PhotometricInterpretation = "MONOCHROME2"
    item.Rows, item.Columns = 3, 4
    item.BitsAllocated = 8 if bits == 8 else 16
    item.BitsStored, item.HighBit = bits, bits - 1
    item.PixelRepresentation = 0
    dtype = np.uint8 if bits == 8 else np.uint16
    item.PixelData = np.arange(12, dtype=dtype).reshape(3, 4).tobytes()
    item["PixelData"].VR = "OW"
    ds = Dataset()
    ds.ImageBoxPosition = 2
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    ds.BasicGrayscaleImageSequence = Sequence([item])
    return ds


def color_set() -> Dataset:
    item = Dataset()
    item.SamplesPerPixel = 3
    item.PhotometricInterpretation = "RGB"
    item.PlanarConfiguration = 1
    item.Rows, item.Columns = 2, 2
    item.BitsAllocated = item.BitsStored = 8
    item.HighBit = 7
    item.PixelRepresentation = 0
    item.PixelData = bytes(range(12))
    item["PixelData"].VR = "OB"
    ds = Dataset()
    ds.ImageBoxPosition = 1
    ds.BasicColorImageSequence = Sequence([item])
    return ds


def pydicoms(data: bytes, implicit: bool) -> Dataset:
    ds = read_dataset(io.BytesIO(data), implicit, True)
    ds.walk(lambda _ds, elem: elem.value)
    return ds


def same(fast: Dataset, ref: Dataset) -> None:
    assert fast == ref
    for a, b in zip(fast.iterall(), ref.iterall(), strict=True):
        assert (a.tag, a.VR) == (b.tag, b.VR)
        if a.VR in ("OB", "OW"):  # a view of the message, not bytes: the same bytes
            assert bytes(a.value) == bytes(b.value)
        elif a.VR != "SQ":
            assert a.value == b.value and type(a.value) is type(b.value)
            assert a.VM == b.VM


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("undefined", [False, True])
@pytest.mark.parametrize("make", [
    lambda: gray_set(),
    lambda: gray_set(8),
    lambda: gray_set(Polarity="REVERSE", MagnificationType="CUBIC",
                     RequestedDecimateCropBehavior="CROP", SmoothingType="MEDIUM"),
    lambda: gray_set(Polarity=""),  # empty: the printer's default
    color_set,
], ids=["12-bit", "8-bit", "options", "empty-polarity", "color"])
def test_the_common_data_sets_read_as_pydicom_reads_them(make, implicit, undefined):
    data = encode(make(), implicit, undefined)
    fast = image_box_dataset(data, implicit)
    assert fast is not None
    same(fast, pydicoms(data, implicit))


def test_empty_values_read_as_pydicom_reads_them():
    ds = gray_set()
    ds.BasicGrayscaleImageSequence[0].PixelRepresentation = None
    data = encode(ds, False)
    same(image_box_dataset(data, False), pydicoms(data, False))


@pytest.mark.parametrize("change", [
    lambda ds: setattr(ds, "ConfigurationInformation", "x"),  # not read here: pydicom's
    lambda ds: setattr(ds, "RequestedImageSize", "100"),  # DS: pydicom's type
    lambda ds: setattr(ds, "Polarity", ["NORMAL", "REVERSE"]),  # multi-valued
    lambda ds: setattr(ds.BasicGrayscaleImageSequence[0], "PixelAspectRatio", [1, 2]),
    lambda ds: setattr(ds.BasicGrayscaleImageSequence[0], "PatientName", "X"),
    lambda ds: ds.BasicGrayscaleImageSequence.append(ds.BasicGrayscaleImageSequence[0]),
    lambda ds: setattr(ds, "BasicGrayscaleImageSequence", Sequence([])),
])
def test_anything_else_is_left_to_pydicom(change):
    ds = gray_set()
    change(ds)
    assert image_box_dataset(encode(ds, False), False) is None


@pytest.mark.parametrize("cut", [1, 7, 20, 100])
def test_a_truncated_or_padded_data_set_is_left_to_pydicom(cut):
    data = encode(gray_set(), False)
    assert image_box_dataset(data[:-cut], False) is None
    assert image_box_dataset(data + b"\0" * cut, False) is None


def test_a_nul_padded_text_is_left_to_pydicom():
    data = encode(gray_set(Polarity="NORMAL"), False)
    assert image_box_dataset(data.replace(b"NORMAL", b"NORMA\0"), False) is None


def test_pixels_of_the_message_buffer_are_decoded_in_place_without_a_copy():
    message = io.BytesIO()
    message.write(encode(gray_set(), False))
    buffer = message.getbuffer()
    ds = image_box_dataset(buffer, False)
    image = decode_grayscale(ds.BasicGrayscaleImageSequence[0], True)
    assert np.array_equal(image.pixels, np.arange(12).reshape(3, 4))
    assert not image.pixels.flags.owndata and image.pixels.flags.writeable
    assert np.shares_memory(image.pixels, np.frombuffer(buffer, np.uint8))
    # From pydicom's bytes (read-only), the decoder copies as before.
    ref = pydicoms(encode(gray_set(), False), False)
    copied = decode_grayscale(ref.BasicGrayscaleImageSequence[0], True)
    assert np.array_equal(copied.pixels, image.pixels) and copied.pixels.flags.writeable


def test_bits_above_bits_stored_are_masked_in_the_message_buffer_too():
    ds = gray_set()
    item = ds.BasicGrayscaleImageSequence[0]
    item.PixelData = np.full(12, 0xF00F, np.uint16).tobytes()
    message = io.BytesIO()
    message.write(encode(ds, False))
    fast = image_box_dataset(message.getbuffer(), False)
    image = decode_grayscale(fast.BasicGrayscaleImageSequence[0], True)
    assert (image.pixels == 0x000F).all()


def test_color_pixels_decode_alike_from_both():
    data = encode(color_set(), False)
    fast = decode_color(image_box_dataset(data, False).BasicColorImageSequence[0], True)
    ref = decode_color(pydicoms(data, False).BasicColorImageSequence[0], True)
    assert np.array_equal(fast.pixels, ref.pixels)


@pytest.mark.parametrize("implicit", [False, True])
def test_damaged_data_sets_read_as_pydicom_reads_them_or_are_left_to_it(implicit):
    """Bytes of the headers changed at random (seeded): whatever the fast reading
    accepts, pydicom reads the same; pydicom may fail where it declines."""
    rng = np.random.default_rng(18)
    clean = encode(gray_set(Polarity="REVERSE"), implicit, undefined=bool(implicit))
    pixels_at = clean.index(np.arange(12, dtype=np.uint16).tobytes())
    accepted = 0
    for _ in range(400):
        data = bytearray(clean)
        for pos in rng.integers(0, pixels_at, rng.integers(1, 3)):
            data[pos] = int(rng.integers(0, 256))
        fast = image_box_dataset(bytes(data), implicit)
        if fast is None:
            continue
        accepted += 1
        same(fast, pydicoms(bytes(data), implicit))
    assert accepted  # some damage (a value byte) still reads
