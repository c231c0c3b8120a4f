"""Benchmark: time to commit 1,000 stored instances (Storage Commitment Push Model).

Run:  python benchmarks/commitment.py [--instances 1000] [--size 512] [--repeat 3]

A node runs in this process on loopback; the instances (CT, SIZE x SIZE 16-bit) are
stored over C-STORE first (not timed here; the store rate is benchmarks/archive.py's).
Timed: from sending the N-ACTION with every reference to receiving the N-EVENT-REPORT on
the same association, which includes re-reading each file and checking its SHA-256.
Prints the median of REPEAT requests and the per-instance cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from helpers.archive_data import Study, instance
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    from pynetdicom import AE, evt

    from printscp.app.node import Node
    from printscp.config import load_config
    from printscp.net import guard_requestor
    from printscp.services.commitment import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE

    with tempfile.TemporaryDirectory() as tmp:
        node = Node(load_config(None, port=0, bind="127.0.0.1", data_dir=tmp)).start()
        try:
            study = Study("PB", "BENCH^COMMIT", "20261126", "C1", images=args.instances,
                          size=args.size)
            arrived = threading.Event()

            def on_report(event):
                arrived.set()
                return 0x0000, None

            ae = AE(ae_title="MODALITY")
            ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
            ae.add_requested_context(STORAGE_COMMITMENT)
            ae.dimse_timeout = 120
            assoc = ae.associate("127.0.0.1", node.port, ae_title="PRINTSCP",
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
            guard_requestor(assoc)
            refs = []
            t0 = time.perf_counter()
            for n in range(1, args.instances + 1):
                ds = instance(study, 0, n)
                assert assoc.send_c_store(ds).Status == 0
                ref = Dataset()
                ref.ReferencedSOPClassUID = ds.SOPClassUID
                ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
                refs.append(ref)
            stored = time.perf_counter() - t0
            times = []
            for _ in range(args.repeat):
                request = Dataset()
                request.TransactionUID = generate_uid()
                request.ReferencedSOPSequence = refs
                arrived.clear()
                t0 = time.perf_counter()
                status, _ = assoc.send_n_action(request, 1, STORAGE_COMMITMENT,
                                                STORAGE_COMMITMENT_INSTANCE)
                assert status.Status == 0
                assert arrived.wait(300)
                times.append(time.perf_counter() - t0)
            assoc.release()
        finally:
            node.stop()
    median = statistics.median(times)
    mb = args.instances * args.size * args.size * 2 / 1e6
    print(f"stored {args.instances} instances ({mb:.0f} MB) in {stored:.1f} s (setup)")
    print(f"commit {args.instances} instances, N-ACTION -> N-EVENT-REPORT: median "
          f"{median:.2f} s (min {min(times):.2f}, n={len(times)}); "
          f"{median / args.instances * 1000:.2f} ms per instance, checksums re-read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
