"""Basic Film Session (PS3.3 B.7, C.13.1)."""

from __future__ import annotations

from dataclasses import dataclass

from printscp.printing import values
from printscp.printing.enums import MediumType, PrintPriority, film_destination_is_valid
from printscp.printing.errors import InvalidAttributeValue, parse_enum
from printscp.printing.presentation_lut import PresentationLUT

#: Highest Number of Copies we accept; PS3.3 leaves the limit to the printer.
MAX_COPIES = 99


@dataclass(kw_only=True, eq=False)
class FilmSession:
    """Session-level print settings; every attribute has the printer's default."""

    number_of_copies: int | str = 1
    print_priority: PrintPriority | str = PrintPriority.MED
    medium_type: MediumType | str = MediumType.BLUE_FILM
    film_destination: str = "MAGAZINE"
    film_session_label: str = ""
    memory_allocation: int | str | None = None
    owner_id: str = ""
    presentation_lut: PresentationLUT | None = None
    illumination: int | str | None = None
    reflected_ambient_light: int | str | None = None

    def __post_init__(self) -> None:
        self.number_of_copies = values.us("NumberOfCopies", self.number_of_copies, 1, MAX_COPIES)
        self.print_priority = parse_enum(PrintPriority, "PrintPriority", self.print_priority)
        self.medium_type = parse_enum(MediumType, "MediumType", self.medium_type)
        destination = str(self.film_destination).strip().upper()
        if not film_destination_is_valid(destination):
            raise InvalidAttributeValue(
                "FilmDestination", self.film_destination, "MAGAZINE, PROCESSOR or BIN_i"
            )
        self.film_destination = destination
        self.film_session_label = values.text("FilmSessionLabel", self.film_session_label, 64)
        self.owner_id = values.text("OwnerID", self.owner_id, 16)
        if self.memory_allocation not in (None, ""):
            self.memory_allocation = values.us(
                "MemoryAllocation", self.memory_allocation, 0, 2**31 - 1
            )
        else:
            self.memory_allocation = None
        if self.illumination is not None:
            self.illumination = values.us("Illumination", self.illumination, 1)
        if self.reflected_ambient_light is not None:
            self.reflected_ambient_light = values.us(
                "ReflectedAmbientLight", self.reflected_ambient_light
            )
