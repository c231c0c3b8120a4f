"""Real print clients: DCMTK's dcmpsprt + dcmprscu printing to printscp, films checked.

dcmpsprt renders images into a Stored Print object; dcmprscu sends it as one Film
Session with one Film Box (see shared notes).  dcmprscu exits 0 even on failure,
so its log is checked for E:/F: lines.  Each film is read back from the PDF.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dcmtk import tool
from PIL import Image

from lut.density import pvalue_to_density
from printscp.printing.display_format import Cell, ImageDisplayFormat
from printscp.printing.enums import FilmOrientation, FilmSize
from printscp.printing.layout import film_geometry

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dcmpsprt", "dcmprscu", "dcmodify", "pdftoppm")),
    reason="needs Debian's dcmtk and poppler-utils",
)

DPI = 30


class Dcmtk:
    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.db = tmp / "db"
        self.db.mkdir()
        self.luts = tmp / "lut"
        self.luts.mkdir()

    def config(self, **printer: str) -> Path:
        keys = {"Aetitle": "PRINTSCP", "DisplayFormat": "1,1\\2,2\\3,4\\3,1\\2,1",
                "SupportsPresentationLUT": "true", **printer}
        text = (f"[[GENERAL]]\n[DATABASE]\nDirectory = {self.db}\n[NETWORK]\naetitle = DCMTK_PRN\n"
                f"[LUT]\nDirectory = {self.luts}\n"
                "[[COMMUNICATION]]\n[TARGET]\nType = PRINTER\nHostname = 127.0.0.1\n"
                f"Port = {self.port}\n"
                + "".join(f"{k} = {v}\n" for k, v in keys.items())
                + "[[LUT]]\n[GAMMA]\ndescription = test\nfilename = gamma.lut\n")
        path = self.tmp / "dcmtk.cfg"
        path.write_text(text)
        return path

    def print(self, images: list[Path], layout: tuple[int, int] = (1, 1),
              psprt: list[str] = (), prscu: list[str] = (), fmt: str | None = None,
              **printer: str) -> str:
        cfg = self.config(**printer)
        for old in self.db.glob("*.dcm"):
            old.unlink()
        run = subprocess.run(
            ["dcmpsprt", "-c", str(cfg), "-p", "TARGET", "--nospool", "--layout",
             str(layout[0]), str(layout[1]), *psprt, *map(str, images)],
            capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        [sp] = self.db.glob("SP_*.dcm")
        if fmt:
            # Image Display Format of the Film Box Content Sequence item.
            subprocess.run(["dcmodify", "-nb", "-m", f"(2130,0030)[0].(2010,0010)={fmt}",
                            str(sp)],
                           check=True, capture_output=True)
        log = subprocess.run(
            ["dcmprscu", "-c", str(cfg), "-p", "TARGET", "-d", "--dump", *prscu, str(sp)],
            capture_output=True, text=True, timeout=60)
        out = log.stdout + log.stderr
        errors = [ln for ln in out.splitlines() if ln.startswith(("E:", "F:"))]
        assert not errors, "\n".join(errors)
        return out


@pytest.fixture
def dcmtk(tmp_path, node):
    return Dcmtk(tmp_path, node.port)


def last_film(node) -> dict:
    node.spool.wait_idle()
    jobs = [json.loads(p.read_text()) for p in (node.config.data_path / "films").glob("*.json")]
    assert jobs, "no film was written"
    job = max(jobs, key=lambda j: j["job_id"])  # job ids are time-ordered
    assert job["status"] == "DONE", job.get("error")
    return job


def page(job: dict, tmp: Path, dpi: int = DPI) -> np.ndarray:
    prefix = tmp / Path(job["output"]).stem
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-png", job["output"],
                    str(prefix)], check=True)
    return np.asarray(Image.open(next(tmp.glob(prefix.name + "*.png"))).convert("L"))


def page_size(job: dict) -> tuple[float, float]:
    info = subprocess.run(["pdfinfo", job["output"]], capture_output=True, text=True,
                          check=True).stdout
    line = next(x for x in info.splitlines() if x.startswith("Page size"))
    w, h = line.split(":")[1].split("pts")[0].split(" x ")
    return float(w), float(h)


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
def test_standard_formats_place_images_in_order(node, dcmtk, samples, tmp_path, layout, fmt):
    n = layout[0] * layout[1]
    images = [samples / "wedge_12bit.dcm"] * (n - 1 if n > 1 else 1)
    dcmtk.print(images, layout)
    job = last_film(node)
    assert job["films"][0]["image_display_format"] == fmt
    assert page_size(job) == pytest.approx((1008, 1224), abs=0.01)  # 14INX17IN default
    img = page(job, tmp_path)
    found = [has_image(img, c) for c in cells(job, fmt)]
    # Every box holds the wedge except the last of a partial film (empty density).
    assert found == [True] * len(images) + [False] * (n - len(images))


@pytest.mark.parametrize("fmt, layout", [("ROW\\1,2", (3, 1)), ("COL\\2,1", (3, 1))])
def test_row_and_col_formats(node, dcmtk, samples, tmp_path, fmt, layout):
    images = [samples / "wedge_12bit.dcm", samples / "wedge_12bit.dcm"]
    dcmtk.print(images, layout, fmt=fmt)
    job = last_film(node)
    assert job["films"][0]["image_display_format"] == fmt
    img = page(job, tmp_path)
    assert [has_image(img, c) for c in cells(job, fmt)] == [True, True, False]


def test_12_bit_wedge_lands_on_gsdf_densities(node, dcmtk, samples, tmp_path):
    dcmtk.print([samples / "wedge_12bit.dcm"], psprt=["--magnification", "REPLICATE"])
    job = last_film(node)
    box = job["films"][0]["image_boxes"][0]
    assert box["bits_stored"] == 12
    bars = wedge_bars(page(job, tmp_path, dpi=40), cells(job, "STANDARD\\1,1", 40)[0])
    values = np.rint(np.arange(16) * 4095 / 15)
    expected = pvalue_to_density(values, 12, 0.2, 3.0)
    measured = srgb_od(bars)
    step = np.abs(srgb_od(bars - 1) - srgb_od(bars + 1)) / 2
    assert np.all(np.abs(measured - expected) <= step + 0.02)
    assert np.all(np.diff(bars) > 0)


def test_8_bit_transfer(node, dcmtk, samples, tmp_path):
    dcmtk.print([samples / "wedge_12bit.dcm"], Supports12Bit="false")
    job = last_film(node)
    assert job["films"][0]["image_boxes"][0]["bits_stored"] == 8
    bars = wedge_bars(page(job, tmp_path), cells(job, "STANDARD\\1,1")[0])
    assert np.all(np.diff(bars) > 0)


def test_monochrome1_and_reverse_polarity_invert_the_film(node, dcmtk, samples, tmp_path):
    def bars(case: str) -> np.ndarray:
        job = last_film(node)
        (tmp_path / case).mkdir()
        return wedge_bars(page(job, tmp_path / case), cells(job, "STANDARD\\1,1")[0])

    dcmtk.print([samples / "wedge_12bit.dcm"])
    normal = bars("normal")
    dcmtk.print([samples / "wedge_12bit.dcm"], prscu=["--monochrome1"])
    assert last_film(node)["films"][0]["image_boxes"][0]["photometric_interpretation"] == \
        "MONOCHROME1"
    mono1 = bars("mono1")
    dcmtk.print([samples / "wedge_12bit.dcm"], psprt=["--img-polarity", "REVERSE"])
    assert last_film(node)["films"][0]["image_boxes"][0]["polarity"] == "REVERSE"
    reverse = bars("reverse")
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


def test_explicit_presentation_lut_table(node, dcmtk, samples, tmp_path):
    if not shutil.which("dcmmklut"):
        pytest.skip("dcmmklut missing")
    subprocess.run(["dcmmklut", "+Tp", "+Cg", "2.2", "-b", "12", "-e", "4096",
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


def test_slide_format_from_an_edited_stored_print(node, dcmtk, samples, tmp_path):
    # 20 image boxes, as the default printer's SLIDE layout (4 x 5 slides) has.
    dcmtk.print([samples / "wedge_12bit.dcm"] * 19, (4, 5), fmt="SLIDE",
                DisplayFormat="4,5")
    job = last_film(node)
    assert job["films"][0]["image_display_format"] == "SLIDE"
    img = page(job, tmp_path)
    film = job["films"][0]
    geo = film_geometry(FilmSize(film["film_size_id"]), FilmOrientation(film["film_orientation"]),
                        ImageDisplayFormat.parse("SLIDE").cells(
                            {"SLIDE": tuple(Cell(*c) for c in film["custom_layouts"]["SLIDE"])}))
    found = [has_image(img, b.inset(3).pixels(DPI)) for b in geo.boxes]
    assert found == [True] * 19 + [False]
