"""Benchmark: printscp's DICOMweb side by side with Orthanc's DICOMweb plugin.

Run:  flock /tmp/printscp-bench.lock python benchmarks/dicomweb.py [--instances N]
      [--runs R] [--repeats Q]

Needs Debian's ``orthanc`` and ``orthanc-dicomweb`` (the plugin, loaded from
``/usr/share/orthanc/plugins/libOrthancDicomWeb.so`` by a configuration this script
writes; never the system service) and DCMTK's ``storescu``.  Both servers run at once
on free loopback ports, hold the same instances and take turns request by request:

* ``--instances N`` (default 10,000) small CT images (8x8 pixels; N/10 studies of 2
  series x 5 instances, N/20 patients, surnames DOE, ROE...: the generator of
  ``benchmarks/archive.py``), loaded into printscp through ``Archive.receive`` (the
  C-STORE path) before it starts and into Orthanc by 4 ``storescu`` at once; plus a
  100-instance study of 512x512 16-bit images sent to both by ``storescu``.
* QIDO-RS study searches (``GET /dicom-web/studies?...``, ``application/dicom+json``)
  by PatientID, by PatientName ``DOE*`` and by a StudyDate range (one quarter): median
  latency over ``--repeats`` requests on one kept-alive connection; the match counts are
  checked against the data.
* WADO-RS of the 100-instance study (``GET /dicom-web/studies/{uid}``,
  ``multipart/related; type="application/dicom"``): instances/s, median of ``--runs``.
* STOW-RS of 300 512x512 images in one request (``POST /dicom-web/studies``, the body
  streamed): instances/s, median of ``--runs``; each run stores new UIDs.

printscp's console needs a bearer token for STOW-RS (an admin's: ``printscp users``),
sent on every printscp request; Orthanc runs without authentication.  Each row prints
printscp / Orthanc (>1: printscp faster; latencies are inverted for the ratio).
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from archive import (  # noqa: E402
    DATE_RANGE,
    DCMTK,
    SURNAMES,
    TARGET_STUDY,
    DataSet,
    OrthancServer,
    Plan,
    PrintSCPServer,
    Results,
    _populate,
    free_port,
    say,
    wait_port,
)
from baseline import ratio_line, turns  # noqa: E402

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
STOW_IMAGES = 300
RETRIEVE_IMAGES = 100
DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


class DicomWebPrintSCP(PrintSCPServer):
    """``printscp serve`` with its console (and so /dicom-web) on a free port, an admin
    token made before it starts."""

    def start(self, work: Path) -> None:
        from printscp.http.users import UserStore

        data = work / "data"
        data.mkdir(parents=True, exist_ok=True)
        store = UserStore(data)
        if store.get("bench") is None:
            store.add("bench", "admin", secrets.token_urlsafe(16))
        _, self.token = store.new_token("bench", "benchmarks/dicomweb.py")
        work.mkdir(parents=True, exist_ok=True)
        self.log = open(work / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = self.tree.serve(
            ["--port", "0", "--bind", "127.0.0.1", "--data-dir", str(data),
             "--workers", str(self.workers), *self.known_clients(),
             "--http", f"127.0.0.1:{free_port()}"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        port = re.search(r":(\d+);", line)
        console = re.search(r"console at (http://\S+?)(?:[;,\s]|$)", line)
        if not port or not console:
            raise RuntimeError(f"printscp did not start: {line!r}; see {work / 'server.log'}")
        self.port = int(port.group(1))
        wait_port(self.port, self.proc)
        self.url = console.group(1).rstrip("/") + "/dicom-web"
        self.headers = {"Authorization": f"Bearer {self.token}"}


class DicomWebOrthanc(OrthancServer):
    """Orthanc with its DICOMweb plugin at ``/dicom-web/``."""

    @staticmethod
    def available() -> str | None:
        if not PLUGIN.exists():
            return "orthanc-dicomweb not installed (apt-get install -y orthanc-dicomweb)"
        return OrthancServer.available()

    def extra_config(self, work: Path) -> dict[str, Any]:
        return {"Plugins": [str(PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}

    def start(self, work: Path) -> None:
        super().start(work)
        self.url = f"http://127.0.0.1:{self.http}/dicom-web"
        self.headers = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the plugin registers its routes at start
            try:
                if httpx.get(f"{self.url}/studies?limit=1").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("Orthanc's DICOMweb plugin does not answer")


def qido_queries(data: DataSet) -> dict[str, dict[str, str]]:
    pid = f"PID{TARGET_STUDY // 2:06d}"
    return {"QIDO studies by PatientID": {"PatientID": pid},
            "QIDO studies by PatientName DOE*": {"PatientName": "DOE*"},
            "QIDO studies by StudyDate range": {"StudyDate": DATE_RANGE}}


def expected(data: DataSet) -> dict[str, int]:
    studies = data.plan.studies
    dates = [data.study_number(i)[data.PH_DATE] for i in range(studies)]
    low, high = DATE_RANGE.split("-")
    return {"QIDO studies by PatientID": sum(i // 2 == TARGET_STUDY // 2 for i in range(studies)),
            "QIDO studies by PatientName DOE*": sum(
                SURNAMES[(i // 2) % len(SURNAMES)] == "DOE" for i in range(studies)),
            "QIDO studies by StudyDate range": sum(low <= d <= high for d in dates)}


def stow_body(files: list[Path], root: str, run: int, boundary: str) -> Iterator[bytes]:
    """The 300 files as one multipart body, their UIDs made new for run ``run`` (the
    study's kind digit ``.4.`` replaced by one of the same length: lengths unchanged)."""
    old, new = f"{root}.4.".encode(), f"{root}.{'1239'[run % 4]}.".encode()
    for path in files:
        data = path.read_bytes().replace(old, new)
        yield (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode()
        yield data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def measure(servers: list[Any], data: DataSet, runs: int, repeats: int
            ) -> dict[str, dict[str, list[float]]]:
    rows: dict[str, dict[str, list[float]]] = {}
    want = expected(data)
    clients = {s.name: httpx.Client(base_url=s.url, headers=s.headers, timeout=600)
               for s in servers}
    try:
        for label, params in qido_queries(data).items():
            # '*' and '^' unencoded: Orthanc's DICOMweb plugin 1.7 (Debian 12) passes query
            # values to its /tools/find still percent-encoded (DOE%2A matched nothing here)
            query = urllib.parse.urlencode(params, safe="*^")
            for r in range(repeats):
                for s in turns(servers, r):
                    t0 = time.perf_counter()
                    resp = clients[s.name].get(f"/studies?{query}",
                                               headers={"Accept": DICOM_JSON})
                    elapsed = time.perf_counter() - t0
                    if resp.status_code not in (200, 204):
                        rows.setdefault(label, {}).setdefault(s.name, [])
                        say(f"  {s.name}: {label}: HTTP {resp.status_code} {resp.text[:120]}")
                        break
                    found = len(resp.json()) if resp.status_code == 200 else 0
                    if r == 0 and found != want[label]:
                        say(f"  {s.name}: {label}: {found} matches, expected {want[label]}")
                    rows.setdefault(label, {}).setdefault(s.name, []).append(elapsed * 1000)
        label = f"WADO-RS study of {RETRIEVE_IMAGES}"
        uid = data.retrieve_study.uid
        for r in range(runs):
            for s in turns(servers, r):
                t0 = time.perf_counter()
                size, parts = 0, 0
                with clients[s.name].stream("GET", f"/studies/{uid}",
                                            headers={"Accept": MULTIPART_DICOM}) as resp:
                    if resp.status_code != 200:
                        say(f"  {s.name}: {label}: HTTP {resp.status_code}")
                        rows.setdefault(label, {}).setdefault(s.name, [])
                        continue
                    boundary = re.search(r'boundary="?([^";]+)', resp.headers["content-type"])
                    marker, tail = f"--{boundary.group(1) if boundary else ''}".encode(), b""
                    for chunk in resp.iter_raw():
                        size += len(chunk)
                        both = tail + chunk  # a delimiter may straddle two chunks
                        parts += both.count(marker) - tail.count(marker)
                        tail = both[-len(marker):]
                elapsed = time.perf_counter() - t0
                if parts - 1 != RETRIEVE_IMAGES:
                    say(f"  {s.name}: {label}: {parts - 1} parts, expected {RETRIEVE_IMAGES}")
                rows.setdefault(label, {}).setdefault(s.name, []).append(
                    RETRIEVE_IMAGES / elapsed)
                say(f"  {s.name}: {label} run {r + 1}: {RETRIEVE_IMAGES / elapsed:.0f}/s "
                    f"({size / elapsed / 1e6:.0f} MB/s)")
        label = f"STOW-RS of {STOW_IMAGES}"
        for r in range(runs):
            for s in turns(servers, r):
                boundary = secrets.token_hex(16)
                t0 = time.perf_counter()
                resp = clients[s.name].post(
                    "/studies", content=stow_body(data.store_files, data.uid_root, r, boundary),
                    headers={"Content-Type": f"{MULTIPART_DICOM}; boundary={boundary}",
                             "Accept": DICOM_JSON})
                elapsed = time.perf_counter() - t0
                stored = len(resp.json().get("00081199", {}).get("Value", [])) \
                    if resp.status_code in (200, 202) else 0
                if stored != STOW_IMAGES:
                    say(f"  {s.name}: {label}: HTTP {resp.status_code}, {stored} stored "
                        f"{resp.text[:200]}")
                    rows.setdefault(label, {}).setdefault(s.name, [])
                    continue
                rows.setdefault(label, {}).setdefault(s.name, []).append(STOW_IMAGES / elapsed)
                say(f"  {s.name}: {label} run {r + 1}: {STOW_IMAGES / elapsed:.0f}/s")
    finally:
        for c in clients.values():
            c.close()
    return rows


def report(rows: dict[str, dict[str, list[float]]], names: list[str]) -> None:
    pairs: list[str] = []
    say("")
    say(f"{'':34s}" + "".join(f"{n:>16s}" for n in names) + f"{'printscp/orthanc':>18s}")
    for label, by_server in rows.items():
        latency = label.startswith("QIDO")
        values = {n: statistics.median(v) if v else float("nan")
                  for n, v in by_server.items()}
        unit = "ms" if latency else "inst/s"
        cells = "".join(f"{values.get(n, float('nan')):.1f} {unit}".rjust(16) for n in names)
        a, b = values.get("printscp", float("nan")), values.get("orthanc", float("nan"))
        ratio = (b / a if latency else a / b) if a == a and b == b and a and b else float("nan")
        say(f"{label:34s}{cells}{ratio:>18.2f}")
        if not latency and len(names) == 2:  # the runs' own ratios (same turn, paired)
            pairs.append(ratio_line(f"  {label}, run by run", by_server.get(names[0], []),
                                    by_server.get(names[1], [])))
    for line in pairs:
        say(line)
    say("(QIDO: median latency; WADO/STOW: median instances/s; the ratio is printscp's "
        "speed over Orthanc's: > 1 printscp faster)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=10000,
                   help="small instances each server holds (default 10000)")
    p.add_argument("--runs", type=int, default=3, help="WADO-RS and STOW-RS runs")
    p.add_argument("--repeats", type=int, default=20, help="requests per QIDO-RS query")
    args = p.parse_args(argv)
    why = DicomWebOrthanc.available()
    if why:
        say(f"cannot run: {why}")
        return 2
    if not (DCMTK / "storescu").exists():
        say("cannot run: DCMTK's storescu not in /usr/bin (apt-get install -y dcmtk)")
        return 2
    plan = Plan(store_images=STOW_IMAGES, studies=max(20, args.instances // 10),
                series_per_study=2, per_series=5, retrieve_images=RETRIEVE_IMAGES)
    with tempfile.TemporaryDirectory(prefix="printscp-dicomweb-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        data = DataSet(work / "data", plan)
        say(f"generated {plan.indexed} small instances ({plan.studies} studies), "
            f"{RETRIEVE_IMAGES} + {STOW_IMAGES} CT 512x512 in {time.perf_counter() - t0:.0f} s")
        move_port = free_port()
        servers = [DicomWebPrintSCP(move_port), DicomWebOrthanc(move_port)]
        res = Results()
        try:
            for s in servers:
                _populate(s, data, work, res)
            rows = measure(servers, data, args.runs, args.repeats)
        finally:
            for s in servers:
                s.stop()
        say(f"\n{plan.indexed} instances in each server; " + "; ".join(
            f"{k}: {v}" for k, v in res.populate.items()))
        report(rows, [s.name for s in servers])
    return 0


if __name__ == "__main__":
    sys.exit(main())
