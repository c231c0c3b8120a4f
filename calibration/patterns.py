"""Test patterns a measurement needs: TG18-LN-style patches and a printer step wedge.

Each pattern is written as a Secondary Capture DICOM file (printable through
printscp itself, ``printscp film`` reads it) and as a PNG.  Pixel values are the
driving levels to measure; the DICOM window (center 2**(bits-1), width 2**bits)
passes them through unchanged.  :func:`write_image` is also how the QA set of
:mod:`calibration.tg18` is written (with Pixel Spacing when its size is known).
"""

from __future__ import annotations

import io
import os
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from printscp.core.files import atomic_write

MM_PER_INCH = 25.4

#: TG18-LN uses 18 levels.
TG18_LEVELS = 18


def pattern_levels(count: int = TG18_LEVELS, bits: int = 8) -> NDArray[np.int64]:
    """``count`` driving levels equally spaced over 0 .. 2**bits - 1 (0, 15 ... 255)."""
    if count < 3:
        raise ValueError(f"need at least 3 levels, got {count}")
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be 1..16, got {bits}")
    return np.rint(np.linspace(0, (1 << bits) - 1, count)).astype(np.int64)


def luminance_patch(level: int, bits: int = 8, size: int = 512) -> NDArray[np.int64]:
    """TG18-LN style: a uniform surround at 20 % of full scale, a centre square at ``level``.

    The square covers 10 % of the area, the size the photometer reads; the constant
    surround keeps the display's loading the same for every level (TG18 §4.3.1).
    """
    top = (1 << bits) - 1
    image = np.full((size, size), round(0.2 * top), dtype=np.int64)
    half = round(size * np.sqrt(0.1) / 2)
    c = size // 2
    image[c - half:c + half, c - half:c + half] = level
    return image


def step_wedge(levels: NDArray[np.int64], bits: int = 8, size: int = 1024,
               columns: int = 6) -> NDArray[np.int64]:
    """A grid of uniform patches, one per level, left to right then top to bottom.

    Patches are large (a densitometer needs a few mm) and labelled with their level
    in a small corner, drawn in a contrasting level so it does not disturb the reading.
    """
    top = (1 << bits) - 1
    rows = -(-levels.size // columns)
    cell = size // columns
    image = np.full((rows * cell, columns * cell), top, dtype=np.int64)
    canvas = Image.new("I", (columns * cell, rows * cell))
    draw = ImageDraw.Draw(canvas)
    for i, level in enumerate(levels.tolist()):
        r, c = divmod(i, columns)
        y, x = r * cell, c * cell
        image[y + 2:y + cell - 2, x + 2:x + cell - 2] = level
        draw.text((x + 6, y + 6), str(level), fill=1)
    label = np.asarray(canvas) > 0
    contrast = np.where(image > top // 2, 0, top)
    return np.where(label, contrast, image)


def _dataset(pixels: NDArray[np.integer], bits: int, description: str,
             pixel_spacing_mm: float | None = None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    now = datetime.now()
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.PatientName = "PRINTSCP^CALIBRATION"
    ds.PatientID = "PRINTSCP-CAL"
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    ds.SeriesDescription = description
    ds.ImageComments = description
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = 1 << (bits - 1)
    ds.WindowWidth = 1 << bits
    ds.PixelData = pixels.astype(np.uint8 if bits <= 8 else np.uint16).tobytes()
    if pixel_spacing_mm is not None:
        # true size: the pixel's size on the display or film, as Pixel Spacing and as
        # Imager Pixel Spacing (0018,1164), which viewers use for true-size display
        spacing = [f"{pixel_spacing_mm:.10g}"] * 2
        ds.PixelSpacing = spacing
        ds.ImagerPixelSpacing = spacing
    return ds


def _write(pixels: NDArray[np.int64], bits: int, stem: Path, description: str) -> list[Path]:
    dcm = stem.with_suffix(".dcm")
    _dataset(pixels, bits, description).save_as(dcm, enforce_file_format=True)
    png = stem.with_suffix(".png")
    scaled = pixels if bits == 8 else np.rint(pixels * (255 / ((1 << bits) - 1)))
    Image.fromarray(scaled.astype(np.uint8), mode="L").save(png)
    return [dcm, png]


def write_image(pixels: NDArray[np.integer], bits: int, stem: Path, description: str,
                pixel_spacing_mm: float | None = None) -> list[Path]:
    """Write ``stem.dcm`` and ``stem.png`` holding the same pixel values.

    Up to 8 bits the PNG is 8-bit grey, value for value.  Deeper patterns go in a 16-bit
    PNG whose samples are the values scaled by bit replication (PNG spec §12.5: value
    << (16 - bits) | value >> (2 * bits - 16)), with an sBIT chunk naming the bits, so
    ``png >> (16 - bits)`` gives the DICOM values back exactly and an ordinary viewer
    shows the full range.  Each file is written atomically.
    """
    dcm, png = stem.with_suffix(".dcm"), stem.with_suffix(".png")
    ds = _dataset(pixels, bits, description, pixel_spacing_mm)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    atomic_write(dcm, buffer.getvalue())
    values = pixels.astype(np.uint16)
    info = PngInfo()
    if bits <= 8:
        picture = Image.fromarray(values.astype(np.uint8), mode="L")
    else:
        scaled = (values << (16 - bits)) | (values >> (2 * bits - 16))
        picture = Image.fromarray(scaled.astype(np.uint16))  # I;16
        info.add(b"sBIT", bytes([bits]))
    options = {}
    if pixel_spacing_mm is not None:  # pHYs: true size for software that honours it
        options["dpi"] = (MM_PER_INCH / pixel_spacing_mm,) * 2
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info, **options)
    atomic_write(png, buffer.getvalue())
    return [dcm, png]


def write_patterns(directory: str | os.PathLike[str], *, levels: int = TG18_LEVELS,
                   bits: int = 8, size: int = 512) -> list[Path]:
    """Write the display patches ``LN-01..`` and the printer ``step-wedge``; returns files."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    values = pattern_levels(levels, bits)
    written: list[Path] = []
    for i, level in enumerate(values.tolist(), 1):
        written += _write(luminance_patch(level, bits, size), bits, out / f"LN-{i:02d}",
                          f"printscp luminance pattern {i}/{values.size}: level {level}")
    written += _write(step_wedge(values, bits, size=2 * size), bits, out / "step-wedge",
                      f"printscp step wedge, {values.size} levels")
    return written
