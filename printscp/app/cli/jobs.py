"""``printscp jobs``: the print jobs of a data directory and their deliveries.

Exit status: 0 listed, 2 a bad configuration.
"""

from __future__ import annotations

import argparse
import json

from printscp.app.cli.options import add_data_dir_options, data_dir_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp jobs`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("jobs", help="list print jobs and their films",
                       description="List the print jobs of a data directory: spooled "
                       "(PENDING) and finished (DONE or FAILURE) with their output.")
    add_data_dir_options(p)
    p.add_argument("--json", action="store_true", help="one JSON array with every field")
    p.set_defaults(func=run)


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
