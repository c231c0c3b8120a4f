"""``printscp mpps list|report``: the performed procedure steps the modalities reported.

Registered by :func:`add_parser` (called by :mod:`printscp.app.cli.main`); also runs
alone as ``python -m printscp.app.cli.mpps``.
Exit status: 0 done, 2 bad options, a bad configuration or no usable data directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from printscp.app.cli.dispatch import dispatch
from printscp.app.cli.options import add_data_dir_options, data_dir_of, parse_day
from printscp.mpps.report import format_list, format_usage, list_steps, usage
from printscp.mpps.steps import STATUSES, MppsStore


def _common(p: argparse.ArgumentParser) -> None:
    add_data_dir_options(p)
    p.add_argument("--from", dest="since", type=parse_day, metavar="DATE",
                   help="steps started on or after DATE (YYYY-MM-DD)")
    p.add_argument("--to", dest="until", type=parse_day, metavar="DATE",
                   help="steps started on or before DATE (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp mpps list|report`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("mpps", help="performed procedure steps reported by modalities",
                       description="Modality Performed Procedure Steps received by "
                       "printscp serve: when, how long, dose, and whether their images "
                       "reached the archive.")
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="mpps_command", required=True)
    lst = cmds.add_parser("list", help="list steps with duration, dose and completeness",
                          description="One line per step: start, end, duration, status, "
                          "station, modality, accession, IMAGES arrived/referenced (the "
                          "instances of its Performed Series Sequence found in the "
                          "archive), dose.")
    _common(lst)
    lst.add_argument("--status", choices=STATUSES, help="only steps in this status")
    lst.add_argument("--incomplete", action="store_true",
                     help="only steps whose referenced instances have not all arrived")
    rep = cmds.add_parser("report", help="use per station and modality over a period",
                          description="Procedures, completed/discontinued, total and mean "
                          "duration per performing station AE title and modality, for steps "
                          "started from --from to --to (inclusive).")
    _common(rep)


add_mpps_parser = add_parser  # the name it had before


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.mpps_command](args)


def _open(args: argparse.Namespace) -> MppsStore | None:
    data_dir = data_dir_of(args)
    if not (data_dir / "index.sqlite").exists():
        print(f"printscp mpps: no database in {data_dir}", file=sys.stderr)
        return None
    return MppsStore(data_dir)


def cmd_list(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    lines = list_steps(store, args.since, args.until, args.status)
    if args.incomplete:
        lines = [line for line in lines if not line.complete]
    if args.json:
        print(json.dumps([line.as_dict() for line in lines], indent=2))
    elif not lines:
        print("no performed procedure steps")
    else:
        print(format_list(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    rows = usage(store, args.since, args.until)
    if args.json:
        print(json.dumps({"from": args.since.isoformat() if args.since else None,
                          "to": args.until.isoformat() if args.until else None,
                          "rows": [row.as_dict() for row in rows]}, indent=2))
    else:
        print(format_usage(rows, args.since, args.until))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="printscp")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
