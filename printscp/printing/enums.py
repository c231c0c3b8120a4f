"""Defined terms and enumerated values of the Print Management IODs (PS3.3 C.13).

One source for every term the Print SCP validates; the member values are the
standard's exact strings so they can be written back into responses unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FilmOrientation(StrEnum):
    """Film Orientation (2010,0040), enumerated values."""

    PORTRAIT = "PORTRAIT"  #: vertical film position
    LANDSCAPE = "LANDSCAPE"  #: horizontal film position


@dataclass(frozen=True)
class _FilmDimensions:
    width_mm: float
    height_mm: float


_INCH = 25.4


class FilmSize(StrEnum):
    """Film Size ID (2010,0050), defined terms, with the physical size in portrait.

    Sizes in inches are converted at exactly 25.4 mm; 10INX14IN is the
    25.7 x 36.4 cm film the standard's note equates it with.
    """

    IN8X10 = "8INX10IN"
    IN8_5X11 = "8_5INX11IN"
    IN10X12 = "10INX12IN"
    IN10X14 = "10INX14IN"
    IN11X14 = "11INX14IN"
    IN11X17 = "11INX17IN"
    IN14X14 = "14INX14IN"
    IN14X17 = "14INX17IN"
    CM24X24 = "24CMX24CM"
    CM24X30 = "24CMX30CM"
    A4 = "A4"
    A3 = "A3"

    @property
    def dimensions_mm(self) -> tuple[float, float]:
        """(width, height) in millimetres, portrait."""
        d = _FILM_DIMENSIONS[self]
        return d.width_mm, d.height_mm


_FILM_DIMENSIONS: dict[FilmSize, _FilmDimensions] = {
    FilmSize.IN8X10: _FilmDimensions(8 * _INCH, 10 * _INCH),
    FilmSize.IN8_5X11: _FilmDimensions(8.5 * _INCH, 11 * _INCH),
    FilmSize.IN10X12: _FilmDimensions(10 * _INCH, 12 * _INCH),
    FilmSize.IN10X14: _FilmDimensions(257.0, 364.0),
    FilmSize.IN11X14: _FilmDimensions(11 * _INCH, 14 * _INCH),
    FilmSize.IN11X17: _FilmDimensions(11 * _INCH, 17 * _INCH),
    FilmSize.IN14X14: _FilmDimensions(14 * _INCH, 14 * _INCH),
    FilmSize.IN14X17: _FilmDimensions(14 * _INCH, 17 * _INCH),
    FilmSize.CM24X24: _FilmDimensions(240.0, 240.0),
    FilmSize.CM24X30: _FilmDimensions(240.0, 300.0),
    FilmSize.A4: _FilmDimensions(210.0, 297.0),
    FilmSize.A3: _FilmDimensions(297.0, 420.0),
}


class MagnificationType(StrEnum):
    """Magnification Type (2010,0060), defined terms: how pixels are interpolated."""

    REPLICATE = "REPLICATE"  #: replicated pixels (nearest neighbour)
    BILINEAR = "BILINEAR"  #: bilinear interpolation
    CUBIC = "CUBIC"  #: cubic convolution; Smoothing Type may refine it
    NONE = "NONE"  #: no interpolation: one image pixel per printer pixel


class Polarity(StrEnum):
    """Polarity (2020,0020), enumerated values; NORMAL when absent (PS3.3 C.13.5)."""

    NORMAL = "NORMAL"  #: printed as the Photometric Interpretation says
    REVERSE = "REVERSE"  #: printed with the opposite polarity


class Trim(StrEnum):
    """Trim (2010,0140): whether a trim box is printed around each image."""

    YES = "YES"
    NO = "NO"


class RequestedResolution(StrEnum):
    """Requested Resolution ID (2020,0050), defined terms.

    PS3.3 describes STANDARD as about 4k x 5k printable pixels on a 14INX17IN
    film and HIGH as about 8k x 10k, i.e. 300 and 600 pixels per inch.
    """

    STANDARD = "STANDARD"
    HIGH = "HIGH"

    @property
    def dpi(self) -> int:
        return 300 if self is RequestedResolution.STANDARD else 600


class DecimateCropBehavior(StrEnum):
    """Requested Decimate/Crop Behavior (2020,0040), enumerated values."""

    DECIMATE = "DECIMATE"  #: magnification factor < 1 applied to the image
    CROP = "CROP"  #: rows/columns deleted, centre kept
    FAIL = "FAIL"  #: the SCP refuses the image (status 0xC603)


class MediumType(StrEnum):
    """Medium Type (2000,0030), defined terms."""

    PAPER = "PAPER"
    CLEAR_FILM = "CLEAR FILM"
    BLUE_FILM = "BLUE FILM"
    MAMMO_CLEAR_FILM = "MAMMO CLEAR FILM"
    MAMMO_BLUE_FILM = "MAMMO BLUE FILM"


class PrintPriority(StrEnum):
    """Print Priority (2000,0020), enumerated values."""

    HIGH = "HIGH"
    MED = "MED"
    LOW = "LOW"


class PresentationLUTShape(StrEnum):
    """Presentation LUT Shape (2050,0020) for hardcopy (PS3.3 C.11.6)."""

    IDENTITY = "IDENTITY"  #: P-values are the pixel values
    LIN_OD = "LIN OD"  #: printed densities linear in the pixel values


class PhotometricInterpretation(StrEnum):
    """Photometric Interpretation (0028,0004) values allowed in image boxes."""

    MONOCHROME1 = "MONOCHROME1"  #: minimum value is white
    MONOCHROME2 = "MONOCHROME2"  #: minimum value is black
    RGB = "RGB"  #: Basic Color Image Box only


class DensityKeyword(StrEnum):
    """Keywords of Border Density (2010,0100) and Empty Image Density (2010,0110)."""

    BLACK = "BLACK"  #: the film's Max Density
    WHITE = "WHITE"  #: the film's Min Density


def film_destination_is_valid(value: str) -> bool:
    """Film Destination (2000,0040): MAGAZINE, PROCESSOR or BIN_i (i an integer)."""
    if value in ("MAGAZINE", "PROCESSOR"):
        return True
    return value.startswith("BIN_") and value[4:].isdigit()
