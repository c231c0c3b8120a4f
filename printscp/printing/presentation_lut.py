"""The Presentation LUT SOP Instance (PS3.3 B.18, C.11.6) as a validated object."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from lut import presentation as plut
from printscp.printing.enums import PresentationLUTShape
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute, parse_enum


@dataclass(frozen=True, kw_only=True, eq=False)
class PresentationLUT:
    """Either a Presentation LUT Shape or an explicit LUT (descriptor + data).

    ``lut_descriptor`` is (number of entries, first value mapped, bits per entry)
    as in (0028,3002); 0 entries means 65536.
    """

    shape: PresentationLUTShape | str | None = None
    lut_descriptor: tuple[int, int, int] | None = None
    lut_data: NDArray[np.uint16] | None = None
    lut_explanation: str = ""
    _table_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        has_table = self.lut_descriptor is not None or self.lut_data is not None
        if self.shape is not None and self.shape != "":
            if has_table:
                raise InvalidAttributeValue(
                    "PresentationLUTShape", self.shape,
                    "either a shape or a Presentation LUT Sequence, not both",
                )
            object.__setattr__(
                self, "shape", parse_enum(PresentationLUTShape, "PresentationLUTShape", self.shape)
            )
            return
        object.__setattr__(self, "shape", None)
        if self.lut_descriptor is None:
            if self.lut_data is None:
                raise MissingAttribute(
                    "PresentationLUTShape", "or Presentation LUT Sequence is required"
                )
            raise MissingAttribute("LUTDescriptor")
        if self.lut_data is None:
            raise MissingAttribute("LUTData")
        if len(self.lut_descriptor) != 3:
            raise InvalidAttributeValue("LUTDescriptor", self.lut_descriptor, "3 values")
        entries, first, bits = (int(v) for v in self.lut_descriptor)
        entries = entries or 65536
        if not 8 <= bits <= 16:
            raise InvalidAttributeValue("LUTDescriptor", self.lut_descriptor, "8 to 16 bits")
        data = np.asarray(self.lut_data).ravel()
        if data.size != entries:
            raise InvalidAttributeValue(
                "LUTData", f"{data.size} entries", f"{entries} entries as LUT Descriptor says"
            )
        if data.size and int(data.max()) >= (1 << bits):
            raise InvalidAttributeValue("LUTData", int(data.max()), f"entries < 2^{bits}")
        object.__setattr__(self, "lut_descriptor", (entries, first, bits))
        object.__setattr__(self, "lut_data", data.astype(np.uint16))

    def table(
        self,
        bits: int,
        min_density: float,
        max_density: float,
        illumination: float,
        ambient: float,
    ) -> NDArray[np.float64]:
        """Normalised P-value per stored pixel value of a ``bits``-bit image box."""
        key = (bits, min_density, max_density, illumination, ambient)
        if key not in self._table_cache:
            self._table_cache[key] = _table(self, *key)
        return self._table_cache[key]


def _table(p: PresentationLUT, bits: int, dmin: float, dmax: float,
           illumination: float, ambient: float) -> NDArray[np.float64]:
    if p.shape is PresentationLUTShape.LIN_OD:
        return plut.lin_od(bits, dmin, dmax, illumination, ambient)
    if p.shape is PresentationLUTShape.IDENTITY:
        return plut.identity(bits)
    assert p.lut_descriptor is not None and p.lut_data is not None
    _, first, entry_bits = p.lut_descriptor
    return plut.explicit(bits, p.lut_data, entry_bits, first)


#: What a film box without a referenced Presentation LUT uses (PS3.4 H.4.10).
IDENTITY = PresentationLUT(shape=PresentationLUTShape.IDENTITY)
