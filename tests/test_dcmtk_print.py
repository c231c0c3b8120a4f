"""Real print clients: DCMTK's dcmpsprt + dcmprscu printing to printscp, films checked.

dcmpsprt renders images into a Stored Print object; dcmprscu sends it as one Film
Session with one Film Box (see :class:`helpers.dcmtk.PrintClient`).  Each film is read
back from the PDF.
"""

from __future__ import annotations

import itertools
import subprocess

import numpy as np
import pytest
from helpers.dcmtk import PrintClient, tool
from helpers.films import pdf_page, pdf_pages
from helpers.nodes import printed_jobs

from lut.density import pvalue_to_density
from printscp.printing.display_format import Cell, ImageDisplayFormat
from printscp.printing.enums import FilmOrientation, FilmSize
from printscp.printing.layout import film_geometry

pytestmark = [pytest.mark.slow, pytest.mark.dcmtk("dcmpsprt", "dcmprscu", "dcmodify"),
              pytest.mark.poppler("pdftoppm", "pdfinfo", "pdftotext")]

DPI = 30


@pytest.fixture
def dcmtk(tmp_path, node):
    return PrintClient(tmp_path, node.port)


def last_film(node) -> dict:
    jobs = printed_jobs(node)
    assert jobs, "no film was written"
    job = jobs[-1]  # job ids are time-ordered
    assert job["status"] == "DONE", job.get("error")
    return job


def page(job: dict, dpi: int = DPI) -> np.ndarray:
    return pdf_page(job["output"], dpi)


def page_size(job: dict) -> tuple[float, float]:
    return pdf_pages(job["output"])[1]


def cells(job: dict, fmt: str, dpi: int = DPI) -> list[tuple[int, int, int, int]]:
    film = job["films"][0]
    geo = film_geometry(FilmSize(film["film_size_id"]), FilmOrientation(film["film_orientation"]),
                        ImageDisplayFormat.parse(fmt).cells())
    return [b.inset(3).pixels(dpi) for b in geo.boxes]


