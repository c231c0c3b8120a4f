"""Running a parsed subcommand: the one place where a bad configuration becomes one line
on stderr and exit status 2 (:mod:`printscp.app.cli.main` and ``python -m
printscp.app.cli.mpps`` both run their subcommands through it)."""

from __future__ import annotations

import argparse
import sys

from printscp.core.errors import ConfigError, UnsupportedPynetdicom


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed subcommand (its ``add_parser`` set ``func``).  A :class:`ConfigError`
    (from ``--config`` or an option overriding it), or an installed pynetdicom that the
    network layer refuses (:class:`UnsupportedPynetdicom`), is ``printscp: <message>`` on
    stderr and exit status 2, without a traceback."""
    try:
        return int(args.func(args))
    except (ConfigError, UnsupportedPynetdicom) as err:
        print(f"printscp: {err}", file=sys.stderr)
        return 2
