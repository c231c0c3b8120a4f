"""Basic Film Box (PS3.3 B.8, C.13.3) and the image boxes it owns."""

from __future__ import annotations

from dataclasses import dataclass, field

from printscp.printing import values
from printscp.printing.display_format import Cell, ImageDisplayFormat
from printscp.printing.enums import (
    DensityKeyword,
    FilmOrientation,
    FilmSize,
    MagnificationType,
    PhotometricInterpretation,
    RequestedResolution,
    Trim,
)
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute, parse_enum
from printscp.printing.image_box import ImageBox
from printscp.printing.presentation_lut import IDENTITY, PresentationLUT


@dataclass(kw_only=True, eq=False)
class FilmBox:
    """A film: its presentation attributes, image boxes and annotation texts.

    Values may be given as the strings found in a DICOM data set; they are
    converted and checked here, and a bad one raises an error naming its attribute.
    Densities are in hundredths of OD as on the wire.  The image boxes are created
    with the film box, one per position of the Image Display Format, as the SCP
    does on N-CREATE (PS3.4 H.4.2.2.1).
    """

    image_display_format: ImageDisplayFormat | str | None = None
    film_orientation: FilmOrientation | str = FilmOrientation.PORTRAIT
    film_size_id: FilmSize | str = FilmSize.IN14X17
    magnification_type: MagnificationType | str = MagnificationType.BILINEAR
    smoothing_type: str | None = None
    border_density: values.Density | str = DensityKeyword.BLACK
    empty_image_density: values.Density | str = DensityKeyword.BLACK
    min_density: int | str = 20
    max_density: int | str = 300
    trim: Trim | str = Trim.NO
    configuration_information: str = ""
    illumination: int | str = 2000
    reflected_ambient_light: int | str = 10
    requested_resolution_id: RequestedResolution | str = RequestedResolution.STANDARD
    annotation_display_format_id: str = ""
    #: Number of Basic Annotation Boxes the printer made for the format (0: none).
    annotation_boxes: int = 0
    presentation_lut: PresentationLUT | None = None
    color: bool = False
    custom_layouts: dict[str, tuple[Cell, ...]] | None = None
    image_boxes: list[ImageBox] = field(default_factory=list)
    annotations: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image_display_format in (None, ""):
            raise MissingAttribute("ImageDisplayFormat")
        if not isinstance(self.image_display_format, ImageDisplayFormat):
            self.image_display_format = ImageDisplayFormat.parse(self.image_display_format)
        count = self.image_display_format.image_box_count(self.custom_layouts)
        self.film_orientation = parse_enum(
            FilmOrientation, "FilmOrientation", self.film_orientation
        )
        self.film_size_id = parse_enum(FilmSize, "FilmSizeID", self.film_size_id)
        self.magnification_type = parse_enum(
            MagnificationType, "MagnificationType", self.magnification_type
        )
        if self.smoothing_type not in (None, ""):
            self.smoothing_type = values.code_string("SmoothingType", self.smoothing_type)
        else:
            self.smoothing_type = None
        self.border_density = values.density("BorderDensity", self.border_density)
        self.empty_image_density = values.density("EmptyImageDensity", self.empty_image_density)
        self.min_density = values.us("MinDensity", self.min_density)
        self.max_density = values.us("MaxDensity", self.max_density)
        if self.min_density >= self.max_density:
            raise InvalidAttributeValue(
                "MaxDensity", self.max_density, f"greater than Min Density ({self.min_density})"
            )
        self.trim = parse_enum(Trim, "Trim", self.trim)
        self.configuration_information = values.text(
            "ConfigurationInformation", self.configuration_information, 1024
        )
        self.illumination = values.us("Illumination", self.illumination, 1)
        self.reflected_ambient_light = values.us(
            "ReflectedAmbientLight", self.reflected_ambient_light
        )
        self.requested_resolution_id = parse_enum(
            RequestedResolution, "RequestedResolutionID", self.requested_resolution_id
        )
        if self.annotation_display_format_id:
            self.annotation_display_format_id = values.code_string(
                "AnnotationDisplayFormatID", self.annotation_display_format_id
            )
        if not 0 <= int(self.annotation_boxes) <= 64:
            raise InvalidAttributeValue("AnnotationDisplayFormatID", self.annotation_boxes,
                                        "a format with at most 64 annotation boxes")
        for position, text in self.annotations.items():
            if not 1 <= position <= max(int(self.annotation_boxes), 1, position):
                raise InvalidAttributeValue("AnnotationPosition", position, "1 or more")
            self.annotations[position] = values.text("TextString", text, 64)
        if not self.image_boxes:
            photometric = PhotometricInterpretation.MONOCHROME2
            if self.color:
                photometric = PhotometricInterpretation.RGB
            self.image_boxes = [
                ImageBox(position=i + 1, photometric_interpretation=photometric)
                for i in range(count)
            ]
        elif len(self.image_boxes) != count:
            raise InvalidAttributeValue(
                "ImageDisplayFormat", str(self.image_display_format),
                f"a format with {len(self.image_boxes)} image boxes",
            )

    @property
    def has_annotation_strip(self) -> bool:
        """Whether the film reserves room for annotation text (boxes exist or text was set)."""
        return bool(self.annotation_boxes or self.annotations)

    @property
    def min_density_od(self) -> float:
        return self.min_density / 100.0  # type: ignore[operator]

    @property
    def max_density_od(self) -> float:
        return self.max_density / 100.0  # type: ignore[operator]

    @property
    def effective_presentation_lut(self) -> PresentationLUT:
        return self.presentation_lut or IDENTITY

    def image_box(self, position: int) -> ImageBox:
        if not 1 <= position <= len(self.image_boxes):
            raise InvalidAttributeValue(
                "ImageBoxPosition", position, f"1..{len(self.image_boxes)}"
            )
        return self.image_boxes[position - 1]

    def set_image(self, position: int, box: ImageBox) -> None:
        """Put ``box`` at ``position`` (the box's own position must agree)."""
        if box.position != position:
            raise InvalidAttributeValue("ImageBoxPosition", box.position, str(position))
        self.image_box(position)
        self.image_boxes[position - 1] = box
