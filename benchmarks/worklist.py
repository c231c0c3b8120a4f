"""Benchmark: Modality Worklist C-FIND latency with 10,000 scheduled items.

Run:  python benchmarks/worklist.py [--items N] [--runs N] [--dcmtk-runs N]

Populates a fresh store (``WorklistStore.add_many``, one transaction): N items over 20
stations (``ST01``..``ST20``, modality CT or MR) and 100 days from 2026-11-01, 07:00 to
17:00, so a station has N/20 items, a day N/100 and a station's day N/2000.  The SCP runs
in its own process (a pynetdicom AE with the worklist handlers, as the node binds them),
with TCP_NODELAY, so client and server do not share an interpreter.

Queries (each also asks for the usual return keys: patient name and ID, accession, study
UID, requested procedure, and the step's station, date, time, modality, ID, status):

* station — Scheduled Station AE Title ``ST07`` (N/20 matches);
* date range — Scheduled Procedure Step Start Date ``20261110-20261111`` (N/50);
* both — station and date range together, what a modality asks every morning (N/1000);
* today's morning — station, date ``20261110`` and time ``0700-1200`` (combined
  date-time matching).

Latency from a persistent pynetdicom association (median of ``--runs``, default 20) and
from DCMTK ``findscu -W`` (one process per query, median of ``--dcmtk-runs``, default
10), request to final response, every response received.  Also the store's query alone
(SQL + exact matching, no network), median of ``--runs``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from printscp.services.worklist import event_handlers  # noqa: E402
from printscp.worklist.importing import build_item  # noqa: E402
from printscp.worklist.items import WorklistConfig, WorklistStore  # noqa: E402

FINDSCU = "/usr/bin/findscu"
FIRST_DAY = dt.date(2026, 11, 1)
SURNAMES = ("DOE", "ROE", "POE", "LEE", "KIM", "RAY", "FOX", "COX", "DAY", "ASH")

QUERIES: dict[str, dict[str, str]] = {
    "station": {"ScheduledStationAETitle": "ST07"},
    "date range": {"ScheduledProcedureStepStartDate": "20261110-20261111"},
    "both": {"ScheduledStationAETitle": "ST07",
             "ScheduledProcedureStepStartDate": "20261110-20261111"},
    "morning": {"ScheduledStationAETitle": "ST07", "ScheduledProcedureStepStartDate": "20261110",
                "ScheduledProcedureStepStartTime": "0700-1200"},
}
RETURN_TOP = ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
              "RequestedProcedureID", "RequestedProcedureDescription")
RETURN_STEP = ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
               "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID",
               "ScheduledProcedureStepStatus")


def populate(store: WorklistStore, n: int) -> None:
    items = []
    for i in range(n):
        day, slot = divmod(i, n // 100)
        station = slot % 20 + 1
        minutes = 7 * 60 + (slot // 20) * (600 // max(1, n // 2000))
        items.append(build_item({
            "patient_name": f"{SURNAMES[i % 10]}^PATIENT{i}", "patient_id": f"P{i:06d}",
            "accession": f"A{i:07d}", "modality": "CT" if station % 2 else "MR",
            "station_ae": f"ST{station:02d}",
            "start_date": (FIRST_DAY + dt.timedelta(days=day)).strftime("%Y%m%d"),
            "start_time": f"{minutes // 60:02d}{minutes % 60:02d}00",
            "procedure_description": "CT CHEST" if station % 2 else "MR KNEE",
        }))
    store.add_many(items)


def identifier(keys: dict[str, str]) -> Dataset:
    ds = Dataset()
    for keyword in RETURN_TOP:
        setattr(ds, keyword, "")
    step = Dataset()
    for keyword in RETURN_STEP:
        setattr(step, keyword, keys.get(keyword, ""))
    for keyword, value in keys.items():
        setattr(step, keyword, value)
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def _no_delay(event) -> None:
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def serve(db: str, port_queue) -> None:
    """The SCP process: the worklist handlers on a free loopback port."""
    store = WorklistStore(db)
    ae = AE(ae_title="PRINTSCP")
    ae.add_supported_context(ModalityWorklistInformationFind)
    handlers = [*event_handlers(store, WorklistConfig()), (evt.EVT_CONN_OPEN, _no_delay)]
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    port_queue.put(server.server_address[1])
    while True:
        time.sleep(3600)


def pynetdicom_latency(port: int, ident: Dataset, runs: int) -> tuple[float, int]:
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="PRINTSCP",
                         evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)])
    assert assoc.is_established
    times, count = [], 0
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            count = sum(1 for st, _ in assoc.send_c_find(ident, ModalityWorklistInformationFind)
                        if st and st.Status in (0xFF00, 0xFF01))
            times.append(time.perf_counter() - t0)
    finally:
        assoc.release()
    return statistics.median(times) * 1000, count


def findscu_latency(port: int, keys: dict[str, str], runs: int) -> tuple[float, int]:
    args = [FINDSCU, "-W", "-aec", "PRINTSCP"]
    for keyword in RETURN_TOP:
        args += ["-k", keyword]
    for keyword in RETURN_STEP:
        value = keys.get(keyword)
        args += ["-k", f"ScheduledProcedureStepSequence[0].{keyword}"
                 + (f"={value}" if value else "")]
    args += ["127.0.0.1", str(port)]
    env = {**os.environ, "TCP_NODELAY": "1"}
    times, count = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
        times.append(time.perf_counter() - t0)
        count = res.stderr.count("(Pending)")  # findscu logs each pending response
    return statistics.median(times) * 1000, count


def store_latency(store: WorklistStore, ident: Dataset, runs: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = sum(1 for _ in store.query(ident))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dcmtk-runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "index.sqlite")
        store = WorklistStore(db)
        t0 = time.perf_counter()
        populate(store, args.items)
        print(f"populated {store.count()} items in {time.perf_counter() - t0:.1f} s")
        ctx = multiprocessing.get_context("spawn")
        ports = ctx.Queue()
        proc = ctx.Process(target=serve, args=(db, ports), daemon=True)
        proc.start()
        try:
            port = ports.get(timeout=60)
            have_dcmtk = Path(FINDSCU).exists() and shutil.which(FINDSCU)
            print(f"{'query':<12} {'matches':>7} {'store ms':>9} {'pynetdicom ms':>14} "
                  f"{'findscu -W ms':>14}")
            for name, keys in QUERIES.items():
                ident = identifier(keys)
                local, n_local = store_latency(store, ident, args.runs)
                net, n_net = pynetdicom_latency(port, ident, args.runs)
                if have_dcmtk:
                    dcmtk, n_dcmtk = findscu_latency(port, keys, args.dcmtk_runs)
                    assert n_dcmtk == n_net, (name, n_dcmtk, n_net)
                    dcmtk_text = f"{dcmtk:14.1f}"
                else:
                    dcmtk_text = f"{'(no dcmtk)':>14}"
                assert n_local == n_net, (name, n_local, n_net)
                print(f"{name:<12} {n_net:>7} {local:9.1f} {net:14.1f} {dcmtk_text}")
        finally:
            proc.terminate()
            proc.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
