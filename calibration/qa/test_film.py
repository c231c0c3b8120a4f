"""The printer QC film: a step wedge of known P-values, a SMPTE-style pattern and a label.

The image is 12-bit, its pixel values *are* the P-values (IDENTITY Presentation LUT),
and it is made at the size of the film's image area at the printer's resolution, so
it prints one pixel per printer dot.  Layout, top to bottom:

* a label (white strip, black text): device, date, profile version, step count;
* the step wedge: ``steps`` patches (32 by default, PS3.14 Annex D.2.1's example)
  in rows of 16, numbered 1..N below each patch; step ``k`` has P-value
  ``round(4095 * (k - 1) / (N - 1))`` (:func:`calibration.qa.film.step_pvalues`), step 1
  the darkest.  Patches are large enough for a densitometer's aperture (read the
  middle of each);
* a SMPTE RP 133-style block on a 50 % background: the 0 % square with a 5 % square
  inside and the 100 % square with a 95 % one (both inner squares must be visible),
  an 11-step gray scale 0..100 %, and high-contrast line pairs (1 to 4 pixels wide,
  vertical and horizontal).

:func:`qc_film` gives the pixels and where everything is; :func:`qc_film_dataset` the
same image as a DICOM Secondary Capture instance that ``printscp print`` (or any Print
SCU) prints as it is.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from calibration.qa.film import DEFAULT_STEPS, PVALUE_BITS, step_pvalues

TOP = (1 << PVALUE_BITS) - 1
#: Patches per row of the step wedge.
PER_ROW = 16
#: Line-pair widths of the SMPTE block, in printer pixels.
LINE_WIDTHS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Patch:
    """One uniform area of the QC film: pixel rows r0..r1, columns c0..c1 (exclusive)."""

    name: str
    p_value: int
    r0: int
    c0: int
    r1: int
    c1: int
    step: int | None = None

    @property
    def centre(self) -> tuple[int, int]:
        return (self.r0 + self.r1) // 2, (self.c0 + self.c1) // 2


@dataclass(frozen=True, eq=False)
class QCFilm:
    """The QC film image (12-bit P-values) and the position of every patch."""

    pixels: NDArray[np.uint16]
    steps: tuple[Patch, ...]  #: the step wedge, step 1 first
    patches: tuple[Patch, ...] = field(default=())  #: the SMPTE-style block's areas
    label: str = ""

    @property
    def p_values(self) -> list[int]:
        return [p.p_value for p in self.steps]


def _percent(pct: float) -> int:
    return math.floor(TOP * pct / 100.0 + 0.5)


def _text(image: NDArray[np.uint16], text: str, r0: int, c0: int, r1: int, c1: int,
          value: int, *, centre: bool = False) -> None:
    """Write ``text`` in the box (pixels set to ``value``), as large as the box allows."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = r1 - r0, c1 - c0
    if h < 4 or w < 4 or not text:
        return
    size = max(6, int(h * 0.7))
    font = ImageFont.load_default(size)
    while size > 6 and ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font) > w - 4:
        size -= 1
        font = ImageFont.load_default(size)
    mask = Image.new("L", (w, h), 0)
    anchor, x = ("mm", w // 2) if centre else ("lm", 2)
    ImageDraw.Draw(mask).text((x, h // 2), text, fill=255, font=font, anchor=anchor)
    m = np.asarray(mask) > 127
    image[r0:r1, c0:c1][m] = value


def qc_film(rows: int, columns: int, *, steps: int = DEFAULT_STEPS, device: str = "",
            when: dt.datetime | None = None, profile: str = "",
            p_values: list[int] | None = None) -> QCFilm:
    """The QC film at ``rows`` x ``columns`` printer pixels (the film's image area).

    ``p_values``: the step wedge's levels (default: ``steps`` equally spaced ones);
    ``device``, ``when`` and ``profile`` go into the label.
    """
    if rows < 200 or columns < 200:
        raise ValueError(f"a QC film needs at least 200x200 pixels, got {columns}x{rows}")
    levels = list(p_values) if p_values is not None else step_pvalues(steps)
    if len(levels) < 2 or any(not 0 <= v <= TOP for v in levels):
        raise ValueError(f"step P-values must be 2 or more values in 0..{TOP}")
    when = when or dt.datetime.now().astimezone()
    image = np.full((rows, columns), _percent(50), dtype=np.uint16)
    margin = max(4, min(rows, columns) // 50)

    # Label strip.
    label_h = max(24, rows // 16)
    label = (f"printscp QC film  {device or '-'}  {when:%Y-%m-%d %H:%M}  "
             f"profile {profile or '-'}  {len(levels)} steps P {min(levels)}-{max(levels)}")
    image[margin:margin + label_h, margin:columns - margin] = TOP
    _text(image, label, margin, margin, margin + label_h, columns - margin, 0)

    # Step wedge: rows of PER_ROW patches, each with its number below it.
    n = len(levels)
    wedge_rows = math.ceil(n / PER_ROW)
    per_row = math.ceil(n / wedge_rows)
    top = margin * 2 + label_h
    wedge_h = int(rows * 0.45)
    cell_h = wedge_h // wedge_rows
    cell_w = (columns - 2 * margin) // per_row
    number_h = max(10, cell_h // 6)
    gap = max(1, cell_w // 20)
    patches = []
    for i, level in enumerate(levels):
        r, c = divmod(i, per_row)
        r0 = top + r * cell_h
        c0 = margin + c * cell_w
        patch = Patch(f"step {i + 1}", int(level), r0, c0 + gap, r0 + cell_h - number_h - gap,
                      c0 + cell_w - gap, step=i + 1)
        image[patch.r0:patch.r1, patch.c0:patch.c1] = level
        nr0 = patch.r1
        image[nr0:nr0 + number_h, patch.c0:patch.c1] = TOP
        _text(image, str(i + 1), nr0, patch.c0, nr0 + number_h, patch.c1, 0, centre=True)
        patches.append(patch)

    # SMPTE-style block.
    block_top = top + wedge_h + margin
    block_h = rows - block_top - margin
    extra: list[Patch] = []
    if block_h >= 40:
        side = min(block_h // 2, (columns - 2 * margin) // 4)
        inner = side // 3
        for j, (outer_pct, inner_pct) in enumerate(((0, 5), (100, 95))):
            c0 = margin + j * (side + margin)
            outer = Patch(f"{outer_pct}%", _percent(outer_pct), block_top, c0,
                          block_top + side, c0 + side)
            image[outer.r0:outer.r1, outer.c0:outer.c1] = outer.p_value
            i0 = (side - inner) // 2
            inside = Patch(f"{inner_pct}% in {outer_pct}%", _percent(inner_pct),
                           block_top + i0, c0 + i0, block_top + i0 + inner, c0 + i0 + inner)
            image[inside.r0:inside.r1, inside.c0:inside.c1] = inside.p_value
            extra += [outer, inside]
        # Line pairs: vertical bars then horizontal bars, each group a square.
        lp_c0 = margin + 2 * (side + margin)
        group = max(8, min(side // 2, (columns - margin - lp_c0) // len(LINE_WIDTHS)))
        for k, width in enumerate(LINE_WIDTHS):
            c0 = lp_c0 + k * group
            if c0 + group > columns - margin:
                break
            for vertical, r0 in ((True, block_top), (False, block_top + group)):
                area = image[r0:r0 + group, c0:c0 + group - 2]
                idx = np.arange(area.shape[1] if vertical else area.shape[0])
                on = (idx // width) % 2 == 0
                if vertical:
                    area[:, :] = np.where(on[None, :], TOP, 0)
                else:
                    area[:, :] = np.where(on[:, None], TOP, 0)
                extra.append(Patch(f"line pairs {width} px {'V' if vertical else 'H'}",
                                   TOP, r0, c0, r0 + group, c0 + group - 2))
        # Gray scale 0..100 % in 10 % steps below the squares.
        gs_top = block_top + side + margin
        gs_h = rows - margin - gs_top
        if gs_h >= 8:
            gs_w = (columns - 2 * margin) // 11
            for k in range(11):
                c0 = margin + k * gs_w
                p = Patch(f"gray {10 * k}%", _percent(10 * k), gs_top, c0, gs_top + gs_h,
                          c0 + gs_w)
                image[p.r0:p.r1, p.c0:p.c1] = p.p_value
                extra.append(p)
    return QCFilm(image, tuple(patches), tuple(extra), label)


def qc_film_dataset(film: QCFilm, *, pixel_spacing_mm: float, device: str = "",
                    when: dt.datetime | None = None):  # type: ignore[no-untyped-def]
    """The QC film as a DICOM Secondary Capture Image instance (pydicom FileDataset).

    MONOCHROME2, 12 bits stored in 16, a linear window 2048/4096 that passes the
    P-values through unchanged (so ``printscp print`` and other Print SCUs send them as
    they are), Presentation LUT Shape IDENTITY, Pixel Spacing of the printer's dots.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from printscp.core.uids import UID_ROOT

    when = when or dt.datetime.now().astimezone()
    sc = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sc
    meta.MediaStorageSOPInstanceUID = generate_uid(UID_ROOT)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sc
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(UID_ROOT)
    ds.SeriesInstanceUID = generate_uid(UID_ROOT)
    ds.PatientName = "QA^PRINTER"
    ds.PatientID = f"QA-{device or 'PRINTER'}"[:64]
    ds.StudyDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    ds.StudyDescription = "printer QC film"
    ds.SeriesDescription = film.label[:64]
    ds.ImageComments = film.label
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = film.pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [f"{pixel_spacing_mm:.6g}", f"{pixel_spacing_mm:.6g}"]
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelData = np.ascontiguousarray(film.pixels, dtype="<u2").tobytes()
    return ds
