"""DICOM image files to image-box pixels, for ``printscp film`` and the print SCU.

A file becomes one print image per frame: grayscale frames go through the
Modality LUT and the VOI LUT (a window from the command line, the file's first
window, its VOI LUT Sequence, or the data's own range) into 12-bit values, keeping
MONOCHROME1 so the renderer prints it white-to-black; color frames become 8-bit
RGB.  This is the modality's half of the print chain: what an SCU would send.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.pixels import apply_modality_lut, apply_voi
from pydicom.pixels.processing import apply_color_lut

from lut import voi

#: Bits Stored of the grayscale pixels produced (an image box holds 8 or 12).
PRINT_BITS = 12


class ImageReadError(Exception):
    """A file that cannot be printed; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class PrintImage:
    """One frame ready for an image box."""

    pixels: NDArray
    photometric_interpretation: str  # MONOCHROME1, MONOCHROME2 or RGB
    bits_stored: int
    pixel_aspect_ratio: tuple[int, int]
    source: str
    frame: int


def _first(value: object) -> float:
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def _window_of(ds: pydicom.Dataset) -> tuple[float, float, str] | None:
    """The file's first window: top level, else the shared functional groups."""
    sources = [ds]
    for seq_kw in ("SharedFunctionalGroupsSequence",):
        for item in getattr(ds, seq_kw, []) or []:
            sources.extend(getattr(item, "FrameVOILUTSequence", []) or [])
    for src in sources:
        if "WindowCenter" in src and "WindowWidth" in src:
            return (_first(src.WindowCenter), _first(src.WindowWidth),
                    str(src.get("VOILUTFunction", "LINEAR") or "LINEAR"))
    return None


def _aspect(ds: pydicom.Dataset) -> tuple[int, int]:
    ratio = ds.get("PixelAspectRatio")
    if ratio and len(ratio) == 2 and int(ratio[0]) > 0 and int(ratio[1]) > 0:
        return int(ratio[0]), int(ratio[1])
    spacing = ds.get("PixelSpacing")
    if spacing and len(spacing) == 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
        # Pixel Spacing is row\column spacing; keep 3 significant digits as a ratio.
        row, col = round(float(spacing[0]) * 1000), round(float(spacing[1]) * 1000)
        g = math.gcd(row, col) or 1
        return row // g, col // g
    return 1, 1


def grayscale_to_print(
    frame: NDArray, ds: pydicom.Dataset,
    window: tuple[float, float] | tuple[float, float, str] | None, *, bits: int = PRINT_BITS
) -> NDArray[np.uint16]:
    """Modality LUT then VOI LUT of one grayscale frame, to ``bits``-bit values (12 for
    print; 8 for DICOMweb's rendered images): ``window`` (center, width[, function])
    when given, else the data set's own window, its VOI LUT, or its data range."""
    values = apply_modality_lut(frame, ds)
    if window is not None:
        center, width, *fn = window
        return voi.window(values, center, width, function=fn[0] if fn else "LINEAR",
                          bits=bits)
    own = _window_of(ds)
    if own is not None:
        center, width, fn = own
        try:
            return voi.window(values, center, width, function=fn, bits=bits)
        except ValueError:
            pass  # an unusable stored window falls back to the VOI LUT or the data range
    if "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        out_bits = int(item.LUTDescriptor[2])
        return voi.rescale_bits(apply_voi(values, ds), out_bits, bits)
    return voi.full_range(values, bits=bits)


def _color_to_rgb8(frame: NDArray, ds: pydicom.Dataset) -> NDArray[np.uint8]:
    pi = str(ds.PhotometricInterpretation)
    if pi == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
        bits = 16 if frame.dtype.itemsize > 1 else 8
    else:
        # pydicom's pixel_array already returns YBR_* data converted to RGB.
        bits = int(ds.BitsStored)
    frame = np.asarray(frame)
    if bits > 8:
        frame = (frame.astype(np.float64) * (255.0 / ((1 << bits) - 1))).round()
    return np.clip(frame, 0, 255).astype(np.uint8)


def read_print_images(
    path: str | os.PathLike[str], window: tuple[float, float] | None = None
) -> Iterator[PrintImage]:
    """Yield a :class:`PrintImage` per frame of the DICOM file at ``path``.

    Raises :class:`ImageReadError` (before yielding anything) when the file is
    not DICOM, has no pixel data or cannot be decoded.
    """
    try:
        ds = pydicom.dcmread(path)
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory") from None
    except Exception as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({exc})") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        sop = ds.get("SOPClassUID")
        kind = f" ({sop.name})" if sop is not None else ""
        raise ImageReadError(path, f"not an image: no Pixel Data{kind}")
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        what = f" in {ts.name}" if ts is not None else ""
        raise ImageReadError(path, f"cannot decode the pixel data{what}: {exc}") from None
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    color = samples == 3 or pi == "PALETTE COLOR"
    if frames == 1:
        pixels = pixels[np.newaxis, ...]
    aspect = _aspect(ds)
    source = os.fspath(path)
    for i in range(pixels.shape[0]):
        frame = pixels[i]
        if color:
            yield PrintImage(_color_to_rgb8(frame, ds), "RGB", 8, aspect, source, i + 1)
        elif pi in ("MONOCHROME1", "MONOCHROME2"):
            yield PrintImage(grayscale_to_print(frame, ds, window), pi, PRINT_BITS, aspect,
                             source, i + 1)
        else:
            raise ImageReadError(path, f"unsupported Photometric Interpretation {pi!r}")
