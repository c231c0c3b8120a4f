"""Film geometry: true physical size, box order, fit of images."""

import itertools

import pytest

from printscp.printing.display_format import ImageDisplayFormat
from printscp.printing.enums import DecimateCropBehavior, FilmOrientation, FilmSize
from printscp.printing.layout import (
    DEFAULT_MARGINS,
    FitOutcome,
    ImageTooLarge,
    Rect,
    film_geometry,
    place_image,
)

FORMATS = ["STANDARD\\3,4", "ROW\\1,3,2", "COL\\2,3"]


def _overlap(a: Rect, b: Rect) -> bool:
    return (a.x < b.x + b.width - 1e-9 and b.x < a.x + a.width - 1e-9
            and a.y < b.y + b.height - 1e-9 and b.y < a.y + a.height - 1e-9)


@pytest.mark.parametrize("size, orientation, fmt", list(itertools.product(
    list(FilmSize), list(FilmOrientation), FORMATS)))
def test_boxes_tile_the_film(size, orientation, fmt):
    cells = ImageDisplayFormat.parse(fmt).cells()
    geo = film_geometry(size, orientation, cells)
    w, h = size.dimensions_mm
    assert (geo.width_mm, geo.height_mm) == ((h, w) if orientation.value == "LANDSCAPE" else (w, h))
    e, gap = DEFAULT_MARGINS.edge_mm, DEFAULT_MARGINS.gap_mm
    assert len(geo.boxes) == len(cells)
    for box in geo.boxes:
        assert box.x >= e - 1e-9 and box.y >= e - 1e-9
        assert box.x + box.width <= geo.width_mm - e + 1e-9
        assert box.y + box.height <= geo.height_mm - e + 1e-9
    for a, b in itertools.combinations(geo.boxes, 2):
        assert not _overlap(a, b)
    # Along the top and the left edge, boxes plus gaps span the image area exactly.
    top = [b for b in geo.boxes if b.y <= e + 1e-9]
    left = [b for b in geo.boxes if b.x <= e + 1e-9]
    assert sum(b.width for b in top) + gap * (len(top) - 1) == pytest.approx(
        geo.width_mm - 2 * e)
    assert sum(b.height for b in left) + gap * (len(left) - 1) == pytest.approx(
        geo.height_mm - 2 * e)


def test_positions_follow_ps33_order():
    cells = ImageDisplayFormat.parse("COL\\2,1").cells()
    geo = film_geometry(FilmSize.IN14X17, FilmOrientation.PORTRAIT, cells)
    b1, b2, b3 = geo.boxes
    assert b1.x == b2.x < b3.x and b1.y < b2.y and b3.y == b1.y


def test_landscape_swaps_the_page():
    cells = ImageDisplayFormat.parse("STANDARD\\1,1").cells()
    geo = film_geometry(FilmSize.IN14X17, FilmOrientation.LANDSCAPE, cells)
    assert geo.width_mm == pytest.approx(431.8) and geo.height_mm == pytest.approx(355.6)


def test_annotation_strip_reserved_at_the_bottom():
    cells = ImageDisplayFormat.parse("STANDARD\\1,1").cells()
    geo = film_geometry(FilmSize.A4, FilmOrientation.PORTRAIT, cells, annotation=True)
    box, strip = geo.boxes[0], geo.annotation_area
    assert strip is not None and strip.y >= box.y + box.height
    assert strip.y + strip.height == pytest.approx(297.0 - DEFAULT_MARGINS.edge_mm)


BOX = Rect(10, 10, 100, 50)


def test_image_keeps_aspect_and_is_centred():
    p = place_image(BOX, 256, 256, 300)
    assert p.rect.width == pytest.approx(50) and p.rect.height == pytest.approx(50)
    assert p.rect.x == pytest.approx(35) and p.rect.y == pytest.approx(10)
    assert p.outcome is FitOutcome.FITTED


def test_pixel_aspect_ratio_stretches_rows():
    p = place_image(BOX, 100, 100, 300, pixel_aspect_ratio=(2, 1))
    assert p.rect.height == pytest.approx(2 * p.rect.width)


def test_requested_image_size_is_true_millimetres():
    p = place_image(BOX, 100, 200, 300, requested_width_mm=40)
    assert p.rect.width == pytest.approx(40) and p.rect.height == pytest.approx(20)


def test_magnification_none_prints_one_pixel_per_printer_pixel():
    p = place_image(BOX, 300, 300, 300, no_magnification=True)
    assert p.rect.width == pytest.approx(25.4)


def test_too_large_images_decimate_crop_or_fail():
    big = dict(rows=1000, columns=2000, dpi=300)
    assert place_image(BOX, **big).outcome is FitOutcome.DECIMATED
    crop = place_image(BOX, **big, behavior=DecimateCropBehavior.CROP)
    assert crop.outcome is FitOutcome.CROPPED
    r0, r1, c0, c1 = crop.crop
    # 100 x 50 mm at 300 DPI holds 1181 x 590 pixels; the centre is kept.
    assert c1 - c0 == 1181 and r1 - r0 == 590 and c0 == (2000 - 1181) // 2
    with pytest.raises(ImageTooLarge, match="RequestedDecimateCropBehavior"):
        place_image(BOX, **big, behavior=DecimateCropBehavior.FAIL)
    with pytest.raises(ImageTooLarge):
        place_image(BOX, 10, 10, 300, requested_width_mm=200,
                    behavior=DecimateCropBehavior.FAIL)
