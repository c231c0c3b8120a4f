"""Film Session, Film Box, Image Box and Image Display Format validation."""

import numpy as np
import pytest

from printscp.printing.display_format import ImageDisplayFormat
from printscp.printing.enums import DensityKeyword, FilmSize
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession
from printscp.printing.image_box import ImageBox

FILM_SIZES = ["8INX10IN", "8_5INX11IN", "10INX12IN", "10INX14IN", "11INX14IN", "11INX17IN",
              "14INX14IN", "14INX17IN", "24CMX24CM", "24CMX30CM", "A4", "A3"]


def test_all_twelve_film_sizes_are_defined_terms():
    assert [s.value for s in FilmSize] == FILM_SIZES
    assert FilmSize("14INX17IN").dimensions_mm == pytest.approx((355.6, 431.8))
    assert FilmSize("A4").dimensions_mm == (210.0, 297.0)
    assert FilmSize("10INX14IN").dimensions_mm == (257.0, 364.0)


@pytest.mark.parametrize("text, count, kind", [
    ("STANDARD\\1,1", 1, "STANDARD"), ("STANDARD\\4,5", 20, "STANDARD"),
    ("ROW\\1,2,3", 6, "ROW"), ("COL\\2,1", 3, "COL"), ("standard\\2, 3", 6, "STANDARD"),
])
def test_display_formats_parse(text, count, kind):
    fmt = ImageDisplayFormat.parse(text)
    assert fmt.kind.value == kind and fmt.image_box_count() == count


@pytest.mark.parametrize("text", ["STANDARD\\2", "STANDARD\\0,1", "ROW\\", "GRID\\2,2",
                                  "STANDARD\\a,b", "SLIDE\\2", "CUSTOM\\1,2", "ROW\\99"])
def test_bad_display_formats_name_the_attribute(text):
    with pytest.raises(InvalidAttributeValue, match=r"ImageDisplayFormat \(2010,0010\)"):
        ImageDisplayFormat.parse(text)


def test_slide_and_custom_need_a_printer_definition():
    fmt = ImageDisplayFormat.parse("SLIDE")
    with pytest.raises(InvalidAttributeValue, match="this printer defines"):
        fmt.cells()


def test_standard_is_row_major_and_col_is_column_major():
    std = ImageDisplayFormat.parse("STANDARD\\2,2").cells()
    assert [(c.x, c.y) for c in std] == [(0, 0), (0.5, 0), (0, 0.5), (0.5, 0.5)]
    col = ImageDisplayFormat.parse("COL\\2,1").cells()
    assert [(c.x, c.y, c.height) for c in col] == [(0, 0, 0.5), (0, 0.5, 0.5), (0.5, 0, 1.0)]
    row = ImageDisplayFormat.parse("ROW\\1,2").cells()
    assert [(c.x, c.y, c.width) for c in row] == [(0, 0, 1.0), (0, 0.5, 0.5), (0.5, 0.5, 0.5)]


@pytest.mark.parametrize("keyword, value, tag", [
    ("film_size_id", "15INX17IN", "(2010,0050)"),
    ("film_orientation", "SIDEWAYS", "(2010,0040)"),
    ("magnification_type", "LANCZOS", "(2010,0060)"),
    ("border_density", "GRAY", "(2010,0100)"),
    ("empty_image_density", "-5", "(2010,0110)"),
    ("trim", "MAYBE", "(2010,0140)"),
    ("requested_resolution_id", "ULTRA", "(2020,0050)"),
    ("min_density", "abc", "(2010,0120)"),
    ("max_density", "10", "(2010,0130)"),
    ("illumination", "0", "(2010,015E)"),
    ("smoothing_type", "lower-case!", "(2010,0080)"),
])
def test_film_box_rejects_bad_values_naming_the_tag(keyword, value, tag):
    with pytest.raises(InvalidAttributeValue) as err:
        FilmBox(image_display_format="STANDARD\\1,1", **{keyword: value})
    assert tag in str(err.value)


def test_film_box_needs_a_display_format_and_creates_its_image_boxes():
    with pytest.raises(MissingAttribute, match="ImageDisplayFormat"):
        FilmBox(image_display_format="")
    fb = FilmBox(image_display_format="ROW\\1,2", border_density="white",
                 empty_image_density="150", film_orientation="landscape")
    assert [b.position for b in fb.image_boxes] == [1, 2, 3]
    assert all(b.is_empty for b in fb.image_boxes)
    assert fb.border_density is DensityKeyword.WHITE and fb.empty_image_density == 150
    with pytest.raises(InvalidAttributeValue, match="ImageBoxPosition"):
        fb.image_box(4)


def test_image_box_checks_pixels_against_bits_stored():
    ok = ImageBox(position=1, pixels=np.full((4, 4), 4095, np.uint16), bits_stored=12)
    assert ok.rows == 4 and not ok.inverted
    with pytest.raises(InvalidAttributeValue, match="PixelData"):
        ImageBox(position=1, pixels=np.full((4, 4), 4096, np.uint16), bits_stored=12)
    with pytest.raises(InvalidAttributeValue, match="BitsStored"):
        ImageBox(position=1, pixels=np.zeros((4, 4), np.uint16), bits_stored=10)
    with pytest.raises(InvalidAttributeValue, match="PixelData"):
        ImageBox(position=1, pixels=np.zeros((4, 4, 3), np.uint8))
    rgb = ImageBox(position=1, pixels=np.zeros((4, 4, 3), np.uint8),
                   photometric_interpretation="RGB")
    assert rgb.is_color
    with pytest.raises(InvalidAttributeValue, match="Polarity"):
        ImageBox(position=1, polarity="INVERSE")
    with pytest.raises(InvalidAttributeValue, match="ImageBoxPosition"):
        ImageBox(position=0)


def test_monochrome1_and_reverse_cancel_out():
    px = np.zeros((2, 2), np.uint8)
    assert ImageBox(position=1, pixels=px, photometric_interpretation="MONOCHROME1").inverted
    assert ImageBox(position=1, pixels=px, polarity="REVERSE").inverted
    assert not ImageBox(position=1, pixels=px, photometric_interpretation="MONOCHROME1",
                        polarity="REVERSE").inverted


def test_film_session_defaults_and_validation():
    s = FilmSession()
    assert s.number_of_copies == 1 and s.print_priority.value == "MED"
    assert FilmSession(film_destination="bin_3").film_destination == "BIN_3"
    for kw, value in [("number_of_copies", "0"), ("print_priority", "URGENT"),
                      ("medium_type", "GLASS"), ("film_destination", "BIN_X"),
                      ("owner_id", "x" * 17)]:
        with pytest.raises(InvalidAttributeValue):
            FilmSession(**{kw: value})
