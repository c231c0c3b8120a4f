"""The film renderer: densities, device levels and cells, checked pixel by pixel."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from helpers.films import pdf_page, pdf_pages
from helpers.images import step_wedge
from PIL import Image

from lut import density
from lut.device import CharacteristicCurve, DeviceKind
from printscp.printing.film_box import FilmBox
from printscp.printing.film_files import write_pdf, write_png, write_tiff
from printscp.printing.image_box import ImageBox
from printscp.printing.layout import film_geometry
from printscp.printing.presentation_lut import PresentationLUT
from printscp.printing.profile import OutputProfile, default_profile
from printscp.printing.render import render_film

# A printer whose 256 levels run linearly from OD 3.0 (level 0) to OD 0.2 (level 255).
LINEAR_OD = OutputProfile("linear-od", CharacteristicCurve(
    kind=DeviceKind.PRINTER, max_ddl=255, ddl=np.arange(256),
    values=np.linspace(3.0, 0.2, 256), ambient=10.0, illumination=2000.0))
DPI = 100


def od_of_level(level):
    return 3.0 - 2.8 * np.asarray(level, dtype=float) / 255


#: ``wedge(steps, bits)``: bars 16 pixels wide and high.
wedge = functools.partial(step_wedge, step=16, rows=16)


def bar_levels(film, position: int, steps: int) -> np.ndarray:
    """Device level at the centre of each wedge bar of image ``position``."""
    img = next(i for i in film.images if i.position == position)
    h, w = img.levels.shape[:2]
    xs = ((np.arange(steps) + 0.5) * w / steps).astype(int)
    return img.levels[h // 2, xs]


def make_film(fmt="STANDARD\\2,2", **kw) -> FilmBox:
    kw.setdefault("magnification_type", "REPLICATE")
    return FilmBox(image_display_format=fmt, film_size_id="8INX10IN", **kw)


@pytest.mark.parametrize("bits", [8, 12])
def test_wedge_lands_on_gsdf_densities(bits):
    fb = make_film()
    fb.set_image(1, ImageBox(position=1, pixels=wedge(16, bits), bits_stored=bits))
    film = render_film(fb, dpi=DPI, profile=LINEAR_OD)
    levels = bar_levels(film, 1, 16)
    values = np.rint(np.arange(16) * ((1 << bits) - 1) / 15)
    expected = density.pvalue_to_density(values, bits, 0.2, 3.0)
    # The printed density is the expected one to within half a device step.
    step = 2.8 / 255
    assert np.abs(od_of_level(levels) - expected).max() <= step / 2 + 1e-3
    assert levels[0] == 0 and levels[-1] == 255


def test_monochrome1_and_reverse_polarity_invert_the_wedge():
    fb = make_film()
    px = wedge(8, 8)
    fb.set_image(1, ImageBox(position=1, pixels=px))
    fb.set_image(2, ImageBox(position=2, pixels=px, photometric_interpretation="MONOCHROME1"))
    fb.set_image(3, ImageBox(position=3, pixels=px, polarity="REVERSE"))
    film = render_film(fb, dpi=DPI, profile=LINEAR_OD)
    normal = bar_levels(film, 1, 8)
    np.testing.assert_array_equal(bar_levels(film, 2, 8), normal[::-1])
    np.testing.assert_array_equal(bar_levels(film, 3, 8), normal[::-1])


def test_lin_od_presentation_lut_gives_linear_densities():
    fb = make_film(presentation_lut=PresentationLUT(shape="LIN OD"))
    fb.set_image(1, ImageBox(position=1, pixels=wedge(8, 12), bits_stored=12))
    film = render_film(fb, dpi=DPI, profile=LINEAR_OD)
    od = od_of_level(bar_levels(film, 1, 8))
    np.testing.assert_allclose(od, np.linspace(3.0, 0.2, 8), atol=2.8 / 255)


def test_min_and_max_density_limit_the_film():
    fb = make_film(min_density=50, max_density=250)
    fb.set_image(1, ImageBox(position=1, pixels=wedge(2, 8)))
    film = render_film(fb, dpi=DPI, profile=LINEAR_OD)
    od = od_of_level(bar_levels(film, 1, 2))
    np.testing.assert_allclose(od, [2.5, 0.5], atol=2.8 / 255)


def test_images_land_in_their_cells_and_empty_cells_get_empty_density():
    fb = make_film("STANDARD\\2,2", border_density="WHITE", empty_image_density="150")
    fb.set_image(1, ImageBox(position=1, pixels=np.full((10, 10), 255, np.uint8)))
    fb.set_image(4, ImageBox(position=4, pixels=np.zeros((10, 10), np.uint8)))
    film = render_film(fb, dpi=DPI, profile=LINEAR_OD)
    raster = film.raster()
    geo = film_geometry(fb.film_size_id, fb.film_orientation,
                        fb.image_display_format.cells())
    centre = [((b.x + b.width / 2) * DPI / 25.4, (b.y + b.height / 2) * DPI / 25.4)
              for b in geo.boxes]
    px = [int(raster[int(y), int(x)]) for x, y in centre]
    assert px[0] == 255 and px[3] == 0  # white image top left, black bottom right
    assert abs(od_of_level(px[1]) - 1.5) <= 2.8 / 255 and px[1] == px[2]
    assert raster[2, 2] == 255  # WHITE border at the film's corner
    assert raster.shape == (1000, 800)  # 8 x 10 in at 100 DPI


def test_magnification_types_differ_only_in_interpolation():
    px = np.kron(np.array([[0, 255], [255, 0]], np.uint8), np.ones((2, 2), np.uint8))
    out = {}
    for mag in ("REPLICATE", "BILINEAR", "CUBIC"):
        fb = make_film("STANDARD\\1,1", magnification_type=mag)
        fb.set_image(1, ImageBox(position=1, pixels=px))
        out[mag] = render_film(fb, dpi=DPI, profile=LINEAR_OD).images[0].levels
    assert set(np.unique(out["REPLICATE"])) == {0, 255}
    assert len(np.unique(out["BILINEAR"])) > 10
    assert not np.array_equal(out["BILINEAR"], out["CUBIC"])


def test_color_images_keep_their_rgb_values():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 30
    fb = make_film("STANDARD\\1,1")
    fb.set_image(1, ImageBox(position=1, pixels=rgb, photometric_interpretation="RGB"))
    film = render_film(fb, dpi=DPI)
    assert film.color
    assert set(map(tuple, film.images[0].levels.reshape(-1, 3))) == {(200, 0, 30)}


def test_default_profile_maps_density_to_srgb_page_gray():
    table = default_profile().table(8, 0.2, 3.0, 2000.0, 10.0)
    # D 0.2 -> relative luminance 10**-0.2 = 0.631 -> sRGB 0.82 -> level 209 (+-1).
    assert abs(int(table[-1]) - 209) <= 1
    assert int(table[0]) <= 4


def test_16_bit_tiff_keeps_finer_levels(tmp_path):
    fb = make_film("STANDARD\\1,1")
    fb.set_image(1, ImageBox(position=1, pixels=wedge(64, 12), bits_stored=12))
    film = render_film(fb, dpi=DPI, bits=16, profile=LINEAR_OD)
    path = write_tiff(film, tmp_path / "film.tif")
    with Image.open(path) as im:
        arr = np.asarray(im)
        assert im.size == (800, 1000) and arr.dtype == np.uint16
    levels = bar_levels(film, 1, 64)
    # 64 distinct levels where an 8-bit device would merge some; the ends within
    # 0.05 % (DCMTK's JND polynomial is not the exact inverse of the GSDF).
    assert len(np.unique(levels)) == 64
    assert levels[-1] >= 65500 and levels[0] <= 35


def test_png_has_the_film_size_at_its_dpi(tmp_path):
    fb = make_film("STANDARD\\1,1", film_orientation="LANDSCAPE")
    fb.set_image(1, ImageBox(position=1, pixels=wedge(4, 8)))
    path = write_png(render_film(fb, dpi=50), tmp_path / "film.png")
    with Image.open(path) as im:
        assert im.size == (500, 400)
        # PNG stores pixels per metre: 50 DPI comes back as 50.01.
        assert im.info["dpi"] == pytest.approx((50, 50), abs=0.05)


@pytest.mark.poppler("pdfinfo")
@pytest.mark.parametrize("size, orientation, points", [
    ("14INX17IN", "PORTRAIT", (1008, 1224)), ("14INX17IN", "LANDSCAPE", (1224, 1008)),
    ("A4", "PORTRAIT", (595.28, 841.89)), ("8INX10IN", "PORTRAIT", (576, 720)),
])
def test_pdf_page_is_the_film_size(tmp_path, size, orientation, points):
    fb = FilmBox(image_display_format="STANDARD\\1,1", film_size_id=size,
                 film_orientation=orientation)
    fb.set_image(1, ImageBox(position=1, pixels=wedge(4, 8)))
    path = write_pdf([render_film(fb, dpi=50)], tmp_path / "f.pdf")
    _, size = pdf_pages(path)
    assert size == pytest.approx(points, abs=0.01)


@pytest.mark.poppler
def test_pdf_pixels_match_the_rendered_film(tmp_path):
    fb = make_film("STANDARD\\2,1", border_density="100")
    fb.set_image(1, ImageBox(position=1, pixels=wedge(8, 12), bits_stored=12))
    film = render_film(fb, dpi=DPI)
    pdf = write_pdf([film, film], tmp_path / "f.pdf")
    assert pdf_pages(pdf)[0] == 2
    page = pdf_page(pdf, DPI)
    raster = film.raster()
    assert page.shape == raster.shape
    # Away from edges (where the viewer resamples) the PDF shows our exact levels.
    x0, y0, x1, y1 = film.images[0].pixel_box
    inner = (slice(y0 + 3, y1 - 3), slice(x0 + 3, x1 - 3))
    diff = np.abs(page[inner].astype(int) - raster[inner].astype(int))
    assert np.mean(diff == 0) > 0.95  # only bar edges may shift by a pixel
    xs = x0 + ((np.arange(8) + 0.5) * (x1 - x0) / 8).astype(int)
    np.testing.assert_array_equal(page[(y0 + y1) // 2, xs], raster[(y0 + y1) // 2, xs])
    assert page[5, 5] == raster[5, 5] == film.border_level  # border drawn in exact gray
    assert len(np.unique(raster[inner])) == 8


def test_smoothing_type_refines_cubic():
    px = np.kron(np.array([[0, 255], [255, 0]], np.uint8), np.ones((4, 4), np.uint8))
    out = {}
    for smoothing in ("SHARP", "MEDIUM", "SMOOTH", None):
        fb = make_film("STANDARD\\1,1", magnification_type="CUBIC", smoothing_type=smoothing)
        fb.set_image(1, ImageBox(position=1, pixels=px))
        out[smoothing] = render_film(fb, dpi=DPI, profile=LINEAR_OD).images[0].levels
    np.testing.assert_array_equal(out["MEDIUM"], out[None])
    assert not np.array_equal(out["SHARP"], out["MEDIUM"])
    assert not np.array_equal(out["SMOOTH"], out["MEDIUM"])
    assert not np.array_equal(out["SHARP"], out["SMOOTH"])
    # SMOOTH is plain bilinear: it matches Magnification Type BILINEAR exactly.
    fb = make_film("STANDARD\\1,1", magnification_type="BILINEAR")
    fb.set_image(1, ImageBox(position=1, pixels=px))
    bilinear = render_film(fb, dpi=DPI, profile=LINEAR_OD).images[0].levels
    np.testing.assert_array_equal(out["SMOOTH"], bilinear)


@pytest.mark.poppler("pdftoppm")
def test_requested_image_size_is_true_millimetres_on_the_pdf(tmp_path):
    fb = make_film("STANDARD\\1,1", border_density="WHITE")
    fb.set_image(1, ImageBox(position=1, pixels=np.zeros((64, 128), np.uint8),
                             requested_image_size=100.0))
    pdf = write_pdf([render_film(fb, dpi=DPI, profile=LINEAR_OD)], tmp_path / "f.pdf")
    page = pdf_page(pdf, 254)
    dark = np.argwhere(page < 128)
    width_mm = (dark[:, 1].max() - dark[:, 1].min() + 1) / 10  # 254 DPI = 10 px/mm
    height_mm = (dark[:, 0].max() - dark[:, 0].min() + 1) / 10
    assert abs(width_mm - 100.0) <= 0.3 and abs(height_mm - 50.0) <= 0.3
