"""The ``printscp`` command's entry point: light, so that ``printscp serve`` keeps a
stop signal from its first instant (:mod:`printscp.app.stopping`), then the command
line proper (:mod:`printscp.app.cli.main`)."""

from __future__ import annotations

import sys


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        from printscp.app.stopping import keep

        keep()
    from printscp.app.cli.main import main as cli_main

    return cli_main()
