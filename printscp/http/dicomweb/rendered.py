"""Rendered resources (PS3.18 9.5 / 10.4.1.1.5): an instance or one of its frames as a
consumer-format image, and a printed film as its PDF.

Images: modality values (the Modality LUT) through the VOI window, the one the request
gives (``window=center,width[,function]``, PS3.18 8.3.5.1.4) or else the data set's
first Window Center/Width, or its first VOI LUT, or else the frame's full range, to
8-bit grey by the print path's own code
(:func:`printscp.printing.images.grayscale_to_print`), MONOCHROME1 inverted;
colour images as they are.  ``viewport=vw,vh`` scales the image to fit that box, keeping
its aspect ratio; ``quality`` (1-100) is the JPEG quality.  Media types: ``image/jpeg``
(the default, PS3.18 Table 9.5.1-1 for single frames) and ``image/png``.

Encapsulated PDF (the node's printed films, :mod:`printscp.archive.films`): the PDF itself
(``application/pdf``, the default), or with ``image/png`` / ``image/jpeg`` a page
rasterised by poppler's ``pdftoppm`` (``/frames/{n}/rendered`` is page n; the instance's
``/rendered`` page 1, or every page when the Accept is ``multipart/related;
type="image/png"``).  Without ``pdftoppm`` on the node an image of a PDF is 406.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from PIL import Image
from pydicom.dataset import Dataset

from lut.voi import VOI_FUNCTIONS
from printscp.archive.documents import ENCAPSULATED_PDF
from printscp.http.dicomweb import multipart as mp
from printscp.http.dicomweb.wado import (
    audit_retrieve,
    frame_count,
    instance_file,
    parse_frames,
    read_instance,
)
from printscp.http.errors import ApiError
from printscp.printing.images import grayscale_to_print

router = APIRouter()

#: JPEG quality when the request names none.
DEFAULT_QUALITY = 90
#: Resolution at which PDF pages are rasterised (a film page of A4/14x17in: ~1100 px).
PDF_DPI = 100
#: The largest viewport side served (a bad parameter must not allocate gigabytes).
MAX_VIEWPORT = 8192
#: Longest a page rasterisation may take.
PDF_TIMEOUT = 60


class Rendering:
    """The rendering parameters of a request (PS3.18 8.3.5.1), validated."""

    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.window: tuple[float, float, str] | None = None
        self.viewport: tuple[int, int] | None = None
        self.quality = DEFAULT_QUALITY
        if "window" in q:
            parts = [p.strip() for p in q["window"].split(",")]
            try:
                center, width = float(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                raise ApiError(400, "window must be center,width[,function]",
                               "query.window") from None
            function = (parts[2] if len(parts) > 2 else "linear").upper()
            if function not in VOI_FUNCTIONS or len(parts) > 3:
                raise ApiError(400, f"window function must be one of "
                               f"{', '.join(f.lower() for f in VOI_FUNCTIONS)}",
                               "query.window")
            if width <= 0 or (function == "LINEAR" and width < 1):
                raise ApiError(400, "window width must be positive (>= 1 for linear)",
                               "query.window")
            self.window = (center, width, function)
        if "viewport" in q:
            try:
                vw, vh = (int(v) for v in q["viewport"].split(",")[:2])
            except ValueError:
                raise ApiError(400, "viewport must be vw,vh (pixels)", "query.viewport") \
                    from None
            if not (0 < vw <= MAX_VIEWPORT and 0 < vh <= MAX_VIEWPORT):
                raise ApiError(400, f"viewport sides must be 1..{MAX_VIEWPORT}",
                               "query.viewport")
            self.viewport = (vw, vh)
        if "quality" in q:
            try:
                self.quality = int(q["quality"])
            except ValueError:
                raise ApiError(400, "quality must be 1..100", "query.quality") from None
            if not 1 <= self.quality <= 100:
                raise ApiError(400, "quality must be 1..100", "query.quality")


def grey_levels(ds: Dataset, frame: np.ndarray, rendering: Rendering) -> np.ndarray:
    """8-bit display values of a monochrome ``frame`` (stored values): the print path's
    Modality LUT and VOI (:func:`printscp.printing.images.grayscale_to_print`), so a
    rendered image and a printed one window the same way."""
    grey = grayscale_to_print(frame, ds, rendering.window, bits=8).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        grey = np.uint8(255) - grey
    return grey


def render_frame(ds: Dataset, number: int, rendering: Rendering) -> Image.Image:
    """Frame ``number`` (1-based) of an image instance as a PIL image."""
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise ApiError(406, f"cannot decode the pixel data to render it: {exc}") from None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frame_count(ds) > 1:
        pixels = pixels[number - 1]
    if samples == 1:
        return Image.fromarray(grey_levels(ds, pixels, rendering), mode="L")
    bits = int(ds.get("BitsStored", 8) or 8)
    if bits > 8:
        pixels = (pixels.astype(np.float64) * (255.0 / ((1 << bits) - 1))).round()
    return Image.fromarray(np.ascontiguousarray(pixels.astype(np.uint8)), mode="RGB")


def _fit(image: Image.Image, rendering: Rendering) -> Image.Image:
    if rendering.viewport is None:
        return image
    vw, vh = rendering.viewport
    scale = min(vw / image.width, vh / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def encode(image: Image.Image, media: str, rendering: Rendering) -> bytes:
    out = io.BytesIO()
    if media == mp.PNG:
        image.save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=rendering.quality)
    return out.getvalue()


def _image_type(ranges: list[mp.MediaRange], header: str | None, *, pdf: bool = False
                ) -> tuple[str, bool]:
    """(media type, as multipart?) for a rendered resource; 406 when none fits.

    An image's default is image/jpeg; a PDF's application/pdf."""
    offered = ([mp.PDF] if pdf else []) + [mp.JPEG, mp.PNG]
    for r in ranges:
        if r.media_type == mp.MULTIPART_RELATED:
            kind = r.related_type
            for media in offered:
                if kind is None or mp.MediaRange(kind).accepts(media):
                    return media, True
            continue
        for media in offered:
            if r.accepts(media):
                return media, False
    raise mp.not_acceptable(", ".join(offered), header)


# -- PDF -----------------------------------------------------------------------------
def pdf_bytes(ds: Dataset) -> bytes:
    """The encapsulated PDF without the value's padding byte."""
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    if length:
        return data[:int(length)]
    return data.rstrip(b"\x00") if data.endswith(b"\x00") else data


