"""Pixel data of an Image Box N-SET (Basic Grayscale/Color Image Sequence) to arrays.

The item carries its own Image Pixel Module (PS3.3 C.13.5 / C.7.6.3).  Print
clients send 8-bit data as OW too (DCMTK does, even in Explicit VR Big Endian),
so the sample size comes from Bits Allocated, never from the VR; bits above Bits
Stored are masked off as PS3.5 8.1.1 requires.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from printscp.core import status
from printscp.core.errors import StatusError
from printscp.core.limits import mib, pixel_bytes
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute

GRAYSCALE_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class DecodedImage:
    pixels: NDArray
    photometric_interpretation: str
    bits_stored: int
    pixel_aspect_ratio: tuple[int, int]


def _required(item: Dataset, keyword: str) -> object:
    """``keyword``'s single value; every attribute read here has VM 1, and a peer that
    sends several (Columns "8\\8") gets 0x0106 rather than a TypeError from int()."""
    value = item.get(keyword)
    if value is None or value == "":
        raise MissingAttribute(keyword, "is required in the image sequence item")
    if isinstance(value, MultiValue | list | tuple):
        raise InvalidAttributeValue(keyword, list(value), "a single value")
    return value


def _integer(keyword: str, value: object) -> int:
    """``value`` as the US it must be; a value of another VR (text read from a data set
    that encodes Rows as a string) is 0x0106 naming the attribute, not a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAttributeValue(keyword, str(value)[:32], "an integer (US)")
    return value


def _optional(item: Dataset, keyword: str, default: int) -> int:
    """``keyword``'s single integer value, ``default`` when absent (VM 1, as
    :func:`_required`)."""
    value = item.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, MultiValue | list | tuple):
        raise InvalidAttributeValue(keyword, list(value), "a single value")
    return _integer(keyword, value)


def _aspect(item: Dataset) -> tuple[int, int]:
    ratio = item.get("PixelAspectRatio")
    if not ratio:
        return 1, 1
    try:
        row, col = (int(v) for v in ratio)
    except (TypeError, ValueError):
        raise InvalidAttributeValue("PixelAspectRatio", ratio, "row\\column integers") from None
    if row <= 0 or col <= 0:
        raise InvalidAttributeValue("PixelAspectRatio", ratio, "row\\column > 0")
    return row, col


def _raw(item: Dataset, count: int, itemsize: int, little_endian: bool) -> memoryview:
    """The ``count`` samples' bytes, without a copy where possible.

    A writable memoryview as Pixel Data (the N-SET's fast decoding,
    :mod:`printscp.services.print_management.fast_decode`) is the received message's own
    buffer, read by nothing after its handler: the view returned is writable then, and
    the decoders keep its memory instead of copying it."""
    data = item.get("PixelData")
    if data is None:
        raise MissingAttribute("PixelData")
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else \
        memoryview(bytes(data))
    need = count * itemsize
    if len(view) < need:
        raise InvalidAttributeValue(
            "PixelData", f"{len(view)} bytes", f"at least {need} bytes (Rows x Columns x samples)"
        )
    if itemsize == 1 and not little_endian and item["PixelData"].VR == "OW":
        # 8-bit samples in OW words, big endian: each byte pair is swapped (PS3.5 8.1.1).
        data = view[:need + (need & 1)]
        words = np.frombuffer(data[: len(data) & ~1], dtype=">u2").astype("<u2")
        view = memoryview(words.tobytes())
    return view[:need]


def _samples(raw: memoryview, dtype: str | type) -> NDArray:
    """The samples of ``raw`` as an array of their own: the view itself when it is the
    message's writable buffer (see :func:`_raw`), else a copy."""
    samples = np.frombuffer(raw, dtype=dtype)
    return samples if not raw.readonly else samples.copy()


def check_declared_size(item: Dataset, max_bytes: int) -> None:
    """Refuse, before anything is allocated, an image whose Rows x Columns x Samples per
    Pixel x Bits Allocated / 8 is over ``max_bytes`` (0: no limit): 0xC605 Insufficient
    memory in printer to store the image (PS3.4 H.4.3), Rows and Columns named.  Values
    missing or not numbers are left to the decoder, which names them."""
    if not max_bytes:
        return
    try:
        declared = pixel_bytes(int(item.get("Rows", 0)), int(item.get("Columns", 0)),
                               int(item.get("SamplesPerPixel", 1) or 1),
                               int(item.get("BitsAllocated", 8) or 8))
    except (TypeError, ValueError):
        return
    if declared > max_bytes:
        raise StatusError(status.INSUFFICIENT_MEMORY,
                          f"Rows x Columns declare {mib(declared)}, over {mib(max_bytes)}",
                          [0x00280010, 0x00280011])


