"""Basic Grayscale and Basic Color Image Box (PS3.3 B.9, B.10; C.13.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from printscp.printing import values
from printscp.printing.enums import (
    DecimateCropBehavior,
    MagnificationType,
    PhotometricInterpretation,
    Polarity,
)
from printscp.printing.errors import InvalidAttributeValue, parse_enum

#: Bits Stored allowed in a Basic Grayscale Image Box (PS3.3 C.13.5: 8 or 12).
GRAYSCALE_BITS = (8, 12)


@dataclass(kw_only=True, eq=False)
class ImageBox:
    """One image area of a film box; ``pixels`` is None until the SCU sets it.

    Grayscale pixels are a 2-D uint8/uint16 array with ``bits_stored`` 8 or 12;
    color pixels (RGB) a (rows, columns, 3) uint8 array.
    """

    position: int
    pixels: NDArray | None = None
    photometric_interpretation: PhotometricInterpretation | str = (
        PhotometricInterpretation.MONOCHROME2
    )
    bits_stored: int = 8
    polarity: Polarity | str = Polarity.NORMAL
    magnification_type: MagnificationType | str | None = None
    smoothing_type: str | None = None
    configuration_information: str = ""
    requested_image_size: float | None = None
    requested_decimate_crop_behavior: DecimateCropBehavior | str = DecimateCropBehavior.DECIMATE
    pixel_aspect_ratio: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        self.position = values.us("ImageBoxPosition", self.position, 1)
        self.photometric_interpretation = parse_enum(
            PhotometricInterpretation, "PhotometricInterpretation",
            self.photometric_interpretation,
        )
        self.polarity = parse_enum(Polarity, "Polarity", self.polarity or "NORMAL")
        if self.magnification_type not in (None, ""):
            self.magnification_type = parse_enum(
                MagnificationType, "MagnificationType", self.magnification_type
            )
        else:
            self.magnification_type = None
        if self.smoothing_type not in (None, ""):
            self.smoothing_type = values.code_string("SmoothingType", self.smoothing_type)
        else:
            self.smoothing_type = None
        self.configuration_information = values.text(
            "ConfigurationInformation", self.configuration_information, 1024
        )
        if self.requested_image_size not in (None, ""):
            try:
                size = float(self.requested_image_size)  # type: ignore[arg-type]
            except ValueError:
                size = -1.0
            if not 0 < size <= 1000:
                raise InvalidAttributeValue(
                    "RequestedImageSize", self.requested_image_size, "a width in mm > 0"
                )
            self.requested_image_size = size
        else:
            self.requested_image_size = None
        self.requested_decimate_crop_behavior = parse_enum(
            DecimateCropBehavior, "RequestedDecimateCropBehavior",
            self.requested_decimate_crop_behavior or "DECIMATE",
        )
        ratio = tuple(int(v) for v in self.pixel_aspect_ratio)
        if len(ratio) != 2 or min(ratio) <= 0:
            raise InvalidAttributeValue(
                "PixelAspectRatio", self.pixel_aspect_ratio, "row\\column > 0"
            )
        self.pixel_aspect_ratio = (ratio[0], ratio[1])
        if self.pixels is not None:
            self._check_pixels(self.pixels)

    @property
    def is_color(self) -> bool:
        return self.photometric_interpretation is PhotometricInterpretation.RGB

    @property
    def is_empty(self) -> bool:
        return self.pixels is None

    @property
    def inverted(self) -> bool:
        """True when the stored values print white-to-black (MONOCHROME1 xor REVERSE)."""
        mono1 = self.photometric_interpretation is PhotometricInterpretation.MONOCHROME1
        return mono1 != (self.polarity is Polarity.REVERSE)

    def _check_pixels(self, pixels: NDArray) -> None:
        if self.is_color:
            if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
                raise InvalidAttributeValue(
                    "PixelData", f"{pixels.dtype} {pixels.shape}", "8-bit RGB (rows, columns, 3)"
                )
            if self.bits_stored != 8:
                raise InvalidAttributeValue("BitsStored", self.bits_stored, "8 for RGB")
        else:
            if self.bits_stored not in GRAYSCALE_BITS:
                raise InvalidAttributeValue("BitsStored", self.bits_stored, "8 or 12")
            if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
                raise InvalidAttributeValue(
                    "PixelData", f"{pixels.dtype} {pixels.shape}", "2-D unsigned 8/16-bit pixels"
                )
            if pixels.dtype == np.uint16 and pixels.size and int(pixels.max()) >> self.bits_stored:
                raise InvalidAttributeValue(
                    "PixelData", int(pixels.max()),
                    f"values below 2^{self.bits_stored} (Bits Stored)"
                )
        if min(pixels.shape[:2]) < 1:
            raise InvalidAttributeValue("PixelData", pixels.shape, "at least one row and column")

    @property
    def rows(self) -> int:
        return 0 if self.pixels is None else int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return 0 if self.pixels is None else int(self.pixels.shape[1])
