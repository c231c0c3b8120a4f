"""``printscp jobs``: the print jobs of a data directory, their deliveries, and the
control actions the console offers (cancel, hold, release, delete, reprint), through
the same domain call (:class:`printscp.jobs.control.JobControl`).

Exit status: 0 listed or done, 1 the job is unknown or its state refuses the action,
2 a bad configuration, printer or target.
"""

from __future__ import annotations

import argparse
import json
import sys

from printscp.app.cli import audit as cli_audit
from printscp.app.cli.options import DEFAULT_DATA_DIR, add_data_dir_options, data_dir_of

ACTIONS = {
    "cancel": "cancel a PENDING (or held) job: it ends FAILURE, JOB CANCELED",
    "hold": "hold a PENDING job that has not started printing",
    "release": "release a held job: it is queued again",
    "delete": "delete a finished job: its record, films and kept source",
    "reprint": "print a job's films again as a new job",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp jobs`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("jobs", help="list print jobs; cancel, hold, release, delete, reprint",
                       description="List the print jobs of a data directory: spooled "
                       "(PENDING) and finished (DONE or FAILURE) with their output; or act "
                       "on one job (printscp jobs ACTION JOB).")
    add_data_dir_options(p)
    p.add_argument("--json", action="store_true", help="one JSON array with every field")
    p.set_defaults(func=run, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    for name, text in ACTIONS.items():
        a = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        a.add_argument("job", metavar="JOB", help="the job id (printscp jobs lists them)")
        # SUPPRESS: given before ACTION (printscp jobs --data-dir D cancel J), they stay.
        a.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                       help=f"the node's data directory (default: from --config, else "
                       f"{DEFAULT_DATA_DIR})")
        a.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                       help="the node's TOML configuration (its data directory; its "
                       "printer profiles for reprint --printer/--target)")
        if name == "reprint":
            a.add_argument("--printer", metavar="NAME",
                           help="another printer profile ([printers.NAME]) to print on")
            a.add_argument("--target", metavar="LABEL",
                           help="only this target of the printer (its id or label)")
        a.set_defaults(func=run_action)


def run(args: argparse.Namespace) -> int:
    from printscp.jobs.spool import list_jobs

    data_dir = data_dir_of(args)
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
        info = job.get("status_info") or ""
        state = job.get("status", "?")
        from printscp.jobs.state import CANCELED_INFO, HELD_INFO

        if info in (HELD_INFO, CANCELED_INFO):
            state = "HELD" if info == HELD_INFO else "CANCELED"
        print(f"{job.get('job_id', '?'):32} {state:8} "
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


def run_action(args: argparse.Namespace) -> int:
    from printscp.jobs.control import JobControl, JobNotFound, JobStateError

    args.data_dir = getattr(args, "data_dir", None)
    args.config = getattr(args, "config", None)
    data_dir = data_dir_of(args)
    resolve = None
    if args.config:
        from printscp.config import load_config

        resolve = load_config(args.config).reprint_printing
    control = JobControl(data_dir, resolve_targets=resolve, who="printscp jobs")
    new_id = None
    try:
        if args.action == "reprint":
            new_id = control.reprint(args.job, printer=args.printer, target=args.target)
            print(f"job {args.job} reprinted as job {new_id}")
        elif args.action == "delete":
            control.delete(args.job)
            print(f"job {args.job} deleted")
        else:
            result = getattr(control, args.action)(args.job)
            print(f"job {args.job}: {result['state']} ({result['status_info']})")
    except (JobNotFound, JobStateError) as exc:
        print(f"printscp jobs {args.action}: {exc}", file=sys.stderr)
        cli_audit.action(args, f"job.{args.action}", args.job,
                         "not found" if isinstance(exc, JobNotFound) else "refused",
                         error=str(exc))
        return 1
    except ValueError as exc:
        print(f"printscp jobs {args.action}: {exc}", file=sys.stderr)
        cli_audit.action(args, f"job.{args.action}", args.job, "refused", error=str(exc))
        return 2
    cli_audit.action(args, f"job.{args.action}", args.job,
                     new_job=new_id if args.action == "reprint" else None)
    return 0