def pdf_pages(pdf: bytes) -> int:
    """The number of pages (poppler's pdfinfo, else the page objects counted)."""
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo:
        done = subprocess.run([pdfinfo, "-"], input=pdf, capture_output=True,
                              timeout=PDF_TIMEOUT, check=False)
        found = re.search(rb"^Pages:\s+(\d+)", done.stdout, re.M)
        if found:
            return int(found.group(1))
    return max(1, len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf)))


def pdf_page(pdf: bytes, page: int) -> Image.Image:
    """Page ``page`` (1-based) of ``pdf`` rasterised at :data:`PDF_DPI`."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise ApiError(406, "this node cannot rasterise PDF pages (poppler's pdftoppm is "
                       "not installed); ask for application/pdf")
    done = subprocess.run([pdftoppm, "-png", "-r", str(PDF_DPI), "-f", str(page), "-l",
                           str(page), "-"], input=pdf, capture_output=True,
                          timeout=PDF_TIMEOUT, check=False)
    if done.returncode != 0 or not done.stdout:
        raise ApiError(500, f"cannot rasterise page {page} of the PDF: "
                       f"{done.stderr.decode(errors='replace').strip()}")
    return Image.open(io.BytesIO(done.stdout)).convert("RGB")


# -- the routes ----------------------------------------------------------------------
def _single(data: bytes, media: str) -> Response:
    return Response(data, media_type=media)


def _multipart(images: list[bytes], media: str, location: str) -> StreamingResponse:
    boundary = mp.new_boundary()
    body = mp.related(((mp.part_header(media, Content_Location=location), [data])
                       for data in images), boundary)
    return StreamingResponse(body, media_type=mp.related_content_type(media, boundary))


def _render(request: Request, study: str, series: str, instance: str,
            frames: str | None) -> Response:
    rendering = Rendering(request)
    record, path = instance_file(request, study, series, instance)
    ds = read_instance(path)
    header = request.headers.get("accept")
    ranges = mp.parse_accept(header)
    is_pdf = record.sop_class_uid == ENCAPSULATED_PDF and "EncapsulatedDocument" in ds
    if not is_pdf and "PixelData" not in ds:
        raise ApiError(404, f"instance {instance} has neither pixel data nor a PDF to render")
    media, as_multipart = _image_type(ranges, header, pdf=is_pdf)
    audit_retrieve(request, [record], "rendered")
    if is_pdf:
        pdf = pdf_bytes(ds)
        if media == mp.PDF:
            if frames is not None:
                raise mp.not_acceptable("image/png or image/jpeg (a page)", header)
            return (_multipart([pdf], media, str(request.url)) if as_multipart
                    else _single(pdf, media))
        if frames is not None:
            numbers = parse_frames(frames, pdf_pages(pdf))
        else:
            numbers = list(range(1, pdf_pages(pdf) + 1)) if as_multipart else [1]
        images = [encode(_fit(pdf_page(pdf, n), rendering), media, rendering)
                  for n in numbers]
    else:
        numbers = parse_frames(frames, frame_count(ds)) if frames is not None else [1]
        images = [encode(_fit(render_frame(ds, n, rendering), rendering), media, rendering)
                  for n in numbers]
    if as_multipart:
        return _multipart(images, media, str(request.url))
    if len(images) > 1:
        raise mp.not_acceptable(f'multipart/related; type="{media}" (several frames)',
                                header)
    return _single(images[0], media)


_IMAGES = {200: {"content": {mp.JPEG: {}, mp.PNG: {}, mp.PDF: {}}},
           406: {"description": "no acceptable rendering"}}


@router.get("/studies/{study}/series/{series}/instances/{instance}/rendered",
            summary="WADO-RS: an instance rendered (JPEG, PNG; a film's PDF)",
            responses=_IMAGES, response_class=Response)
def rendered_instance(request: Request, study: str, series: str, instance: str
                      ) -> Response:
    return _render(request, study, series, instance, None)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
            summary="WADO-RS: frames of an instance rendered (a film's pages)",
            responses=_IMAGES, response_class=Response)
def rendered_frames(request: Request, study: str, series: str, instance: str, frames: str
                    ) -> Response:
    return _render(request, study, series, instance, frames)
