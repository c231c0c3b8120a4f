"""Soak: bounded mixed traffic against ``printscp serve`` as a separate process.

Run:  python benchmarks/soak.py [--minutes 10] [--clients 6] [--workers N]

Client threads (pynetdicom, each its own association per operation, as modalities
do) pick at random: C-STORE of a small image, C-FIND (study level), C-GET of an
instance stored before, a print session (Film Session, Film Box STANDARD\\1,2, two
image boxes, N-ACTION), C-ECHO, and a C-STORE aborted half-way (A-ABORT).  Query and
retrieve need a "known" AE ([access] defaults): the soak's config names its calling
AE in [[remote]].

Reported: operations done and failed per kind; the node's resident memory (RSS),
threads and open files, from /proc of the node and of every process under it, at the
start and at the end; and the checks that every acknowledged instance is found by
C-FIND and every accepted print job has its film (films/*.json sidecar).
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baseline import current  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from printscp.core import uids  # noqa: E402

CALLING = "SOAK"
CONFIG = f"""
[[remote]]
ae_title = "{CALLING}"
host = "127.0.0.1"
port = 1
"""
SC = "1.2.840.10008.5.1.4.1.1.7"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY = "1.2.826.0.1.3680043.9.7433.77.1"


def image(uid: str, size: int = 64) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SC, uid
    ds.PatientName, ds.PatientID = "SOAK^TEST", "SOAK"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, STUDY + ".1"
    ds.Modality = "OT"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.random.default_rng().integers(0, 255, size * size, np.uint8).tobytes()
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it (workers, their render processes...)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grew = {pid}, True
    while grew:
        below = {child for child, parent in parents.items() if parent in tree}
        grew = not below <= tree
        tree |= below
    return sorted(tree)


def proc_figures(pid: int) -> dict[str, int]:
    """RSS (MiB), threads and open files of ``pid`` and every process under it."""
    pids = process_tree(pid)
    rss = threads = files = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            threads += int(re.search(r"Threads:\s+(\d+)", status).group(1))
            files += len(list(Path(f"/proc/{p}/fd").iterdir()))
        except (OSError, AttributeError):
            continue
    return {"processes": len(pids), "rss_mib": rss // 1024, "threads": threads,
            "open_files": files}


class Sampler(threading.Thread):
    """The node's figures every ``every`` seconds while the soak runs: whether memory
    levels off (a warm-up: render processes importing, caches filling) or keeps
    growing (a leak) shows in the second half of the run, not in start against end."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(self.every):
            self.samples.append((time.monotonic() - t0, proc_figures(self.pid)))


