"""The ``printscp`` command line: the top-level parser, logging and dispatch.

Each subcommand is a module of this package with the same two functions:
``add_parser(sub)`` registers it (and its own subcommands) and sets ``func=run`` on
its parser; ``run(args) -> int`` runs it and returns the exit status (a subcommand with
subcommands of its own looks up ``COMMANDS[<its name>_command]``).  A subcommand leaves a
bad configuration's ``ConfigError`` to :func:`~printscp.app.cli.dispatch.dispatch`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from printscp import __version__
from printscp.app.cli.dispatch import dispatch

__all__ = ["SUBCOMMANDS", "build_parser", "dispatch", "main", "setup_logging"]

SUBCOMMANDS = ("serve", "film", "print_films", "jobs", "archive", "media", "mpps", "worklist",
               "calibrate", "qa", "users", "audit", "hl7")
"""The subcommands' modules (in this package), in the order ``printscp --help`` lists them."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``only``, that subcommand's alone.

    :func:`main` builds the named subcommand's parser only: importing every
    subcommand's module (pydicom, numpy, the calibration stack: 0.45 s) delayed the
    moment ``serve`` listens and every short command; the subcommand's help and errors
    read the same either way.
    """
    parser = argparse.ArgumentParser(
        prog="printscp", description="DICOM print server with PS3.14 GSDF film rendering")
    parser.add_argument("--version", action="version", version=f"printscp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in (only,) if only else SUBCOMMANDS:
        importlib.import_module(f"printscp.app.cli.{name}").add_parser(sub)
    return parser


def _module_of(command: str) -> str | None:
    """The module of subcommand ``command``, None when it is none (``--help``, a typo:
    the full parser answers those).  Building one subcommand's parser only spares a
    command the imports of all the others (``qa status``: 1.4 s became 0.75 s)."""
    module = {"print": "print_films"}.get(command, command)
    return module if module in SUBCOMMANDS else None


def setup_logging(args: argparse.Namespace) -> None:
    """Configure logging for a subcommand with ``-v``/``-d``/``--log-file``/``--log-format``
    (``serve``, :mod:`printscp.app.logs`); the others leave it alone."""
    if not hasattr(args, "debug"):
        return
    from printscp.app import logs

    args.log_settings = logs.LogSettings(
        verbosity=max(3 if args.debug >= 2 else 2 if args.debug else 0, 1 if args.verbose else 0),
        format=logs.LogFormat(args.log_format), file=args.log_file)
    args.log_handlers = logs.configure(args.log_settings)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_module_of(argv[0]) if argv else None).parse_args(argv)
    setup_logging(args)
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
