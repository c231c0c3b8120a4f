"""Hardcopy on paper: the IPP client, films laid out on paper, and a real CUPS queue.

The end-to-end tests print to a private cupsd (tests/cups.py) whose cups-pdf queue
writes each job as a PDF we read back with poppler.  A stopped queue accepts jobs and
keeps them pending (job-state "pending", reason "printer-stopped"); a queue that
rejects jobs answers server-error-not-accepting-jobs and a dead cupsd refuses the
connection: both are IppError with ``retriable`` true.
"""

from __future__ import annotations

import http.server
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from helpers import cups as private_cups
from helpers.films import page_sizes, pdf_page
from helpers.net import free_port

from printscp.outputs import ipp
from printscp.outputs.ipp import Attribute, Group, IppError, Message
from printscp.printing.film_box import FilmBox
from printscp.printing.image_box import ImageBox
from printscp.printing.paper import (
    IPP_MEDIA,
    PAPER_SIZES,
    PaperPolicy,
    ipp_job_attributes,
    paper_pdf,
)
from printscp.printing.render import RenderedFilm, render_film

PT_PER_MM = 72 / 25.4
POPPLER = pytest.mark.poppler("pdftoppm", "pdfinfo", "pdfimages", "pdftotext")

# --- IPP encoding ----------------------------------------------------------------------


def test_attribute_groups_round_trip():
    when = datetime(2026, 3, 4, 5, 6, 7, 800_000, timezone(timedelta(hours=-5, minutes=-30)))
    msg = Message((1, 1), ipp.PRINT_JOB, 42, [
        Group(ipp.OPERATION_ATTRIBUTES, [
            Attribute("attributes-charset", ipp.CHARSET, ["utf-8"]),
            Attribute("attributes-natural-language", ipp.NATURAL_LANGUAGE, ["en"]),
            Attribute("printer-uri", ipp.URI, ["ipp://h:631/printers/q"]),
            Attribute("job-name", ipp.NAME, ["Röntgen film"]),
        ]),
        Group(ipp.JOB_ATTRIBUTES, [
            Attribute("copies", ipp.INTEGER, [2]),
            Attribute("orientation-requested", ipp.ENUM, [3]),
            Attribute("fit-to-page", ipp.BOOLEAN, [False]),
            Attribute("job-state-reasons", ipp.KEYWORD, ["none", "printer-stopped"]),
            Attribute("printer-resolution", ipp.RESOLUTION, [(300, 300, 3)]),
            Attribute("page-ranges", ipp.RANGE_OF_INTEGER, [(1, 4), (7, 7)]),
            Attribute("time-at-creation", ipp.DATETIME, [when]),
            Attribute("job-message", ipp.TEXT_WITH_LANGUAGE, [("bonjour", "fr")]),
            Attribute("job-hold-until", ipp.NO_VALUE, [None]),
            Attribute("blob", ipp.OCTET_STRING, [b"\x00\xff"]),
            Attribute("media-col", ipp.BEGIN_COLLECTION, [[
                Attribute("media-size", ipp.BEGIN_COLLECTION, [[
                    Attribute("x-dimension", ipp.INTEGER, [21000]),
                    Attribute("y-dimension", ipp.INTEGER, [29700]),
                ]]),
                Attribute("media-type", ipp.KEYWORD, ["stationery"]),
            ]]),
        ]),
    ], data=b"%PDF-1.4 ...")
    raw = msg.encode()
    assert Message.decode(raw) == msg
    # RFC 8010 section 3.1.4 layout of the first attribute, byte for byte.
    assert raw[:9] == b"\x01\x01\x00\x02\x00\x00\x00\x2a\x01"
    assert raw[9:9 + 28] == b"\x47\x00\x12attributes-charset\x00\x05utf-8"
    plain = msg.group(ipp.JOB_ATTRIBUTES).as_dict()
    assert plain["media-col"] == {"media-size": {"x-dimension": 21000, "y-dimension": 29700},
                                  "media-type": "stationery"}
    assert plain["job-state-reasons"] == ["none", "printer-stopped"]


def test_malformed_message_is_a_non_retriable_error():
    raw = Message((1, 1), 0, 1, [Group(ipp.OPERATION_ATTRIBUTES, [
        Attribute("attributes-charset", ipp.CHARSET, ["utf-8"])])]).encode()
    with pytest.raises(IppError) as err:
        Message.decode(raw[:-6])
    assert not err.value.retriable