class Soak:
    def __init__(self, port: int) -> None:
        self.port = port
        self.done: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.stored: list[str] = []
        self.prints = 0
        self.aborted: list[str] = []
        self.lock = threading.Lock()

    def associate(self, *contexts: str):
        from helpers.clients import associate

        return associate(self.port, *contexts, calling=CALLING)

    def store(self) -> bool:
        uid = generate_uid()
        assoc = self.associate((SC, ExplicitVRLittleEndian))
        try:
            ok = assoc.is_established and assoc.send_c_store(image(uid)).Status == 0
        finally:
            if assoc.is_established:
                assoc.release()
        if ok:
            with self.lock:
                self.stored.append(uid)
        return bool(ok)

    def find(self, level: str = "STUDY") -> list[Dataset] | None:
        assoc = self.associate(FIND)
        if not assoc.is_established:
            return None
        query = Dataset()
        query.QueryRetrieveLevel = level
        query.PatientID = "SOAK"
        query.StudyInstanceUID = ""
        if level == "IMAGE":  # hierarchical: the study and series are given
            query.StudyInstanceUID, query.SeriesInstanceUID = STUDY, STUDY + ".1"
            query.SOPInstanceUID = ""
        matches, final = [], None
        for status, ds in assoc.send_c_find(query, FIND):
            if status is None:
                break
            if status.Status in (0xFF00, 0xFF01):
                matches.append(ds)
            else:
                final = status.Status
        assoc.release()
        return matches if final == 0 else None

    def get(self) -> bool:
        with self.lock:
            if not self.stored:
                return True
            uid = random.choice(self.stored)
        from pynetdicom import AE, build_role, evt

        ae = AE(CALLING)
        ae.add_requested_context(GET)
        ae.add_requested_context(SC, ExplicitVRLittleEndian)
        got = []
        assoc = ae.associate("127.0.0.1", self.port, ae_title="PRINTSCP",
                             ext_neg=[build_role(SC, scp_role=True)],
                             evt_handlers=[(evt.EVT_C_STORE,
                                            lambda e: (got.append(1), 0)[1])])
        if not assoc.is_established:
            return False
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID, query.SeriesInstanceUID = STUDY, STUDY + ".1"
        query.SOPInstanceUID = uid
        final = None
        for status, _ in assoc.send_c_get(query, GET):
            if status is not None and status.Status not in (0xFF00,):
                final = status.Status
        assoc.release()
        return final == 0 and len(got) == 1

    def print_film(self) -> bool:
        from helpers.print_scu import PrintSCU

        with PrintSCU(self.port, calling=CALLING) as scu:
            scu.film_session()
            fb, boxes, _ = scu.film_box("STANDARD\\1,2")
            rng = np.random.default_rng()
            for pos, uid in enumerate(boxes, start=1):
                st, _ = scu.image(uid, pos, rng.integers(0, 4096, (128, 128)).astype(np.uint16))
                if st.Status != 0:
                    return False
            ok = scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
        if ok:
            with self.lock:
                self.prints += 1
        return ok

    def echo(self) -> bool:
        assoc = self.associate("1.2.840.10008.1.1")
        try:
            return assoc.is_established and assoc.send_c_echo().Status == 0
        finally:
            if assoc.is_established:
                assoc.release()

    def abort(self) -> bool:
        """Half a C-STORE, then A-ABORT: that instance must never be found."""
        from pynetdicom.dsutils import encode

        from printscp.net import pdata

        assoc = self.associate((SC, ExplicitVRLittleEndian))
        if not assoc.is_established:
            return False
        uid = "1.2.826.0.1.3680043.9.7433.78." + str(random.randrange(10**12))
        data = bytes(encode(image(uid, 256), False, True))
        context = assoc.accepted_contexts[0].context_id
        sock = assoc.dul.socket.socket
        stream = b"".join(bytes(b) for b in pdata.message_pdus(
            context, pdata.store_request(1, SC, uid), data, 16384))
        sock.sendall(stream[:len(stream) // 2])
        assoc.abort()
        with self.lock:
            self.aborted.append(uid)
        return True

    #: Operation kinds and their weights.
    KINDS: ClassVar[dict[str, int]] = {"store": 30, "find": 15, "get": 10, "print": 5,
                                       "echo": 25, "abort": 5}

    def client(self, deadline: float, seed: int) -> None:
        rng = random.Random(seed)
        kinds = list(self.KINDS)
        weights = [self.KINDS[k] for k in kinds]
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            try:
                ok = self.find() is not None if kind == "find" else getattr(
                    self, {"print": "print_film"}.get(kind, kind))()
            except Exception as exc:  # counted, the soak goes on
                ok = False
                with self.lock:
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
            with self.lock:
                (self.done if ok else self.failed)[kind] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--workers", type=int, default=0)
    options = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="printscp-soak-"))
    config = tmp / "soak.toml"
    config.write_text(CONFIG)
    data = tmp / "data"
    extra = ["--workers", str(options.workers)] if options.workers else []
    log_path = data.parent / "serve.log"  # the node's log: counted, not printed
    log = log_path.open("w")
    proc = current().serve(["--port", "0", "--bind", "127.0.0.1", "--data-dir", str(data),
                            "--config", str(config), "--no-http", *extra],
                           stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not found:
        proc.kill()
        raise SystemExit(f"printscp serve did not start: {line!r}")
    soak = Soak(int(found.group(1)))
    try:
        soak.echo()
        start = proc_figures(proc.pid)
        sampler = Sampler(proc.pid, max(10.0, options.minutes * 6))  # 10 samples a run
        sampler.start()
        t0 = time.monotonic()
        deadline = t0 + options.minutes * 60
        threads = [threading.Thread(target=soak.client, args=(deadline, i))
                   for i in range(options.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        sampler.stop.set()
        end = proc_figures(proc.pid)
        # every accepted job has its film; every acknowledged instance is found
        films = data / "films"
        wait_end = time.monotonic() + 300
        while len(list(films.glob("*.json"))) < soak.prints and time.monotonic() < wait_end:
            time.sleep(0.5)
        film_count = len(list(films.glob("*.json")))
        found_uids = {str(ds.SOPInstanceUID) for ds in (soak.find("IMAGE") or [])}
        missing = [u for u in soak.stored if u not in found_uids]
        half = [u for u in soak.aborted if u in found_uids]
        settled = proc_figures(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"soak: {elapsed:.0f} s, {options.clients} clients against printscp serve "
          f"(pid {proc.pid})")
    for kind in Soak.KINDS:
        print(f"  {kind:6s} {soak.done[kind]:6d} done {soak.failed[kind]:4d} failed")
    total = sum(soak.done.values())
    print(f"  all    {total:6d} done {sum(soak.failed.values()):4d} failed "
          f"({total / elapsed:.1f} operations/s)")
    for name, figures in (("start", start), ("end", end), ("settled", settled)):
        print(f"  node at {name:7s}: {figures['processes']} processes, RSS "
              f"{figures['rss_mib']} MiB, {figures['threads']} threads, "
              f"{figures['open_files']} open files")
    trend = [(t, f["rss_mib"]) for t, f in sampler.samples]
    print("  RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m}" for t, m in trend))
    print("  open files over time (s: files): " + ", ".join(
        f"{t:.0f}: {f['open_files']}" for t, f in sampler.samples))
    if len(trend) >= 4:
        middle = len(trend) // 2
        (t1, m1), (t2, m2) = trend[middle], trend[-1]
        print(f"  RSS growth in the second half: {m2 - m1:+d} MiB in {t2 - t1:.0f} s "
              f"({(m2 - m1) / max(1.0, t2 - t1) * 60:+.1f} MiB/min; first half "
              f"{(m1 - trend[0][1]) / max(1.0, t1 - trend[0][0]) * 60:+.1f} MiB/min)")
    print(f"  acknowledged instances: {len(soak.stored)}, found by C-FIND: "
          f"{len(soak.stored) - len(missing)}, missing: {len(missing)}")
    print(f"  aborted mid-transfer: {len(soak.aborted)}, found by C-FIND: {len(half)}")
    print(f"  accepted print jobs: {soak.prints}, films: {film_count}")
    for error in soak.errors[:10]:
        print(f"  error: {error}")
    log.close()
    lines = log_path.read_text(errors="replace").splitlines()
    levels = collections.Counter(w for line in lines for w in ("WARNING", "ERROR", "CRITICAL")
                                 if f" {w} " in line)
    tracebacks = sum("Traceback (most recent call last)" in line for line in lines)
    print(f"  node log: {len(lines)} lines, {levels['WARNING']} warnings, "
          f"{levels['ERROR']} errors, {tracebacks} tracebacks")
    for line in [x for x in lines if " ERROR " in x][:5]:
        print(f"    {line[:160]}")
    ok = not missing and not half and film_count >= soak.prints
    print("soak: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
