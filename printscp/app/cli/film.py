"""``printscp film``: lay DICOM images out on films and write them to a PDF.

Exit status: 0 written, 1 written but some files skipped, 2 bad options or nothing printable.
"""

from __future__ import annotations

import argparse
import sys

from printscp.app.cli.options import add_layout_options, film_attributes
from printscp.printing.errors import PrintAttributeError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp film`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser(
        "film", help="export DICOM images as films to a PDF",
        description="Lay DICOM images out on films of true physical size, map them through "
        "the GSDF to optical densities and write one PDF page per film.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="DICOM image files")
    p.add_argument("-o", "--output", required=True, help="PDF file to write")
    add_layout_options(p)
    p.add_argument("--annotation", metavar="TEXT", help="text printed below the images")
    p.add_argument("--dpi", type=float,
                   help="resolution of the embedded images (default 300, Requested "
                   "Resolution ID STANDARD)")
    p.add_argument("--printer-profile", metavar="FILE",
                   help="DCMTK characteristic file of the output device (default: the "
                   "built-in pdf-srgb profile)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from printscp.core.progress import Progress
    from printscp.printing.film_box import FilmBox
    from printscp.printing.film_export import export_pdf
    from printscp.printing.profile import OutputProfile

    attributes = film_attributes(args)
    try:
        FilmBox(**attributes)  # validate before reading any image
        profile = OutputProfile.from_file(args.printer_profile) if args.printer_profile else None
    except (PrintAttributeError, OSError, ValueError) as err:
        print(f"printscp film: {err}", file=sys.stderr)
        return 2
    with Progress(len(args.images), "reading") as progress:
        result = export_pdf(
            args.images, args.output, film_attributes=attributes,
            image_attributes={"polarity": args.polarity}, window=args.window,
            annotation=args.annotation, dpi=args.dpi, profile=profile,
            on_file=progress.advance,
        )
    for err in result.errors:
        print(f"printscp film: {err}", file=sys.stderr)
    if result.films == 0:
        print("printscp film: no printable images; nothing written", file=sys.stderr)
        return 2
    print(f"{args.output}: {result.films} film(s), {result.images} image(s)"
          + (f", {len(result.errors)} file(s) skipped" if result.errors else ""))
    return 1 if result.errors else 0
