"""Benchmark: the console's latency, and what it costs the DICOM side (issue 16).

Run:  python benchmarks/console.py [--quick] [--runs N] [--skip latency,cost]

1. **Latency** with 10,000 print jobs and 50,000 archived instances (``--quick``: 1,000
   and 5,000).  A data directory is filled first: one real film printed by a pynetdicom
   Print SCU to ``printscp serve`` (its source kept for previews), then 9,999 further
   finished jobs written as the spool writes them (sidecars in ``films/``, copies of the
   real one with other ids, calling AEs, printers, states and labels), and 50,000
   instances stored through ``Archive.receive`` (the C-STORE handler's durable path,
   two processes, the instances of ``benchmarks/archive.py``).  Then ``printscp serve
   --workers 2`` starts on it with the console on a free port, and an HTTP client
   (httpx, one keep-alive connection, as a browser) times, 20 times each (median and
   95th percentile): the print queue page ``/``, ``/api/jobs`` (first page), a filtered
   page (calling AE + state), a film preview not cached (a new width each time), and
   ``/metrics``.  Targets: <= 150 ms, <= 150 ms, <= 150 ms, <= 300 ms, <= 50 ms.
2. **Cost**: a fresh ``printscp serve --workers 2`` (console on), measured with and
   without a browser-like client polling the queue (``/`` and ``/api/jobs``) once a
   second: the rate of 4 DCMTK ``storescu`` at once (1,200 CT images 512x512, 300 each) and
   the latency from N-ACTION to the film's PDF on disk (pynetdicom Print SCU, one
   14INX17IN STANDARD\\4,5 film of twenty 512x512 images per association).  Runs
   alternate: without, with, with, without... (``--runs`` pairs), and each pair's ratio
   with / without is printed; the target is within 5 %.  In both modes the console has
   answered once before (warm, as for a browser that has been looking), and the poller
   runs 2.5 s before the measurement starts: its steady state is measured, not the
   first requests' imports and template compilation (a store run lasts about a second).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from archive import (  # noqa: E402
    DCMTK,
    QUICK,
    RECEIVE,
    DataSet,
    Plan,
    count_instances,
    timed_parallel,
)
from baseline import current, run_python  # noqa: E402
from print_latency import images, print_film  # noqa: E402

TARGETS_MS = {"queue page /": 150, "GET /api/jobs": 150, "GET /api/jobs filtered": 150,
              "film preview (not cached)": 300, "GET /metrics": 50}
CALLING = [f"MODALITY{i:02d}" for i in range(20)]
PRINTERS = ["printscp", "PAPER"]
REPEATS = 20


def say(text: str) -> None:
    print(text, flush=True)


class Serve:
    """``printscp serve`` in its own process with the console on a free port."""

    def __init__(self, data: Path, workers: int = 2) -> None:
        self.data = data
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "printscp", "serve", "--port", "0", "--bind", "127.0.0.1",
             "--data-dir", str(data), "--workers", str(workers), "--http", "127.0.0.1:0",
             "--ae-title", "PRINTSCP"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=data.parent,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on" not in line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"printscp serve did not start: {line}{err}")
        self.port = int(line.split("listening on 127.0.0.1:")[1].split(";")[0])
        self.url = line.rsplit("console at ", 1)[1].strip()
        self.aet = "PRINTSCP"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- the data directory -----------------------------------------------------------------
def one_real_film(data: Path) -> dict:
    """Print one film to a server on ``data``; the finished job's sidecar."""
    server = Serve(data, workers=1)
    try:
        print_film(server.port, images(), "MODALITY00")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sides = list((data / "films").glob("*.json"))
            if sides:
                side = json.loads(sides[0].read_text("utf-8"))
                if side.get("status") in ("DONE", "FAILURE"):
                    return side
            time.sleep(0.1)
        raise RuntimeError("the real film was not printed in 120 s")
    finally:
        server.stop()


