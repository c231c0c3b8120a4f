"""Benchmark: HL7 v2 orders into the worklist over MLLP (issue 20 §1).

Run:  python benchmarks/hl7.py [--orders N] [--latency N] [--workers W]

Starts ``printscp serve`` (``[hl7] enabled``, free loopback ports, an empty data
directory, ``--workers`` receiving processes; the MLLP listener runs in the parent) and
measures:

1. Orders applied per second over one MLLP connection with acknowledgements: ``--orders``
   ORM^O01 NW (default 1,000, each a new patient and accession), sent one after the
   other by python-hl7's asyncio client (``hl7.mllp.open_hl7_connection``), each ACK
   awaited before the next order is sent (HL7 original mode); first byte to last ACK.
   Every ACK is checked to be AA, and the worklist's count afterwards.
2. Latency from an order's arrival to the item being visible to ``findscu -W``:
   ``--latency`` orders (default 20), each sent alone on a fresh connection, then
   DCMTK ``findscu -W`` for its accession run at once and repeated until the item is
   in its answer.  Printed: the median time to the ACK, and the median time from the
   send to the end of the first ``findscu`` that returned the item, with the median of
   a ``findscu`` alone (process start, association, query) beside it for scale: the
   difference is what the order itself costs.
   And the same without findscu's process start: a pynetdicom client on one open
   association polls Modality Worklist C-FIND for the accession in a loop while the order
   is sent; the time from the send to the first answer holding the item (median of the
   same count; each poll's own round trip printed beside it).
3. For scale, the MLLP layer alone: the same burst against an in-process
   :class:`~printscp.hl7.mllp.MllpServer` whose handler returns a fixed ACK (client and
   server in one interpreter): what framing, the event loop and the apply thread's
   hand-off cost, the rest of phase 1 being the inbox (parse, apply, fsync).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
# This file is named hl7.py: its folder, first on sys.path, would hide python-hl7.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))


def orm(control: str, accession: str, patient: str) -> bytes:
    obr = [""] * 28
    obr[1:5] = ["1", f"PLC{accession}", f"FIL{accession}", "CTHEAD^CT HEAD^LOCAL"]
    obr[18:21] = [accession, f"RP{accession}", f"SPS{accession}"]
    obr[24] = "CT"
    obr[27] = "^^^20261208110000^^R"
    return ("\r".join([
        f"MSH|^~\\&|RIS|HOSP|PRINTSCP|RAD|20261208100000||ORM^O01|{control}|P|2.3.1",
        f"PID|||{patient}^^^HOSP||DOE^PATIENT {patient}||19700101|F",
        "PV1||O|RAD^^^HOSP||||1234^WELBY^MARCUS",
        f"ORC|NW|PLC{accession}|FIL{accession}||SC||^^^20261208110000^^R",
        "OBR|" + "|".join(obr[1:])]) + "\r").encode()


def start(data: Path, workers: int) -> tuple[subprocess.Popen, int, int]:
    config = data.parent / "printscp.toml"
    config.write_text('[hl7]\nenabled = true\nport = 0\n[hl7.stations]\nCT = "CT01"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--config", str(config), "--port", "0",
         "--bind", HOST, "--data-dir", str(data), "--no-http", "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True)
    line = proc.stdout.readline()
    dicom = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    mllp = re.search(r"HL7 MLLP on 127\.0\.0\.1:(\d+)", line)
    if not (dicom and mllp):
        proc.kill()
        raise SystemExit(f"printscp serve did not start: {line}{proc.stderr.read()}")
    return proc, int(dicom.group(1)), int(mllp.group(1))


async def _burst(port: int, messages: list[bytes]) -> tuple[float, list[bytes]]:
    from hl7.mllp import open_hl7_connection

    reader, writer = await open_hl7_connection(HOST, port)
    acks = []
    started = time.perf_counter()
    for message in messages:
        writer.writeblock(message)
        await writer.drain()
        acks.append(await reader.readblock())
    elapsed = time.perf_counter() - started
    writer.close()
    await writer.wait_closed()
    return elapsed, acks


def findscu(port: int, accession: str) -> int:
    """Items findscu -W returns for ``accession``."""
    findscu = shutil.which("findscu", path="/usr/bin") or "findscu"
    res = subprocess.run([findscu, "-W", "-aet", "CT01", "-aec", "PRINTSCP",
                          "-k", f"AccessionNumber={accession}", "-k", "PatientName",
                          HOST, str(port)], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise SystemExit(f"findscu failed: {res.stderr}")
    return len(re.findall(r"\(0008,0050\) SH \[", res.stdout + res.stderr))


def poll_latency(dicom: int, mllp: int, count: int) -> tuple[list[float], list[float]]:
    """(send -> item returned by a polling C-FIND, one C-FIND's round trip), per order."""
    import threading

    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import ModalityWorklistInformationFind

    from printscp.hl7.mllp import send_messages

    ae = AE(ae_title="CT01")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate(HOST, dicom, ae_title="PRINTSCP")
    if not assoc.is_established:
        raise SystemExit("no worklist association")

    def found(accession: str) -> bool:
        query = Dataset()
        query.AccessionNumber = accession
        query.PatientName = ""
        query.ScheduledProcedureStepSequence = [Dataset()]
        return any(status.Status == 0xFF00 for status, _ in
                   assoc.send_c_find(query, ModalityWorklistInformationFind))

    out, rtts = [], []
    try:
        for i in range(count):
            accession = f"W{i:07d}"
            t = time.perf_counter()
            found(accession)
            rtts.append(time.perf_counter() - t)
            message = orm(f"W{i}", accession, f"R{i:07d}")
            sender = threading.Thread(target=send_messages, args=(HOST, mllp, [message]))
            start = time.perf_counter()
            sender.start()
            while not found(accession):
                pass
            out.append(time.perf_counter() - start)
            sender.join()
    finally:
        assoc.release()
    return out, rtts


def main() -> int:
    from printscp.hl7.mllp import ack_code, send_messages

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="printscp-hl7-bench-") as tmp:
        proc, dicom, mllp = start(Path(tmp) / "data", args.workers)
        try:
            messages = [orm(f"B{i}", f"A{i:07d}", f"P{i:07d}") for i in range(args.orders)]
            elapsed, acks = asyncio.run(_burst(mllp, messages))
            codes = {ack_code(a)[0] for a in acks}
            if codes != {"AA"}:
                raise SystemExit(f"not every order was applied: {codes}")
            rate = args.orders / elapsed
            print(f"orders applied over one MLLP connection: {args.orders} ORM^O01 NW in "
                  f"{elapsed:.2f} s = {rate:.0f} orders/s "
                  f"({1000 * elapsed / args.orders:.2f} ms an order, ACK included)")
            if findscu(dicom, "A0000000") != 1:
                raise SystemExit("the first order is not in the worklist")

            to_ack, to_visible, alone, polls = [], [], [], []
            for i in range(args.latency):
                accession = f"L{i:07d}"
                t0 = time.perf_counter()
                (ack,) = send_messages(HOST, mllp, [orm(f"L{i}", accession, f"Q{i:07d}")])
                t1 = time.perf_counter()
                assert ack_code(ack)[0] == "AA", ack
                tries = 0
                while True:
                    tries += 1
                    found = findscu(dicom, accession)
                    if found:
                        break
                t2 = time.perf_counter()
                to_ack.append(t1 - t0)
                to_visible.append(t2 - t0)
                polls.append(tries)
                t3 = time.perf_counter()
                findscu(dicom, accession)
                alone.append(time.perf_counter() - t3)
            ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
            polled, rtts = poll_latency(dicom, mllp, args.latency)
            print(f"latency, median of {args.latency}: send -> AA {ms(to_ack):.1f} ms; "
                  f"send -> findscu -W returns the item {ms(to_visible):.1f} ms "
                  f"(a findscu -W alone: {ms(alone):.1f} ms; found by the first findscu "
                  f"in {polls.count(1)} of {args.latency})")
            print(f"latency, median of {args.latency}: send -> a C-FIND polling on an open "
                  f"association returns the item {ms(polled):.1f} ms (one C-FIND "
                  f"{ms(rtts):.2f} ms)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    from printscp.hl7.mllp import MllpServer

    fixed = (b"MSH|^~\\&|PRINTSCP|RAD|RIS|HOSP|20261208100001||ACK^O01^ACK|1|P|2.3.1\r"
             b"MSA|AA|1\r")
    with MllpServer(lambda message, peer: fixed, HOST, 0) as server:
        elapsed, _ = asyncio.run(_burst(server.port, messages))
    print(f"MLLP layer alone (fixed ACK, in process): {args.orders / elapsed:.0f} messages/s "
          f"({1e6 * elapsed / args.orders:.0f} us a round trip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
