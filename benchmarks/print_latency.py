"""Benchmark: Print SCP latency (N-ACTION -> PDF on disk) and throughput with 4 clients.

Run:  python benchmarks/print_latency.py [--films N] [--quick] [--baseline REV]
      python benchmarks/print_latency.py --dcmtk-session [--rounds N] [--sessions K]
                                         [--settle S] [--baseline REV]

``--dcmtk-session`` (issue 18) times only the DCMTK print session, as a modality runs
it: dcmpsprt renders twenty 512x512 12-bit images once into a 14INX17IN STANDARD\\4,5
Stored Print (no MinPrintResolution: the images go at their own size), then
``/usr/bin/dcmprscu`` sends it, timed from its start to its exit, against a fresh
``printscp serve`` (empty data directory, default settings but port, bind, data
directory and ``--no-http``) and against DCMTK's own ``/usr/bin/dcmprscp`` (a generated
LOCALPRINTER configuration storing into a temporary folder; it only stores).  Both
servers start afresh every round and are timed once they have run ``--settle`` seconds
(default 6); the servers take turns (a b, b a, ...), each session waits for its film
(printscp: the PDF's sidecar; dcmprscp: its Stored Print) before the next, and a
dcmprscu log with an ``E:`` or ``F:`` line fails the run (dcmprscu exits 0 even when
printing failed).  dcmprscu and dcmprscp run with TCP_NODELAY=1, as DCMTK's tools do in
issue 18's table.  Reported: median ms per server, the ratio to dcmprscp per session,
and the server's CPU during the session.  With ``--baseline REV`` commit REV's printscp
takes its turns too.

Starts ``printscp serve`` as its own process on a free loopback port, then prints
14INX17IN STANDARD\\4,5 films of twenty 512x512 12-bit images with pynetdicom
SCUs (one association per film, as modalities do; each client its own process).
Clients and server share the machine's cores, as they do in the tests.  Reports the median latency
from sending N-ACTION to the film's PDF being complete on disk, and films per
minute with one client and with four clients at once.
With Debian's dcmtk installed it also prints the film with DCMTK's dcmprscu (a C
client, run as modalities run it: without TCP_NODELAY) one at a time and four at once.
Targets (issue 3): latency <= 1 s median; 4-client throughput >= 1.6x one client.

``--baseline REV`` (e.g. ``--baseline 0d169aa``) measures commit REV's server in the
same run, side by side with the working tree's: REV is checked out in a temporary git
worktree and its ``printscp serve`` runs as server ``printscp@<rev>`` importing that
tree's package (checked; see ``benchmarks/baseline.py``).  The clients are the
working tree's for both.  Both servers run at once, each with its own data directory,
and take turns measurement by measurement (each film of the latency series, each
throughput run: current then baseline, then baseline then current, ...), so a slow
spell of the machine falls on both alike.  Every figure is printed for both, then a
table with the ratio current / baseline per figure and each run's paired ratio.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baseline import Tree, baseline, current, ratio_line, turns  # noqa: E402
from helpers.print_scu import PrintSCU  # noqa: E402

from printscp.core import uids  # noqa: E402


def images(n: int = 20, size: int = 512) -> list[np.ndarray]:
    from film_render import ct_like_images

    return ct_like_images(n, size)


@dataclass
class Server:
    """One running ``printscp serve`` and the figures measured against it."""

    name: str
    proc: subprocess.Popen
    port: int
    films: Path
    latencies: list[float] = field(default_factory=list)
    rates: dict[int, list[float]] = field(default_factory=lambda: {1: [], 4: []})
    dcmtk_rates: dict[int, list[float]] = field(default_factory=lambda: {1: [], 4: []})


def start_server(data: Path, workers: int | None = None, tree: Tree | None = None,
                 extra: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    extra = [*(["--workers", str(workers)] if workers else []), *(extra or [])]
    proc = (tree or current()).serve(["--port", "0", "--bind", "127.0.0.1", "--data-dir",
                                      str(data), *extra], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r":(\d+);", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"printscp serve ({(tree or current()).root}) did not start: "
                           f"{line!r}")
    return proc, int(found.group(1))


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


def pynetdicom_rate(server: Server, clients: int, per_client: int) -> float:
    """Films per minute: ``clients`` client processes sending ``per_client`` films each."""
    start_count = pdf_count(server.films)
    # Each client is its own process, as separate modalities are: the
    # server, not one client process's GIL, is what is measured.
    ready = multiprocessing.Barrier(clients + 1)
    workers = [multiprocessing.Process(target=client_loop,
                                       args=(server.port, f"CLIENT{i}", per_client, ready))
               for i in range(clients)]
    for w in workers:
        w.start()
    ready.wait()  # every client has imported and built its images
    t0 = time.perf_counter()
    for w in workers:
        w.join()
        assert w.exitcode == 0
    total = per_client * clients
    t1 = wait_for(server.films, start_count + total)
    return total / (t1 - t0) * 60


#: DCMTK's tools as Debian installs them (pynetdicom installs Python apps of other names).
DCMPSPRT, DCMPRSCU, DCMPRSCP = "/usr/bin/dcmpsprt", "/usr/bin/dcmprscu", "/usr/bin/dcmprscp"


def dcmtk_client_config(tmp: Path, db: Path, port: int, name: str) -> Path:
    """A dcmpsprt/dcmprscu configuration whose printer TARGET is 127.0.0.1:``port``.
    No MinPrintResolution: the 512x512 images go at their own size (print-interop
    notes, section 1)."""
    cfg = tmp / f"dcmtk-{name}.cfg"
    cfg.write_text(f"[[GENERAL]]\n[DATABASE]\nDirectory = {db}\n[NETWORK]\n"
                   "aetitle = DCMTK\n[[COMMUNICATION]]\n[TARGET]\nType = PRINTER\n"
                   f"Hostname = 127.0.0.1\nPort = {port}\nAetitle = PRINTSCP\n"
                   "DisplayFormat = 4,5\nFilmSizeID = 14INX17IN\n"
                   "SupportsPresentationLUT = true\n")
    return cfg


def stored_print(tmp: Path) -> tuple[Path, Path]:
    """Render the benchmark's film once with dcmpsprt: twenty 512x512 12-bit CT-like
    images (full-range window, so the stored values go unchanged) as one 14INX17IN
    STANDARD\\4,5 Stored Print.  Returns (the SP_*.dcm file, dcmpsprt's database)."""
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
    cfg = dcmtk_client_config(tmp, db, 0, "render")
    subprocess.run([DCMPSPRT, "-c", str(cfg), "-p", "TARGET", "--nospool", "--layout", "4", "5",
                    "--filmsize", "14INX17IN", *map(str, sorted(imgs.glob("*.dcm")))],
                   check=True, capture_output=True)
    [sp] = db.glob("SP_*.dcm")
    return sp, db


def failures(out: subprocess.CompletedProcess) -> list[str]:
    """dcmprscu's ``E:``/``F:`` log lines: it exits 0 even when printing failed."""
    return [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith(("E:", "F:"))]


def dcmtk_throughput(servers: list[Server], tmp: Path, n_films: int, repeat: int) -> bool:
    """Films per minute with dcmprscu clients: 1 at a time, then 4 processes at once,
    the servers taking turns; False if dcmtk is missing."""
    if not all(Path(t).exists() for t in (DCMPSPRT, DCMPRSCU)):
        print("  (dcmtk not installed: DCMTK client figures skipped)")
        return False
    sp, db = stored_print(tmp)

    def config(port: int, name: str) -> Path:
        return dcmtk_client_config(tmp, db, port, name)

    cfgs = {s.name: config(s.port, s.name) for s in servers}
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}

    def send(cfg: Path, count: int) -> None:
        for _ in range(count):
            out = subprocess.run([DCMPRSCU, "-c", str(cfg), "-p", "TARGET", str(sp)],
                                 capture_output=True, text=True, env=env)
            assert not failures(out), out.stderr

    for k, (_, clients) in enumerate((r, c) for r in range(repeat) for c in (1, 4)):
        for server in turns(servers, k):
            per_client = max(1, n_films // clients)
            start_count = pdf_count(server.films)
            t0 = time.perf_counter()
            workers = [threading.Thread(target=send, args=(cfgs[server.name], per_client))
                       for _ in range(clients)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            t1 = wait_for(server.films, start_count + per_client * clients)
            server.dcmtk_rates[clients].append(per_client * clients / (t1 - t0) * 60)
    for server in servers:
        print(f"  DCMTK dcmprscu clients (separate processes, no TCP_NODELAY)"
              f"{label(server, servers)}:")
        report_rates(server.dcmtk_rates, n_films, "    ")
    return True


DCMPRSCP_CFG = """[[GENERAL]]
[DATABASE]
Directory = {db}
[NETWORK]
aetitle = DCMPRSCP
[[COMMUNICATION]]
[PRINTSCP]
Aetitle = PRINTSCP
Hostname = localhost
Port = {port}
Type = LOCALPRINTER
DisplayFormat = 4,5
FilmSizeID = 14INX17IN
MagnificationType = REPLICATE\\BILINEAR\\CUBIC\\NONE
MaxDensity = 320
MinDensity = 20
PresentationLUTMatchRequired = false
Supports12Bit = true
SupportsPresentationLUT = true
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants (the
    node's worker and render processes), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo += children.get(p, [])
    return total


@dataclass
class SessionServer:
    """One server of the session benchmark: a printscp tree or DCMTK's dcmprscp."""

    name: str
    tree: Tree | None  # None: dcmprscp
    ms: list[float] = field(default_factory=list)  #: dcmprscu start to exit, per session
    #: The server's CPU seconds (its processes together) from dcmprscu's start to its
    #: exit: printscp's render process starts on the film at N-ACTION, so some is in.
    cpu_ms: list[float] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    port: int = 0
    out: Path | None = None  #: films/ (printscp) or the database folder (dcmprscp)
    started: float = 0.0

    def start(self, folder: Path, env: dict[str, str]) -> None:
        """A fresh, empty server in ``folder``."""
        folder.mkdir(parents=True)
        self.started = time.monotonic()
        if self.tree is None:
            self.out = folder / "db"
            self.out.mkdir()
            self.port = free_port()
            cfg = folder / "dcmprscp.cfg"
            cfg.write_text(DCMPRSCP_CFG.format(db=self.out, port=self.port))
            self.proc = subprocess.Popen([DCMPRSCP, "-c", str(cfg), "-p", "PRINTSCP"],
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env=env)
        else:
            self.proc, self.port = start_server(folder / "data", tree=self.tree,
                                                extra=["--no-http"])
            self.out = folder / "data" / "films"

    def produced(self) -> int:
        """Films written (printscp: sidecars, written after the PDF) or Stored Print
        objects stored (dcmprscp)."""
        assert self.out is not None
        if self.tree is None:
            return len(list(self.out.glob("SP_*.dcm")))
        return pdf_count(self.out)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def dcmtk_session(trees: list[Tree], rounds: int, sessions: int, settle: float) -> None:
    """``dcmprscu`` sending the Stored Print, start to exit, against each printscp tree
    and against dcmprscp, round by round with fresh servers (see ``--dcmtk-session``)."""
    if not all(Path(t).exists() for t in (DCMPSPRT, DCMPRSCU, DCMPRSCP)):
        raise SystemExit(f"needs DCMTK's {DCMPSPRT}, {DCMPRSCU} and {DCMPRSCP}")
    servers = [*(SessionServer(f"printscp{t.suffix}", t) for t in trees),
               SessionServer("dcmprscp", None)]
    # DCMTK tools and Orthanc run with TCP_NODELAY=1 in issue 18's table: dcmprscu and
    # dcmprscp read it from the environment (DCMTK's default is Nagle on).
    env = dict(os.environ, TCP_NODELAY="1")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sp, db = stored_print(tmp)
        print(f"DCMTK print session: dcmprscu sends {sp.name} (14INX17IN STANDARD\\4,5, "
              "20 x 512x512 12-bit), start to exit; TCP_NODELAY=1 for dcmprscu and "
              f"dcmprscp; fresh servers each round, settled {settle:g} s; {rounds} rounds x "
              f"{sessions} session(s)", flush=True)
        turn = 0
        for r in range(rounds):
            try:
                for server in servers:
                    server.start(tmp / f"r{r}-{server.name}", env)
                for server in servers:
                    wait_for_port(server.port, server.proc)
                time.sleep(max(0.0, max(s.started for s in servers) + settle
                               - time.monotonic()))
                for _ in range(sessions):
                    for server in turns(servers, turn):
                        cfg = dcmtk_client_config(tmp, db, server.port, server.name)
                        before = server.produced()
                        cpu0 = tree_cpu_seconds(server.proc.pid)
                        t0 = time.perf_counter()
                        out = subprocess.run([DCMPRSCU, "-c", str(cfg), "-p", "TARGET",
                                              str(sp)], capture_output=True, text=True,
                                             env=env)
                        ms = (time.perf_counter() - t0) * 1000
                        cpu = tree_cpu_seconds(server.proc.pid) - cpu0
                        bad = failures(out)
                        if out.returncode or bad:
                            raise RuntimeError(f"dcmprscu against {server.name} failed "
                                               f"(exit {out.returncode}): {bad or out.stderr}")
                        end = time.monotonic() + 60
                        while server.produced() <= before:  # the film, then the next turn
                            if time.monotonic() > end:
                                raise RuntimeError(f"{server.name} produced no film")
                            time.sleep(0.005)
                        server.cpu_ms.append(cpu * 1000)
                        server.ms.append(ms)
                    turn += 1
            finally:
                for server in servers:
                    server.stop()
            print(f"  round {r + 1}: " + ", ".join(
                f"{s.name} {' '.join(f'{v:.0f}' for v in s.ms[-sessions:])} ms"
                for s in servers), flush=True)
    dcmprscp = servers[-1]
    print(f"{'server':22s}{'median ms':>10s}{'min':>7s}{'max':>7s}{'server CPU ms':>15s}"
          f"{'/ dcmprscp':>12s}")
    for s in servers:
        print(f"{s.name:22s}{statistics.median(s.ms):>10.0f}{min(s.ms):>7.0f}{max(s.ms):>7.0f}"
              f"{statistics.median(s.cpu_ms):>15.0f}"
              f"{statistics.median(s.ms) / statistics.median(dcmprscp.ms):>12.2f}")
    for s in servers[:-1]:
        print("  " + ratio_line(f"{s.name} / dcmprscp per session (< 1: printscp faster)",
                                s.ms, dcmprscp.ms, "sessions"))
    if len(servers) == 3:
        print("  " + ratio_line(f"{servers[0].name} / {servers[1].name} per session",
                                servers[0].ms, servers[1].ms, "sessions"))


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float = 30) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


def report_rates(rates: dict[int, list[float]], n_films: int, indent: str) -> None:
    for clients, values in rates.items():
        print(f"{indent}{clients} client(s), {n_films} films: median "
              f"{statistics.median(values):.1f} films/min "
              f"(runs: {', '.join(f'{v:.0f}' for v in values)})")
    ratio = statistics.median(rates[4]) / statistics.median(rates[1])
    print(f"{indent}throughput 4 clients / 1 client: {ratio:.2f}x")


def label(server: Server, servers: list[Server]) -> str:
    """`` (name)`` when several servers are measured, else nothing."""
    return f" ({server.name})" if len(servers) > 1 else ""


def compare(ours: Server, base: Server, dcmtk: bool) -> None:
    """The figures of both servers side by side, ratio ours / base, run by run too."""
    rows: list[tuple[str, float, float, str, str]] = []  # text, ours, base, format, better

    def scale(rates: dict[int, list[float]]) -> float:
        return statistics.median(rates[4]) / statistics.median(rates[1])

    rows.append(("N-ACTION -> PDF median (s)", statistics.median(ours.latencies),
                 statistics.median(base.latencies), ".3f", "lower"))
    for name, a, b in [("pynetdicom", ours.rates, base.rates),
                       *([("dcmprscu", ours.dcmtk_rates, base.dcmtk_rates)] if dcmtk else [])]:
        for clients in (1, 4):
            rows.append((f"{name} {clients} client(s) (films/min)",
                         statistics.median(a[clients]), statistics.median(b[clients]),
                         ".1f", "higher"))
        rows.append((f"{name} 4 clients / 1 client", scale(a), scale(b), ".2f", "higher"))
    width = max(len(ours.name), len(base.name), 10) + 2
    print(f"\nbefore / after: {ours.name} (working tree) against {base.name}, "
          "same run, taking turns")
    print(f"{'figure':36s}{ours.name:>{width}s}{base.name:>{width}s}"
          f"{'ratio':>8s}  better")
    for text, a, b, fmt, better in rows:
        print(f"{text:36s}{a:>{width}{fmt}}{b:>{width}{fmt}}{a / b:>8.2f}  {better}")
    print(f"paired ratios {ours.name} / {base.name}, each pair measured in one turn:")
    print("  " + ratio_line("latency per film (< 1: current faster)", ours.latencies,
                            base.latencies, "films"))
    for name, a, b in [("pynetdicom", ours.rates, base.rates),
                       *([("dcmprscu", ours.dcmtk_rates, base.dcmtk_rates)] if dcmtk else [])]:
        for clients in (1, 4):
            print("  " + ratio_line(f"{name} {clients} client(s) films/min", a[clients],
                                    b[clients]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--films", type=int, default=16, help="films per measurement")
    ap.add_argument("--workers", type=int, help="server worker processes (default: its own)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="throughput measurements per client count (median reported)")
    ap.add_argument("--baseline", metavar="REV",
                    help="also measure commit REV's server (a temporary git worktree), "
                         "taking turns with the working tree's")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 4 films per measurement, 1 repetition")
    ap.add_argument("--dcmtk-session", action="store_true",
                    help="only time the DCMTK print session (dcmpsprt's Stored Print sent "
                         "by dcmprscu, start to exit) against printscp and DCMTK's dcmprscp")
    ap.add_argument("--rounds", type=int, default=8, help="--dcmtk-session: rounds (fresh "
                    "servers each)")
    ap.add_argument("--sessions", type=int, default=1,
                    help="--dcmtk-session: sessions per server and round")
    ap.add_argument("--settle", type=float, default=6.0,
                    help="--dcmtk-session: seconds from the servers' start to the first session")
    args = ap.parse_args()
    if args.dcmtk_session:
        with baseline(args.baseline) as base:
            dcmtk_session([current(), *([base] if base else [])], args.rounds,
                          args.sessions, args.settle)
        return
    if args.quick:
        args.films, args.repeat = 4, 1
    pixels = images()
    with baseline(args.baseline) as base, tempfile.TemporaryDirectory() as tmp:
        trees = [current(), *([base] if base else [])]
        servers: list[Server] = []
        try:
            for tree in trees:
                data = Path(tmp) / f"data{tree.suffix}"
                proc, port = start_server(data, args.workers, tree)
                servers.append(Server(f"printscp{tree.suffix}", proc, port, data / "films"))
            for server in servers:
                print_film(server.port, pixels, "WARMUP")
                wait_for(server.films, 1)
            for i in range(args.films):
                for server in turns(servers, i):
                    done = pdf_count(server.films)
                    t_action = print_film(server.port, pixels, "LATENCY")
                    server.latencies.append(wait_for(server.films, done + 1) - t_action)
            print("print: 14INX17IN STANDARD\\4,5, 20 x 512x512 12-bit, pynetdicom SCU")
            for server in servers:
                lat = server.latencies
                print(f"  N-ACTION -> PDF on disk{label(server, servers)}: median "
                      f"{statistics.median(lat):.3f} s "
                      f"(min {min(lat):.3f}, max {max(lat):.3f}, n={len(lat)})")

            pairs = [(r, c) for r in range(args.repeat) for c in (1, 4)]
            for k, (_, clients) in enumerate(pairs):
                for server in turns(servers, k):
                    per_client = max(1, args.films // clients)
                    server.rates[clients].append(pynetdicom_rate(server, clients, per_client))
            for server in servers:
                if len(servers) > 1:
                    print(f"  pynetdicom clients ({server.name}):")
                report_rates(server.rates, args.films, "    " if len(servers) > 1 else "  ")
            dcmtk = dcmtk_throughput(servers, Path(tmp), args.films, args.repeat)
            if len(servers) > 1:
                compare(servers[0], servers[1], dcmtk)
        finally:
            for server in servers:
                server.proc.terminate()
                server.proc.wait(30)


if __name__ == "__main__":
    main()
