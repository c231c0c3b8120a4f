"""``printscp worklist add|import|list|remove``: manage the node's Modality Worklist.

Items live in ``<data_dir>/index.sqlite`` (:mod:`printscp.worklist.items`); the running
node sees changes at its next C-FIND, no restart needed.  ``--data-dir`` (or ``--config``
for the node's configuration file) says which node; a bad configuration is reported by
:func:`printscp.app.cli.dispatch.dispatch`.

Exit status: 0 done; 1 ``import``: some files rejected, ``remove``: some IDs not found;
2 nothing done (bad options, every file rejected, an invalid item).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime

from printscp.app.cli import audit as cli_audit
from printscp.app.cli.options import add_data_dir_options, data_dir_of
from printscp.core.progress import Progress
from printscp.worklist.importing import build_item, import_files
from printscp.worklist.items import ItemRejected, WorklistStore

PROG = "printscp worklist"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp worklist add|import|list|remove`` (called by
    :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("worklist", help="manage the Modality Worklist",
                       description="Add, import, list and remove the scheduled procedure "
                       "steps the node offers to modalities (Modality Worklist C-FIND).")
    p.set_defaults(func=run)
    wsub = p.add_subparsers(dest="worklist_command", required=True)

    a = wsub.add_parser("add", help="schedule one procedure step",
                        description="One worklist item from options.  Codes are "
                        "CODE^SCHEME^MEANING; dates YYYYMMDD or YYYY-MM-DD; times HHMM[SS] "
                        "or HH:MM[:SS].")
    add_data_dir_options(a)
    g = a.add_argument_group("patient")
    g.add_argument("--patient-name", required=True, metavar="FAMILY^GIVEN")
    g.add_argument("--patient-id", required=True)
    g.add_argument("--birth-date")
    g.add_argument("--sex", choices=["M", "F", "O"], type=str.upper)
    g.add_argument("--age", help="years (45) or a DICOM age (045Y, 006M)")
    g.add_argument("--weight", help="kg")
    g = a.add_argument_group("order and requested procedure")
    g.add_argument("--accession")
    g.add_argument("--procedure-id", help="Requested Procedure ID (default: the accession)")
    g.add_argument("--procedure-description")
    g.add_argument("--procedure-code", metavar="CODE^SCHEME^MEANING")
    g.add_argument("--reason")
    g.add_argument("--priority", type=str.upper,
                   choices=["STAT", "HIGH", "ROUTINE", "MEDIUM", "LOW"])
    g.add_argument("--referring-physician", metavar="FAMILY^GIVEN")
    g.add_argument("--requesting-service")
    g.add_argument("--study-uid", help="Study Instance UID (default: generated)")
    g = a.add_argument_group("scheduled procedure step")
    g.add_argument("--modality", required=True, type=str.upper)
    g.add_argument("--station-ae", required=True, help="Scheduled Station AE Title")
    g.add_argument("--station-name")
    g.add_argument("--start-date", help="default: today")
    g.add_argument("--start-time", help="default: now")
    g.add_argument("--sps-description")
    g.add_argument("--protocol-code", metavar="CODE^SCHEME^MEANING")
    g.add_argument("--performing-physician", metavar="FAMILY^GIVEN")
    g.add_argument("--sps-id", help="Scheduled Procedure Step ID (default: procedure ID)")

    i = wsub.add_parser("import", help="import items from DICOM JSON, CSV or DICOM files",
                        description="Each file is imported whole or not at all; every "
                        "rejected item is reported with its reason.  Directories are "
                        "searched for *.wl, *.dcm, *.json and *.csv.  Exit status: 0 all "
                        "imported, 1 some files rejected, 2 none imported.")
    add_data_dir_options(i)
    i.add_argument("files", nargs="+", metavar="FILE")

    ls = wsub.add_parser("list", help="list the items and their status")
    add_data_dir_options(ls)
    ls.add_argument("--json", action="store_true", help="print JSON (every field)")

    r = wsub.add_parser("remove", help="remove items",
                        description="Remove items by Scheduled Procedure Step ID, or with "
                        "--accession every step of the given orders.")
    add_data_dir_options(r)
    r.add_argument("ids", nargs="+", metavar="ID")
    r.add_argument("--accession", action="store_true",
                   help="the IDs are Accession Numbers")


add_worklist_parser = add_parser  # the name it had before (tests import it)


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.worklist_command](args)


_ADD_FIELDS = ("patient_name", "patient_id", "birth_date", "sex", "age", "weight",
               "accession", "procedure_id", "procedure_description", "procedure_code",
               "reason", "priority", "referring_physician", "requesting_service",
               "study_uid", "modality", "station_ae", "station_name", "start_date",
               "start_time", "sps_description", "protocol_code", "performing_physician",
               "sps_id")


def cmd_add(args: argparse.Namespace) -> int:
    fields = {name: getattr(args, name) for name in _ADD_FIELDS}
    data_dir = data_dir_of(args)
    try:
        item = build_item(fields, now=datetime.now())
        store = WorklistStore.for_data_dir(data_dir)
        item_id = store.add(item, source="printscp worklist add")
    except ItemRejected as exc:
        for reason in exc.reasons:
            print(f"{PROG} add: {reason}", file=sys.stderr)
        return 2
    except Exception as exc:  # database errors: one line, not a traceback
        print(f"{PROG} add: {exc}", file=sys.stderr)
        return 2
    step = item.ScheduledProcedureStepSequence[0]
    cli_audit.action(args, "worklist.add", str(item_id), patient_id=str(item.PatientID),
                     study_uid=str(item.StudyInstanceUID),
                     accession=str(item.get("AccessionNumber", "")))
    print(f"item {item_id}: SPS {step.ScheduledProcedureStepID} for "
          f"{item.PatientName} ({item.PatientID}) on {step.ScheduledStationAETitle} at "
          f"{step.ScheduledProcedureStepStartDate} {step.ScheduledProcedureStepStartTime}, "
          f"Study Instance UID {item.StudyInstanceUID}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    try:
        store = WorklistStore.for_data_dir(data_dir)
    except Exception as exc:
        print(f"{PROG} import: {exc}", file=sys.stderr)
        return 2
    from printscp.worklist.importing import expand_paths

    files = expand_paths(args.files)
    with Progress(len(files), "importing") as bar:
        results = import_files(store, files, advance=bar.advance)
    imported = sum(r.imported for r in results)
    rejected = [r for r in results if not r.ok]
    for r in rejected:
        for problem in r.problems:
            print(f"{r.path}: {problem}", file=sys.stderr)
    print(f"{imported} items imported from {len(results) - len(rejected)} files; "
          f"{len(rejected)} files rejected")
    cli_audit.action(args, "worklist.import", ", ".join(str(f) for f in files)[:200],
                     "success" if not rejected else "refused", items=imported,
                     files=len(results), rejected=len(rejected) or None)
    if not results or len(rejected) == len(results):
        return 2
    return 1 if rejected else 0


def cmd_list(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    try:
        items = WorklistStore.for_data_dir(data_dir).items()
    except Exception as exc:
        print(f"{PROG} list: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([i.to_dict() for i in items], indent=1))
        return 0
    header = ("ID", "DATE", "TIME", "STATION", "MOD", "PATIENT", "PATIENT ID", "ACCESSION",
              "SPS ID", "STATUS", "DESCRIPTION")
    rows = [(str(i.id), i.start_date, i.start_time[:6], i.station_ae, i.modality,
             i.patient_name, i.patient_id, i.accession_number, i.sps_id, i.status,
             i.description) for i in items]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    print(f"{len(items)} items")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    try:
        store = WorklistStore.for_data_dir(data_dir)
        found = {i: bool(store.find_items(accession=i) if args.accession
                         else store.find_items(sps_id=i)) for i in args.ids}
        if args.accession:
            removed = store.remove(accessions=args.ids)
        else:
            removed = store.remove(sps_ids=args.ids)
    except Exception as exc:
        print(f"{PROG} remove: {exc}", file=sys.stderr)
        return 2
    for ident, present in found.items():
        if not present:
            print(f"{PROG} remove: no item with {'accession' if args.accession else 'SPS ID'}"
                  f" {ident}", file=sys.stderr)
    print(f"{removed} items removed")
    cli_audit.action(args, "worklist.remove", ", ".join(args.ids),
                     "success" if removed else "not found", removed=removed,
                     by="accession" if args.accession else "sps_id")
    if removed == 0:
        return 2
    return 0 if all(found.values()) else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "add": cmd_add, "import": cmd_import, "list": cmd_list, "remove": cmd_remove}
