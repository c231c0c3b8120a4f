"""``printscp archive verify``: re-check the stored instances against their checksums.

Exit status: 0 all good, 1 damaged or missing files, 2 a bad configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from printscp.app.cli.options import add_data_dir_options, data_dir_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp archive verify`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("archive", help="check the archive of stored instances",
                       description="Archive maintenance.")
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="archive_command", required=True)
    v = cmds.add_parser("verify", help="re-check every stored file against its checksum",
                        description="Re-read every indexed file and compare its SHA-256 with "
                        "the one recorded when it was stored; list files no index row names. "
                        "Exit status 0 all good, 1 damaged or missing files.")
    add_data_dir_options(v)


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.archive_command](args)


def cmd_verify(args: argparse.Namespace) -> int:
    from printscp.archive.archive import Archive
    from printscp.core.progress import Progress

    archive = Archive(data_dir_of(args))
    total = archive.index.counts()["instances"]
    with Progress(total, "verifying") as progress:
        report = archive.verify(on_file=progress.advance)
    for uid, reason in report.bad:
        print(f"BAD {uid}: {reason}")
    for path in report.orphans:
        print(f"ORPHAN {path} (no index row names it)")
    print(f"{report.checked} instance(s) checked, {len(report.bad)} bad, "
          f"{len(report.orphans)} orphan file(s)")
    return 1 if report.bad else 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"verify": cmd_verify}
