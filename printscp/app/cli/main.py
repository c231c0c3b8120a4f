"""The ``printscp`` command line: ``serve``, ``film`` and ``jobs``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from printscp import __version__
from printscp.app.cli.calibrate import add_calibrate_parser
from printscp.app.cli.mpps import add_mpps_parser
from printscp.app.cli.options import add_data_dir_options, data_dir_of
from printscp.app.cli.worklist import add_worklist_parser
from printscp.printing.enums import (
    FilmOrientation,
    FilmSize,
    MagnificationType,
    Polarity,
)
from printscp.printing.errors import PrintAttributeError


def _window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected CENTER,WIDTH, e.g. 40,400") from None
    if width < 1:
        raise argparse.ArgumentTypeError("window width must be >= 1")
    return center, width


def _density(text: str) -> int:
    """Densities on the command line are OD (e.g. 0.2); the wire uses hundredths."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an optical density such as 0.2") from None
    if not 0 <= value <= 655.35:
        raise argparse.ArgumentTypeError("density out of range")
    return round(value * 100)


def _add_layout_options(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--window", type=_window, metavar="C,W",
                   help="VOI window center,width for all images (default: each file's "
                   "first window, else its VOI LUT, else its data range)")
    p.add_argument("--polarity", default="NORMAL", type=str.upper,
                   choices=[v.value for v in Polarity])
    p.add_argument("--min-density", type=_density, default=20, metavar="OD",
                   help="Min Density in OD (default 0.20)")
    p.add_argument("--max-density", type=_density, default=300, metavar="OD",
                   help="Max Density in OD (default 3.00)")
    p.add_argument("--border", default="BLACK", metavar="DENSITY",
                   help="Border Density: BLACK, WHITE or hundredths of OD (default BLACK)")
    p.add_argument("--empty-image", default="BLACK", metavar="DENSITY",
                   help="Empty Image Density: BLACK, WHITE or hundredths of OD (default BLACK)")


def _film_attributes(args: argparse.Namespace) -> dict[str, object]:
    return dict(
        image_display_format=args.format, film_size_id=args.film_size,
        film_orientation=args.orientation, magnification_type=args.magnification,
        min_density=args.min_density, max_density=args.max_density,
        border_density=args.border, empty_image_density=args.empty_image,
    )


def _add_film_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "film", help="export DICOM images as films to a PDF",
        description="Lay DICOM images out on films of true physical size, map them through "
        "the GSDF to optical densities and write one PDF page per film.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="DICOM image files")
    p.add_argument("-o", "--output", required=True, help="PDF file to write")
    _add_layout_options(p)
    p.add_argument("--annotation", metavar="TEXT", help="text printed below the images")
    p.add_argument("--dpi", type=float,
                   help="resolution of the embedded images (default 300, Requested "
                   "Resolution ID STANDARD)")
    p.add_argument("--printer-profile", metavar="FILE",
                   help="DCMTK characteristic file of the output device (default: the "
                   "built-in pdf-srgb profile)")
    p.set_defaults(func=_cmd_film)


