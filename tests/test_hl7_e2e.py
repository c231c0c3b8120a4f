"""HL7 orders end to end: a real ``printscp serve`` with ``[hl7] enabled``, orders sent
over MLLP (``printscp hl7 send`` in a second process and python-hl7's client), DCMTK
``findscu -W`` as the modality's worklist query, MPPS over pynetdicom completing a step,
an ORM cancel removing another, and SIGTERM stopping everything.

The orders are shaped as RISes send them (IHE RAD-4 ORM^O01 v2.3.1): PV1 with a
referring physician, ORC-7 / OBR-27 quantity/timing, OBR-18/19/20 accession, requested
procedure and step ids, OBR-24 modality, a Z-segment, the station from
``[hl7.stations]``.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.mpps import completion, create_ds, series_item
from helpers.net import HOST, port_open, wait_until
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from printscp.hl7.mllp import ack_code, send_messages

pytestmark = [pytest.mark.slow, pytest.mark.dcmtk("findscu")]


def orm(control: str, order_control: str, accession: str, *, patient: str = "PA1",
        name: str = "DOE^JANE", modality: str = "CT", start: str = "20261208110000",
        code: str = "CTHEAD^CT HEAD^LOCAL") -> bytes:
    """An ORM^O01 (v2.3.1) as a RIS sends it, one order of one requested procedure."""
    obr = [""] * 28
    obr[1:5] = ["1", f"PLC-{accession}", f"FIL-{accession}", code]
    obr[18:21] = [accession, f"RP-{accession}", f"SPS-{accession}"]
    obr[24] = modality
    obr[27] = f"^^^{start}^^R"
    segments = [
        f"MSH|^~\\&|RIS|HOSP|PRINTSCP|RAD|20261208100000||ORM^O01|{control}|P|2.3.1",
        f"PID|||{patient}^^^HOSP||{name}||19700101|F",
        "PV1||O|RAD^^^HOSP||||1234^WELBY^MARCUS",
        f"ORC|{order_control}|PLC-{accession}|FIL-{accession}||SC||^^^{start}^^R",
        "OBR|" + "|".join(obr[1:]),
        "ZDS|",  # a Z-segment without a value: ignored
    ]
    return ("\r".join(segments) + "\r").encode()


def serve(tmp_path: Path, workers: str = "2") -> tuple[subprocess.Popen, int, int]:
    """printscp serve with [hl7] on a free port: (process, DICOM port, MLLP port)."""
    config = tmp_path / "printscp.toml"
    config.write_text('[hl7]\nenabled = true\nport = 0\n[hl7.stations]\nCT = "CT01"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--config", str(config), "--port", "0",
         "--bind", HOST, "--data-dir", str(tmp_path / "data"), "--no-http",
         "--workers", workers],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline()
    dicom = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    mllp = re.search(r"HL7 MLLP on 127\.0\.0\.1:(\d+)", line)
    if not (dicom and mllp):
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, int(dicom.group(1)), int(mllp.group(1))


def findscu(port: int, out: Path, *keys: str) -> list[Dataset]:
    """DCMTK findscu -W (as a modality asks); the responses."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    args = [tool("findscu"), "-W", "-aet", "CT01", "-aec", "PRINTSCP", "-X", "-od", str(out)]
    for key in ("AccessionNumber", "PatientName", "PatientID", "StudyInstanceUID",
                "RequestedProcedureID", "ScheduledProcedureStepSequence[0].Modality",
                "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
                "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
                "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
                *keys):
        args += ["-k", key]
    res = subprocess.run([*args, HOST, str(port)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def by_accession(rsps: list[Dataset]) -> dict[str, Dataset]:
    return {str(r.AccessionNumber): r for r in rsps}


def hl7_send(path: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "printscp", "hl7", "send", str(path),
                           "--to", f"{HOST}:{port}"], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_orders_reach_findscu_mpps_completes_cancel_removes(tmp_path: Path, workers: str
                                                             ) -> None:
    """With one worker the listener runs in the node's process, with two in their
    parent: the worklist both C-FIND and the inbox use is the data directory's."""
    proc, dicom, mllp = serve(tmp_path, workers)
    try:
        # Two new orders from a second process, over one connection.
        orders = tmp_path / "orders.hl7"
        orders.write_bytes(orm("M1", "NW", "ACC-A").replace(b"\r", b"\n")
                           + orm("M2", "NW", "ACC-B", patient="PB2", name="ROE^RICHARD",
                                 start="20261208113000").replace(b"\r", b"\n"))
        done = hl7_send(orders, mllp)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines() == ["1 M1: MSA AA", "2 M2: MSA AA"]

        items = by_accession(findscu(dicom, tmp_path / "rsp1"))
        assert set(items) == {"ACC-A", "ACC-B"}
        a = items["ACC-A"]
        assert (str(a.PatientName), a.PatientID, a.RequestedProcedureID) == \
            ("DOE^JANE", "PA1", "RP-ACC-A")
        step = a.ScheduledProcedureStepSequence[0]
        assert (step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepID,
                step.ScheduledProcedureStepStartDate) == ("CT", "CT01", "SPS-ACC-A",
                                                          "20261208")

        # The same order again (same control id) is applied once, still acknowledged AA.
        (again,) = send_messages(HOST, mllp, [orm("M1", "NW", "ACC-A")], timeout=30)
        assert ack_code(again)[0] == "AA"

        # The modality performs ACC-A: MPPS IN PROGRESS then COMPLETED.
        uid = generate_uid()
        create = create_ds(study_uid=str(a.StudyInstanceUID), accession="ACC-A",
                           PerformedStationAETitle="CT01")
        link = create.ScheduledStepAttributesSequence[0]
        link.RequestedProcedureID = "RP-ACC-A"
        link.ScheduledProcedureStepID = "SPS-ACC-A"
        create.PatientName, create.PatientID = "DOE^JANE", "PA1"
        assoc = associate(dicom, ModalityPerformedProcedureStep, calling="CT01")
        assert assoc.is_established
        try:
            status, _ = assoc.send_n_create(create, ModalityPerformedProcedureStep, uid)
            assert status.Status == 0x0000
            final = completion([series_item(generate_uid(), [generate_uid()])])
            status, _ = assoc.send_n_set(final, ModalityPerformedProcedureStep, uid)
            assert status.Status == 0x0000
        finally:
            assoc.release()
        # completed steps are hidden from the worklist ([worklist] completed = "hide")
        assert set(by_accession(findscu(dicom, tmp_path / "rsp2"))) == {"ACC-B"}

        # The RIS cancels ACC-B, still scheduled: it leaves the worklist.
        (ack,) = send_messages(HOST, mllp, [orm("M3", "CA", "ACC-B", patient="PB2",
                                                 name="ROE^RICHARD")], timeout=30)
        assert ack_code(ack)[0] == "AA", ack
        assert findscu(dicom, tmp_path / "rsp3") == []

        # A cancel of the completed ACC-A is refused (the modality did the work): AE.
        (ack,) = send_messages(HOST, mllp, [orm("M4", "CA", "ACC-A")], timeout=30)
        assert ack_code(ack)[0] in ("AE", "AR")

        log = subprocess.run([sys.executable, "-m", "printscp", "hl7", "log", "--data-dir",
                              str(tmp_path / "data"), "--json"], capture_output=True,
                             text=True, timeout=60)
        assert log.returncode == 0, log.stderr
        entries = json.loads(log.stdout)  # newest first
        assert [(e["control_id"], e["status"]) for e in entries] == [
            ("M4", "AE"), ("M3", "AA"), ("M1", "DUPLICATE"), ("M2", "AA"), ("M1", "AA")]
        table = subprocess.run([sys.executable, "-m", "printscp", "hl7", "log",
                                "--data-dir", str(tmp_path / "data"), "--status", "error"],
                               capture_output=True, text=True, timeout=60).stdout.splitlines()
        assert table[0].split()[:3] == ["ID", "RECEIVED", "PEER"] and len(table) == 2
        # audited in the listener's process too (the workers' parent, without console)
        assert '"110109"' in (tmp_path / "data" / "audit" / "audit.jsonl").read_text()
        assert " M4 " in table[1] and " AE " in table[1]

        # printscp hl7 replay: the NW of ACC-B applied again brings its item back.
        m2 = next(e["id"] for e in entries if e["control_id"] == "M2")
        # (with the node's configuration: its [hl7.stations] give CT its station)
        replay = subprocess.run([sys.executable, "-m", "printscp", "hl7", "replay", str(m2),
                                 "--data-dir", str(tmp_path / "data"), "--config",
                                 str(tmp_path / "printscp.toml")],
                                capture_output=True, text=True, timeout=60)
        assert (replay.returncode, replay.stdout.strip()) == (0, f"{m2}: AA"), replay.stderr
        assert set(by_accession(findscu(dicom, tmp_path / "rsp4"))) == {"ACC-B"}
        # A connection left open (the RIS keeps one) does not hold the stop up.
        idle = socket.create_connection((HOST, mllp), timeout=30)
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 20
    with idle:
        assert idle.recv(1) == b""  # closed by the node
    assert not port_open(mllp) and not port_open(dicom)


def test_one_worker_hl7_port_in_use_refuses_to_start(tmp_path: Path) -> None:
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        config = tmp_path / "printscp.toml"
        config.write_text(f"[hl7]\nenabled = true\nport = {port}\n")
        done = subprocess.run(
            [sys.executable, "-m", "printscp", "serve", "--config", str(config), "--port",
             "0", "--bind", HOST, "--data-dir", str(tmp_path / "data"), "--no-http",
             "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"HL7 cannot listen on {HOST}:{port}" in done.stderr


def test_mllp_inside_tls_with_the_node_certificate(tmp_path: Path) -> None:
    """``[hl7] tls = true``: the node's [tls] certificate, its client-certificate rule."""
    from helpers.tls import make_pki

    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "printscp.toml"
    config.write_text(
        f'[tls]\nenabled = true\nport = 0\ncertificate = "{pki.cert("server")}"\n'
        f'private_key = "{pki.key("server")}"\nca_certificates = "{pki.ca}"\n'
        '[hl7]\nenabled = true\nport = 0\ntls = true\n[hl7.stations]\nCT = "CT01"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--config", str(config), "--port", "0",
         "--bind", HOST, "--data-dir", str(tmp_path / "data"), "--no-http", "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"HL7 MLLP with TLS on 127\.0\.0\.1:(\d+)", line)
        assert found, line + proc.stderr.read()
        port = found.group(1)
        orders = tmp_path / "orders.hl7"
        orders.write_bytes(orm("T1", "NW", "ACC-T"))
        base = [sys.executable, "-m", "printscp", "hl7", "send", str(orders), "--to",
                f"{HOST}:{port}", "--timeout", "10", "--tls", "--ca", pki.ca]
        sent = subprocess.run([*base, "--certificate", pki.cert("client"), "--private-key",
                               pki.key("client")], capture_output=True, text=True, timeout=60)
        assert (sent.returncode, sent.stdout.strip()) == (0, "1 T1: MSA AA"), sent.stderr
        # without a client certificate the handshake fails: unreachable, exit 2
        refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2, refused.stdout
        trail = tmp_path / "data" / "audit" / "audit.jsonl"
        wait_until(lambda: "HL7 MLLP TLS handshake failed" in trail.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
