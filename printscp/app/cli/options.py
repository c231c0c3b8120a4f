"""Command-line options shared by several subcommands: the node's data directory
(``jobs``, ``archive``, ``media``, ``worklist``, ``mpps``) and the film layout
(``film``, ``print``)."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

from printscp.printing.enums import (
    FilmOrientation,
    FilmSize,
    MagnificationType,
    Polarity,
)

DEFAULT_DATA_DIR = "./printscp-data"


def add_data_dir_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"the node's data directory (default: from --config, else "
                        f"{DEFAULT_DATA_DIR})")
    parser.add_argument("--config", metavar="FILE",
                        help="the node's TOML configuration, for its data directory")


def data_dir_of(args: argparse.Namespace) -> Path:
    """``--data-dir`` if given, else the configuration's, else the default; a bad
    configuration raises :class:`~printscp.core.errors.ConfigError`, which
    :func:`printscp.app.cli.dispatch.dispatch` reports."""
    if args.data_dir:
        return Path(args.data_dir)
    if args.config:
        from printscp.config import load_config

        return load_config(args.config).data_path
    return Path(DEFAULT_DATA_DIR)


def parse_day(text: str) -> date:
    """A day on the command line: ``YYYY-MM-DD`` or ``YYYYMMDD`` (``mpps``, ``hl7 log``)."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD or YYYYMMDD, got {text!r}")


def parse_od(text: str) -> float:
    """An optical density on the command line, in OD (0-10): ``calibrate``, ``qa``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an optical density such as 0.2") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError("density out of range 0..10 OD")
    return value


def parse_nonnegative(text: str) -> float:
    """A number >= 0 (a luminance in cd/m²)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parse_window(text: str) -> tuple[float, float]:
    """``--window CENTER,WIDTH``."""
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected CENTER,WIDTH, e.g. 40,400") from None
    if width < 1:
        raise argparse.ArgumentTypeError("window width must be >= 1")
    return center, width


def parse_density(text: str) -> int:
    """Densities on the command line are OD (e.g. 0.2); the wire uses hundredths."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an optical density such as 0.2") from None
    if not 0 <= value <= 655.35:
        raise argparse.ArgumentTypeError("density out of range")
    return round(value * 100)


def add_layout_options(p: argparse.ArgumentParser) -> None:
    """Film and image options shared by ``printscp film`` and ``printscp print``."""
    p.add_argument("--format", default="STANDARD\\1,1", metavar="FORMAT",
                   help="Image Display Format: STANDARD\\C,R, ROW\\r1,r2,..., COL\\c1,c2,... "
                   "(default STANDARD\\1,1)")
    p.add_argument("--film-size", default=FilmSize.IN14X17.value, type=str.upper,
                   choices=[s.value for s in FilmSize], metavar="SIZE",
                   help="Film Size ID (default 14INX17IN): " + ", ".join(s.value for s in FilmSize))
    p.add_argument("--orientation", default="PORTRAIT", type=str.upper,
                   choices=[o.value for o in FilmOrientation])
    p.add_argument("--magnification", default="BILINEAR", type=str.upper,
                   choices=[m.value for m in MagnificationType])
    p.add_argument("--window", type=parse_window, metavar="C,W",
                   help="VOI window center,width for all images (default: each file's "
                   "first window, else its VOI LUT, else its data range)")
    p.add_argument("--polarity", default="NORMAL", type=str.upper,
                   choices=[v.value for v in Polarity])
    p.add_argument("--min-density", type=parse_density, default=20, metavar="OD",
                   help="Min Density in OD (default 0.20)")
    p.add_argument("--max-density", type=parse_density, default=300, metavar="OD",
                   help="Max Density in OD (default 3.00)")
    p.add_argument("--border", default="BLACK", metavar="DENSITY",
                   help="Border Density: BLACK, WHITE or hundredths of OD (default BLACK)")
    p.add_argument("--empty-image", default="BLACK", metavar="DENSITY",
                   help="Empty Image Density: BLACK, WHITE or hundredths of OD (default BLACK)")


def film_attributes(args: argparse.Namespace) -> dict[str, object]:
    """The Film Box attributes of :func:`add_layout_options`' options."""
    return dict(
        image_display_format=args.format, film_size_id=args.film_size,
        film_orientation=args.orientation, magnification_type=args.magnification,
        min_density=args.min_density, max_density=args.max_density,
        border_density=args.border, empty_image_density=args.empty_image,
    )