def _cmd_film(args: argparse.Namespace) -> int:
    from printscp.core.progress import Progress
    from printscp.printing.film_box import FilmBox
    from printscp.printing.film_export import export_pdf
    from printscp.printing.profile import OutputProfile

    film_attributes = _film_attributes(args)
    try:
        FilmBox(**film_attributes)  # validate before reading any image
        profile = OutputProfile.from_file(args.printer_profile) if args.printer_profile else None
    except (PrintAttributeError, OSError, ValueError) as err:
        print(f"printscp film: {err}", file=sys.stderr)
        return 2
    with Progress(len(args.images), "reading") as progress:
        result = export_pdf(
            args.images, args.output, film_attributes=film_attributes,
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


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="run the DICOM print server",
        description="Run the printscp node: Verification, Print Management (grayscale "
        "and color, Presentation LUT), Storage and Query/Retrieve (FIND, MOVE, GET). Films "
        "are written as PDF under DATA_DIR/films/, stored instances under DATA_DIR/archive/.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration (docs/configuration.md)")
    p.add_argument("--port", type=int, help="TCP port (default 11112)")
    p.add_argument("--ae-title", help="our AE title (default PRINTSCP)")
    p.add_argument("--bind", help="address to listen on (default 0.0.0.0, all interfaces)")
    p.add_argument("--data-dir", help="where spool, films and logs go (default ./printscp-data)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="receiving processes sharing the port (default: one per core, max 4)")
    p.add_argument("--remote", action="append", default=[], metavar="AE@HOST:PORT",
                   help="a peer (C-MOVE destination...), in addition to the config's [[remote]] "
                   "table; repeatable")
    p.add_argument("-v", "--verbose", action="store_true", help="log each association and job")
    p.add_argument("-d", "--debug", action="store_true", help="log DIMSE traffic too")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging
    import signal
    import time

    from printscp.app.node import Node
    from printscp.app.workers import WorkerPool
    from printscp.config import ConfigError, load_config

    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.debug:
        logging.getLogger("pynetdicom").setLevel(max(level, logging.WARNING))
    try:
        config = load_config(args.config, port=args.port, ae_title=args.ae_title,
                             bind=args.bind, data_dir=args.data_dir, workers=args.workers)
        if args.remote:
            from dataclasses import replace

            from printscp.core.remote import RemoteAE

            config = replace(config, remote=config.remote + tuple(
                RemoteAE.parse(r) for r in args.remote)).validate()
        workers = config.worker_count
        if workers == 1:
            node = Node(config).start()
            node.wait_ready()
        else:
            node = WorkerPool(config, workers).start()  # each worker waits until ready
    except (ConfigError, OSError, ValueError) as err:
        print(f"printscp serve: {err}", file=sys.stderr)
        return 2
    stopping: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)  # no lock here: the main thread may hold one

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    films = (config.data_path / "films").resolve()
    print(f"printscp {__version__}: {config.ae_title} listening on {config.bind}:{node.port}; "
          f"films go to {films} ({workers} worker process{'es' if workers > 1 else ''})",
          flush=True)
    while not stopping:
        time.sleep(0.2)
    print("printscp: stopping (jobs not yet rendered stay spooled for the next start)",
          flush=True)
    node.stop()
    return 0


def _add_jobs_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="list print jobs and their films",
                       description="List the print jobs of a data directory: spooled "
                       "(PENDING) and finished (DONE or FAILURE) with their output.")
    add_data_dir_options(p)
    p.add_argument("--json", action="store_true", help="one JSON array with every field")
    p.set_defaults(func=_cmd_jobs)


def _cmd_jobs(args: argparse.Namespace) -> int:
    import json

    from printscp.config import ConfigError
    from printscp.jobs.spool import list_jobs

    try:
        data_dir = data_dir_of(args)
    except ConfigError as err:
        print(f"printscp jobs: {err}", file=sys.stderr)
        return 2
    jobs = list_jobs(data_dir)
    if args.json:
        print(json.dumps(jobs, indent=1))
        return 0
    if not jobs:
        print(f"no print jobs in {data_dir}")
        return 0
    print(f"{'JOB':32} {'STATUS':8} {'CALLING AE':16} {'FILMS':>5} OUTPUT")
    for job in jobs:
        out = job.get("output") or job.get("error") or ""
        print(f"{job.get('job_id', '?'):32} {job.get('status', '?'):8} "
              f"{job.get('calling_ae', ''):16} {len(job.get('films', [])):>5} {out}")
        for target in job.get("deliveries", []):
            if target.get("kind") in ("pdf", "png", "tiff"):
                continue
            result = target.get("result", {})
            detail = (f"CUPS job {result['cups_job_id']}" if "cups_job_id" in result
                      else f"{result.get('films', 0)} film(s) sent" if target["state"] == "done"
                      else target.get("last_error", ""))
            print(f"  -> {target['label']}: {target['state']}, {target.get('attempts', 0)} "
                  f"attempt(s); {detail}")
    return 0


def _add_print_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "print", help="print DICOM images on a DICOM printer (Print SCU)",
        description="Send DICOM images as films to a DICOM printer over Print Management "
        "and report each step's status. Exit status: 0 printed, 1 some files skipped, 2 "
        "nothing printed or the printer refused a step.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="DICOM image files")
    p.add_argument("--to", required=True, metavar="AE@HOST:PORT", help="the printer")
    p.add_argument("--calling-ae", default="PRINTSCU", help="our AE title (default PRINTSCU)")
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
    _add_layout_options(p)
    p.set_defaults(func=_cmd_print)