def decode_grayscale(item: Dataset, little_endian: bool = True, *, max_bytes: int = 0
                     ) -> DecodedImage:
    """Decode a Basic Grayscale Image Sequence item (8 or 12 bits stored); an image
    declaring more than ``max_bytes`` is refused first (:func:`check_declared_size`)."""
    check_declared_size(item, max_bytes)
    rows = _integer("Rows", _required(item, "Rows"))
    cols = _integer("Columns", _required(item, "Columns"))
    if _optional(item, "SamplesPerPixel", 1) != 1:
        raise InvalidAttributeValue("SamplesPerPixel", item.SamplesPerPixel, "1")
    photometric = str(_required(item, "PhotometricInterpretation")).strip()
    if photometric not in GRAYSCALE_PHOTOMETRIC:
        raise InvalidAttributeValue("PhotometricInterpretation", photometric,
                                    GRAYSCALE_PHOTOMETRIC)
    allocated = _integer("BitsAllocated", _required(item, "BitsAllocated"))
    stored = _integer("BitsStored", _required(item, "BitsStored"))
    if allocated not in (8, 16):
        raise InvalidAttributeValue("BitsAllocated", allocated, ("8", "16"))
    if (allocated, stored) not in ((8, 8), (16, 12)):
        raise InvalidAttributeValue("BitsStored", stored, "8 with Bits Allocated 8, "
                                    "12 with Bits Allocated 16")
    high = _optional(item, "HighBit", stored - 1)
    if high != stored - 1:
        raise InvalidAttributeValue("HighBit", high, str(stored - 1))
    if _optional(item, "PixelRepresentation", 0) != 0:
        raise InvalidAttributeValue("PixelRepresentation", item.PixelRepresentation, "0")
    if rows < 1 or cols < 1:
        raise InvalidAttributeValue("Rows", f"{rows}x{cols}", "at least 1 row and column")
    itemsize = allocated // 8
    raw = _raw(item, rows * cols, itemsize, little_endian)
    if itemsize == 1:
        pixels = _samples(raw, np.uint8).reshape(rows, cols)
    elif little_endian and sys.byteorder == "little":
        pixels = _samples(raw, np.uint16).reshape(rows, cols)
        pixels &= np.uint16((1 << stored) - 1)
    else:
        dtype = "<u2" if little_endian else ">u2"
        pixels = np.frombuffer(raw, dtype=dtype).astype(np.uint16).reshape(rows, cols)
        pixels &= np.uint16((1 << stored) - 1)
    return DecodedImage(pixels, photometric, stored, _aspect(item))


def decode_color(item: Dataset, little_endian: bool = True, *, max_bytes: int = 0
                 ) -> DecodedImage:
    """Decode a Basic Color Image Sequence item: RGB, 8 bits, color-by-plane (PS3.3 C.13.5);
    an image declaring more than ``max_bytes`` is refused first."""
    check_declared_size(item, max_bytes)
    rows = _integer("Rows", _required(item, "Rows"))
    cols = _integer("Columns", _required(item, "Columns"))
    if _integer("SamplesPerPixel", _required(item, "SamplesPerPixel")) != 3:
        raise InvalidAttributeValue("SamplesPerPixel", item.SamplesPerPixel, "3")
    if str(_required(item, "PhotometricInterpretation")).strip() != "RGB":
        raise InvalidAttributeValue("PhotometricInterpretation", item.PhotometricInterpretation,
                                    "RGB")
    allocated = _integer("BitsAllocated", _required(item, "BitsAllocated"))
    if allocated != 8 or _integer("BitsStored", _required(item, "BitsStored")) != 8:
        raise InvalidAttributeValue("BitsStored", item.get("BitsStored"),
                                    "8 (and Bits Allocated 8)")
    planar = _optional(item, "PlanarConfiguration", 1)
    if planar not in (0, 1):
        raise InvalidAttributeValue("PlanarConfiguration", planar, ("0", "1"))
    # Reordered into an array of its own (a copy) whichever the planar configuration.
    raw = np.frombuffer(_raw(item, rows * cols * 3, 1, little_endian), dtype=np.uint8)
    if planar == 1:
        pixels = raw.reshape(3, rows, cols).transpose(1, 2, 0).copy()
    else:
        pixels = raw.reshape(rows, cols, 3).copy()
    return DecodedImage(pixels, "RGB", 8, _aspect(item))


def lut_data(elem: Any, little_endian: bool = True) -> NDArray:
    """LUT Data (0028,3006) of a Presentation LUT as integers: OW bytes in the transfer
    syntax's byte order, or the US values pydicom already decoded (Implicit VR)."""
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return np.frombuffer(bytes(value), dtype="<u2" if little_endian else ">u2")
    if isinstance(value, int):
        return np.asarray([value])
    return np.asarray(list(value))
