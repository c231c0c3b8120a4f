"""Generate the synthetic sample images in this folder (run from the repo root).

    python samples/make_samples.py

They are made here, carry no patient data, and are under the project's licence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

HERE = Path(__file__).resolve().parent
ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root, as generate_uid() uses


def _dataset(pixels: np.ndarray, photometric: str, bits: int, name: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(ROOT, entropy_srcs=[name])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(ROOT, entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(ROOT, entropy_srcs=["series", name])
    ds.PatientName = "PRINTSCP^SAMPLE"
    ds.PatientID = "PRINTSCP-0001"
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    return ds


def wedge(levels: int, size: int, top: int) -> np.ndarray:
    """``levels`` vertical bars from 0 to ``top`` (left to right), ``size`` square."""
    step = np.repeat(np.arange(levels), -(-size // levels))[:size]
    values = np.rint(step * top / (levels - 1))
    return np.tile(values, (size, 1))


def main() -> None:
    # A 12-bit 16-step wedge whose window (C 2048, W 4096) passes values unchanged.
    ds = _dataset(wedge(16, 256, 4095), "MONOCHROME2", 12, "wedge12")
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.save_as(HERE / "wedge_12bit.dcm", enforce_file_format=True)
    # An 8-bit MONOCHROME1 wedge (as CR often is): 0 prints white.
    ds = _dataset(wedge(8, 128, 255), "MONOCHROME1", 8, "wedge8m1")
    ds.save_as(HERE / "wedge_8bit_mono1.dcm", enforce_file_format=True)
    # Three frames of 64x64, each a flat level: a multi-frame image prints as three.
    frames = np.stack([np.full((64, 64), v) for v in (0, 2048, 4095)])
    ds = _dataset(frames, "MONOCHROME2", 12, "frames3")
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.save_as(HERE / "multiframe_3.dcm", enforce_file_format=True)


if __name__ == "__main__":
    main()