def synthetic_jobs(data: Path, real: dict, count: int) -> None:
    """``count`` finished jobs like ``real``, spread over 60 days, as sidecars."""
    rng = random.Random(16)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    films = data / "films"
    for n in range(count):
        when = start + timedelta(seconds=rng.randrange(60 * 86400))
        job_id = when.strftime("%Y%m%dT%H%M%S%fZ") + f"-{rng.getrandbits(32):08x}"
        side = dict(real)
        side.update(job_id=job_id, created=when.isoformat(timespec="milliseconds"),
                    calling_ae=rng.choice(CALLING), printer=rng.choice(PRINTERS),
                    status="DONE" if rng.random() < 0.9 else "FAILURE")
        side.setdefault("session", {})
        side["session"] = dict(side["session"], film_session_label=f"LABEL{n % 500:03d}")
        stem = f"{job_id[:8]}-{job_id[9:15]}_{side['calling_ae']}_{job_id[-8:]}"
        (films / f"{stem}.json").write_text(json.dumps(side), "utf-8")


def fill(work: Path, plan: Plan, jobs: int) -> Path:
    data = work / "data"
    say(f"filling {data}: 1 real film, {jobs - 1} more jobs, {plan.indexed} instances")
    real = one_real_film(data)
    t0 = time.perf_counter()
    synthetic_jobs(data, real, jobs - 1)
    say(f"  {jobs - 1} job sidecars in {time.perf_counter() - t0:.1f} s")
    dataset = DataSet(work / "dicom", plan)
    shards = [sorted(d.iterdir()) for d in dataset.indexed_dirs]
    halves = [[str(p) for s in shards[i::2] for p in s] for i in range(2)]
    t0 = time.perf_counter()
    tree = current()
    with ThreadPoolExecutor(2) as pool:
        bad = sum(pool.map(lambda h: run_python(tree, RECEIVE, {
            "data_dir": str(data), "sop_class": "1.2.840.10008.5.1.4.1.1.2",
            "paths": h}), halves))
    if bad:
        raise RuntimeError(f"{bad} instances refused")
    say(f"  {plan.indexed} instances stored in {time.perf_counter() - t0:.0f} s")
    return data


# -- latency ----------------------------------------------------------------------------
def timed(client: httpx.Client, url: str) -> float:
    t0 = time.perf_counter()
    r = client.get(url)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:200]}")
    return elapsed * 1000


def measure_latency(data: Path) -> dict[str, list[float]]:
    server = Serve(data)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            first = client.get("/api/jobs", params={"limit": 1}).json()
            real = client.get("/api/jobs", params={"calling_ae": "MODALITY00",
                                                   "limit": 500}).json()
            say(f"  the console lists {first['total']} jobs")
            with_film = next(j for j in real["jobs"] if j.get("films"))
            job_id = with_film["job_id"]
            urls: dict[str, Callable[[int], str]] = {
                "queue page /": lambda i: "/",
                "GET /api/jobs": lambda i: "/api/jobs",
                "GET /api/jobs filtered": lambda i: "/api/jobs?calling_ae=MODALITY07&state=DONE",
                "film preview (not cached)": lambda i: f"/api/jobs/{job_id}/films/1.png?"
                                                       f"width={400 + i}",
                "GET /metrics": lambda i: "/metrics",
            }
            for url in urls.values():  # warm: imports, first connections
                client.get(url(-1))
            out: dict[str, list[float]] = {name: [] for name in urls}
            for i in range(REPEATS):
                for name, url in urls.items():
                    out[name].append(timed(client, url(i)))
            return out
    finally:
        server.stop()


