"""The QA test patterns (issue 19 §4): TG18-QC, -UNL10/80, -CT, -AD, -MP and TG270-pQC.

What a physicist checks before trusting a pattern: the levels are where the report puts
them, the measurement positions are marked, a film's pattern is true size, and the
PNG shows the same pixels as the DICOM file.  Positions are checked against the 1k
design coordinates written out here, not against the generators' own box helpers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pydicom
import pytest
from PIL import Image

from calibration import tg18
from calibration.patterns import write_patterns
from calibration.tg18 import Geometry, Pattern, generate
from printscp.app.cli.main import main

K1 = Geometry(1024, 1024)
PORTRAIT = Geometry(1024, 1280)  # a portrait display: the 1k design, centred, 128 px down


def at(image, geometry: Geometry, x: float, y: float) -> int:
    """The pixel at 1k design coordinates (x, y)."""
    oy, ox = geometry.origin
    u = geometry.unit
    return int(image[oy + round(y * u), ox + round(x * u)])


# -- TG18-LN stays as it was ---------------------------------------------------------------

def _ln_digest(tmp_path, bits: int) -> str:
    h = hashlib.sha256()
    volatile = {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "ContentDate",
                "ContentTime"}
    for f in sorted(write_patterns(tmp_path / str(bits), size=64, bits=bits)):
        h.update(f.name.encode())
        if f.suffix == ".dcm":
            ds = pydicom.dcmread(f)
            h.update(ds.PixelData)
            h.update(repr([(e.keyword, str(e.value)) for e in ds
                           if e.keyword not in volatile]).encode())
        else:
            h.update(np.asarray(Image.open(f)).tobytes())
    return h.hexdigest()


def test_ln_patches_and_wedge_unchanged(tmp_path):
    """Digests of the LN files (pixels and every stable attribute) as written before
    the QA patterns were added."""
    assert _ln_digest(tmp_path, 8) == \
        "e97479c65111ed0ec7461ab65111dca1c1a10d9409e723b4a6e82601903461ac"
    assert _ln_digest(tmp_path, 12) == \
        "4a2e321f04e39101c4f74e9d8f183ad18528d1b2220ffe245ae662aaffbef3f5"


# -- TG18-UNL10 / UNL80 --------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "bits", "field", "ink"), [
    (Pattern.UNL10, 12, 410, 4095), (Pattern.UNL80, 12, 3276, 0),
    (Pattern.UNL10, 8, 26, 255), (Pattern.UNL80, 8, 204, 0)])
def test_unl_uniform_with_measurement_positions_marked(pattern, bits, field, ink):
    g = PORTRAIT
    image = generate(pattern, g, bits)
    # the field is the stated fraction of full scale nearly everywhere
    assert np.mean(image == field) > 0.97
    assert set(np.unique(image).tolist()) == {field, ink}
    half = round(0.10 * 1024 / 2)  # squares of 10 % of the shorter side
    centres = {"centre": (640, 512), "upper-left": (213, 171), "upper-right": (213, 853),
               "lower-left": (1067, 171), "lower-right": (1067, 853)}
    for name, (cy, cx) in centres.items():
        inside = image[cy - half:cy + half, cx - half:cx + half]
        assert np.all(inside == field), name  # the photometer reads a clean field
        ring = [image[cy - half - 1, cx], image[cy + half, cx], image[cy, cx - half - 1],
                image[cy, cx + half]]
        assert all(v == ink for v in ring), name  # outlined
    # the 3 x 3 defining lines
    assert np.all(image[:, 341] == ink) and np.all(image[:, 683] == ink)
    assert np.all(image[427, :] == ink) and np.all(image[853, :] == ink)


# -- TG18-QC --------------------------------------------------------------------------------

def _qc_patch_corner(k: int) -> tuple[int, int]:
    """Design (x, y) of patch k's corner: 3 rows of 6, cells of 64 from (320, 192),
    patches of 48 inset by 8."""
    r, c = divmod(k, 6)
    return 320 + 64 * c + 8, 192 + 64 * r + 8


@pytest.mark.parametrize(("geometry", "bits"), [(K1, 12), (K1, 8),
                                                 (Geometry(2048, 2560), 12)])
def test_qc_luminance_patches_at_18_levels_in_place(geometry, bits):
    image = generate(Pattern.QC, geometry, bits)
    top = (1 << bits) - 1
    expected = [round(k * top / 17) for k in range(18)]
    if bits == 8:
        assert expected == list(range(0, 256, 15))
    delta = round(4 * top / 255)
    for k, level in enumerate(expected):
        x, y = _qc_patch_corner(k)
        assert at(image, geometry, x + 24, y + 4) == level, k  # the patch
        centre = at(image, geometry, x + 24, y + 24)
        if k == 0:
            assert centre == round(0.05 * top)  # 5 % square in the black patch
        elif k == 17:
            assert centre == round(0.95 * top)  # 95 % square in the white patch
        else:
            assert centre == level
            assert at(image, geometry, x + 2, y + 2) == level + delta  # corner squares
            assert at(image, geometry, x + 46, y + 2) == level - delta
    assert at(image, geometry, 300, 300) == round(0.5 * top)  # background


def test_qc_ramps_monotone_over_full_scale():
    image = generate(Pattern.QC, K1, 12)
    rising, falling = image[256:768, 96].astype(int), image[256:768, 928].astype(int)
    assert rising[0] == 0 and rising[-1] == 4095 and np.all(np.diff(rising) > 0)
    assert falling[0] == 4095 and falling[-1] == 0 and np.all(np.diff(falling) < 0)


def test_qc_transitions_line_pairs_and_letters():
    image = generate(Pattern.QC, K1, 8)
    assert image[672, 416] == 0 and image[650, 416] == 255  # black bar in white
    assert image[672, 608] == 255 and image[650, 608] == 0  # white bar in black
    for x, y in tg18.QC_SITES:  # centre and corners: Nyquist lines, high contrast
        site = image[y:y + 32, x:x + 32]
        assert set(np.unique(site).tolist()) == {0, 255}
        assert np.all(site[0::2] == site[0]) and np.all(site[0] != site[1])
        low = image[y + 32:y + 64, x:x + 32]
        assert set(np.unique(low).tolist()) == {128, 130}
    # QUALITY CONTROL: the letters 14 ... 1 levels off each background
    for row, background, sign in ((0, 0, 1), (1, 128, 1), (2, 255, -1)):
        box = image[736 + 64 * row:800 + 64 * row, 320:704].astype(int)
        assert set(np.unique(box - background).tolist()) == {sign * n for n in range(15)}


# -- TG18-CT, TG18-AD, TG18-MP -------------------------------------------------------------

def test_ct_sixteen_levels_with_half_moon_targets():
    image = generate(Pattern.CT, K1, 12)
    d = 64  # 4 of 255 at 12 bits
    for k in range(16):
        r, c = divmod(k, 4)
        x, y = 64 + 224 * c + 32, 64 + 224 * r + 32  # patch corner; patches of 160
        level = round(k * 4095 / 15)
        patch = image[y:y + 160, x:x + 160].astype(int)
        assert patch[2, 2] == level
        upper, lower = patch[60, 80], patch[100, 80]  # the disc's two half-moons
        if k == 0:
            assert (upper, lower) == (d, 2 * d)
        elif k == 15:
            assert (upper, lower) == (4095 - d, 4095 - 2 * d)
        else:
            assert (upper, lower) == (level + d, level - d)
        assert set(np.unique(patch).tolist()) == {level, upper, lower}
    assert image[10, 500] == 2048  # background


def test_ad_low_contrast_steps_on_black():
    image = generate(Pattern.AD, K1, 8)
    for r in range(8):
        for c in range(8):
            x, y = 64 + 112 * c + 8, 64 + 112 * r + 8
            square = image[y:y + 96, x:x + 96]
            assert set(np.unique(square).tolist()) == {r, r + c + 1}
            assert square[0, 0] != square[8, 0]  # stripes of 8
    assert image[20, 20] == 0


@pytest.mark.parametrize(("bits", "span"), [(12, 256), (8, 16)])
def test_mp_sixteen_ramps_with_bit_depth_markers(bits, span):
    image = generate(Pattern.MP, K1, bits)
    top = (1 << bits) - 1
    for band in range(16):
        y0 = band * 64
        row = image[y0 + 40].astype(int)  # below the marker strip
        assert set(row.tolist()) == set(range(band * span, (band + 1) * span))
        steps = np.diff(row)
        assert np.all(steps >= 0) if band % 2 == 0 else np.all(steps <= 0)
        ink = 0 if row.mean() > top / 2 else top
        marks = np.flatnonzero(image[y0 + 2] == ink)  # long markers: new 8-bit levels
        expected = np.flatnonzero(np.diff(row // (1 << (bits - 8)))) + 1
        assert set(expected.tolist()) <= set(marks.tolist())
    if bits == 12:  # short markers at the 10-bit levels, in the strip's upper half only
        row = image[40].astype(int)
        tens = np.flatnonzero(np.diff(row // 4)) + 1
        assert np.all(image[3, tens] == 4095)
        eights = set((np.flatnonzero(np.diff(row // 16)) + 1).tolist())
        only_ten = [x for x in tens.tolist() if x not in eights]
        assert np.all(image[10, only_ten] != 4095)


# -- TG270-pQC -----------------------------------------------------------------------------

def test_pqc_bars_modulation_and_line_pairs():
    image = generate(Pattern.PQC, K1, None)  # 8 bits, the report's
    assert image.dtype == np.uint16 and image.max() == 255
    for k in range(18):
        assert image[62 + 50 * k + 25, 89] == 15 * k  # bar k, in the slot's margin
    slot = (1024 - 2 * 87) / 16
    # bar 5 (75): left half, inner group: period 4, contrast 8, horizontal lines
    x = round(87 + 7 * slot + slot / 2)
    column = image[62 + 250 + 5:62 + 250 + 45, x].astype(int)
    assert set(column.tolist()) == {75, 83} and np.all(column[:-4] == column[4:])
    # bar 17 (255): contrast below the bar; right half vertical lines of period 18
    row = image[62 + 850 + 25, round(87 + 15 * slot + 4):round(87 + 16 * slot - 4)]
    assert set(row.tolist()) == {255, 253} and np.all(row[:-18] == row[18:])
    # top region: vertical lines of period 2 at 0/128
    top_pair = image[20, 100:200]
    assert set(top_pair.tolist()) == {0, 128} and np.all(top_pair[:-2] == top_pair[2:])
    # side gradients over the full range
    left = image[:, 40].astype(int)
    assert left[0] == 0 and left[-1] == 255 and np.all(np.diff(left) >= 0)


# -- true size, DICOM and PNG ---------------------------------------------------------------

def test_film_geometry_is_true_size():
    g = Geometry.film(14 * 25.4, 17 * 25.4, 300)  # 14INX17IN at 300 DPI
    assert (g.columns, g.rows) == (4200, 5100)
    assert g.pixel_spacing_mm * g.columns == pytest.approx(355.6, rel=1e-12)
    a4 = Geometry.film(210, 297, 300)
    assert a4.columns == 2480 and a4.width_mm <= 210 < a4.width_mm + a4.pixel_spacing_mm
    with pytest.raises(ValueError):
        Geometry(100, 1024)


def test_cli_film_patterns_true_size_dicom_equals_png(tmp_path, capsys):
    out = tmp_path / "film"
    assert main(["calibrate", "patterns", "-o", str(out), "--pattern", "unl80",
                 "--pattern", "pqc", "--dpi", "60", "--film-size", "14INX17IN",
                 "--whole-film"]) == 0
    assert "355.6 x 431.8 mm" in capsys.readouterr().out
    for name, bits in (("TG18-UNL80", 12), ("TG270-pQC", 8)):
        ds = pydicom.dcmread(out / f"{name}.dcm")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
        assert (ds.Columns, ds.Rows) == (840, 1020)
        assert ds.BitsStored == bits and ds.BitsAllocated == (8 if bits == 8 else 16)
        for spacing in (ds.PixelSpacing, ds.ImagerPixelSpacing):
            assert float(spacing[1]) * ds.Columns == pytest.approx(355.6, rel=1e-9)
            assert float(spacing[0]) * ds.Rows == pytest.approx(431.8, rel=1e-9)
        png = Image.open(out / f"{name}.png")
        assert png.info["dpi"][0] == pytest.approx(60, abs=0.01)
        values = np.asarray(png).astype(np.uint16)
        if bits > 8:
            values = values >> (16 - bits)  # bit-replicated into 16 bits, sBIT 12
        assert np.array_equal(values, ds.pixel_array)


def test_cli_film_pattern_prints_one_to_one_in_the_image_box(tmp_path, capsys):
    """By default a film pattern is the image box of a STANDARD\\1,1 film in printscp's
    layout: printed with Magnification Type NONE at the same DPI it is placed one image
    pixel per printer pixel, not decimated, so its printed size is its Pixel Spacing
    times its pixels."""
    from printscp.printing.display_format import ImageDisplayFormat
    from printscp.printing.enums import FilmOrientation, FilmSize
    from printscp.printing.layout import FitOutcome, film_geometry, place_image

    assert main(["calibrate", "patterns", "-o", str(tmp_path), "--pattern", "qc",
                 "--dpi", "150", "--film-size", "A4", "--landscape"]) == 0
    ds = pydicom.dcmread(tmp_path / "TG18-QC.dcm")
    box = film_geometry(FilmSize.A4, FilmOrientation.LANDSCAPE,
                        ImageDisplayFormat.parse("STANDARD\\1,1").cells()).boxes[0]
    spacing = float(ds.PixelSpacing[1])
    assert spacing == pytest.approx(25.4 / 150)
    assert box.width - spacing < ds.Columns * spacing <= box.width  # as much as fits
    assert box.height - spacing < ds.Rows * spacing <= box.height
    placed = place_image(box, ds.Rows, ds.Columns, 150, no_magnification=True)
    assert placed.outcome is FitOutcome.FITTED
    assert placed.rect.width == pytest.approx(ds.Columns * spacing)


def test_cli_display_set_end_to_end(tmp_path, capsys):
    out = tmp_path / "display"
    assert main(["calibrate", "patterns", "-o", str(out), "--pattern", "all",
                 "--resolution", "512x640", "--pixel-pitch", "0.2"]) == 0
    names = {p.stem for p in out.glob("TG*.dcm")}
    assert names == {p.value for p in Pattern}
    assert len(list(out.glob("LN-*.dcm"))) == 18 and (out / "step-wedge.png").exists()
    ds = pydicom.dcmread(out / "TG18-QC.dcm")
    assert (ds.Columns, ds.Rows, ds.BitsStored) == (512, 640, 12)
    assert float(ds.PixelSpacing[0]) == 0.2
    assert np.array_equal(np.asarray(Image.open(out / "TG18-QC.png")) >> 4, ds.pixel_array)
    # the pattern is the one generate() makes
    assert np.array_equal(ds.pixel_array, generate(Pattern.QC, Geometry(512, 640, 0.2), 12))
    # without --pixel-pitch a display pattern states no pixel size
    assert main(["calibrate", "patterns", "-o", str(tmp_path / "k"), "--pattern", "unl10"]) == 0
    plain = pydicom.dcmread(tmp_path / "k" / "TG18-UNL10.dcm")
    assert (plain.Columns, plain.Rows) == (1024, 1024) and "PixelSpacing" not in plain


@pytest.mark.parametrize("args", [
    ["--pattern", "qc", "--dpi", "300"],  # no film size
    ["--pattern", "qc", "--resolution", "100x100"],  # too small
    ["--pattern", "qc", "--dpi", "300", "--film-size", "A4", "--pixel-pitch", "0.1"],
    ["--resolution", "2048x2048"],  # LN patches have no resolution: --size
])
def test_cli_unusable_options_exit_2(tmp_path, capsys, args):
    assert main(["calibrate", "patterns", "-o", str(tmp_path), *args]) == 2
    assert "printscp calibrate patterns:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
