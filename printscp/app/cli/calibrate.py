"""``printscp calibrate``: analyse measurements against the GSDF, write LUT/profile/report.

Exit status of ``analyze``: 0 the device conforms, 1 it does not, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from calibration.analysis import DIAGNOSTIC_LIMIT, OTHER_LIMIT, TG18_INTERVALS
from printscp.app.cli.options import parse_nonnegative, parse_od
from printscp.printing.enums import FilmOrientation, FilmSize

LIMITS = {"diagnostic": DIAGNOSTIC_LIMIT, "other": OTHER_LIMIT}
#: ``--pattern`` names: the short ones map to calibration.tg18.Pattern values.
PATTERN_NAMES = {"qc": "TG18-QC", "unl10": "TG18-UNL10", "unl80": "TG18-UNL80",
                 "ct": "TG18-CT", "ad": "TG18-AD", "mp": "TG18-MP", "pqc": "TG270-pQC"}
PATTERN_CHOICES = ["ln", *PATTERN_NAMES, "tg18", "all"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp calibrate analyze|patterns`` (called by
    :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("calibrate", help="GSDF calibration of displays and printers",
                       description="Analyse display or printer measurements against the "
                       "DICOM GSDF (PS3.14), write the calibration LUT and a printer "
                       "profile, and make the test patterns (docs/calibration.md).")
    p.set_defaults(func=run)
    csub = p.add_subparsers(dest="calibrate_command", required=True)

    a = csub.add_parser("analyze", help="check measurements and compute the calibration",
                        description="Exit status: 0 conforms, 1 does not, 2 unusable input.")
    a.add_argument("measurements", metavar="MEASUREMENTS",
                   help="CSV (ddl,luminance or ddl,density), JSON, or DCMTK .lut file")
    a.add_argument("--kind", choices=["display", "printer"],
                   help="device kind (default: from the file)")
    a.add_argument("--ambient", type=parse_nonnegative, metavar="L",
                   help="ambient luminance Lamb (display) or reflected ambient light La "
                   "(printer), cd/m²; overrides the file")
    a.add_argument("--illumination", type=parse_nonnegative, metavar="L0",
                   help="printer: light box luminance, cd/m² (default file, else 2000)")
    a.add_argument("--includes-ambient", action="store_true",
                   help="display luminances already include the ambient light")
    a.add_argument("--max-ddl", type=int, metavar="N",
                   help="largest driving level of the device (default 255, 1023... above "
                   "the highest measured level)")
    a.add_argument("--min-density", type=parse_od, metavar="OD",
                   help="printer: the film's Min Density the printer must reach")
    a.add_argument("--max-density", type=parse_od, metavar="OD",
                   help="printer: the film's Max Density the printer must reach")
    a.add_argument("--limit", choices=sorted(LIMITS), default="diagnostic",
                   help="contrast error limit of the verdict: diagnostic ±10%% (default), "
                   "other ±20%%")
    a.add_argument("--intervals", type=int, default=TG18_INTERVALS, metavar="N",
                   help=f"judge over N equal intervals of the measured levels (default "
                   f"{TG18_INTERVALS}, TG18-LN); 0: every measured step")
    a.add_argument("--input-bits", type=int, default=8, choices=range(1, 17), metavar="BITS",
                   help="LUT input bits (default 8: 256 entries)")
    a.add_argument("--report", metavar="PDF", help="write a PDF report (PNG plots beside it)")
    a.add_argument("--lut", metavar="TXT", help="write the calibration LUT as 'input output'")
    a.add_argument("--profile", metavar="TOML",
                   help="write a printer profile for printscp serve --config")
    a.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    a.add_argument("--record", action="store_true",
                   help="record the calibration for Printer N-GET (Date/Time of Last "
                   "Calibration)")
    a.add_argument("--printer", metavar="NAME",
                   help="with --record: the printer profile calibrated (its Printer N-GET "
                   "reports it); default: the node's record, for printers without their own")
    a.add_argument("--data-dir", default="./printscp-data",
                   help="printscp data directory for --record (default ./printscp-data)")

    t = csub.add_parser(
        "patterns", help="write the measurement and QA test patterns",
        description="TG18-LN-style luminance patches and a printer step wedge (the default), "
        "and the AAPM TG18 QA set (TG18-QC, -UNL10, -UNL80, -CT, -AD, -MP) and TG270-pQC "
        "at a display's resolution or true size on film, as Secondary Capture DICOM files "
        "and PNG (docs/calibration.md).")
    t.add_argument("-o", "--output", required=True, metavar="DIR")
    t.add_argument("--pattern", action="append", choices=PATTERN_CHOICES, metavar="NAME",
                   help="what to write, repeatable: ln (LN patches and step wedge, the "
                   "default), qc, unl10, unl80, ct, ad, mp, pqc, tg18 (qc to mp) or all")
    t.add_argument("--levels", type=int, default=18, help="ln: number of levels (default 18)")
    t.add_argument("--bits", type=int, choices=(8, 10, 12, 16),
                   help="bits per pixel (default: ln 8, TG18 12, TG270-pQC 8)")
    t.add_argument("--size", type=int, default=512, help="ln: patch image size in pixels")
    where = t.add_mutually_exclusive_group()
    where.add_argument("--resolution", type=_resolution, metavar="WxH",
                       help="display resolution, columns x rows (default 1024x1024, TG18's "
                       "1k version; 2048x2048 is the 2k)")
    where.add_argument("--dpi", type=int, metavar="N",
                       help="printer resolution: one image pixel per printer pixel, so the "
                       "film shows the pattern at true size (needs --film-size)")
    t.add_argument("--pixel-pitch", type=float, metavar="MM",
                   help="display pixel pitch in mm, written as Pixel Spacing (true size)")
    t.add_argument("--film-size", choices=[size.value for size in FilmSize], metavar="ID",
                   help="Film Size ID with --dpi, e.g. 14INX17IN, A4")
    t.add_argument("--landscape", action="store_true", help="film in landscape orientation")
    t.add_argument("--whole-film", action="store_true",
                   help="cover the whole film (default: the image box of a STANDARD\\1,1 "
                   "film inside printscp's edge margins, which prints one to one)")


add_calibrate_parser = add_parser  # the name it had before


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.calibrate_command](args)


def _resolution(text: str) -> tuple[int, int]:
    try:
        columns, rows = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLUMNSxROWS such as 1024x1280, "
                                         f"got {text!r}") from None
    return columns, rows


def _film_area(film_size: str, landscape: bool, whole_film: bool) -> tuple[float, float]:
    """(width, height) in mm a film pattern covers: the image box of a STANDARD\\1,1 film
    in printscp's own layout (inside its edge margins), so that printing it with
    Magnification Type NONE at the same DPI puts one image pixel on one printer pixel;
    or the whole film, for a printer that prints edge to edge."""
    from printscp.printing.display_format import ImageDisplayFormat
    from printscp.printing.layout import film_dimensions, film_geometry

    size = FilmSize(film_size)
    orientation = FilmOrientation.LANDSCAPE if landscape else FilmOrientation.PORTRAIT
    if whole_film:
        return film_dimensions(size, orientation)
    box = film_geometry(size, orientation, ImageDisplayFormat.parse("STANDARD\\1,1").cells())
    return box.boxes[0].width, box.boxes[0].height


def _selected(names: list[str] | None) -> tuple[bool, list[str]]:
    """(write LN?, QA pattern names in order) from the --pattern values."""
    groups = {"ln": [], "tg18": [v for k, v in PATTERN_NAMES.items() if k != "pqc"],
              "all": list(PATTERN_NAMES.values())}
    chosen = names or ["ln"]
    qa = [p for name in chosen for p in groups.get(name, [PATTERN_NAMES.get(name, "")])]
    return "ln" in chosen or "all" in chosen, list(dict.fromkeys(qa))


def cmd_patterns(args: argparse.Namespace) -> int:
    from calibration.patterns import write_patterns
    from calibration.tg18 import Geometry, write_qa_patterns

    prog = "printscp calibrate patterns"
    ln, qa = _selected(args.pattern)
    try:
        if not qa and (args.resolution or args.dpi or args.film_size
                       or args.pixel_pitch is not None):
            raise ValueError("--resolution, --dpi, --film-size and --pixel-pitch apply to "
                             "the QA patterns (--pattern qc ... all)")
        if (args.dpi is None) != (args.film_size is None):
            raise ValueError("--dpi and --film-size go together")
        if args.pixel_pitch is not None and args.dpi is not None:
            raise ValueError("--pixel-pitch is for displays; a film's pixel is 25.4/--dpi mm")
        if (args.landscape or args.whole_film) and args.film_size is None:
            raise ValueError("--landscape and --whole-film need --film-size")
        if args.dpi is not None:
            width, height = _film_area(args.film_size, args.landscape, args.whole_film)
            geometry = Geometry.film(width, height, args.dpi)
        else:
            columns, rows = args.resolution or (1024, 1024)
            geometry = Geometry(columns, rows, args.pixel_pitch)
        files = []
        if ln:
            files += write_patterns(args.output, levels=args.levels, bits=args.bits or 8,
                                    size=args.size)
        if qa:
            files += write_qa_patterns(args.output, qa, geometry, args.bits)
    except (OSError, ValueError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    parts = []
    if ln:
        parts.append(f"{args.levels} luminance patterns and a step wedge")
    if qa:
        size = f"{geometry.columns}x{geometry.rows}"
        if geometry.pixel_spacing_mm is not None:
            size += (f", {geometry.pixel_spacing_mm:.4g} mm pixels: "
                     f"{geometry.width_mm:.1f} x {geometry.height_mm:.1f} mm")
        parts.append(f"{', '.join(qa)} at {size}")
    print(f"{args.output}: {len(files)} files ({'; '.join(parts)}, DICOM and PNG)")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from calibration import analysis, export, report
    from calibration.measurements import MeasurementError, read_measurements

    prog = "printscp calibrate analyze"
    try:
        measured = read_measurements(
            args.measurements, args.kind, ambient=args.ambient,
            illumination=args.illumination, includes_ambient=args.includes_ambient,
            max_ddl=args.max_ddl)
        if not measured.is_printer and (args.min_density is not None
                                        or args.max_density is not None):
            raise MeasurementError("--min-density/--max-density apply to printers only")
        dens = {"min_density": args.min_density, "max_density": args.max_density}
        options = {"limit": LIMITS[args.limit], "intervals": args.intervals, **dens}
        before = analysis.analyse(measured, **options)
        cal = analysis.calibrate(measured, input_bits=args.input_bits, **dens)
        after = analysis.predict(measured, cal, **options)
    except (MeasurementError, ValueError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2

    when = datetime.now()
    print(report.summary(measured, before, after))
    inputs: dict[str, Any] = {
        "measurements": str(args.measurements), "kind": measured.kind,
        "levels": int(measured.ddl.size), "max_ddl": measured.max_ddl,
        "ambient": measured.ambient, "illumination": measured.illumination,
        "includes_ambient": args.includes_ambient, "limit": args.limit,
        "intervals": args.intervals, "input_bits": args.input_bits, **dens,
    }
    written: dict[str, str] = {}
    try:
        if args.lut:
            comments = (f"GSDF calibration LUT from {measured.source}",
                        f"{cal.lut.size} inputs -> DDL 0..{measured.max_ddl}, "
                        f"JND {cal.jnd_range[0]:.2f}..{cal.jnd_range[1]:.2f} (DCMTK dcmdspfn)")
            written["lut"] = str(export.write_lut(args.lut, cal.lut, comments))
        profile_path = ""
        if args.profile:
            toml, curve = export.write_profile(args.profile, measured, **dens)
            written["profile"] = str(toml)
            written["characteristic_file"] = str(curve)
            profile_path = str(curve.resolve())
        if args.report:
            plots = report.plot_files(measured, before, after, Path(args.report).with_suffix(""))
            report.write_pdf(args.report, measured, before, after, plots, inputs=inputs,
                             when=when)
            written["report"] = args.report
            written["plots"] = ", ".join(str(p) for p in plots)
        if args.json:
            data = {"date": when.isoformat(timespec="seconds"), "inputs": inputs,
                    **before.to_dict(), "predicted": after.to_dict(),
                    "lut": cal.lut.tolist(), "jnd_range": list(cal.jnd_range),
                    "files": written}
            Path(args.json).write_text(json.dumps(data, indent=1), encoding="utf-8")
            written["json"] = args.json
        if args.record:
            from printscp.core.printer_state import Calibration, record_calibration

            Path(args.data_dir).mkdir(parents=True, exist_ok=True)
            state = record_calibration(args.data_dir, Calibration(
                when, profile=profile_path, conforms=before.conforms), args.printer)
            written["record"] = str(state)
    except OSError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    for what, where in written.items():
        print(f"{what}: {where}")
    return 0 if before.conforms else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "analyze": cmd_analyze, "patterns": cmd_patterns}