# -- cost --------------------------------------------------------------------------------
class Poller:
    """A browser on the print queue: ``/`` and ``/api/jobs`` once a second."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._stop = threading.Event()
        self.requests = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                client.get("/")
                client.get("/api/jobs")
                self.requests += 2
                self._stop.wait(1.0)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_rate(server: Serve, files: Sequence[Path]) -> float:
    per = len(files) // 4
    groups = [[str(p) for p in files[i * per:(i + 1) * per]] for i in range(4)]
    cmds = [[str(DCMTK / "storescu"), "-aec", server.aet, "127.0.0.1", str(server.port), *g]
            for g in groups]
    elapsed = timed_parallel(cmds)
    return len(files) / elapsed


def film_latency(server: Serve, pixels: list, n: int) -> float:
    films = server.data / "films"
    values = []
    for _ in range(n):
        before = len(list(films.glob("*.pdf")))
        t0 = print_film(server.port, pixels, "LATENCY")  # when N-ACTION was sent
        while len(list(films.glob("*.pdf"))) <= before:
            time.sleep(0.002)
        values.append(time.perf_counter() - t0)
    return statistics.median(values)


def measure_cost(work: Path, plan: Plan, runs: int) -> dict[str, dict[str, list[float]]]:
    dataset = DataSet(work / "cost-dicom", plan)
    files = dataset.store_files
    pixels = images()
    out: dict[str, dict[str, list[float]]] = {"store": {"without": [], "with": []},
                                              "film": {"without": [], "with": []}}
    for r in range(runs):
        for polled in (("without", "with") if r % 2 == 0 else ("with", "without")):
            data = work / f"cost-{r}-{polled}" / "data"
            data.parent.mkdir(parents=True)
            server = Serve(data)
            try:
                # The console warm in both modes (a browser that has been looking), and
                # the poller already in its steady once-a-second rhythm when measured.
                with httpx.Client(base_url=server.url, timeout=30) as warm:
                    warm.get("/")
                    warm.get("/api/jobs")
                poll = Poller(server.url) if polled == "with" else None
                if poll:
                    poll.__enter__()
                    time.sleep(2.5)
                console_cpu = cpu_seconds(server.proc.pid)  # the parent: the console
                try:
                    rate = store_rate(server, files)
                    latency = film_latency(server, pixels, 5)
                finally:
                    console_cpu = cpu_seconds(server.proc.pid) - console_cpu
                    if poll:
                        poll.__exit__()
                stored = count_instances(server, dataset.store_study.uid)  # type: ignore[arg-type]
                if stored != len(files):
                    say(f"  run {r + 1} {polled}: only {stored} of {len(files)} stored")
            finally:
                server.stop()
                shutil.rmtree(data.parent, ignore_errors=True)
            out["store"][polled].append(rate)
            out["film"][polled].append(latency)
            say(f"  run {r + 1} {polled:7s} poller: 4-assoc C-STORE {rate:6.1f} inst/s, "
                f"N-ACTION->PDF {latency * 1000:6.0f} ms; the console's process used "
                f"{console_cpu * 1000:.0f} ms of CPU meanwhile")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 jobs, 5,000 instances")
    parser.add_argument("--runs", type=int, default=3, help="pairs of cost runs (default 3)")
    parser.add_argument("--skip", default="", help="comma-separated: latency,cost")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    plan = Plan(studies=100, per_series=25) if args.quick else Plan()
    jobs = 1000 if args.quick else 10000
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        work = Path(tmp)
        if "latency" not in skip:
            data = fill(work, plan, jobs)
            say(f"latency with {jobs} jobs and {plan.indexed} instances ({REPEATS} each, ms):")
            lat = measure_latency(data)
            say(f"  {'request':28s} {'median':>8s} {'p95':>8s} {'target':>7s}")
            for name, values in lat.items():
                ordered = sorted(values)
                p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
                verdict = "ok" if statistics.median(values) <= TARGETS_MS[name] else "SLOW"
                say(f"  {name:28s} {statistics.median(values):8.1f} {p95:8.1f} "
                    f"{TARGETS_MS[name]:7d} {verdict}")
        if "cost" not in skip:
            # 4 x 300 images: a store run of about 4 s, long enough for a once-a-second
            # poller to be measured at its steady rate.
            cost_plan = QUICK if args.quick else Plan(store_images=1200)
            say(f"cost of a polling browser ({args.runs} pairs of runs, alternating):")
            cost = measure_cost(work, cost_plan, args.runs)
            for what, unit in (("store", "inst/s"), ("film", "s")):
                w, wo = cost[what]["with"], cost[what]["without"]
                pairs = [a / b for a, b in zip(w, wo, strict=True)]
                say(f"  {what}: without {statistics.median(wo):.3f} {unit}, with "
                    f"{statistics.median(w):.3f} {unit}; ratio with/without per pair: "
                    + ", ".join(f"{p:.3f}" for p in pairs)
                    + f"; median {statistics.median(pairs):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