@pytest.mark.parametrize(("server", "uri"), [
    ("cups.example", "ipp://cups.example:631/printers/Q"),
    ("127.0.0.1:8631", "ipp://127.0.0.1:8631/printers/Q"),
    ("[::1]:632", "ipp://[::1]:632/printers/Q"),
    ("::1", "ipp://[::1]:631/printers/Q"),
])
def test_printer_uri(server, uri):
    assert ipp.printer_uri(server, "Q") == uri
    assert ipp.printer_uri("h", "my queue").endswith("/printers/my%20queue")


class _FakePrinter:
    """An HTTP server answering every POST with one canned IPP status (or HTTP error)."""

    def __init__(self, status: int = 0, http_status: int = 200, hang: bool = False) -> None:
        self.requests: list[tuple[Message, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = Message.decode(body)
                outer.requests.append((request, self.headers["Content-Type"]))
                if hang:
                    outer.release.wait(5)
                    return
                reply = Message((1, 1), status, request.request_id, [
                    Group(ipp.OPERATION_ATTRIBUTES, [
                        Attribute("attributes-charset", ipp.CHARSET, ["utf-8"]),
                        Attribute("attributes-natural-language", ipp.NATURAL_LANGUAGE, ["en"]),
                        Attribute("status-message", ipp.TEXT, ["canned"])]),
                    Group(ipp.JOB_ATTRIBUTES, [Attribute("job-id", ipp.INTEGER, [17]),
                                               Attribute("job-state", ipp.ENUM, [9])]),
                ]).encode()
                self.send_response(http_status)
                self.send_header("Content-Type", "application/ipp")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.release = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll, for shutdown() not to wait the default half second.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.uri = f"ipp://127.0.0.1:{self.httpd.server_address[1]}/printers/fake"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_printer(request) -> Iterator[_FakePrinter]:
    printer = _FakePrinter(**getattr(request, "param", {}))
    yield printer
    printer.close()


@pytest.mark.parametrize("fake_printer", [{"status": 0x0001}], indirect=True)
def test_print_job_request_is_rfc8011_ordered(fake_printer):
    job_id = ipp.print_job(fake_printer.uri, b"%PDF-doc", job_name="film 1", copies=2,
                           media="iso_a4_210x297mm",
                           job_attributes={"print-scaling": "none", "fit-to-page": False,
                                           "orientation-requested": 4, "number-up": 1})
    assert job_id == 17  # successful-ok-ignored-or-substituted-attributes is a success
    request, content_type = fake_printer.requests[0]
    assert content_type == "application/ipp"
    assert request.code == ipp.PRINT_JOB and request.version == (1, 1)
    ops, job = request.groups
    assert [a.name for a in ops.attributes] == [
        "attributes-charset", "attributes-natural-language", "printer-uri",
        "requesting-user-name", "job-name", "document-format"]
    assert ops.attributes[2].values == [fake_printer.uri]
    tags = {a.name: (a.tag, a.values) for a in job.attributes}
    assert tags == {"copies": (ipp.INTEGER, [2]),
                    "media": (ipp.KEYWORD, ["iso_a4_210x297mm"]),
                    "print-scaling": (ipp.KEYWORD, ["none"]),
                    "fit-to-page": (ipp.BOOLEAN, [False]),
                    "orientation-requested": (ipp.ENUM, [4]),
                    "number-up": (ipp.INTEGER, [1])}
    assert request.data == b"%PDF-doc"
    assert ipp.get_job_attributes(fake_printer.uri, 17)["job-state"] == "completed"


@pytest.mark.parametrize(("fake_printer", "status", "retriable"), [
    ({"status": 0x0400}, 0x0400, False),   # client-error-bad-request
    ({"status": 0x040A}, 0x040A, False),   # client-error-document-format-not-supported
    ({"status": 0x0406}, 0x0406, False),   # client-error-not-found
    ({"status": 0x0506}, 0x0506, True),    # server-error-not-accepting-jobs
    ({"status": 0x0507}, 0x0507, True),    # server-error-busy
    ({"status": 0x0502}, 0x0502, True),    # server-error-service-unavailable
    ({"status": 0x0501}, 0x0501, False),   # server-error-operation-not-supported
    ({"http_status": 503}, None, True),
    ({"http_status": 401}, None, False),
], indirect=["fake_printer"])
def test_error_status_mapping(fake_printer, status, retriable):
    with pytest.raises(IppError) as err:
        ipp.print_job(fake_printer.uri, b"x", job_name="j")
    assert err.value.status == status
    assert err.value.retriable is retriable
    if status is not None:
        assert ipp.status_name(status) in str(err.value)


@pytest.mark.parametrize("fake_printer", [{"hang": True}], indirect=True)
def test_timeout_is_retriable(fake_printer):
    with pytest.raises(IppError) as err:
        ipp.print_job(fake_printer.uri, b"x", job_name="j", timeout=0.3)
    assert err.value.retriable and err.value.status is None


def test_connection_refused_is_retriable():
    port = free_port()
    with pytest.raises(IppError) as err:
        ipp.get_printer_attributes(ipp.printer_uri(f"127.0.0.1:{port}", "q"), timeout=2)
    assert err.value.retriable and err.value.status is None


# --- films on paper --------------------------------------------------------------------

BRIGHT, DARK = 4095, 0
#: Image positions printed bright; the others are dark, and so is the (BLACK) border.
BRIGHT_POSITIONS = {1, 4}


def pattern_film(orientation: str = "PORTRAIT", size: str = "14INX17IN") -> RenderedFilm:
    """A STANDARD\\2,2 film: images 1 and 4 white, 2 and 3 black, black border."""
    fb = FilmBox(image_display_format="STANDARD\\2,2", film_size_id=size,
                 film_orientation=orientation, magnification_type="REPLICATE")
    for pos in range(1, 5):
        value = BRIGHT if pos in BRIGHT_POSITIONS else DARK
        fb.set_image(pos, ImageBox(position=pos, bits_stored=12,
                                   pixels=np.full((32, 32), value, np.uint16)))
    return render_film(fb, dpi=40, keep_levels=True)


def kind_at(film: RenderedFilm, point: tuple[float, float] | None) -> str:
    """'bright', 'dark' (dark image or border) or 'paper' at a film point (mm from its
    top left; None is off the printable area)."""
    if point is None:
        return "paper"
    x, y = point
    if not (0 <= x <= film.width_mm and 0 <= y <= film.height_mm):
        return "paper"
    for img in film.images:
        r = img.rect
        if r.x <= x <= r.x + r.width and r.y <= y <= r.y + r.height:
            return "bright" if img.position in BRIGHT_POSITIONS else "dark"
    return "dark"


def check_content(pdf: Path, page: int, film: RenderedFilm, to_film, *, guard: float = 2.5,
                  dpi: int = 20) -> dict[str, int]:
    """Compare every pixel of a page with the film point ``to_film(x_mm, y_mm)`` maps it
    to; pixels within ``guard`` mm of an edge between kinds, and the bottom 6.5 mm (the
    margin label), are not judged."""
    raster = pdf_page(pdf, dpi, page).astype(np.int32)
    label_band = raster.shape[0] * 25.4 / dpi - 6.5
    counts = {"bright": 0, "dark": 0, "paper": 0}
    for py, px in np.ndindex(*raster.shape):
        x, y = (px + 0.5) * 25.4 / dpi, (py + 0.5) * 25.4 / dpi
        if y > label_band:
            continue
        kinds = {kind_at(film, to_film(x + dx, y + dy))
                 for dx in (-guard, 0, guard) for dy in (-guard, 0, guard)}
        if len(kinds) != 1:
            continue
        kind = kinds.pop()
        value = raster[py, px]
        ok = {"bright": value > 170, "dark": value < 80, "paper": value > 245}[kind]
        assert ok, f"page {page} at ({x:.1f}, {y:.1f}) mm: {kind} expected, gray {value}"
        counts[kind] += 1
    return counts


class FitMap:
    """Page mm -> film mm for a film scaled by ``s`` and centred on a W x H page."""

    def __init__(self, film: RenderedFilm, w: float, h: float, s: float) -> None:
        self.ox, self.oy, self.s = (w - film.width_mm * s) / 2, (h - film.height_mm * s) / 2, s

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.ox) / self.s, (y - self.oy) / self.s


class TileMap:
    """Page mm -> film mm on a tile: printable area (margin m) shows the film from
    ``(fx, fy)`` at 1:1; outside it is blank paper."""

    def __init__(self, w: float, h: float, m: float, fx: float, fy: float) -> None:
        self.w, self.h, self.m, self.fx, self.fy = w, h, m, fx, fy

    def __call__(self, x: float, y: float) -> tuple[float, float] | None:
        if not (self.m < x < self.w - self.m and self.m < y < self.h - self.m):
            return None
        return self.fx + x - self.m, self.fy + y - self.m


def image_objects(pdf: Path) -> list[int]:
    """Object id of every image drawn, one per (page, image) as pdfimages lists them."""
    out = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()[2:]
    return [int(line.split()[10]) for line in out if line.strip()]


def tiles(film_w: float, film_h: float, paper: str, m: float = 5.0):
    """(paper w, h as oriented, cols, rows): the orientation needing fewer sheets."""
    pw, ph = PAPER_SIZES[paper]
    options = []
    for w, h in ((pw, ph), (ph, pw)):
        cols, rows = math.ceil(film_w / (w - 2 * m)), math.ceil(film_h / (h - 2 * m))
        options.append((cols * rows, (w, h, cols, rows)))
    return min(options, key=lambda o: o[0])[1]


@pytest.fixture(scope="module")
def films() -> dict[str, RenderedFilm]:
    return {"portrait": pattern_film(), "landscape": pattern_film("LANDSCAPE")}


@pytest.mark.slow
@POPPLER
@pytest.mark.parametrize("paper", ["A4", "LETTER"])
@pytest.mark.parametrize("kind", ["portrait", "landscape"])
def test_fit_one_page_turned_to_the_film(films, tmp_path, paper, kind):
    film = films[kind]
    pdf = tmp_path / "fit.pdf"
    data, pages = paper_pdf([film], paper, PaperPolicy.FIT)
    pdf.write_bytes(data)
    pw, ph = PAPER_SIZES[paper]
    w, h = (pw, ph) if kind == "portrait" else (ph, pw)
    assert pages == 1
    [(pt_w, pt_h)] = page_sizes(pdf)
    assert pt_w == pytest.approx(w * PT_PER_MM, abs=0.01)
    assert pt_h == pytest.approx(h * PT_PER_MM, abs=0.01)
    s = min((w - 10) / film.width_mm, (h - 10) / film.height_mm)
    counts = check_content(pdf, 1, film, FitMap(film, w, h, s))
    assert min(counts.values()) > 20
    assert len(set(image_objects(pdf))) == 4


@pytest.mark.slow
@POPPLER
@pytest.mark.parametrize("paper", ["A4", "LETTER"])
@pytest.mark.parametrize("kind", ["portrait", "landscape"])
def test_true_size_tiles(films, tmp_path, paper, kind):
    film = films[kind]
    pdf = tmp_path / "tiles.pdf"
    data, pages = paper_pdf([film], paper, PaperPolicy.TRUE_SIZE)
    pdf.write_bytes(data)
    w, h, cols, rows = tiles(film.width_mm, film.height_mm, paper)
    assert (film.width_mm, film.height_mm) == pytest.approx(
        (355.6, 431.8) if kind == "portrait" else (431.8, 355.6))
    assert pages == cols * rows == 4  # 14x17 in on A4 or Letter: 2 x 2 sheets
    for size in page_sizes(pdf):
        assert size == pytest.approx((w * PT_PER_MM, h * PT_PER_MM), abs=0.01)
    for i in range(pages):
        row, col = divmod(i, cols)
        mapping = TileMap(w, h, 5.0, col * (w - 10), row * (h - 10))
        counts = check_content(pdf, i + 1, film, mapping)
        assert counts["bright"] + counts["dark"] > 20
    drawn = image_objects(pdf)
    assert len(set(drawn)) == 4 < len(drawn)  # each image once, referenced by each tile
    text = subprocess.run(["pdftotext", "-f", "2", "-l", "2", str(pdf), "-"],
                          capture_output=True, text=True).stdout
    assert "tile 2/4, row 1 col 2, 1:1" in text


@pytest.mark.slow
@POPPLER
def test_true_size_film_that_fits_is_one_centred_page(tmp_path):
    film = pattern_film(size="8INX10IN")
    pdf = tmp_path / "a3.pdf"
    data, pages = paper_pdf([film], "A3", PaperPolicy.TRUE_SIZE)
    pdf.write_bytes(data)
    assert pages == 1
    assert page_sizes(pdf) == [pytest.approx((297 * PT_PER_MM, 420 * PT_PER_MM), abs=0.01)]
    counts = check_content(pdf, 1, film, FitMap(film, 297, 420, 1.0))
    assert min(counts.values()) > 20


@POPPLER
def test_copies_repeat_pages_not_images_and_film_paper(films, tmp_path):
    pdf = tmp_path / "copies.pdf"
    data, pages = paper_pdf([films["portrait"], films["landscape"]], "A4",
                            PaperPolicy.TRUE_SIZE, copies=2)
    pdf.write_bytes(data)
    assert pages == len(page_sizes(pdf)) == 16
    assert len(set(image_objects(pdf))) == 8
    data, pages = paper_pdf([films["landscape"]], "film", PaperPolicy.FIT)
    pdf.write_bytes(data)
    assert page_sizes(pdf) == [pytest.approx((431.8 * PT_PER_MM, 355.6 * PT_PER_MM), abs=0.01)]


def test_paper_tables_and_job_attributes():
    assert set(IPP_MEDIA) == set(PAPER_SIZES) - {"FILM"}
    assert IPP_MEDIA["A4"] == "iso_a4_210x297mm" and IPP_MEDIA["LETTER"] == "na_letter_8.5x11in"
    assert ipp_job_attributes(PaperPolicy.TRUE_SIZE, pages=4) == {
        "print-scaling": "none",
        "multiple-document-handling": "separate-documents-collated-copies"}
    assert ipp_job_attributes(PaperPolicy.FIT) == {"print-scaling": "fit"}
    with pytest.raises(ValueError, match="unknown paper"):
        paper_pdf([pattern_film()], "B5", PaperPolicy.FIT)


# --- a real CUPS queue -----------------------------------------------------------------



def _print(cups, films, paper, policy, tmp_path) -> tuple[Path, int]:
    data, pages = paper_pdf(films, paper, policy)
    job_id = ipp.print_job(cups.uri, data, job_name="printscp test", media=IPP_MEDIA[paper],
                           job_attributes=ipp_job_attributes(policy, pages=pages))
    attrs = cups.wait_for_job(job_id)
    assert attrs["job-state"] == "completed", (attrs, cups.log_tail())
    out = tmp_path / "printed.pdf"
    shutil.copy(cups.output_for(job_id), out)
    return out, pages


@pytest.mark.slow
@pytest.mark.cups
@POPPLER
def test_cups_prints_fitted_film_on_a4(cups, films, tmp_path):
    film = films["portrait"]
    out, _ = _print(cups, [film], "A4", PaperPolicy.FIT, tmp_path)
    [(w, h)] = page_sizes(out)
    assert abs(w - 595) <= 1 and abs(h - 842) <= 1
    s = min(200 / film.width_mm, 287 / film.height_mm)
    counts = check_content(out, 1, film, FitMap(film, 210, 297, s), guard=3.0)
    assert min(counts.values()) > 20


@pytest.mark.slow
@pytest.mark.cups
@POPPLER
def test_cups_prints_true_size_tiles_unscaled(cups, films, tmp_path):
    film = films["portrait"]
    out, pages = _print(cups, [film], "A4", PaperPolicy.TRUE_SIZE, tmp_path)
    sizes = page_sizes(out)
    assert len(sizes) == pages == 4
    assert all(abs(w - 595) <= 1 and abs(h - 842) <= 1 for w, h in sizes)
    for page, (fx, fy) in ((2, (200.0, 0.0)), (3, (0.0, 287.0))):
        counts = check_content(out, page, film, TileMap(210, 297, 5.0, fx, fy), guard=3.0)
        assert counts["bright"] > 20 and counts["dark"] > 20


@pytest.mark.slow
@pytest.mark.cups
def test_printer_attributes(cups):
    attrs = ipp.get_printer_attributes(cups.uri)
    assert attrs["printer-state"] in ("idle", "processing")
    assert attrs["printer-is-accepting-jobs"] is True
    assert "none" in attrs["print-scaling-supported"]
    assert IPP_MEDIA["A4"] in attrs["media-supported"]


@pytest.mark.slow
@pytest.mark.cups
def test_stopped_queue_keeps_the_job_pending(cups):
    cups.stop_queue()
    try:
        assert ipp.get_printer_attributes(cups.uri)["printer-state"] == "stopped"
        job_id = ipp.print_job(cups.uri, paper_pdf([pattern_film()], "A4", PaperPolicy.FIT)[0],
                               job_name="stopped")
        # CUPS keeps it pending (reasons "none" or "printer-stopped", as it goes).
        for _ in range(5):
            assert ipp.get_job_attributes(cups.uri, job_id)["job-state"] == "pending"
            time.sleep(0.2)
        ipp.cancel_job(cups.uri, job_id)
        assert ipp.get_job_attributes(cups.uri, job_id)["job-state"] == "canceled"
    finally:
        cups.start_queue()


@pytest.mark.slow
@pytest.mark.cups
def test_rejecting_queue_is_a_retriable_error(cups):
    cups.reject_jobs()
    try:
        assert ipp.get_printer_attributes(cups.uri)["printer-is-accepting-jobs"] is False
        with pytest.raises(IppError) as err:
            ipp.print_job(cups.uri, b"%PDF-1.4\n", job_name="rejected")
        assert err.value.status == 0x0506 and err.value.retriable
    finally:
        cups.accept_jobs()


@pytest.mark.slow
@pytest.mark.cups
def test_dead_cupsd_is_a_retriable_error():
    with private_cups.running_cups() as server:
        uri = server.uri
        server.kill()
        with pytest.raises(IppError) as err:
            ipp.print_job(uri, b"%PDF-1.4\n", job_name="dead", timeout=5)
        assert err.value.retriable and err.value.status is None