def has_image(img: np.ndarray, cell: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = cell
    return int(np.ptp(img[y0:y1, x0:x1])) > 40


def srgb_od(gray: np.ndarray) -> np.ndarray:
    v = np.asarray(gray, dtype=float) / 255
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return -np.log10(np.maximum(lin, 1e-4))


def wedge_bars(img: np.ndarray, cell: tuple[int, int, int, int], n: int = 16) -> np.ndarray:
    """Median gray of each of ``n`` vertical bars of a square wedge centred in ``cell``."""
    x0, y0, x1, y1 = cell
    side = min(x1 - x0, y1 - y0)
    cx0 = x0 + (x1 - x0 - side) // 2
    row = img[(y0 + y1) // 2, cx0:cx0 + side].astype(float)
    edges = np.linspace(0, side, n + 1).astype(int)
    return np.array([np.median(row[a + 1:b - 1]) for a, b in itertools.pairwise(edges)])


def test_echoscu(node):
    run = subprocess.run([tool("echoscu"), "-aec", "PRINTSCP", "127.0.0.1", str(node.port)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("layout, fmt", [((1, 1), "STANDARD\\1,1"), ((2, 2), "STANDARD\\2,2"),
                                         ((3, 4), "STANDARD\\3,4")])
def test_standard_formats_place_images_in_order(node, dcmtk, samples, layout, fmt):
    n = layout[0] * layout[1]
    images = [samples / "wedge_12bit.dcm"] * (n - 1 if n > 1 else 1)
    dcmtk.print(images, layout)
    job = last_film(node)
    assert job["films"][0]["image_display_format"] == fmt
    assert page_size(job) == pytest.approx((1008, 1224), abs=0.01)  # 14INX17IN default
    img = page(job)
    found = [has_image(img, c) for c in cells(job, fmt)]
    # Every box holds the wedge except the last of a partial film (empty density).
    assert found == [True] * len(images) + [False] * (n - len(images))


@pytest.mark.parametrize("fmt, layout", [("ROW\\1,2", (3, 1)), ("COL\\2,1", (3, 1))])
def test_row_and_col_formats(node, dcmtk, samples, fmt, layout):
    images = [samples / "wedge_12bit.dcm", samples / "wedge_12bit.dcm"]
    dcmtk.print(images, layout, fmt=fmt)
    job = last_film(node)
    assert job["films"][0]["image_display_format"] == fmt
    img = page(job)
    assert [has_image(img, c) for c in cells(job, fmt)] == [True, True, False]


def test_12_bit_wedge_lands_on_gsdf_densities(node, dcmtk, samples):
    dcmtk.print([samples / "wedge_12bit.dcm"], psprt=["--magnification", "REPLICATE"])
    job = last_film(node)
    box = job["films"][0]["image_boxes"][0]
    assert box["bits_stored"] == 12
    bars = wedge_bars(page(job, dpi=40), cells(job, "STANDARD\\1,1", 40)[0])
    values = np.rint(np.arange(16) * 4095 / 15)
    expected = pvalue_to_density(values, 12, 0.2, 3.0)
    measured = srgb_od(bars)
    step = np.abs(srgb_od(bars - 1) - srgb_od(bars + 1)) / 2
    assert np.all(np.abs(measured - expected) <= step + 0.02)
    assert np.all(np.diff(bars) > 0)


def test_8_bit_transfer(node, dcmtk, samples):
    dcmtk.print([samples / "wedge_12bit.dcm"], Supports12Bit="false")
    job = last_film(node)
    assert job["films"][0]["image_boxes"][0]["bits_stored"] == 8
    bars = wedge_bars(page(job), cells(job, "STANDARD\\1,1")[0])
    assert np.all(np.diff(bars) > 0)


def test_monochrome1_and_reverse_polarity_invert_the_film(node, dcmtk, samples):
    def bars() -> np.ndarray:
        job = last_film(node)
        return wedge_bars(page(job), cells(job, "STANDARD\\1,1")[0])

    dcmtk.print([samples / "wedge_12bit.dcm"])
    normal = bars()
    dcmtk.print([samples / "wedge_12bit.dcm"], prscu=["--monochrome1"])
    assert last_film(node)["films"][0]["image_boxes"][0]["photometric_interpretation"] == \
        "MONOCHROME1"
    mono1 = bars()
    dcmtk.print([samples / "wedge_12bit.dcm"], psprt=["--img-polarity", "REVERSE"])
    assert last_film(node)["films"][0]["image_boxes"][0]["polarity"] == "REVERSE"
    reverse = bars()
    # DCMTK inverts the values when it sends MONOCHROME1: the same picture prints.
    np.testing.assert_allclose(mono1, normal, atol=2)
    np.testing.assert_allclose(reverse, normal[::-1], atol=2)


@pytest.mark.parametrize("option, shape", [("--identity", "IDENTITY"), ("--lin-od", "LIN OD")])
def test_presentation_lut_shapes(node, dcmtk, samples, option, shape):
    # Without SCP rendering DCMTK burns LIN OD into the pixels and sends IDENTITY.
    dcmtk.print([samples / "wedge_12bit.dcm"], psprt=[option],
                PresentationLUTPreferSCPRendering="true")
    job = last_film(node)
    assert job["films"][0]["presentation_lut"] == {"shape": shape}


@pytest.mark.dcmtk("dcmmklut")
def test_explicit_presentation_lut_table(node, dcmtk, samples):
    subprocess.run([tool("dcmmklut"), "+Tp", "+Cg", "2.2", "-b", "12", "-e", "4096",
                    str(dcmtk.luts / "gamma.lut")], check=True, capture_output=True)
    dcmtk.print([samples / "wedge_12bit.dcm"], psprt=["--plut", "GAMMA"],
                PresentationLUTPreferSCPRendering="true", PresentationLUTMatchRequired="false")
    job = last_film(node)
    plut = job["films"][0]["presentation_lut"]
    assert plut is not None and plut.get("lut_descriptor", [0])[0] == 4096


@pytest.mark.parametrize("size, orientation, points", [
    ("8INX10IN", "--landscape", (720, 576)), ("A4", "--portrait", (595.28, 841.89)),
    ("11INX14IN", "--portrait", (792, 1008)),
])
def test_film_sizes_and_orientation(node, dcmtk, samples, size, orientation, points):
    dcmtk.print([samples / "CT_small.dcm"], psprt=["--filmsize", size, orientation])
    assert page_size(last_film(node)) == pytest.approx(points, abs=0.01)


def test_implicit_vr_only_client_and_session_print(node, dcmtk, samples):
    log = dcmtk.print([samples / "wedge_12bit.dcm"], prscu=["--session-print", "--copies", "2",
                                                           "--label", "DCMTK LABEL"],
                      ImplicitOnly="true")
    assert "implicit xfer syntax only" in log
    job = last_film(node)
    assert job["copies"] == 2 and job["pages"] == 2
    assert job["session"]["film_session_label"] == "DCMTK LABEL"


def test_annotation_from_dcmtk_is_printed(node, dcmtk, samples):
    log = dcmtk.print([samples / "wedge_12bit.dcm"],
                      psprt=["--annotation", "DCMTK NOTE", "-pd", "-pn", "-pl"],
                      Annotation="1\\ANNOTATION")
    assert "not enough Annotation Boxes" not in log
    job = last_film(node)
    assert job["films"][0]["annotation_display_format_id"] == "ANNOTATION"
    assert job["films"][0]["annotations"] == {"1": "DCMTK NOTE"}
    text = subprocess.run(["pdftotext", job["output"], "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "DCMTK NOTE" in text


def test_slide_format_from_an_edited_stored_print(node, dcmtk, samples):
    # 20 image boxes, as the default printer's SLIDE layout (4 x 5 slides) has.
    dcmtk.print([samples / "wedge_12bit.dcm"] * 19, (4, 5), fmt="SLIDE",
                DisplayFormat="4,5")
    job = last_film(node)
    assert job["films"][0]["image_display_format"] == "SLIDE"
    img = page(job)
    film = job["films"][0]
    geo = film_geometry(FilmSize(film["film_size_id"]), FilmOrientation(film["film_orientation"]),
                        ImageDisplayFormat.parse("SLIDE").cells(
                            {"SLIDE": tuple(Cell(*c) for c in film["custom_layouts"]["SLIDE"])}))
    found = [has_image(img, b.inset(3).pixels(DPI)) for b in geo.boxes]
    assert found == [True] * 19 + [False]
