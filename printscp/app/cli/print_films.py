"""``printscp print``: send DICOM images as films to a DICOM printer (Print SCU).

Exit status: 0 printed, 1 some files skipped, 2 nothing printed, the printer refused a step
or (with ``--wait``) a print job ended in FAILURE.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from printscp.app.cli.options import add_layout_options, film_attributes
from printscp.printing.errors import PrintAttributeError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp print`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser(
        "print", help="print DICOM images on a DICOM printer (Print SCU)",
        description="Send DICOM images as films to a DICOM printer over Print Management "
        "and report each step's status. Exit status: 0 printed, 1 some files skipped, 2 "
        "nothing printed or the printer refused a step.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="DICOM image files")
    p.add_argument("--to", required=True, metavar="AE@HOST:PORT", help="the printer")
    p.add_argument("--calling-ae", default="PRINTSCU", help="our AE title (default PRINTSCU)")
    tls = p.add_argument_group("DICOM TLS (PS3.15 B.9 BCP 195)")
    tls.add_argument("--tls", action="store_true",
                     help="connect with TLS (1.2 or later), checking the printer's "
                     "certificate against --tls-ca (default: the system's CAs) and HOST")
    tls.add_argument("--tls-ca", metavar="PEM", default="",
                     help="CA certificates the printer's certificate must chain to")
    tls.add_argument("--tls-cert", metavar="PEM", default="",
                     help="our client certificate (with --tls-key)")
    tls.add_argument("--tls-key", metavar="PEM", default="", help="its private key")
    p.add_argument("--copies", type=int, help="Number of Copies")
    p.add_argument("--label", help="Film Session Label")
    p.add_argument("--priority", type=str.upper, choices=["HIGH", "MED", "LOW"],
                   help="Print Priority")
    p.add_argument("--collate", action="store_true",
                   help="print all films as one job (Film Session N-ACTION) instead of one "
                   "job per film")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="follow the printer's Print Job until DONE or FAILURE (printers "
                   "offering the Print Job SOP Class); FAILURE exits 2")
    add_layout_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from printscp.outputs.print_scu import PrintError, parse_destination, print_films
    from printscp.printing.film_export import films_from_images, read_images

    try:
        destination = parse_destination(args.to)  # its ConfigError is a ValueError: here
        tls = _tls_args(args, destination)
        films_attrs = film_attributes(args)
        errors: list = []
        images = read_images(args.images, args.window, errors)
        films = list(films_from_images(images, films_attrs, {"polarity": args.polarity}))
    except (PrintAttributeError, ValueError) as err:
        print(f"printscp print: {err}", file=sys.stderr)
        return 2
    for err in errors:
        print(f"printscp print: {err}", file=sys.stderr)
    if not films:
        print("printscp print: no printable images", file=sys.stderr)
        return 2
    session = {k: v for k, v in (("NumberOfCopies", args.copies and str(args.copies)),
                                 ("FilmSessionLabel", args.label),
                                 ("PrintPriority", args.priority)) if v}
    try:
        result = print_films(films, destination, calling_ae=args.calling_ae, session=session,
                             on_step=lambda step: print(step, flush=True),
                             collate=args.collate, follow_print_job=args.wait, tls_args=tls)
    except (PrintError, OSError) as err:
        print(f"printscp print: failed: {err}", file=sys.stderr)
        return 2
    print(f"printed {result.films} film(s) on {args.to}; printer status {result.printer_status}")
    failed = False
    for uid, (execution, info) in result.print_jobs.items() if args.wait else ():
        print(f"print job {uid}: {execution} ({info or '-'})")
        failed = failed or execution == "FAILURE"
    if failed:
        return 2
    return 1 if errors else 0


def _tls_args(args: argparse.Namespace, destination: tuple[str, str, int]) -> Any:
    """pynetdicom's ``tls_args`` from the --tls options (None without them); a missing
    or unreadable file is a ValueError naming its option."""
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return None
    from printscp.core.errors import ConfigError
    from printscp.core.remote import RemoteAE
    from printscp.core.tls import tls_args

    called, host, port = destination
    try:
        remote = RemoteAE(called, host, port, tls=True, certificate=args.tls_cert,
                          private_key=args.tls_key, ca_certificates=args.tls_ca)
        return tls_args(remote)
    except ConfigError as err:
        option = {"certificate": "--tls-cert", "private_key": "--tls-key",
                  "ca_certificates": "--tls-ca"}
        where = str(err).split(":", 1)[0].rpartition(".")[2]
        raise ValueError(f"{option.get(where, '--tls')}: {str(err).split(': ', 1)[-1]}"
                         ) from None
