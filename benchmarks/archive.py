"""Benchmark: printscp's archive side by side with Orthanc and DCMTK's dcmqrscp.

Run:  python benchmarks/archive.py [--quick] [--only printscp,orthanc,dcmqrscp] [--runs N]
      [--baseline REV]
      python benchmarks/archive.py --ingest [--rounds N] [--settle S] [--quick]
      [--only printscp,orthanc] [--baseline REV]

Needs Debian's ``dcmtk`` (clients and dcmqrscp, used by absolute path under /usr/bin
because pynetdicom installs Python apps of the same names) and ``orthanc`` (the
``Orthanc`` binary, run by this script with its own generated configuration in a
temporary directory, never the system service); a peer that is not installed is
skipped with a message.  Every server listens on a free loopback port; the peers
and every DCMTK client run with ``TCP_NODELAY=1`` in their environment (DCMTK and
Orthanc only set the socket option when asked; printscp sets it itself), and the
pynetdicom query client sets it on its socket.

Measures, for printscp (``--workers 2``; store also ``--workers 1``), Orthanc and
dcmqrscp, and prints a table with the ratio printscp / peer:

1. Store rate: DCMTK ``storescu`` sending 300 CT images (512x512, 16-bit, Explicit VR
   Little Endian, generated once with pydicom) on one association, and from 4
   storescu processes at once (75 each).  Instances/s (first byte to last
   process exit), median of 5 runs (``--runs``), each against a fresh server and an
   empty data directory; the count stored is checked with a C-FIND afterwards.  The
   servers take turns run by run, and each run's printscp / Orthanc ratio is printed
   too (this shared machine's disk has slow spells that a run of one server alone
   would catch and another's not).
2. C-FIND latency with 50,000 indexed instances (1,000 studies x 2 series x 25
   instances of 8x8 pixels, 500 patients): study level by Patient ID, by wildcard
   Patient Name ``DOE*``, by a Study Date range (one quarter), and image level for
   one series.  From a persistent pynetdicom association (20 repetitions, median
   ms; guarded by printscp's fix for pynetdicom 3.0's requestor races, which made
   it miss a response now and then from a fast server, and which makes its
   reactor event-driven: the same client for every server) and from DCMTK
   ``findscu`` (one process per query, median of 10).  Each
   server's match counts are checked against what it holds.  Orthanc is populated
   over the network (4 storescu processes at once); printscp through its Python API
   (``Archive.receive``, the C-STORE handler's own path, durable) in 2 processes.
   dcmqrscp cannot hold 50,000: its index.dat is capped at 32 MiB (~8 KB a record,
   about 4,000 records; beyond that stores succeed but are not indexed) and 500
   studies, so it gets the first 60 studies (3,000 instances) over one storescu
   association (concurrent stores corrupt its index updates), and its C-FIND
   times are for that much smaller index.  So that the dcmqrscp ratios compare
   like with like, printscp is measured a second time (column ``printscp-3k``)
   holding exactly those 3,000 instances, and the printscp / dcmqrscp ratios use it.
   All servers are populated first and run side by side; each repetition of a query
   goes to every server before the next repetition does (the order rotating).
3. C-GET and C-MOVE rate for a 100-instance study (512x512 16-bit), stored in the
   same populated servers: DCMTK ``getscu`` and ``movescu`` (its own storage SCP on
   ``+P``, registered as a move destination at each server).  Instances/s, median
   of ``--runs``.

``--baseline REV`` (e.g. ``--baseline 0d169aa``) adds commit REV's printscp, checked
out in a temporary git worktree (``benchmarks/baseline.py``), as server
``printscp@<rev>`` (its short hash), in every phase and in the same turns as the
others: ``printscp-w1@<rev>`` in the store phase, ``printscp-3k@<rev>`` when dcmqrscp
runs.  Its server and its bulk load (``Archive.receive``, run for every printscp in
two child interpreters) import REV's package, which is checked: a wrong tree stops
the run.  The clients are the working tree's for all.  Every table then has a column
``<server>/@<rev>``: the working tree's figure over REV's; store and retrieve print
each run's paired ratio too.  ``--only printscp,printscp@<rev>`` (or
``printscp@base``) compares the two alone, without Orthanc and dcmqrscp.

``--quick`` shrinks everything (60 images to store, 1,000 indexed instances, a
20-instance study, fewer repetitions) for a smoke run.  Clients and servers share
the machine's cores.  Targets (archive issue): store rate >= Orthanc's; C-FIND
faster than Orthanc and dcmqrscp on every query; C-GET/C-MOVE >= Orthanc's.

``--ingest`` (issue 18) measures only storing, as a modality meets a node after a
restart, and prints the issue's table.  printscp is ``printscp serve`` with its
defaults (no ``--workers``: one receiving process per core, max 4; the console on, on
``127.0.0.1:0``), Orthanc as above; dcmqrscp is not measured.  Data: 300 CT 512x512
(0.53 MB) and 2,000 CT 64x64 (9.6 kB), 16-bit, Explicit VR Little Endian, generated
once with pydicom.  Rows: large over 1 storescu association and over 4 storescu
processes at once (75 each) after settling; the same 4 x 75 cold; small over 1
association (2,000) and over 4 (500 each) settled, and both cold.  Every run starts a
fresh server on an empty data directory and times its start: seconds from Popen to
the DICOM port accepting a TCP connection ("listening"), and to the first C-ECHO it
answers (DCMTK ``echoscu`` every 20 ms once it listens; an attempt that connects waits
for the answer).  A settled run starts its storescu processes 6 s (``--settle``)
after Popen (later, and flagged, if the first C-ECHO came later); a cold run starts
them the moment the first C-ECHO is answered.  Rate: instances / (first storescu
start to last storescu exit), the count stored checked by a C-FIND afterwards (else
the run fails).  CPU seconds over that interval: the whole machine's busy time
(/proc/stat user+nice+system+irq+softirq+steal), the server's processes' (its
process tree, /proc/<pid>/stat) and the storescu processes'; what is left of the
machine's ("others") is the kernel's own threads (writeback, the journal: a few
tenths of a second for 2,000 small instances on a quiet machine) and whatever else
runs on this shared machine, printed so that a loaded run shows.  Round by round
(``--rounds``, default 3; ``--quick``: 1 round of 60 large and 200 small), each case
goes to every server before the next case, the order rotating from one case and
round to the next; each run's line, each case's per-round printscp / Orthanc ratio,
then a markdown table (median rate per server, ratios, median machine and server CPU
seconds), the ratios round by round, cold / settled per server (the issue's goal:
within 10 %) and the start times (median, min-max).  ``--baseline REV`` adds
``printscp@<rev>`` to every row (ratios to Orthanc and working tree / REV);
``--baseline HEAD --only printscp@base,orthanc`` measures the last commit alone,
without the working tree's uncommitted changes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_ROOT_UID, CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from printscp.net import guard_requestor, reactors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from baseline import (  # noqa: E402
    Tree,
    baseline,
    current,
    ratio_line,
    run_python,
    working_tree,
)

DCMTK = Path("/usr/bin")
ORTHANC_BIN = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
NODELAY_ENV = {**os.environ, "TCP_NODELAY": "1"}
SERVERS = ("printscp", "orthanc", "dcmqrscp")
#: printscp holding only what dcmqrscp can index: compared with dcmqrscp on that index.
SMALL = "printscp-3k"
#: Width of the server names in the progress lines (wider with a --baseline server).
NAME_WIDTH = 12
SURNAMES = ("DOE", "ROE", "POE", "LEE", "KIM", "RAY", "FOX", "COX", "DAY", "ASH")
MOVE_AET = "MOVESCU"
CLIENT_AETS = ("FINDSCU", "GETSCU", "MOVESCU", "STORESCU")
TARGET_STUDY = 7  #: the study whose patient and series are queried
DATE_RANGE = "20210101-20210331"


# -- sizes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    store_images: int = 300
    store_parallel: int = 4
    runs: int = 3
    store_runs: int = 5
    studies: int = 1000
    series_per_study: int = 2
    per_series: int = 25
    retrieve_images: int = 100
    find_repeats: int = 20
    findscu_repeats: int = 10

    @property
    def indexed(self) -> int:
        return self.studies * self.series_per_study * self.per_series


QUICK = Plan(store_images=60, runs=1, store_runs=1, studies=100, per_series=5, retrieve_images=20,
             find_repeats=5, findscu_repeats=3)


# -- data --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyInfo:
    uid: str
    patient_id: str
    patient_name: str
    date: str
    accession: str
    study_id: str


def phantom(size: int, rng: np.random.Generator, z: int) -> np.ndarray:
    """A 12-bit CT-like slice (stored values, intercept -1024): air, body, bone ring, noise."""
    y, x = np.ogrid[:size, :size]
    c = size / 2
    r2 = ((x - c) / (0.42 * size)) ** 2 + ((y - c) / (0.32 * size)) ** 2
    img = np.full((size, size), 24.0)
    img[r2 < 1] = 1064.0
    img[(r2 < 0.85) & (r2 > 0.7)] = 1824.0 + 8 * (z % 10)
    img += rng.normal(0, 12, (size, size))
    return np.clip(img, 0, 4095).astype(np.uint16)


def ct_dataset(study: StudyInfo, series_uid: str, series_number: int, sop_uid: str,
               instance: int, pixels: np.ndarray) -> Dataset:
    """A CT Image with the header a scanner writes (Explicit VR Little Endian)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, kw, study.date)
    ds.StudyTime, ds.SeriesTime = "101500", "101712"
    ds.AcquisitionTime = ds.ContentTime = "101730"
    ds.AccessionNumber = study.accession
    ds.Modality = "CT"
    ds.Manufacturer = "ACME Medical"
    ds.InstitutionName = "General Hospital"
    ds.ReferringPhysicianName = "SMITH^ANNA"
    ds.StationName = "CT01"
    ds.StudyDescription = "CT CHEST WITHOUT CONTRAST"
    ds.SeriesDescription = f"AXIAL {series_number}.25mm"
    ds.ManufacturerModelName = "Scanner 64"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = "19600412"
    ds.PatientSex = "F"
    ds.PatientAge = "061Y"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.25"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.SoftwareVersions = "4.2"
    ds.ReconstructionDiameter = "360"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "160.5"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "570"
    ds.XRayTubeCurrent = "240"
    ds.Exposure = "137"
    ds.FilterType = "BODY FILTER"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = ["-180", "-180", f"{-1.25 * instance:.2f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = study.uid + ".7"
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{-1.25 * instance:.2f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = ["0.703125", "0.703125"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    ds.PixelData = pixels.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


class DataSet:
    """Every file the benchmark sends, written once under ``root``."""

    def __init__(self, root: Path, plan: Plan) -> None:
        self.root = root
        self.plan = plan
        self.uid_root = f"{PYDICOM_ROOT_UID}{random.randrange(10**7, 10**8)}"
        rng = np.random.default_rng(7)
        self.store_study = self._study(4, "PIDSTORE01", "STORE^CT", "20240105")
        self.store_files = self._series(root / "store", self.store_study, 4,
                                        plan.store_images, rng)
        self.retrieve_study = self._study(5, "PIDRETR001", "RETRIEVE^CT", "20240106")
        self.retrieve_files = self._series(root / "retrieve", self.retrieve_study, 5,
                                           plan.retrieve_images, rng)
        self.by_study: list[list[Path]] = []
        self.indexed_dirs = self._indexed(root / "indexed")

    def _study(self, kind: int, pid: str, name: str, date: str) -> StudyInfo:
        return StudyInfo(f"{self.uid_root}.{kind}.1", pid, name, date, f"ACC{kind}", str(kind))

    def _series(self, folder: Path, study: StudyInfo, kind: int, n: int,
                rng: np.random.Generator, size: int = 512) -> list[Path]:
        folder.mkdir(parents=True)
        series_uid = f"{self.uid_root}.{kind}.2"
        paths = []
        for i in range(1, n + 1):
            sop = f"{self.uid_root}.{kind}.3.{i}"
            ds = ct_dataset(study, series_uid, 1, sop, i, phantom(size, rng, i))
            path = folder / f"{sop}.dcm"
            path.write_bytes(encode(ds))
            paths.append(path)
        return paths

    # The indexed instances: templates encoded once by pydicom, then the fields that
    # vary by study replaced in the bytes by values of the same length.
    PH_UID, PH_PID, PH_NAME, PH_DATE = ".99999.", "PID999999", "ZZZ^PAT999999", "19990909"
    PH_ACC, PH_SID = "ACC9999999", "S99999"

    def study_number(self, s: int) -> dict[str, str]:
        """The varying fields of indexed study ``s`` (patient ``s // 2``)."""
        p = s // 2
        day = dt.date(2020, 1, 1) + dt.timedelta(days=(s * 7919) % 1461)
        return {self.PH_UID: f".{10000 + s}.", self.PH_PID: f"PID{p:06d}",
                self.PH_NAME: f"{SURNAMES[p % len(SURNAMES)]}^PAT{p:06d}",
                self.PH_DATE: day.strftime("%Y%m%d"), self.PH_ACC: f"ACC{s:07d}",
                self.PH_SID: f"S{s:05d}"}

    def indexed_uids(self, s: int, series: int = 1) -> tuple[str, str]:
        """(study UID, series UID) of indexed study ``s``."""
        return (f"{self.uid_root}.6.{10000 + s}.0", f"{self.uid_root}.7.{10000 + s}.{series}")

    def _indexed(self, folder: Path, shards: int = 4) -> list[Path]:
        plan = self.plan
        study = StudyInfo(f"{self.uid_root}.6.99999.0", self.PH_PID, self.PH_NAME,
                          self.PH_DATE, self.PH_ACC, self.PH_SID)
        rng = np.random.default_rng(3)
        templates: list[tuple[str, bytes]] = []
        for k in range(1, plan.series_per_study + 1):
            series_uid = f"{self.uid_root}.7.99999.{k}"
            for i in range(1, plan.per_series + 1):
                sop = f"{self.uid_root}.8.99999.{k}.{i}"
                px = (rng.integers(0, 64, (8, 8)) + 1000).astype(np.uint16)
                templates.append((sop, encode(ct_dataset(study, series_uid, k, sop, i, px))))
        dirs = [folder / f"shard{n}" for n in range(shards)]
        for d in dirs:
            d.mkdir(parents=True)
        for s in range(plan.studies):
            values = self.study_number(s)
            target = dirs[s % shards]
            self.by_study.append([])
            for sop, data in templates:
                for old, new in values.items():
                    assert len(old) == len(new), (old, new)
                    data = data.replace(old.encode(), new.encode())
                path = target / (sop.replace(".99999.", values[self.PH_UID]) + ".dcm")
                path.write_bytes(data)
                self.by_study[-1].append(path)
        return dirs


# -- processes and ports ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(cmd: Sequence[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), env=NODELAY_ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)


def timed_parallel(cmds: Sequence[Sequence[str]], timeout: float = 900) -> float:
    """Start all commands at once; seconds until the last one exits (errors raise)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(list(c), env=NODELAY_ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in cmds]
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    elapsed = time.perf_counter() - t0
    for c, p, out in zip(cmds, procs, outs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"{Path(c[0]).name} exited {p.returncode}: {out[-600:]}")
    return elapsed


# -- servers ---------------------------------------------------------------------------
class Server:
    name = ""
    aet = ""
    populate_how = ""
    #: At most this many indexed instances (None: all of them).
    max_instances: int | None = None

    def __init__(self, move_port: int) -> None:
        self.move_port = move_port
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log: Any = None

    @staticmethod
    def available() -> str | None:
        """None if the server can run here, else why not."""
        return None

    def start(self, work: Path) -> None:
        raise NotImplementedError

    def launch(self, work: Path) -> None:
        """Start the server on ``work`` and a free port (``self.port``, chosen before)
        without waiting for anything: the ingest mode times what follows."""
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def populate(self, dirs: Sequence[Path], work: Path) -> float:
        """Load the indexed instances (server already started on ``work``); seconds."""
        files = [[str(p) for p in sorted(d.iterdir())] for d in dirs]
        return timed_parallel([[str(DCMTK / "storescu"), "-aec", self.aet, "127.0.0.1",
                                str(self.port), *f] for f in files])


class PrintSCPServer(Server):
    aet = "PRINTSCP"
    populate_how = "Python API Archive.receive (2 processes)"

    def __init__(self, move_port: int, workers: int | None = 2,
                 max_instances: int | None = None, tree: Tree | None = None) -> None:
        super().__init__(move_port)
        #: ``--workers``; None: not passed, ``printscp serve``'s default (one per core, max 4).
        self.workers = workers
        #: The checkout whose package runs this server (a --baseline one or the working tree).
        self.tree = tree or current()
        self.name = "printscp" if workers in (None, 2) else f"printscp-w{workers}"
        if max_instances is not None:  # the index dcmqrscp can hold, for a like-for-like row
            self.max_instances = max_instances
            self.name = SMALL
        self.name += self.tree.suffix

    def serve_args(self, work: Path) -> list[str]:
        """More ``printscp serve`` arguments (benchmarks/tls.py: a ``--config`` with [tls])."""
        return []

    def known_clients(self) -> list[str]:
        """``--remote`` for each client AE, from loopback: printscp lets only known AEs
        query and retrieve ([access] defaults), as Orthanc is configured here too (its
        DicomModalities, host checked, DicomAlwaysAllowFind/Get/Move off)."""
        return [arg for aet in CLIENT_AETS for arg in (
            "--remote", f"{aet}@127.0.0.1:{self.move_port if aet == MOVE_AET else 104}")]

    def start(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.log = open(work / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = self.tree.serve(
            ["--port", "0", "--bind", "127.0.0.1", "--data-dir", str(work / "data"),
             "--workers", str(self.workers), *self.known_clients(), *self.serve_args(work)],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r":(\d+);", line)
        if not found:
            raise RuntimeError(f"printscp did not start: {line!r}; see {work / 'server.log'}")
        self.port = int(found.group(1))
        wait_port(self.port, self.proc)

    def launch(self, work: Path) -> None:
        """``printscp serve`` with its defaults (``--workers`` only if set; the console
        on, on a free port: :meth:`Tree.serve`) on a port chosen before, its output in
        ``work/server.log``."""
        work.mkdir(parents=True, exist_ok=True)
        self.log = open(work / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.port = free_port()
        workers = [] if self.workers is None else ["--workers", str(self.workers)]
        self.proc = self.tree.serve(
            ["--port", str(self.port), "--bind", "127.0.0.1", "--data-dir", str(work / "data"),
             *workers, *self.known_clients(), *self.serve_args(work)],
            stdout=self.log, stderr=subprocess.STDOUT)

    def populate(self, dirs: Sequence[Path], work: Path) -> float:
        """Two processes running :data:`RECEIVE` with this server's tree's package (its
        own ``Archive``, also for a --baseline tree: checked by ``run_python``)."""
        shards = [sorted(d.iterdir()) for d in dirs]
        halves = [[p for s in shards[i::2] for p in s] for i in range(2)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            bad = sum(pool.map(lambda h: run_python(self.tree, RECEIVE, {
                "data_dir": str(work / "data"), "sop_class": str(CTImageStorage),
                "paths": [str(p) for p in h]}), halves))
        if bad:
            raise RuntimeError(f"{self.name} refused {bad} instances")
        return time.perf_counter() - t0


#: Bulk load through ``Archive.receive`` (the C-STORE handler's own path, durable), run
#: by ``baseline.run_python`` in a fresh interpreter importing the server's tree.
RECEIVE = """
from pathlib import Path
from printscp.archive.archive import Archive

job = _j.load(_s.stdin)
archive = Archive(Path(job["data_dir"]))
bad = 0
for p in job["paths"]:
    path = Path(p)
    outcome = archive.receive(path.read_bytes(), job["sop_class"], path.stem)
    bad += outcome.status != 0
archive.index.close()
print(_j.dumps(bad))
"""


class OrthancServer(Server):
    name = "orthanc"
    aet = "ORTHANC"
    populate_how = "network: 4 storescu processes at once"

    @staticmethod
    def available() -> str | None:
        if not Path(ORTHANC_BIN).exists():
            return "Orthanc not installed (apt-get install -y orthanc)"
        return None

    def extra_config(self, work: Path) -> dict[str, Any]:
        """More orthanc.json keys (benchmarks/tls.py: the DicomTls* ones)."""
        return {}

    def start(self, work: Path) -> None:
        self.launch(work)
        wait_port(self.port, self.proc)
        wait_port(self.http, self.proc)

    def launch(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.port, http = free_port(), free_port()
        modalities = {aet.lower(): [aet, "127.0.0.1", self.move_port if aet == MOVE_AET
                                    else 104] for aet in CLIENT_AETS}
        config = {
            "Name": "bench", "StorageDirectory": str(work / "storage"),
            "IndexDirectory": str(work / "index"), "DicomAet": self.aet,
            "DicomPort": self.port, "HttpPort": http, "DicomModalities": modalities,
            # The clients are modalities, their host checked, and only they may query
            # and retrieve: printscp's "known" AEs ([access] defaults), on both sides.
            "DicomCheckCalledAet": False, "DicomCheckModalityHost": True,
            "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "StorageCompression": False,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
            "SaveJobs": False, **self.extra_config(work),
        }
        (work / "orthanc.json").write_text(json.dumps(config, indent=1))
        self.log = open(work / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([ORTHANC_BIN, str(work / "orthanc.json")],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=NODELAY_ENV)
        self.http = http

    def statistics(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/statistics", timeout=10) as r:
            return json.loads(r.read())


class DcmqrscpServer(Server):
    name = "dcmqrscp"
    aet = "DCMQRSCP"
    populate_how = "network: 1 storescu (index.dat capped at 32 MiB, ~8 KB a record)"
    # Its index.dat holds ~4,000 records ("DB ALERT: attempt to seek beyond 33554432
    # bytes", then stores succeed unindexed) and at most 500 studies, both compiled in.
    max_instances = 3000

    @staticmethod
    def available() -> str | None:
        if not (DCMTK / "dcmqrscp").exists():
            return "dcmqrscp not installed (apt-get install -y dcmtk)"
        return None

    def start(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        area = work / "db"
        area.mkdir(exist_ok=True)
        self.port = free_port()
        (work / "dcmqrscp.cfg").write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
            "HostTable BEGIN\n"
            f"movescu = ({MOVE_AET}, 127.0.0.1, {self.move_port})\n"
            "HostTable END\nVendorTable BEGIN\nVendorTable END\n"
            "AETable BEGIN\n"
            f"{self.aet} {area} RW (100000, 1024mb) ANY\n"
            "AETable END\n")
        self.log = open(work / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(DCMTK / "dcmqrscp"), "-c", str(work / "dcmqrscp.cfg")],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=NODELAY_ENV,
                                     cwd=work)
        wait_port(self.port, self.proc)

    def populate(self, dirs: Sequence[Path], work: Path) -> float:
        # dcmqrscp's forked children corrupt each other's index updates when they store
        # at once (0xC000 "Index database error"), so one association sends them all.
        return timed_parallel([[str(DCMTK / "storescu"), "-aec", self.aet, "127.0.0.1",
                                str(self.port), *(str(f) for d in dirs
                                                  for f in sorted(d.iterdir()))]])


# -- clients ---------------------------------------------------------------------------
def _no_delay(event: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextlib.contextmanager
def find_association(server: Server) -> Iterator[Any]:
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = 300
    assoc = ae.associate("127.0.0.1", server.port, ae_title=server.aet,
                         evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)])
    if not assoc.is_established:
        raise RuntimeError(f"{server.name}: C-FIND association refused")
    # pynetdicom 3.0's requestor loses a response now and then when the answer comes
    # before its reactor has parked (against printscp: 2 of 300 six-match queries came
    # back with five); printscp's guard for its own clients fixes that, for every server.
    # (Its event-driven loops are installed before the first association: see main.)
    guard_requestor(assoc)
    try:
        yield assoc
    finally:
        assoc.release()


def c_find(assoc: Any, keys: dict[str, str]) -> int:
    """Send one query; return the number of matches (failure statuses raise)."""
    ds = Dataset()
    for kw, value in keys.items():
        setattr(ds, kw, value)
    n = 0
    for status, _ in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind):
        if status is None:
            raise RuntimeError("C-FIND: no response (timeout or abort)")
        code = int(status.Status)
        if code in (0xFF00, 0xFF01):
            n += 1
        elif code != 0:
            raise RuntimeError(f"C-FIND status 0x{code:04X} "
                               f"{status.get('ErrorComment', '')}")
    return n


def findscu(server: Server, keys: dict[str, str]) -> tuple[float, int]:
    args = [str(DCMTK / "findscu"), "-v", "-S", "-aet", "FINDSCU", "-aec", server.aet]
    for kw, value in keys.items():
        args += ["-k", f"{kw}={value}" if value else kw]
    t0 = time.perf_counter()
    out = run([*args, "127.0.0.1", str(server.port)], timeout=300)
    elapsed = time.perf_counter() - t0
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"findscu exited {out.returncode}: {text[-500:]}")
    return elapsed, len(re.findall(r"Find Response: \d+ \(Pending", text))


STUDY_KEYS = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "PatientName": "",
              "PatientID": "", "StudyDate": "", "StudyTime": "", "AccessionNumber": "",
              "StudyID": "", "StudyDescription": ""}


def queries(data: DataSet) -> dict[str, dict[str, str]]:
    study_uid, series_uid = data.indexed_uids(TARGET_STUDY, 1)
    pid = f"PID{TARGET_STUDY // 2:06d}"
    return {
        "study by PatientID": {**STUDY_KEYS, "PatientID": pid},
        "study by PatientName DOE*": {**STUDY_KEYS, "PatientName": "DOE*"},
        "study by StudyDate range": {**STUDY_KEYS, "StudyDate": DATE_RANGE},
        "image level, one series": {
            "QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": study_uid,
            "SeriesInstanceUID": series_uid, "SOPInstanceUID": "", "SOPClassUID": "",
            "InstanceNumber": ""},
    }


def expected_matches(data: DataSet, studies: int) -> dict[str, int]:
    """Matches of each query when the first ``studies`` indexed studies are stored."""
    plan = data.plan
    p = TARGET_STUDY // 2
    dates = [data.study_number(i)[data.PH_DATE] for i in range(studies)]
    low, high = DATE_RANGE.split("-")
    return {
        "study by PatientID": sum(1 for i in range(studies) if i // 2 == p),
        "study by PatientName DOE*": sum(1 for i in range(studies)
                                         if SURNAMES[(i // 2) % len(SURNAMES)] == "DOE"),
        "study by StudyDate range": sum(low <= d <= high for d in dates),
        "image level, one series": plan.per_series,
    }


def count_instances(server: Server, study_uid: str) -> int:
    """Instances of the (single series) study ``study_uid`` the server finds."""
    with find_association(server) as assoc:
        return c_find(assoc, {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": study_uid,
                              "SeriesInstanceUID": study_uid[:-1] + "2",
                              "SOPInstanceUID": ""})


# -- measurements ----------------------------------------------------------------------
@dataclass
class Results:
    store: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    find: dict[str, dict[str, float]] = field(default_factory=dict)
    findscu: dict[str, dict[str, float]] = field(default_factory=dict)
    matches: dict[str, dict[str, int]] = field(default_factory=dict)
    retrieve: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    populate: dict[str, str] = field(default_factory=dict)
    studies: dict[str, int] = field(default_factory=dict)  #: indexed studies per server
    problems: list[str] = field(default_factory=list)


def say(text: str) -> None:
    print(text, flush=True)


def available_servers(factories: dict[str, Callable[[], Server]], wanted: Sequence[str]
                      ) -> list[Server]:
    """The ``wanted`` servers that can run here (each one not installed is named)."""
    servers: list[Server] = []
    for name in wanted:
        server = factories[name]()
        why = server.available()
        if why:
            say(f"skipping {name}: {why}")
        else:
            servers.append(server)
    return servers


def store_modes(data: DataSet) -> dict[str, list[list[str]]]:
    """Each store mode's groups of files, one storescu process per group."""
    files = [str(p) for p in data.store_files]
    per = len(files) // data.plan.store_parallel
    return {
        f"1 assoc x {len(files)}": [files],
        f"{data.plan.store_parallel} assoc x {per}": [
            files[i * per:(i + 1) * per] for i in range(data.plan.store_parallel)],
    }


def measure_stores(servers: Sequence[Server], data: DataSet, work: Path, res: Results
                   ) -> None:
    """Every server's store runs, taking turns: run r of each mode goes to every server
    before run r + 1 does (the order rotating), so that a slower spell of this shared
    machine (its disk's fsync latency moved by 2x within minutes) falls on all servers
    alike and each run's ratio compares like with like."""
    for r in range(data.plan.store_runs):
        for mode, groups in store_modes(data).items():
            for server in _turns(servers, r):
                rate = store_run(server, mode, groups, r, data, work, res)
                res.store.setdefault(server.name, {}).setdefault(mode, []).append(rate)


def store_run(server: Server, mode: str, groups: list[list[str]], r: int, data: DataSet,
              work: Path, res: Results) -> float:
    """One store run against a fresh server and data directory: instances/s (NaN if it
    failed or a C-FIND afterwards does not find every instance sent)."""
    folder = work / f"store-{server.name}-{len(groups)}-{r}"
    server.start(folder)
    failed = ""
    try:
        cmds = [[str(DCMTK / "storescu"), "-aec", server.aet, "127.0.0.1",
                 str(server.port), *g] for g in groups]
        try:
            elapsed = timed_parallel(cmds)
        except RuntimeError as exc:
            failed = str(exc).splitlines()[0]
        stored = count_instances(server, data.store_study.uid)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    sent = sum(len(g) for g in groups)
    if failed or stored != sent:
        res.problems.append(f"{server.name} store {mode} run {r + 1}: C-FIND finds "
                            f"{stored} of {sent} instances sent {failed}")
        say(f"  {server.name:{NAME_WIDTH}s} store {mode:14s} run {r + 1}: FAILED ({stored} of "
            f"{sent} stored) {failed}")
        return float("nan")
    say(f"  {server.name:{NAME_WIDTH}s} store {mode:14s} run {r + 1}: {sent / elapsed:7.1f} inst/s")
    return sent / elapsed


def measure_archives(servers: Sequence[Server], data: DataSet, work: Path, res: Results
                     ) -> None:
    """Populate every server and keep them all running, then measure them taking turns:
    each repetition of a query and each retrieve run goes to every server before the
    next one does (the order rotating), so that a slow spell of the machine falls on
    all of them alike.  A server that fails to start or populate is left out."""
    started: list[Server] = []
    try:
        for server in servers:
            try:
                _populate(server, data, work, res)
            except Exception as exc:
                server.stop()
                res.problems.append(f"{server.name}: {exc}")
                say(f"  {server.name}: FAILED: {exc}")
                continue
            started.append(server)
        if started:
            _measure_find(started, data, res)
            _measure_retrieve(started, data, work, res)
    finally:
        for server in started:
            server.stop()
            shutil.rmtree(work / f"archive-{server.name}", ignore_errors=True)


def _turns(servers: Sequence[Server], r: int) -> list[Server]:
    """``servers`` in the order of turn ``r`` (rotated by one each turn)."""
    k = r % len(servers)
    return [*servers[k:], *servers[:k]]


def _populate(server: Server, data: DataSet, work: Path, res: Results) -> None:
    """Start ``server`` holding the indexed instances (all, or as many as it can) and
    the study to retrieve."""
    plan = data.plan
    folder = work / f"archive-{server.name}"
    studies = plan.studies
    dirs = data.indexed_dirs
    if server.max_instances is not None and plan.indexed > server.max_instances:
        studies = max(1, server.max_instances // (plan.indexed // plan.studies))
        dirs = [folder / "subset"]
        dirs[0].mkdir(parents=True)
        for files in data.by_study[:studies]:
            for f in files:
                (dirs[0] / f.name).symlink_to(f)
    res.studies[server.name] = studies
    count = studies * (plan.indexed // plan.studies)
    if isinstance(server, PrintSCPServer):
        # The API writes the data dir before the server starts (no concurrent writer).
        t = server.populate(dirs, folder)
        server.start(folder)
    else:
        server.start(folder)
        t = server.populate(dirs, folder)
    res.populate[server.name] = (f"{server.populate_how}: {count} instances in "
                                 f"{t:.0f} s ({count / t:.0f}/s)")
    say(f"  {server.name:{NAME_WIDTH}s} populated: {res.populate[server.name]}")
    timed_parallel([[str(DCMTK / "storescu"), "-aec", server.aet, "127.0.0.1",
                     str(server.port), *map(str, data.retrieve_files)]])


def _measure_find(servers: Sequence[Server], data: DataSet, res: Results) -> None:
    plan = data.plan
    qs = queries(data)
    with contextlib.ExitStack() as stack:
        assocs = {s.name: stack.enter_context(find_association(s)) for s in servers}
        for label, keys in qs.items():
            times: dict[str, list[float]] = {s.name: [] for s in servers}
            counts: dict[str, set[int]] = {s.name: set() for s in servers}
            for r in range(plan.find_repeats):
                for server in _turns(servers, r):
                    t0 = time.perf_counter()
                    counts[server.name].add(c_find(assocs[server.name], keys))
                    times[server.name].append(time.perf_counter() - t0)
            for server in servers:
                found = counts[server.name]
                ms = statistics.median(times[server.name]) * 1000
                res.find.setdefault(server.name, {})[label] = ms
                res.matches.setdefault(server.name, {})[label] = \
                    found.pop() if len(found) == 1 else -1
                say(f"  {server.name:{NAME_WIDTH}s} C-FIND {label:26s} pynetdicom {ms:8.1f} ms  "
                    f"({res.matches[server.name][label]} matches)")
    for label, keys in qs.items():
        times = {s.name: [] for s in servers}
        for r in range(plan.findscu_repeats):
            for server in _turns(servers, r):
                elapsed, n = findscu(server, keys)
                times[server.name].append(elapsed)
                if n != res.matches[server.name][label]:
                    res.problems.append(f"{server.name} {label}: findscu counted {n} "
                                        f"matches, pynetdicom {res.matches[server.name][label]}")
        for server in servers:
            ms = statistics.median(times[server.name]) * 1000
            res.findscu.setdefault(server.name, {})[label] = ms
            say(f"  {server.name:{NAME_WIDTH}s} C-FIND {label:26s} findscu    {ms:8.1f} ms")


def _measure_retrieve(servers: Sequence[Server], data: DataSet, work: Path, res: Results
                      ) -> None:
    plan = data.plan
    n = len(data.retrieve_files)
    key = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={data.retrieve_study.uid}"]
    out = work / "received"

    def commands(server: Server) -> dict[str, list[str]]:
        return {
            "C-GET (getscu)": [str(DCMTK / "getscu"), "-S", "-aet", "GETSCU", "-aec",
                               server.aet, *key, "-od", str(out), "127.0.0.1",
                               str(server.port)],
            "C-MOVE (movescu)": [str(DCMTK / "movescu"), "-S", "-aet", MOVE_AET, "-aec",
                                 server.aet, "-aem", MOVE_AET, "+P", str(server.move_port),
                                 *key, "-od", str(out), "127.0.0.1", str(server.port)],
        }

    for label in commands(servers[0]):
        for r in range(plan.runs):
            for server in _turns(servers, r):
                rates = res.retrieve.setdefault(server.name, {}).setdefault(label, [])
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                elapsed = timed_parallel([commands(server)[label]])
                got = sum(1 for _ in out.iterdir())
                if got != n:
                    res.problems.append(f"{server.name} {label} run {r + 1}: received {got} "
                                        f"of {n}")
                rates.append(got / elapsed)
                say(f"  {server.name:{NAME_WIDTH}s} {label:16s} run {r + 1}: {got / elapsed:7.1f} "
                    f"inst/s ({got} received)")
    shutil.rmtree(out, ignore_errors=True)


# -- report ----------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    """Median of the runs that did not fail (NaN); NaN if all failed."""
    ok = [v for v in values if v == v]
    return statistics.median(ok) if ok else float("nan")


def cell(value: float | None, fmt: str = "22.1f") -> str:
    if value is None:
        return f"{'-':>22s}"
    return f"{'failed':>22s}" if value != value else format(value, fmt)


def baseline_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """(working tree's server, the same server at the --baseline commit) among ``names``:
    ``printscp`` and ``printscp@<rev>``, ``printscp-w1`` and ``printscp-w1@<rev>``..."""
    return [(n.split("@")[0], n) for n in names if "@" in n and n.split("@")[0] in names]


def table(title: str, rows: dict[str, dict[str, float]], names: list[str], unit: str
          ) -> None:
    """One row per measurement, one column per server, then printscp / peer ratios:
    dcmqrscp against printscp on the same small index when that was measured; then
    each working-tree server / the same at the --baseline commit (``printscp/@<rev>``)."""
    peers = [n for n in names if n in ("orthanc", "dcmqrscp")]
    present = {n for values in rows.values() for n in values}
    ours = {p: SMALL if p == "dcmqrscp" and SMALL in present else "printscp" for p in peers}
    names = [n for n in names if n in present or n in peers]
    pairs = [*((ours[p], p) for p in peers), *baseline_pairs(names)]
    cols = [*names, *(f"{a}/{b}" if "@" not in b else f"{a}/@{b.split('@')[1]}"
                      for a, b in pairs)]
    say(f"\n{title} ({unit})")
    say(f"{'':28s}" + "".join(f"{c:>22s}" for c in cols))
    for label, values in rows.items():
        cells = [cell(values.get(n)) for n in names]
        for a, b in pairs:
            ok = a in values and b in values and values[b] > 0
            cells.append(cell(values[a] / values[b], "22.2f") if ok else cell(None))
        say(f"{label:28s}" + "".join(cells))


def paired_ratios(rates: dict[str, dict[str, list[float]]], ours: str, peer: str) -> None:
    """Each store run's ratio ``ours`` / ``peer``: the runs took turns (measure_stores),
    so a run's two rates met the same state of the machine."""
    if ours not in rates or peer not in rates:
        return
    for mode, values in rates[ours].items():
        if rates[peer].get(mode):
            say(f"  {ratio_line(f'{ours}/{peer} run by run, {mode}', values, rates[peer][mode])}")


def pivot(data: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for server, rows in data.items():
        for label, value in rows.items():
            out.setdefault(label, {})[server] = value
    return out


def report(res: Results, names: list[str], plan: Plan) -> None:
    store = {s: {m: median(v) for m, v in rows.items()} for s, rows in res.store.items()}
    retrieve = {s: {m: median(v) for m, v in rows.items()}
                for s, rows in res.retrieve.items()}
    store_names = list(store)  # the order of the first turn: that of the servers
    table(f"Store rate, {plan.store_images} CT 512x512x16 (median of {plan.store_runs})",
          pivot(store), store_names, "instances/s; ratio > 1: printscp faster")
    paired_ratios(res.store, "printscp", "orthanc")
    for ours, base in baseline_pairs(store_names):
        paired_ratios(res.store, ours, base)
    table(f"C-FIND, {plan.indexed} indexed instances, persistent pynetdicom association "
          f"(median of {plan.find_repeats})", pivot(res.find), names,
          "ms; ratio < 1: printscp faster")
    table(f"C-FIND, one findscu process per query (median of {plan.findscu_repeats})",
          pivot(res.findscu), names, "ms; ratio < 1: printscp faster")
    table(f"Retrieve a {plan.retrieve_images}-instance study 512x512x16 (median of "
          f"{plan.runs})", pivot(retrieve), names, "instances/s; ratio > 1: printscp faster")
    for ours, base in baseline_pairs(names):
        paired_ratios(res.retrieve, ours, base)
    say("\nMatches per query: " + "; ".join(
        f"{label}: " + ", ".join(f"{s} {res.matches[s][label]}" for s in res.matches)
        for label in next(iter(res.matches.values()), {})))
    say("Indexed studies: " + ", ".join(f"{s} {n}" for s, n in res.studies.items())
        + f" (of {plan.studies}; query matches are checked against each server's own set)")
    say("Population: " + "; ".join(f"{s}: {how}" for s, how in res.populate.items()))


def check_matches(res: Results, data: DataSet) -> None:
    for server, rows in res.matches.items():
        expected = expected_matches(data, res.studies[server])
        for label, n in rows.items():
            if n != expected[label]:
                res.problems.append(f"{server} {label}: {n} matches, expected {expected[label]}")


# -- ingest (issue 18): small and large stores into a fresh server, settled and cold ----
@dataclass(frozen=True)
class IngestPlan:
    large: int = 300  #: CT 512x512 16-bit, 0.53 MB each
    small: int = 2000  #: CT 64x64 16-bit, 9.5 kB each
    parallel: int = 4
    rounds: int = 3
    #: A settled run starts this long after the server was started (Popen).
    settle: float = 6.0


QUICK_INGEST = IngestPlan(large=60, small=200, rounds=1)
#: The servers of the ingest mode: dcmqrscp's forked children corrupt each other's
#: index updates when associations store at once.
INGEST_SERVERS = ("printscp", "orthanc")
ECHO_EVERY = 0.02  #: seconds between two C-ECHO attempts while a server starts
LISTEN_EVERY = 0.005  #: seconds between two TCP connection attempts while it starts
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Case:
    """One row of the table: ``kind`` (large or small) instances from ``parallel``
    storescu processes, timed ``plan.settle`` s after the start or (``cold``) from the
    first C-ECHO the server answered."""

    kind: str
    total: int
    parallel: int
    cold: bool

    @property
    def label(self) -> str:
        shape = (f"1 assoc x {self.total}" if self.parallel == 1
                 else f"{self.parallel} x {self.total // self.parallel}")
        return f"{self.kind} {shape}, {'cold' if self.cold else 'settled'}"


def ingest_cases(plan: IngestPlan) -> list[Case]:
    """The issue's five rows, then the two cold rows of small instances its goal
    ("cold within 10 % of settled") needs too."""
    large, small, p = plan.large, plan.small, plan.parallel
    return [Case("large", large, 1, False), Case("large", large, p, False),
            Case("large", large, p, True), Case("small", small, 1, False),
            Case("small", small, p, False), Case("small", small, p, True),
            Case("small", small, 1, True)]


class IngestData(DataSet):
    """The ingest mode's files, written once with pydicom (Explicit VR Little Endian):
    ``plan.large`` CT 512x512 and ``plan.small`` CT 64x64, 16-bit, each kind one series
    of its own study (so that :func:`count_instances` counts it)."""

    def __init__(self, root: Path, plan: IngestPlan) -> None:  # not DataSet's: no super()
        self.root = root
        self.uid_root = f"{PYDICOM_ROOT_UID}{random.randrange(10**7, 10**8)}"
        rng = np.random.default_rng(7)
        self.studies = {"large": self._study(4, "PIDSTORE01", "STORE^CT", "20240105"),
                        "small": self._study(9, "PIDSMALL01", "SMALL^CT", "20240107")}
        self.files = {kind: [str(p) for p in self._series(
            root / kind, self.studies[kind], kind_number, n, rng, size)]
            for kind, kind_number, n, size in (("large", 4, plan.large, 512),
                                               ("small", 9, plan.small, 64))}


def machine_busy() -> float:
    """The whole machine's busy CPU seconds since boot (/proc/stat: user, nice, system,
    irq, softirq and steal; not idle nor iowait)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def tree_cpu(root: int) -> float:
    """CPU seconds of process ``root`` and its live descendants, each with its reaped
    children's (/proc/<pid>/stat utime, stime, cutime, cstime)."""
    parent: dict[int, int] = {}
    used: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(name)
        parent[pid] = int(fields[1])  # field 4 (the text after ")" starts at field 3)
        used[pid] = sum(int(v) for v in fields[11:15])  # fields 14-17
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in used and pid not in tree:
            tree.add(pid)
            todo.extend(child for child, p in parent.items() if p == pid)
    return sum(used[pid] for pid in tree) / CLK_TCK


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (the storescu clients)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class IngestResults:
    #: server -> case label -> one value per round (NaN: the run failed)
    rate: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    machine_cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    server_cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    client_cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: CPU seconds per second of run of everything else on the machine (machine - server
    #: - clients): kernel threads (writeback, journal) and the other users of this
    #: shared machine, for the reader to judge.
    background: dict[str, list[float]] = field(default_factory=dict)
    #: server -> seconds from Popen to the port accepting / to the first C-ECHO answered
    listening: dict[str, list[float]] = field(default_factory=dict)
    echo: dict[str, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, table: dict[str, dict[str, list[float]]], server: str, case: Case,
            value: float) -> None:
        table.setdefault(server, {}).setdefault(case.label, []).append(value)


def start_timed(server: Server, work: Path, timeout: float = 60.0) -> tuple[float, float, float]:
    """Start ``server`` on ``work``: (the perf_counter at Popen, seconds from then to
    its DICOM port accepting a TCP connection, to its first answered C-ECHO).  DCMTK
    ``echoscu`` tries every :data:`ECHO_EVERY` s once the port accepts; an attempt
    that connects waits for the answer (``-ta``/``-td`` 10 s), so the time is when
    the node first answered, as a modality's or a health check's echo sees it."""
    t0 = time.perf_counter()
    server.launch(work)
    proc = server.proc
    assert proc is not None
    end = t0 + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.port)) == 0:
                break
        if time.perf_counter() > end:
            raise RuntimeError(f"{server.name}: nothing listens after {timeout} s")
        time.sleep(LISTEN_EVERY)
    listening = time.perf_counter() - t0
    echo = [str(DCMTK / "echoscu"), "-to", "1", "-ta", "10", "-td", "10", "-aec", server.aet,
            "127.0.0.1", str(server.port)]
    while True:
        if subprocess.run(echo, env=NODELAY_ENV, capture_output=True, timeout=30,
                          check=False).returncode == 0:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode} before C-ECHO")
        if time.perf_counter() > end:
            raise RuntimeError(f"{server.name}: no C-ECHO answered after {timeout} s")
        time.sleep(ECHO_EVERY)
    return t0, listening, time.perf_counter() - t0


def ingest_run(server: Server, case: Case, r: int, data: IngestData, plan: IngestPlan,
               work: Path, res: IngestResults) -> None:
    """One run: a fresh server on an empty data directory, started and timed
    (:func:`start_timed`), then ``case``'s storescu processes from ``plan.settle`` s
    after the start or (cold) at once; the count stored checked with a C-FIND."""
    folder = work / f"ingest-{server.name}-{r}"
    files = data.files[case.kind]
    per = len(files) // case.parallel
    groups = [files[i * per:(i + 1) * per] for i in range(case.parallel)]
    sent = sum(len(g) for g in groups)
    failed, late, stored = "", "", -1
    rate = cpu = own = clients = float("nan")
    try:
        t0, listening, echo = start_timed(server, folder)
        res.listening.setdefault(server.name, []).append(listening)
        res.echo.setdefault(server.name, []).append(echo)
        if not case.cold:
            wait = t0 + plan.settle - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                late = f" (first C-ECHO after {echo:.1f} s: not settled)"
        assert server.proc is not None
        cmds = [[str(DCMTK / "storescu"), "-aec", server.aet, "127.0.0.1", str(server.port),
                 *g] for g in groups]
        s0, c0, m0 = tree_cpu(server.proc.pid), children_cpu(), machine_busy()
        try:
            elapsed = timed_parallel(cmds)
            rate = sent / elapsed
        except RuntimeError as exc:
            failed = str(exc).splitlines()[0]
        m1, c1, s1 = machine_busy(), children_cpu(), tree_cpu(server.proc.pid)
        cpu, own, clients = m1 - m0, s1 - s0, c1 - c0
        if rate == rate:
            res.background.setdefault(server.name, []).append(
                max(0.0, cpu - own - clients) * rate / sent)
        stored = count_instances(server, data.studies[case.kind].uid)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        failed = failed or str(exc).splitlines()[0]
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if failed or stored != sent:
        rate = float("nan")
        res.problems.append(f"{server.name} {case.label} round {r + 1}: C-FIND finds "
                            f"{stored} of {sent} instances sent {failed}")
        say(f"  {server.name:{NAME_WIDTH}s} {case.label:30s} FAILED ({stored} of {sent} "
            f"stored) {failed}")
    else:
        say(f"  {server.name:{NAME_WIDTH}s} {case.label:30s} {rate:7.1f} inst/s  CPU machine "
            f"{cpu:5.2f} s, server {own:5.2f} s, clients {clients:5.2f} s, others "
            f"{max(0.0, cpu - own - clients):5.2f} s; listening "
            f"{listening:.2f} s, C-ECHO {echo:.2f} s{late}")
    for table, value in ((res.rate, rate), (res.machine_cpu, cpu), (res.server_cpu, own),
                         (res.client_cpu, clients)):
        res.add(table, server.name, case, value)


def ingest_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """(numerator, denominator) of the ratio columns: each printscp / Orthanc, then the
    working tree's printscp / the --baseline commit's."""
    printscps = [n for n in names if n.startswith("printscp")]
    peers = [(ours, "orthanc") for ours in printscps if "orthanc" in names]
    return [*peers, *baseline_pairs(names)]


def pair_label(a: str, b: str) -> str:
    return f"{a}/{b}" if "@" not in b or "@" in a else f"{a}/@{b.split('@')[1]}"


def measure_ingest(args: argparse.Namespace, wanted: list[str], base: Tree | None) -> int:
    """The ingest mode (``--ingest``): :func:`ingest_cases` round by round, each case
    going to every server before the next (the order rotating from one case and round
    to the next, :func:`_turns`), then the table."""
    global NAME_WIDTH
    plan = QUICK_INGEST if args.quick else IngestPlan()
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds)
    if args.settle is not None:
        plan = dataclasses.replace(plan, settle=args.settle)
    reactors.install()  # the C-FIND count's client (see measure)
    move_port = free_port()
    factories: dict[str, Callable[[], Server]] = {
        "printscp": lambda: PrintSCPServer(move_port, None),
        "orthanc": lambda: OrthancServer(move_port)}
    if base is not None:
        factories[f"printscp@{base.rev}"] = lambda: PrintSCPServer(move_port, None, tree=base)
    servers = available_servers(factories, wanted)
    names = [s.name for s in servers]
    NAME_WIDTH = max(12, *(len(n) for n in names))
    cases = ingest_cases(plan)
    t_start = time.perf_counter()
    say(f"printscp ingest benchmark{' (--quick)' if args.quick else ''}: {', '.join(names)}; "
        f"{os.cpu_count()} cores; clients and servers on one machine; {plan.rounds} "
        f"round(s); working tree {working_tree()}; started "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.")
    say("A fresh server on an empty data directory for every run: printscp serve with its "
        "defaults (workers: one per core, max 4; the console on 127.0.0.1:0), Orthanc with "
        "the generated configuration. storescu, echoscu and Orthanc run with TCP_NODELAY=1. "
        f"Settled: storescu starts {plan.settle:g} s after the server's start; cold: at "
        "its first C-ECHO answer. CPU: the whole machine's busy seconds (/proc/stat) over "
        "the run; server: the server's processes'; clients: the storescu processes'.")
    with tempfile.TemporaryDirectory(prefix="archive-ingest-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        data = IngestData(work / "dicom", plan)
        sizes = {k: statistics.mean(Path(f).stat().st_size for f in v) / 1000
                 for k, v in data.files.items()}
        say(f"generated {plan.large} CT 512x512 ({sizes['large']:.0f} kB each) and "
            f"{plan.small} CT 64x64 ({sizes['small']:.1f} kB each), 16-bit, Explicit VR "
            f"LE, in {time.perf_counter() - t0:.1f} s")
        res = IngestResults()
        pairs = ingest_pairs(names)
        for r in range(plan.rounds):
            say(f"\n== round {r + 1} of {plan.rounds}")
            for i, case in enumerate(cases):
                for server in _turns(servers, r + i):
                    ingest_run(server, case, r, data, plan, work, res)
                ratios = []
                for a, b in pairs:
                    x, y = res.rate[a][case.label][-1], res.rate[b][case.label][-1]
                    ratios.append(f"{pair_label(a, b)} {x / y:.2f}" if x == x and y == y
                                  else f"{pair_label(a, b)} -")
                if ratios:
                    say(f"  {'':{NAME_WIDTH}s} {case.label:30s} round {r + 1}: "
                        + ", ".join(ratios))
        ingest_report(res, names, cases, plan)
    say(f"\nTotal run time {time.perf_counter() - t_start:.0f} s.")
    if res.problems:
        say("PROBLEMS:\n  " + "\n  ".join(res.problems))
        return 1
    return 0


def ingest_report(res: IngestResults, names: list[str], cases: Sequence[Case],
                  plan: IngestPlan) -> None:
    """The issue's table (markdown): median rate per server, ratios, median machine CPU
    seconds; then the servers' own CPU, each round's ratios, cold / settled, and the
    start times."""
    pairs = ingest_pairs(names)

    def med(table: dict[str, dict[str, list[float]]], server: str, case: Case) -> float:
        return median(table.get(server, {}).get(case.label, []))

    def fmt(value: float, spec: str) -> str:
        return "failed" if value != value else format(value, spec)

    say(f"\nIngest: instances/s, medians of {plan.rounds} round(s); CPU: the whole "
        "machine's busy CPU seconds during the run (server: the server's own processes)")
    head = ["work", *names, *(pair_label(a, b) for a, b in pairs),
            *(f"CPU s {n}" for n in names), *(f"server CPU s {n}" for n in names)]
    say("| " + " | ".join(head) + " |")
    say("|" + "---|" * len(head))
    for case in cases:
        rates = {n: med(res.rate, n, case) for n in names}
        row = [case.label, *(fmt(rates[n], ".0f") for n in names),
               *(fmt(rates[a] / rates[b], ".2f") for a, b in pairs),
               *(fmt(med(res.machine_cpu, n, case), ".2f") for n in names),
               *(fmt(med(res.server_cpu, n, case), ".2f") for n in names)]
        say("| " + " | ".join(row) + " |")
    say("\nRound by round:")
    for case in cases:
        for a, b in pairs:
            say("  " + ratio_line(f"{case.label}, {pair_label(a, b)}",
                                  res.rate[a][case.label], res.rate[b][case.label], "rounds"))
    say("\nCold / settled (median rates; the goal: within 10 %):")
    for case in cases:
        if not case.cold:
            continue
        settled = dataclasses.replace(case, cold=False)
        say(f"  {case.label.rsplit(',', 1)[0]:22s} " + ", ".join(
            f"{n} {fmt(med(res.rate, n, case) / med(res.rate, n, settled), '.2f')}"
            for n in names))
    say("\nStart (seconds from Popen, median [min-max] over every run):")
    for n in names:
        parts = []
        for what, values in (("listening", res.listening.get(n, [])),
                             ("first C-ECHO answered", res.echo.get(n, []))):
            parts.append(f"{what} {median(values):.2f} s [{min(values):.2f}-"
                         f"{max(values):.2f}]" if values else f"{what} -")
        say(f"  {n:{NAME_WIDTH}s} " + ", ".join(parts))
    background = ", ".join(f"{n}'s runs {median(res.background.get(n, [])):.2f} cores"
                           for n in names)
    say("\nOther processes' CPU during the runs (machine - server - clients: kernel "
        f"threads, a few hundredths of a core on a quiet machine, and other users): {background}")

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", help="comma-separated servers (default: all): "
                        f"{', '.join(SERVERS)}, and with --baseline printscp@REV "
                        "(or printscp@base)")
    parser.add_argument("--runs", type=int,
                        help="runs per store and retrieve rate (default 5 and 3)")
    parser.add_argument("--skip", default="", help="comma-separated phases: store,archive")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run commit REV's printscp (a temporary git worktree) as "
                             "server printscp@REV, taking turns with the others")
    ingest = parser.add_argument_group("ingest mode (issue 18)")
    ingest.add_argument("--ingest", action="store_true",
                        help="only the store table: large and small instances into a fresh "
                             "server, settled and cold, interleaved rounds with machine CPU "
                             f"seconds (servers: {', '.join(INGEST_SERVERS)})")
    ingest.add_argument("--rounds", type=int, help="--ingest rounds (default 3; --quick 1)")
    ingest.add_argument("--settle", type=float,
                        help="--ingest: seconds from a server's start to a settled run "
                             "(default 6)")
    args = parser.parse_args(argv)
    if not args.ingest and (args.rounds or args.settle is not None):
        parser.error("--rounds and --settle go with --ingest")
    if args.ingest and (args.runs or args.skip):
        parser.error("--runs and --skip do not go with --ingest (see --rounds)")
    plan = QUICK if args.quick else Plan()
    if args.runs:
        plan = Plan(**{**plan.__dict__, "runs": args.runs, "store_runs": args.runs})
    known = INGEST_SERVERS if args.ingest else SERVERS
    wanted = [n.strip() for n in (args.only or ",".join(known)).split(",") if n.strip()]
    based = [n for n in wanted if n.startswith("printscp@")]
    unknown = set(wanted) - set(known) - set(based)
    if unknown:
        parser.error(f"unknown server(s){' for --ingest' if args.ingest else ''}: "
                     f"{', '.join(sorted(unknown))}")
    if based and not args.baseline:
        parser.error(f"{', '.join(based)}: needs --baseline REV")
    if args.baseline and args.only and not based:
        parser.error("--only lists no printscp@REV (or printscp@base) for --baseline")
    if len(based) > 1:
        parser.error(f"one baseline server at a time: {', '.join(based)}")
    if not (DCMTK / "storescu").exists():
        print("DCMTK clients missing under /usr/bin (apt-get install -y dcmtk)", file=sys.stderr)
        return 2
    with baseline(args.baseline) as base:
        if base is not None:
            name = based[0] if based else f"printscp@{base.rev}"
            if name.split("@", 1)[1] not in (args.baseline, base.rev, "base"):
                parser.error(f"{name}: --baseline is {args.baseline} ({base.rev})")
            at = wanted.index(name) if based else (
                wanted.index("printscp") + 1 if "printscp" in wanted else 0)
            wanted[at:at + bool(based)] = [f"printscp@{base.rev}"]
        if args.ingest:
            return measure_ingest(args, wanted, base)
        return measure(args, plan, wanted, base)


def measure(args: argparse.Namespace, plan: Plan, wanted: list[str], base: Tree | None
            ) -> int:
    """The benchmark proper: ``wanted`` servers (``printscp@<rev>``: ``base``'s)."""
    global NAME_WIDTH
    skip = set(args.skip.split(","))
    # The persistent query client's loops, event-driven for every server alike: an
    # association opened before this keeps pynetdicom's polling one (printscp.net.reactors).
    reactors.install()
    move_port = free_port()
    factories: dict[str, Callable[[], Server]] = {
        "printscp": lambda: PrintSCPServer(move_port, 2), "orthanc": lambda: OrthancServer(
            move_port), "dcmqrscp": lambda: DcmqrscpServer(move_port)}
    if base is not None:
        factories[f"printscp@{base.rev}"] = lambda: PrintSCPServer(move_port, 2, tree=base)
    servers = available_servers(factories, wanted)
    names = [s.name for s in servers]
    NAME_WIDTH = max(12, *(len(n) + len("-w1") for n in names))
    t_start = time.perf_counter()
    say(f"printscp archive benchmark{' (--quick)' if args.quick else ''}: "
        f"{', '.join(names)}; {os.cpu_count()} cores; clients and servers on one machine; "
        f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.")
    say("Orthanc, dcmqrscp and every DCMTK client run with TCP_NODELAY=1; printscp and the "
        "pynetdicom query client set TCP_NODELAY on their sockets.")
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        data = DataSet(work / "dicom", plan)
        say(f"generated {len(data.store_files)} + {len(data.retrieve_files)} CT 512x512 and "
            f"{plan.indexed} 8x8 instances in {time.perf_counter() - t0:.1f} s")
        res = Results()
        if "store" not in skip:
            say("\n== store (the servers take turns, run by run)")
            store_servers: list[Server] = []
            for server in servers:  # each printscp with --workers 2, then with 1
                store_servers.append(server)
                if isinstance(server, PrintSCPServer):
                    store_servers.append(PrintSCPServer(move_port, 1, tree=server.tree))
            measure_stores(store_servers, data, work, res)
        if "archive" not in skip:
            say(f"\n== C-FIND / C-GET / C-MOVE with {plan.indexed} indexed instances")
            if "dcmqrscp" in names:
                for server in [s for s in servers if isinstance(s, PrintSCPServer)]:
                    servers.append(PrintSCPServer(move_port, 2, DcmqrscpServer.max_instances,
                                                  tree=server.tree))
                    names.append(servers[-1].name)
            try:
                measure_archives(servers, data, work, res)
            except Exception as exc:
                res.problems.append(f"archive measurements: {exc}")
                say(f"  FAILED: {exc}")
        check_matches(res, data)
        report(res, names, plan)
    say(f"\nTotal run time {time.perf_counter() - t_start:.0f} s.")
    if res.problems:
        say("PROBLEMS:\n  " + "\n  ".join(res.problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
