"""Printer profiles: several printers by called AE title, each with its own limits and
layouts (docs/profiles/dry-film-imager.toml)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers.dcmtk import PrintClient
from helpers.films import pdf_info, pdf_page
from helpers.nodes import node_config, printed_jobs
from helpers.print_scu import PrintSCU

from printscp.core import status, uids

PROFILES = Path(__file__).resolve().parents[1] / "docs" / "profiles" / "dry-film-imager.toml"

pytestmark = pytest.mark.slow  # every test runs a node


@pytest.fixture
def profiled(make_node):
    return make_node(PROFILES)


def test_each_called_ae_reaches_its_printer(profiled):
    with PrintSCU(profiled.port, called="PAPER") as paper:
        _, printer = paper.get_printer([0x21100030])
        assert printer.PrinterName == "PAPER"
        paper.film_session()
        fb, boxes, rsp = paper.film_box()
        assert rsp.FilmSizeID == "A4" and rsp.BorderDensity == "WHITE"
        st, _ = paper.create(uids.BASIC_FILM_BOX, _fb(paper, FilmSizeID="14INX17IN"))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        assert st.ErrorComment.startswith("FilmSizeID (2010,0050)")
        paper.image(boxes[0], 1, np.full((32, 32), 2048, np.uint16))
        assert paper.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
    with PrintSCU(profiled.port, called="PRINTSCP") as film:
        _, printer = film.get_printer([0x21100030])
        assert printer.PrinterName == "DRYFILM"
        film.film_session()
        _, _, rsp = film.film_box()
        assert rsp.FilmSizeID == "14INX17IN" and rsp.MagnificationType == "CUBIC"
        st, _ = film.create(uids.BASIC_FILM_BOX, _fb(film, FilmSizeID="A4"))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        st, _ = film.create(uids.BASIC_FILM_BOX, _fb(film, SmoothingType="ULTRA"))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE and "SmoothingType" in st.ErrorComment
        st, _ = film.create(uids.BASIC_FILM_BOX, _fb(film, MaxDensity=400))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE and "MaxDensity" in st.ErrorComment
    [job] = printed_jobs(profiled)
    assert job["printer"] == "PAPER" and job["session"]["medium_type"] == "PAPER"


def _fb(scu: PrintSCU, fmt: str = "STANDARD\\1,1", **attrs):
    return scu.film_box_dataset(fmt, **attrs)


def test_slide_formats_come_from_the_profile(profiled):
    with PrintSCU(profiled.port) as scu:
        scu.film_session()
        _, boxes, _ = scu.film_box("SLIDE")
        assert len(boxes) == 20
        _, boxes, _ = scu.film_box("SUPERSLIDE")
        assert len(boxes) == 16
    with PrintSCU(profiled.port, called="PAPER") as paper:
        paper.film_session()
        st, _ = paper.create(uids.BASIC_FILM_BOX, _fb(paper, "SLIDE"))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        assert "ImageDisplayFormat" in st.ErrorComment


@pytest.mark.poppler("pdftoppm")
def test_custom_layout_places_images_where_the_profile_says(profiled):
    levels = [4095, 0, 2048]  # light, dark, mid
    with PrintSCU(profiled.port) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box("CUSTOM\\1", BorderDensity="100")
        assert len(boxes) == 3
        for pos, (uid, level) in enumerate(zip(boxes, levels, strict=True), start=1):
            scu.image(uid, pos, np.full((64, 64), level, np.uint16))
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
    [job] = printed_jobs(profiled)
    assert job["films"][0]["custom_layouts"]["CUSTOM\\1"][0] == [0.0, 0.0, 1.0, 0.6]
    page = pdf_page(job["output"], 10).astype(int)
    h, w = page.shape
    top = page[int(h * 0.30), w // 2]  # position 1: the upper 60 %
    left = page[int(h * 0.80), int(w * 0.25)]  # position 2: bottom left
    right = page[int(h * 0.80), int(w * 0.75)]  # position 3: bottom right
    assert top > right > left


@pytest.mark.dcmtk("dcmpsprt", "dcmprscu")
@pytest.mark.poppler("pdfinfo")
def test_dcmtk_prints_to_the_paper_printer_by_its_ae_title(profiled, tmp_path, samples):
    client = PrintClient(tmp_path, profiled.port)
    client.print([samples / "CT_small.dcm"], psprt=["--filmsize", "A4"], Aetitle="PAPER")
    [job] = printed_jobs(profiled)
    assert job["printer"] == "PAPER" and job["called_ae"] == "PAPER"
    assert "pts (A4)" in pdf_info(job["output"])["Page size"]


def test_printer_without_collation(make_node, tmp_path):
    node = make_node(printer=replace(node_config(tmp_path).printer, collation=False))
    with PrintSCU(node.port) as scu:
        scu.film_session()
        fb1, boxes, _ = scu.film_box()
        scu.image(boxes[0], 1, np.zeros((16, 16), np.uint16))
        st, _ = scu.create(uids.BASIC_FILM_BOX, _fb(scu))
        assert st.Status == status.UNPRINTED_FILM_BOX
        assert scu.action(uids.BASIC_FILM_BOX, fb1)[0].Status == 0
        scu.film_box()  # allowed now: the first one is printed
        st, _ = scu.action(uids.BASIC_FILM_SESSION, scu.session_uid)
        assert st.Status == status.COLLATION_NOT_SUPPORTED
    # Film box 1 alone, then film boxes 1 and 2 as separate jobs: three films in all.
    assert [j["film_count"] for j in printed_jobs(node)] == [1, 1, 1]


def test_collating_printer_prints_an_empty_session_with_b602(profiled):
    with PrintSCU(profiled.port) as scu:
        scu.film_session()
        scu.film_box()
        scu.film_box()
        st, _ = scu.action(uids.BASIC_FILM_SESSION, scu.session_uid)
        assert st.Status == status.EMPTY_FILM_SESSION
    assert [j["film_count"] for j in printed_jobs(profiled)] == [2]


def test_paper_printer_replaces_film_densities_by_its_own(profiled):
    with PrintSCU(profiled.port, called="PAPER") as paper:
        paper.film_session()
        # N-CREATE: replaced silently (a warning would cost the client the new UID).
        fb, boxes, rsp = paper.film_box(MaxDensity=300)
        assert rsp.MaxDensity == 200 and rsp.MinDensity == 5
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.MaxDensity = 320
        st, _ = paper.set(uids.BASIC_FILM_BOX, fb, ds)
        assert st.Status == status.DENSITY_OUT_OF_RANGE
        ds = Dataset()
        ds.MaxDensity = 180
        st, _ = paper.set(uids.BASIC_FILM_BOX, fb, ds)
        assert st.Status == 0
        # Film size is not replaceable on this printer: still refused.
        st, _ = paper.create(uids.BASIC_FILM_BOX, _fb(paper, FilmSizeID="14INX17IN"))
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE
        paper.image(boxes[0], 1, np.zeros((16, 16), np.uint16))
        assert paper.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
    [job] = printed_jobs(profiled)
    assert job["films"][0]["max_density"] == 180
