"""Benchmark: Print SCP latency (N-ACTION -> PDF on disk) and throughput with 4 clients.

Run:  python benchmarks/print_latency.py [--films N]

Starts ``printscp serve`` as its own process on a free loopback port, then prints
14INX17IN STANDARD\\4,5 films of twenty 512x512 12-bit images with pynetdicom
SCUs (one association per film, as modalities do; each client its own process).
Clients and server share the machine's cores, as they do in the tests.  Reports the median latency
from sending N-ACTION to the film's PDF being complete on disk, and films per
minute with one client and with four clients at once.
With Debian's dcmtk installed it also prints the film with DCMTK's dcmprscu (a C
client, run as modalities run it: without TCP_NODELAY) one at a time and four at once.
Targets (issue 3): latency <= 1 s median; 4-client throughput >= 1.6x one client.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from print_scu import PrintSCU  # noqa: E402

from printscp.core import uids  # noqa: E402


def images(n: int = 20, size: int = 512) -> list[np.ndarray]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from film_render import ct_like_images

    return ct_like_images(n, size)


def start_server(data: Path, workers: int | None = None) -> tuple[subprocess.Popen, int]:
    extra = ["--workers", str(workers)] if workers else []
    proc = subprocess.Popen([sys.executable, "-m", "printscp", "serve", "--port", "0",
                             "--bind", "127.0.0.1", "--data-dir", str(data), *extra],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    port = int(re.search(r":(\d+);", line).group(1))
    return proc, port


def pdf_count(films: Path) -> int:
    return len(list(films.glob("*.json")))  # the sidecar is written after the PDF


def print_film(port: int, pixels: list[np.ndarray], calling: str) -> float:
    """Send one film; return the time N-ACTION was sent."""
    with PrintSCU(port, calling=calling) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box("STANDARD\\4,5", FilmSizeID="14INX17IN")
        for pos, (uid, px) in enumerate(zip(boxes, pixels, strict=True), start=1):
            scu.image(uid, pos, px)
        t = time.perf_counter()
        st, _ = scu.action(uids.BASIC_FILM_BOX, fb)
        assert st.Status == 0, hex(st.Status)
        return t


def client_loop(port: int, name: str, films: int, ready) -> None:
    pixels = images()
    ready.wait()
    for _ in range(films):
        print_film(port, pixels, name)


def wait_for(films: Path, count: int, timeout: float = 120) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pdf_count(films) >= count:
            return time.perf_counter()
        time.sleep(0.002)
    raise TimeoutError(f"{count} films not written")


def dcmtk_throughput(port: int, films: Path, tmp: Path, n_films: int, repeat: int) -> None:
    """Films per minute with dcmprscu clients: 1 at a time, then 4 processes at once."""
    import shutil

    if not (shutil.which("dcmpsprt") and shutil.which("dcmprscu")):
        print("  (dcmtk not installed: DCMTK client figures skipped)")
        return
    sys.path.insert(0, str(ROOT / "samples"))
    from make_samples import _dataset

    imgs = tmp / "imgs"
    db = tmp / "db"
    imgs.mkdir()
    db.mkdir()
    for i, px in enumerate(images()):
        ds = _dataset(px, "MONOCHROME2", 12, f"bench{i}")
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ds.save_as(imgs / f"ct{i:02d}.dcm", enforce_file_format=True)
    cfg = tmp / "dcmtk.cfg"
    cfg.write_text(f"[[GENERAL]]\n[DATABASE]\nDirectory = {db}\n[NETWORK]\naetitle = DCMTK\n"
                   "[[COMMUNICATION]]\n[TARGET]\nType = PRINTER\nHostname = 127.0.0.1\n"
                   f"Port = {port}\nAetitle = PRINTSCP\nDisplayFormat = 4,5\n"
                   "SupportsPresentationLUT = true\n")
    subprocess.run(["dcmpsprt", "-c", str(cfg), "-p", "TARGET", "--nospool", "--layout", "4",
                    "5", *map(str, sorted(imgs.glob("*.dcm")))], check=True,
                   capture_output=True)
    [sp] = db.glob("SP_*.dcm")
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}

    def send(count: int) -> None:
        for _ in range(count):
            out = subprocess.run(["dcmprscu", "-c", str(cfg), "-p", "TARGET", str(sp)],
                                 capture_output=True, text=True, env=env)
            assert not [ln for ln in (out.stdout + out.stderr).splitlines()
                        if ln.startswith(("E:", "F:"))], out.stderr

    rates: dict[int, list[float]] = {1: [], 4: []}
    for _, clients in [(r, c) for r in range(repeat) for c in (1, 4)]:
        per_client = max(1, n_films // clients)
        start_count = pdf_count(films)
        t0 = time.perf_counter()
        workers = [threading.Thread(target=send, args=(per_client,)) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        t1 = wait_for(films, start_count + per_client * clients)
        rates[clients].append(per_client * clients / (t1 - t0) * 60)
    print("  DCMTK dcmprscu clients (separate processes, no TCP_NODELAY):")
    report_rates(rates, n_films, "    ")


def report_rates(rates: dict[int, list[float]], n_films: int, indent: str) -> None:
    for clients, values in rates.items():
        print(f"{indent}{clients} client(s), {n_films} films: median "
              f"{statistics.median(values):.1f} films/min "
              f"(runs: {', '.join(f'{v:.0f}' for v in values)})")
    ratio = statistics.median(rates[4]) / statistics.median(rates[1])
    print(f"{indent}throughput 4 clients / 1 client: {ratio:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--films", type=int, default=16, help="films per measurement")
    ap.add_argument("--workers", type=int, help="server worker processes (default: its own)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="throughput measurements per client count (median reported)")
    args = ap.parse_args()
    pixels = images()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc, port = start_server(data, args.workers)
        films = data / "films"
        try:
            print_film(port, pixels, "WARMUP")
            wait_for(films, 1)
            done = 1
            latencies = []
            for _ in range(args.films):
                t_action = print_film(port, pixels, "LATENCY")
                done += 1
                latencies.append(wait_for(films, done) - t_action)
            print("print: 14INX17IN STANDARD\\4,5, 20 x 512x512 12-bit, pynetdicom SCU")
            print(f"  N-ACTION -> PDF on disk: median {statistics.median(latencies):.3f} s "
                  f"(min {min(latencies):.3f}, max {max(latencies):.3f}, n={len(latencies)})")

            rates: dict[int, list[float]] = {1: [], 4: []}
            for _, clients in [(r, c) for r in range(args.repeat) for c in (1, 4)]:
                per_client = max(1, args.films // clients)
                start_count = pdf_count(films)

                # Each client is its own process, as separate modalities are: the
                # server, not one client process's GIL, is what is measured.
                ready = multiprocessing.Barrier(clients + 1)
                workers = [multiprocessing.Process(target=client_loop,
                                                   args=(port, f"CLIENT{i}", per_client, ready))
                           for i in range(clients)]
                for w in workers:
                    w.start()
                ready.wait()  # every client has imported and built its images
                t0 = time.perf_counter()
                for w in workers:
                    w.join()
                    assert w.exitcode == 0
                total = per_client * clients
                t1 = wait_for(films, start_count + total)
                rates[clients].append(total / (t1 - t0) * 60)
            report_rates(rates, args.films, "  ")
            dcmtk_throughput(port, films, Path(tmp), args.films, args.repeat)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
