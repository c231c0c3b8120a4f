"""Running a parsed subcommand: the one place where a bad configuration becomes one line
on stderr and exit status 2 (:mod:`printscp.app.cli.main` and ``python -m
printscp.app.cli.mpps`` both run their subcommands through it)."""

from __future__ import annotations

import argparse
import os
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
    except BrokenPipeError:
        # The reader went away (``printscp qa history | head -1``): it has what it wanted.
        # No traceback; stdout pointed at /dev/null so that the interpreter's own flush at
        # exit does not raise again (the Python documentation's recipe for SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
