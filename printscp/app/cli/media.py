"""``printscp media export|import``: write archived instances as a DICOM File-set, or read
one (e.g. a patient CD) into the archive.

Exit status: 0 all written or imported, 1 some files skipped or failed, 2 nothing written,
no File-set or a bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from printscp.app.cli import audit as cli_audit
from printscp.app.cli.options import add_data_dir_options, data_dir_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp media export|import`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("media", help="write or read DICOM media (DICOMDIR File-sets)",
                       description="Standard DICOM media (PS3.10 File-set, PS3.11 STD-GEN-CD).")
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="media_command", required=True)
    e = cmds.add_parser("export", help="write archived instances as a File-set",
                        description="Write a DICOMDIR and the instances (8-character upper-case "
                        "names, no extension, Explicit VR Little Endian) into an empty or new "
                        "folder. Exit status 0 all written, 1 some skipped, 2 nothing written.")
    e.add_argument("-o", "--output", required=True, type=Path, metavar="DIR")
    e.add_argument("--patient", action="append", default=[], metavar="ID",
                   help="only this Patient ID (repeatable)")
    e.add_argument("--study", action="append", default=[], metavar="UID",
                   help="only this Study Instance UID (repeatable)")
    e.add_argument("--fileset-id", default="PRINTSCP", help="File-set ID (16 characters)")
    add_data_dir_options(e)
    i = cmds.add_parser("import", help="read a File-set (e.g. a patient CD) into the archive",
                        description="Store every instance a DICOMDIR references in the archive; "
                        "each file that cannot be read or stored is reported. Exit status 0 all "
                        "imported, 1 some failed, 2 no File-set.")
    i.add_argument("directory", type=Path, metavar="DIR")
    add_data_dir_options(i)


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.media_command](args)


def cmd_export(args: argparse.Namespace) -> int:
    from pydicom.dataset import Dataset

    from printscp.archive.archive import Archive
    from printscp.archive.index import Level
    from printscp.archive.media import MediaError, export_fileset
    from printscp.core.progress import Progress

    archive = Archive(data_dir_of(args))
    records = []
    selections = [(Level.PATIENT, "PatientID", v) for v in args.patient] + \
        [(Level.STUDY, "StudyInstanceUID", v) for v in args.study]
    if selections:
        seen = set()
        for level, keyword, value in selections:
            ident = Dataset()
            setattr(ident, keyword, value)
            for r in archive.index.instances_for(level, ident):
                if r.sop_uid not in seen:
                    seen.add(r.sop_uid)
                    records.append(r)
    else:
        records = list(archive.instances())
    if not records:
        print("printscp media: no instances match", file=sys.stderr)
        return 2
    try:
        with Progress(len(records), "exporting") as progress:
            report = export_fileset([archive.path_of(r) for r in records], args.output,
                                    fileset_id=args.fileset_id, on_file=progress.advance)
    except (MediaError, ValueError, OSError) as err:
        print(f"printscp media: {err}", file=sys.stderr)
        return 2
    for path, reason in report.skipped:
        print(f"printscp media: skipped {path}: {reason}", file=sys.stderr)
    cli_audit.media_export(args, archive, records, args.output, report.files,
                           len(report.skipped))
    print(f"{report.files} file(s), {report.patients} patient(s), {report.studies} "
          f"stud{'y' if report.studies == 1 else 'ies'}, {report.series} series, "
          f"{report.bytes / 1e6:.1f} MB written to {args.output} ({report.profile}); "
          f"{len(report.converted)} converted to Explicit VR Little Endian")
    return 1 if report.skipped else 0


def cmd_import(args: argparse.Namespace) -> int:
    from printscp.archive.archive import Archive
    from printscp.archive.media import MediaError, read_fileset
    from printscp.core.progress import Progress

    data_dir = data_dir_of(args)
    try:
        archive = Archive(data_dir)
        files, errors = read_fileset(args.directory)
    except MediaError as err:
        print(f"printscp media: {err}", file=sys.stderr)
        return 2
    failed = list(errors)
    stored = 0
    outcomes = []
    with Progress(len(files), "importing") as progress:
        for path in files:
            progress.advance()
            outcome = archive.import_file(path)
            outcomes.append(outcome)
            if outcome.status:
                failed.append((str(path), f"0x{outcome.status:04X} {outcome.comment}"))
            else:
                stored += 1
    for path, reason in failed:
        print(f"printscp media: could not import {path}: {reason}", file=sys.stderr)
    cli_audit.media_import(args, args.directory, outcomes, len(failed))
    print(f"{stored} instance(s) imported, {len(failed)} file(s) could not be read or stored")
    return 1 if failed else 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "export": cmd_export, "import": cmd_import}
