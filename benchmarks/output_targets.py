"""Benchmark: hardcopy submission to CUPS and forwarding to DCMTK's dcmprscp.

Run:  python benchmarks/output_targets.py [--repeat N]

Needs Debian's cups, printer-driver-cups-pdf (a private cupsd is started, as the tests
do; run as root) and dcmtk (dcmprscp).  The film is issue 6's: 14INX17IN
STANDARD\\4,5, twenty 512x512 12-bit images, 300 DPI.  Medians of N runs after one
warm-up, wall clock on this machine:

* hardcopy: rendered film -> paper PDF (A4, fit) -> CUPS job accepted (IPP
  Print-Job answered with a job id); also 1:1 tiles on A4;
* forwarding: the spooled job -> adjusted film session sent to dcmprscp and its
  N-ACTION answered (association to release);
* end to end through printscp serve: modality N-ACTION answered -> job DONE, for a
  CUPS target and for a forwarding target (render + delivery).

dcmprscp gets TCP_NODELAY=1 (DCMTK sets it only when asked); our sockets set it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the private cupsd and dcmprscp helpers
sys.path.insert(0, str(ROOT / "benchmarks"))


def _median(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms  " \
           f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}, n={len(values)})"


def bench_hardcopy(cups, repeat: int) -> None:
    from film_render import film

    from printscp.outputs import ipp
    from printscp.printing.film_files import flate_image
    from printscp.printing.paper import IPP_MEDIA, PaperPolicy, ipp_job_attributes, paper_pdf
    from printscp.printing.render import render_film

    rendered = render_film(film(), dpi=300, postprocess=flate_image, keep_levels=False)
    for policy in (PaperPolicy.FIT, PaperPolicy.TRUE_SIZE):
        layout, submit, total = [], [], []
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            document, pages = paper_pdf([rendered], "A4", policy)
            t1 = time.perf_counter()
            job_id = ipp.print_job(cups.uri, document, job_name=f"bench {i}",
                                   media=IPP_MEDIA["A4"],
                                   job_attributes=ipp_job_attributes(policy, pages=pages))
            t2 = time.perf_counter()
            assert job_id > 0
            if i:
                layout.append(t1 - t0)
                submit.append(t2 - t1)
                total.append(t2 - t0)
        print(f"hardcopy A4 {policy.value:9} ({pages} sheet(s), {len(document) >> 10} KiB)")
        print(f"  paper layout          {_median(layout)}")
        print(f"  IPP Print-Job         {_median(submit)}")
        print(f"  film -> job accepted  {_median(total)}")


def _spooled_job(tmp: Path):
    """A real spooled job of the benchmark film, as the node writes it."""
    from film_render import film

    from printscp.jobs.spool import PrintJob, Spool, new_job_id, now_iso
    from printscp.printing.film_session import FilmSession
    from printscp.printing.records import film_box_record, session_record

    arrays: dict = {}
    job = PrintJob(job_id=new_job_id(), created=now_iso(), calling_ae="CT1", called_ae="PRINTSCP",
                   peer="127.0.0.1:1", session=session_record(FilmSession()),
                   films=[film_box_record(film(), arrays, "film1")])
    spool = Spool(tmp, lambda folder, data: {})
    spool.submit(job, arrays)
    return tmp / "spool" / job.job_id


def bench_forward(repeat: int, tmp: Path) -> None:
    from helpers.upstream import running_dcmprscp

    from printscp.jobs.targets import DicomTarget
    from printscp.outputs.forward import forward

    folder = _spooled_job(tmp / "fwd")
    with running_dcmprscp(tmp, display_formats="1,1\\4,5") as (port, db):
        target = DicomTarget(destination=f"UPSTREAM@127.0.0.1:{port}",
                             film_sizes=("8INX10IN", "14INX17IN"))
        times = []
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            result = forward(target, folder, "PRINTSCP")
            if i:
                times.append(time.perf_counter() - t0)
        assert result["films"] == 1
        print(f"forward to dcmprscp     {_median(times)}   "
              f"({len(list(db.glob('HG_*.dcm')))} hardcopy images stored upstream)")


def bench_end_to_end(cups, repeat: int, tmp: Path) -> None:
    from film_render import film
    from helpers.upstream import running_dcmprscp

    from printscp.app.node import Node
    from printscp.config import load_config
    from printscp.jobs.spool import list_jobs
    from printscp.outputs.print_scu import print_films

    with running_dcmprscp(tmp, display_formats="1,1\\4,5") as (port, _):
        for name, target in (("CUPS A4 fit", f'type = "cups"\nserver = "{cups.server}"\n'
                                             f'queue = "{cups.queue}"\n'),
                             ("forward to dcmprscp", f'type = "dicom"\ndestination = '
                                                     f'"UPSTREAM@127.0.0.1:{port}"\n')):
            data = tmp / name.replace(" ", "_")
            toml = tmp / f"{data.name}.toml"
            toml.write_text(f'[node]\nport = 0\nbind = "127.0.0.1"\ndata_dir = "{data}"\n'
                            f'[[printer.targets]]\n{target}')
            node = Node(load_config(toml)).start()
            times = []
            try:
                for i in range(repeat + 1):
                    fb = film()
                    print_films([fb], ("PRINTSCP", "127.0.0.1", node.port), timeout=60)
                    t0 = time.perf_counter()
                    assert node.spool.wait_idle(120)
                    if i:
                        times.append(time.perf_counter() - t0)
            finally:
                node.stop()
            jobs = list_jobs(data)
            assert all(j["status"] == "DONE" for j in jobs), jobs[-1]
            print(f"N-ACTION -> DONE, {name:20} {_median(times)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("TCP_NODELAY", "1")  # for dcmprscp (DCMTK reads it)
    from helpers import cups as private_cups

    reason = private_cups.missing()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    print(__doc__.split("\n\n")[1].replace("\n", " "))
    with private_cups.running_cups() as cups, tempfile.TemporaryDirectory() as tmp:
        bench_hardcopy(cups, args.repeat)
        bench_forward(args.repeat, Path(tmp))
        bench_end_to_end(cups, args.repeat, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