def _cmd_print(args: argparse.Namespace) -> int:
    from printscp.outputs.print_scu import PrintError, parse_destination, print_films
    from printscp.printing.film_export import films_from_images, read_images

    try:
        destination = parse_destination(args.to)
        films_attrs = _film_attributes(args)
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
                             collate=args.collate, follow_print_job=args.wait)
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


def _add_archive_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("archive", help="check the archive of stored instances",
                       description="Archive maintenance.")
    cmds = p.add_subparsers(dest="archive_command", required=True)
    v = cmds.add_parser("verify", help="re-check every stored file against its checksum",
                        description="Re-read every indexed file and compare its SHA-256 with "
                        "the one recorded when it was stored; list files no index row names. "
                        "Exit status 0 all good, 1 damaged or missing files.")
    add_data_dir_options(v)
    v.set_defaults(func=_cmd_archive_verify)


def _add_media_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("media", help="write or read DICOM media (DICOMDIR File-sets)",
                       description="Standard DICOM media (PS3.10 File-set, PS3.11 STD-GEN-CD).")
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
    e.set_defaults(func=_cmd_media_export)
    i = cmds.add_parser("import", help="read a File-set (e.g. a patient CD) into the archive",
                        description="Store every instance a DICOMDIR references in the archive; "
                        "each file that cannot be read or stored is reported. Exit status 0 all "
                        "imported, 1 some failed, 2 no File-set.")
    i.add_argument("directory", type=Path, metavar="DIR")
    add_data_dir_options(i)
    i.set_defaults(func=_cmd_media_import)


def _cmd_media_export(args: argparse.Namespace) -> int:
    from pydicom.dataset import Dataset

    from printscp.archive.archive import Archive
    from printscp.archive.index import Level
    from printscp.archive.media import MediaError, export_fileset
    from printscp.config import ConfigError
    from printscp.core.progress import Progress

    try:
        archive = Archive(data_dir_of(args))
    except ConfigError as err:
        print(f"printscp media: {err}", file=sys.stderr)
        return 2
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
    print(f"{report.files} file(s), {report.patients} patient(s), {report.studies} "
          f"stud{'y' if report.studies == 1 else 'ies'}, {report.series} series, "
          f"{report.bytes / 1e6:.1f} MB written to {args.output} ({report.profile}); "
          f"{len(report.converted)} converted to Explicit VR Little Endian")
    return 1 if report.skipped else 0


def _cmd_media_import(args: argparse.Namespace) -> int:
    from printscp.archive.archive import Archive
    from printscp.archive.media import MediaError, read_fileset
    from printscp.config import ConfigError
    from printscp.core.progress import Progress

    try:
        archive = Archive(data_dir_of(args))
        files, errors = read_fileset(args.directory)
    except (ConfigError, MediaError) as err:
        print(f"printscp media: {err}", file=sys.stderr)
        return 2
    failed = list(errors)
    stored = 0
    with Progress(len(files), "importing") as progress:
        for path in files:
            progress.advance()
            outcome = archive.import_file(path)
            if outcome.status:
                failed.append((str(path), f"0x{outcome.status:04X} {outcome.comment}"))
            else:
                stored += 1
    for path, reason in failed:
        print(f"printscp media: could not import {path}: {reason}", file=sys.stderr)
    print(f"{stored} instance(s) imported, {len(failed)} file(s) could not be read or stored")
    return 1 if failed else 0


def _cmd_archive_verify(args: argparse.Namespace) -> int:
    from printscp.archive.archive import Archive
    from printscp.config import ConfigError
    from printscp.core.progress import Progress

    try:
        data_dir = data_dir_of(args)
    except ConfigError as err:
        print(f"printscp archive: {err}", file=sys.stderr)
        return 2
    archive = Archive(data_dir)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printscp", description="DICOM print server with PS3.14 GSDF film rendering")
    parser.add_argument("--version", action="version", version=f"printscp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve_parser(sub)
    _add_film_parser(sub)
    _add_print_parser(sub)
    _add_jobs_parser(sub)
    _add_archive_parser(sub)
    _add_media_parser(sub)
    add_mpps_parser(sub)
    add_worklist_parser(sub)
    add_calibrate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
