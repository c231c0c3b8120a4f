"""Benchmark: the QA program's summaries at the size of a big site (issue 19).

Run:  python benchmarks/qa.py [--repeat N] [--keep DIR]

Builds a QA store of 500 devices (displays and printers, each with an acceptance and a
constancy test) of which two carry a long history: the display ``BIG-DISPLAY`` and the
printer ``BIG-PRINTER``, 1,000 tests each (weekly for ~19 years: an absurdly long
history, which is the point).  Tests are computed from synthetic readings with
:func:`calibration.qa.display.evaluate_display` / :func:`calibration.qa.film.evaluate_film`
where those exist, else judged by :func:`calibration.analysis.judge` and assembled by
hand into the same :class:`~calibration.qa.results.TestResult` shape.  Then it times,
as median (min-max) of N runs after one warm-up:

* ``printscp qa status`` for the 500 devices: the real command in a subprocess, wall
  clock from start to exit, and :func:`calibration.qa.status.device_status` in process
  (opening the store included).  Goal: <= 1 s.
* the full trend report of each big device: ``printscp qa report DEVICE -o x.pdf`` in a
  subprocess, and history + :func:`calibration.qa.report.write_report` in process.
  Goal: <= 5 s.

Numbers in each row are seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calibration.qa.devices import Device  # noqa: E402
from calibration.qa.results import DeviceKind, TestKind, TestResult  # noqa: E402
from calibration.qa.store import QAStore  # noqa: E402

DEVICES = 500
LONG_HISTORY = 1000
STATUS_GOAL = 1.0
REPORT_GOAL = 5.0
START = datetime(2007, 1, 8, 8, 30, tzinfo=UTC)
D65 = (0.1978, 0.4683)


# ------------------------------------------------------------------ synthetic displays

def display_readings(rng: np.random.Generator, age: float) -> dict[str, Any]:
    """One display's readings file (calibration.qa.display's JSON) after ``age`` years:
    a GSDF-calibrated panel whose backlight loses ~1.5 %/year, with meter noise, corners
    a little darker as it ages, and a white point wandering towards yellow."""
    from lut import gsdf

    lmax = 420.0 * (1 - 0.015 * age) * (1 + rng.normal(0, 0.005))
    lmin = 1.1 * (1 + rng.normal(0, 0.01))
    lamb = 0.15 + abs(rng.normal(0, 0.02))
    levels = [int(v) for v in np.rint(np.linspace(0, 255, 18))]
    j = np.linspace(gsdf.jnd_index(lmin), gsdf.jnd_index(lmax), 18)
    lum = gsdf.luminance(j) * (1 + rng.normal(0, 0.003, 18))
    centre = 0.8 * lmax
    corners = centre * (1 - np.abs(rng.normal(0.08 + 0.005 * age, 0.02, 4)))
    return {
        "response": {"points": [[d, float(v)] for d, v in zip(levels, lum, strict=True)]},
        "ambient": {"illuminance_lux": round(lamb / 0.006, 1),
                    "reflection_coefficient": 0.006},
        "uniformity": {"unl80": {"centre": centre, "top-left": corners[0],
                                 "top-right": corners[1], "bottom-left": corners[2],
                                 "bottom-right": corners[3]}},
        "white_point": {"u": D65[0] + 0.0003 * age + rng.normal(0, 0.0005),
                        "v": D65[1] + 0.0003 * age + rng.normal(0, 0.0005)},
    }


def make_display_test(rng: np.random.Generator, age: float, kind: TestKind,
                      baseline: TestResult | None, folder: Path) -> TestResult:
    """The readings written as a file and judged by evaluate_display (TG18, with the
    site limits a QA program sets where the sources give none)."""
    import json

    from calibration.qa.display import evaluate_display, read_display_readings

    path = folder / "display.json"
    path.write_text(json.dumps(display_readings(rng, age)), encoding="utf-8")
    return evaluate_display(read_display_readings(path), "tg18", kind, baseline,
                            site_limits={"white_point_distance": (None, 0.01),
                                         "lmax_change": (-10.0, 10.0)})


# ------------------------------------------------------------------ synthetic printers

def make_printer_test(rng: np.random.Generator, age: float, kind: TestKind,
                      baseline: TestResult | None, folder: Path) -> TestResult:
    """A dry laser printer calibrated to the GSDF (PS3.14 D.2.3) whose Dmax sags
    ~0.02 OD a year, with densitometer noise."""
    from lut.density import pvalue_to_density

    dmax = 3.0 - 0.02 * age + rng.normal(0, 0.01)
    fog = 0.19 + rng.normal(0, 0.004)

    def response(p: np.ndarray) -> np.ndarray:  # P-values ascend, densities fall
        d = pvalue_to_density(p, 12, 0.2, dmax, 2000.0, 10.0)
        return np.maximum(d * (1 + rng.normal(0, 0.004, p.size)), 0.0)

    from calibration.qa.film import evaluate_film, simulated_readings, step_pvalues

    readings = simulated_readings(np.asarray(step_pvalues(32), dtype=np.float64), response,
                                  base_fog=round(fog, 3))
    return evaluate_film(readings, kind, baseline, min_density=0.2, max_density=3.0,
                         illumination=2000.0, ambient=10.0)


# ------------------------------------------------------------------ the store

def build(db: Path) -> tuple[float, int]:
    """The 500 devices and their tests; returns (seconds, tests recorded)."""
    rng = np.random.default_rng(19)
    t0 = time.perf_counter()
    store = QAStore(db)
    recorded = 0
    makers: dict[DeviceKind, Callable[..., TestResult]] = {
        DeviceKind.DISPLAY: make_display_test, DeviceKind.PRINTER: make_printer_test}

    def history(device: Device, tests: int, every: timedelta) -> None:
        nonlocal recorded
        store.add_device(device)
        baseline = None
        for i in range(tests):
            kind = TestKind.ACCEPTANCE if i == 0 else TestKind.CONSTANCY
            when = START + i * every
            age = (when - START).days / 365.25
            result = makers[device.kind](rng, age, kind, baseline, db.parent)
            if kind is TestKind.ACCEPTANCE:
                baseline = result
            store.record_test(device.id, result, operator="qa-tech", when=when,
                              source=f"{device.id}-{i:04d}.csv")
            recorded += 1

    history(Device("BIG-DISPLAY", DeviceKind.DISPLAY, "Barco", "MDRC-2321", "B0001"),
            LONG_HISTORY, timedelta(days=7))
    history(Device("BIG-PRINTER", DeviceKind.PRINTER, "Carestream", "DryView 5950", "P0001",
                   printer_ae="DRYVIEW"), LONG_HISTORY, timedelta(days=7))
    for n in range(DEVICES - 2):
        printer = n % 5 == 4
        device = Device(f"{'PRN' if printer else 'DSP'}-{n:03d}",
                        DeviceKind.PRINTER if printer else DeviceKind.DISPLAY,
                        "Acme", "Model 7", f"S{n:05d}")
        history(device, 2, timedelta(days=90 + n % 200))
    store.close()
    return time.perf_counter() - t0, recorded


# ------------------------------------------------------------------ timing

def printscp_command() -> list[str]:
    """The installed ``printscp`` script beside this interpreter (not a version
    manager's shim, which would add its own start-up), else ``python -m printscp``."""
    script = Path(sys.executable).with_name("printscp")
    if script.exists():
        return [str(script)]
    found = shutil.which("printscp")
    return [found] if found else [sys.executable, "-m", "printscp"]


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm-up: imports, page cache
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run_cli(args: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> Callable[[], None]:
    """The command, importing printscp from this tree (PYTHONPATH), not an installed copy;
    ``ok``: the exit statuses that mean it ran (``qa status`` exits 1 when a device
    needs attention, as most of these synthetic ones do)."""
    cmd = printscp_command() + args
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def go() -> None:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode not in ok:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return go


def row(name: str, times: list[float] | None, goal: float, error: str = "") -> str:
    if times is None:
        return f"{name:<46} {'—':>8}   goal <= {goal:g} s   NOT RUN: {error}"
    med = statistics.median(times)
    verdict = "ok" if med <= goal else "OVER"
    return (f"{name:<46} {med:8.3f}   ({min(times):.3f}-{max(times):.3f})   "
            f"goal <= {goal:g} s   {verdict}")


def attempt(fn: Callable[[], Any], repeat: int) -> tuple[list[float] | None, str]:
    try:
        return timed(fn, repeat), ""
    except Exception as err:  # one missing piece does not hide the other figures
        first = str(err).strip().splitlines()
        return None, f"{type(err).__name__}: {first[-1] if first else ''}"[:200]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="build the store in DIR and keep it (reused when present)")
    args = parser.parse_args()

    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="qa-bench-")
        work = Path(tmp.name)
    else:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    db = work / "qa.sqlite"
    try:
        if db.exists():
            print(f"store: {db} (reused)")
        else:
            seconds, count = build(db)
            print(f"store: {db}: {DEVICES} devices, {count} tests recorded in {seconds:.1f} s "
                  f"({os.path.getsize(db) / 1e6:.1f} MB)")
        print(f"runs: median (min-max) of {args.repeat}, after one warm-up; seconds\n")
        from calibration.qa.report import write_report

        def status_in_process() -> None:
            from calibration.qa.status import device_status

            with QAStore(db, create=False) as store:
                statuses = device_status(store)
            assert len(statuses) == DEVICES, len(statuses)

        def report_in_process(device_id: str) -> Callable[[], None]:
            def go() -> None:
                with QAStore(db, create=False) as store:
                    records = store.history(device_id)
                    write_report(work / f"{device_id}-in-process.pdf",
                                 store.device(device_id), records)
                assert len(records) == LONG_HISTORY
            return go

        common = ["--data-dir", str(work), "--qa-db", str(db)]
        lines = []
        t, err = attempt(run_cli(["qa", "status", *common], work, ok=(0, 1)), args.repeat)
        lines.append(row(f"printscp qa status ({DEVICES} devices), CLI", t, STATUS_GOAL, err))
        t, err = attempt(status_in_process, args.repeat)
        lines.append(row("device_status, in process", t, STATUS_GOAL, err))
        for device_id in ("BIG-DISPLAY", "BIG-PRINTER"):
            out = work / f"{device_id}.pdf"
            t, err = attempt(run_cli(["qa", "report", device_id, "-o", str(out), *common],
                                     work), args.repeat)
            lines.append(row(f"printscp qa report {device_id} ({LONG_HISTORY}), CLI", t,
                             REPORT_GOAL, err))
            t, err = attempt(report_in_process(device_id), args.repeat)
            lines.append(row(f"write_report {device_id}, in process", t, REPORT_GOAL, err))
            if out.exists():
                lines.append(f"{'':<46} {out.name}: {out.stat().st_size / 1e3:.0f} kB")
        print("\n".join(lines))
        return 0 if all(" OVER" not in x and "NOT RUN" not in x for x in lines) else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
