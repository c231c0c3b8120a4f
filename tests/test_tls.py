"""DICOM TLS (PS3.15 B.9 BCP 195): the TLS listener, its refusals, and TLS as a client.

Peers: DCMTK's tools with ``+tls`` (echoscu, storescu, findscu, getscu, movescu,
dcmprscu through its configuration) and pynetdicom with ``tls_args``.  Certificates
are made for each test session (:mod:`helpers.tls`).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.archive_data import Study, write_study
from helpers.dcmtk import PrintClient, missing, tool
from helpers.films import ramp_films
from helpers.nodes import printed_jobs
from helpers.tls import Pki, make_pki
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from printscp.core.remote import RemoteAE
from printscp.core.tls import client_context, tls_args
from printscp.jobs.spool import list_jobs
from printscp.net import guard_requestor
from printscp.outputs.print_scu import print_films

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "CT_small.dcm"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_toml(pki: Pki, *, plain: bool = True, required: bool = True, extra: str = "") -> str:
    return f"""[node]
acse_timeout = 3
[access]
query = ["any"]
retrieve = ["any"]
[tls]
enabled = true
port = 0
certificate = "{pki.cert('server')}"
private_key = "{pki.key('server')}"
ca_certificates = "{pki.ca}"
require_client_certificate = {str(required).lower()}
plain = {str(plain).lower()}
{extra}"""


@pytest.fixture
def tls_node(make_node, pki):
    return make_node(tls_toml(pki))


def dcmtk_tls(pki: Pki, name: str = "client") -> list[str]:
    return ["+tls", pki.key(name), pki.cert(name), "+cf", pki.ca]


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def client_tls(pki: Pki, name: str = "client") -> tuple[ssl.SSLContext, str]:
    remote = RemoteAE("PRINTSCP", "127.0.0.1", 104, tls=True, certificate=pki.cert(name),
                      private_key=pki.key(name), ca_certificates=pki.ca)
    return client_context(remote), "127.0.0.1"


def tls_associate(port: int, pki: Pki, *contexts: str, name: str = "client",
                  storage: bool = False, **kwargs):
    ae = AE(ae_title="TLSSCU")
    for context in contexts:
        ae.add_requested_context(context)
    if storage:  # C-GET: the instances come back on this association
        ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="PRINTSCP",
                         tls_args=client_tls(pki, name), **kwargs)
    if assoc.is_established:
        guard_requestor(assoc)
    return assoc


def stored_study(tmp_path: Path) -> tuple[Study, list[Path]]:
    study = Study("TLS1", "TLS^PATIENT", "20240101", "ACC1", images=3)
    return study, write_study(study, tmp_path / "study")


# -- DCMTK peers --------------------------------------------------------------------------
pytestmark = pytest.mark.skipif(missing("echoscu", "storescu", "findscu"),
                                reason="DCMTK tools not installed")


def test_dcmtk_echo_store_find_get_over_tls(tls_node, pki, tmp_path):
    port = str(tls_node.tls_port)
    echo = run([tool("echoscu"), *dcmtk_tls(pki), "-aec", "PRINTSCP", "127.0.0.1", port])
    assert echo.returncode == 0, echo.stderr
    study, files = stored_study(tmp_path)
    store = run([tool("storescu"), *dcmtk_tls(pki), "-aec", "PRINTSCP", "127.0.0.1", port,
                 *map(str, files)])
    assert store.returncode == 0, store.stderr
    # C-FIND on printscp's fast path, over TLS
    find = run([tool("findscu"), *dcmtk_tls(pki), "-S", "-aec", "PRINTSCP", "-k",
                "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.study_uid}",
                "-k", "PatientName", "-k", "NumberOfStudyRelatedInstances",
                "127.0.0.1", port])
    assert find.returncode == 0, find.stderr
    assert "TLS^PATIENT" in find.stderr and "[3 ]" in find.stderr.replace("[3]", "[3 ]")
    # C-GET on printscp's fast path, over TLS (DCMTK 3.6.7's getscu has no TLS options)
    got: list[str] = []

    def on_store(event):
        got.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    assoc = tls_associate(tls_node.tls_port, pki, StudyRootQueryRetrieveInformationModelGet,
                          ext_neg=[build_role(CTImageStorage, scp_role=True)],
                          evt_handlers=[(evt.EVT_C_STORE, on_store)], storage=True)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study.study_uid
    statuses = [st.Status for st, _ in assoc.send_c_get(
        query, StudyRootQueryRetrieveInformationModelGet)]
    assoc.release()
    assert statuses[-1] == 0x0000
    assert sorted(got) == sorted(str(dcmread(p).SOPInstanceUID) for p in files)


@pytest.mark.parametrize(("label", "args"), [
    ("no client certificate", ["+tla"]),
    ("expired certificate", ["+tls", "{expired.key}", "{expired.pem}"]),
    ("untrusted CA", ["+tls", "{rogue.key}", "{rogue.pem}"]),
    ("plain DICOM on the TLS port", []),
])
def test_refused_peers_get_no_association_and_the_node_keeps_serving(
        tls_node, pki, label, args, caplog):
    folder = Path(pki.ca).parent
    args = [a.format(**{}) if "{" not in a else str(folder / a.strip("{}")) for a in args]
    if args and args[0] in ("+tls", "+tla"):
        args += ["+cf", pki.ca]
    start = time.monotonic()
    refused = run([tool("echoscu"), *args, "-aec", "PRINTSCP", "127.0.0.1",
                   str(tls_node.tls_port)])
    assert refused.returncode != 0
    assert "Association Request Failed" in refused.stderr or "Aborted" in refused.stderr
    assert time.monotonic() - start < 3  # refused at once, not after a timeout
    ok = run([tool("echoscu"), *dcmtk_tls(pki), "-aec", "PRINTSCP", "127.0.0.1",
              str(tls_node.tls_port)])
    assert ok.returncode == 0, ok.stderr
    if label != "plain DICOM on the TLS port":
        assert any("TLS handshake" in r.getMessage() and "failed" in r.getMessage()
                   for r in caplog.records)


def test_pynetdicom_client_refused_without_certificate_and_with_untrusted_one(tls_node, pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    ae = AE(ae_title="NOCERT")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", tls_node.tls_port, ae_title="PRINTSCP",
                         tls_args=(context, "127.0.0.1"))
    assert not assoc.is_established
    assoc = tls_associate(tls_node.tls_port, pki, Verification, name="rogue")
    assert not assoc.is_established
    assoc = tls_associate(tls_node.tls_port, pki, Verification)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assert assoc.dul.socket.socket.version() in ("TLSv1.3", "TLSv1.2")
    assoc.release()


def test_tls_13_is_preferred_and_tls_11_refused(tls_node, pki):
    assoc = tls_associate(tls_node.tls_port, pki, Verification)
    assert assoc.dul.socket.socket.version() == "TLSv1.3"
    assoc.release()
    context, host = client_tls(pki)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", tls_node.tls_port), timeout=5) as raw, \
            pytest.raises((ssl.SSLError, OSError)):
        context.wrap_socket(raw, server_hostname=host)


def test_tls_12_offers_only_aead_suites(tls_node, pki):
    context, host = client_tls(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ALL:@SECLEVEL=0")  # offer everything, weak suites included
    with socket.create_connection(("127.0.0.1", tls_node.tls_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        name, version, _ = tls.cipher()
    assert version == "TLSv1.2"
    assert "GCM" in name or "CHACHA20" in name
    assert name.startswith(("ECDHE", "DHE"))


def test_a_stalled_handshake_blocks_no_one_and_is_dropped(tls_node, pki):
    stalled = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", tls_node.tls_port))
        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
        stalled.append(s)
    try:
        start = time.monotonic()
        assoc = tls_associate(tls_node.tls_port, pki, Verification)
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        assert time.monotonic() - start < 2
        # Dropped within the ACSE timeout (3 s in this node's configuration).
        stalled[0].settimeout(10)
        start = time.monotonic()
        assert stalled[0].recv(100) == b""
        assert time.monotonic() - start < 5
    finally:
        for s in stalled:
            s.close()


def test_pynetdicom_store_find_get_and_print_with_events_over_tls(tls_node, pki, tmp_path):
    study, files = stored_study(tmp_path)
    assoc = tls_associate(tls_node.tls_port, pki, CTImageStorage,
                          PatientRootQueryRetrieveInformationModelFind)
    assert assoc.is_established
    for path in files:
        assert assoc.send_c_store(dcmread(path)).Status == 0x0000
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = study.patient_id
    query.PatientName = ""
    answers = [ds for st, ds in assoc.send_c_find(query,
               PatientRootQueryRetrieveInformationModelFind) if st.Status == 0xFF00]
    assoc.release()
    assert [str(a.PatientName) for a in answers] == ["TLS^PATIENT"]
    # Print over TLS: the Print Job's N-EVENT-REPORTs come back over the same TLS link.
    result = print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", tls_node.tls_port),
                         calling_ae="CT1", follow_print_job=30,
                         tls_args=client_tls(pki))
    assert result.films == 1
    assert [state for state, _ in result.print_jobs.values()] == ["DONE"]


def test_c_move_to_a_tls_destination(make_node, pki, tmp_path):
    received: list[str] = []
    dest = AE(ae_title="TLSDEST")
    dest.add_supported_context(CTImageStorage)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.cert("server"), pki.key("server"))
    server_ctx.load_verify_locations(pki.ca)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    def on_store(event):
        received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    scp = dest.start_server(("127.0.0.1", 0), block=False, ssl_context=server_ctx,
                            evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        dest_port = scp.server_address[1]
        node = make_node(tls_toml(pki, extra=f"""[[remote]]
ae_title = "TLSDEST"
host = "127.0.0.1"
port = {dest_port}
tls = true
certificate = "{pki.cert('client')}"
private_key = "{pki.key('client')}"
"""))
        study, files = stored_study(tmp_path)
        store = run([tool("storescu"), *dcmtk_tls(pki), "-aec", "PRINTSCP", "127.0.0.1",
                     str(node.tls_port), *map(str, files)])
        assert store.returncode == 0, store.stderr
        # DCMTK 3.6.7's movescu has no TLS options: pynetdicom asks, over TLS.
        assoc = tls_associate(node.tls_port, pki, StudyRootQueryRetrieveInformationModelMove)
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study.study_uid
        statuses = [st.Status for st, _ in assoc.send_c_move(
            query, "TLSDEST", StudyRootQueryRetrieveInformationModelMove)]
        assoc.release()
        assert statuses[-1] == 0x0000
        assert sorted(received) == sorted(str(dcmread(p).SOPInstanceUID) for p in files)
    finally:
        scp.shutdown()


def test_tls_only_node_has_no_plain_port(make_node, pki):
    node = make_node(tls_toml(pki, plain=False))
    assert node.server is None and node.tls_server is not None
    assoc = tls_associate(node.tls_port, pki, Verification)
    assert assoc.is_established
    assoc.release()


def test_optional_client_certificate(make_node, pki):
    node = make_node(tls_toml(pki, required=False))
    anon = run([tool("echoscu"), "+tla", "+cf", pki.ca, "-aec", "PRINTSCP", "127.0.0.1",
                str(node.tls_port)])
    assert anon.returncode == 0, anon.stderr
    # An offered certificate is still checked: an untrusted one is refused.
    rogue = run([tool("echoscu"), *dcmtk_tls(pki, "rogue"), "-aec", "PRINTSCP",
                 "127.0.0.1", str(node.tls_port)])
    assert rogue.returncode != 0


@pytest.mark.skipif(missing("dcmpsprt", "dcmprscu"), reason="DCMTK print tools missing")
def test_dcmprscu_prints_over_tls(tls_node, pki, tmp_path):
    folder = tmp_path / "dcmtk-tls"
    (folder / "cacerts").mkdir(parents=True)
    for name in ("client.pem", "client.key"):
        (folder / name).write_bytes((Path(pki.ca).parent / name).read_bytes())
    digest = run(["openssl", "x509", "-hash", "-noout", "-in", pki.ca]).stdout.strip()
    (folder / "cacerts" / f"{digest}.0").write_bytes(Path(pki.ca).read_bytes())
    client = PrintClient(tmp_path, tls_node.tls_port, tls=folder)
    client.print([SAMPLE])  # asserts dcmprscu logged no error
    [job] = printed_jobs(tls_node)
    assert job["calling_ae"] == "DCMTK_PRN"


def test_printscp_print_cli_over_tls(tls_node, pki):
    out = run([sys.executable, "-m", "printscp", "print", str(SAMPLE), "--to",
               f"PRINTSCP@127.0.0.1:{tls_node.tls_port}", "--tls", "--tls-ca", pki.ca,
               "--tls-cert", pki.cert("client"), "--tls-key", pki.key("client")])
    assert out.returncode == 0, out.stderr
    assert "printed 1 film(s)" in out.stdout
    bad = run([sys.executable, "-m", "printscp", "print", str(SAMPLE), "--to",
               f"PRINTSCP@127.0.0.1:{tls_node.tls_port}", "--tls", "--tls-ca",
               "/nonexistent.pem"])
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "printscp print: --tls-ca: '/nonexistent.pem': no such file; expected a PEM "
        "bundle of CA certificates"]


def test_serve_with_tls_only_and_a_bad_key(tmp_path, pki):
    config = tmp_path / "tls.toml"
    config.write_text(tls_toml(pki, plain=False))
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--config", str(config), "--no-http",
         "--port", "0", "--bind", "127.0.0.1", "--data-dir", str(tmp_path / "data"),
         "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "with TLS only" in line, line + proc.stderr.read()
        tls_port = int(line.split(" with TLS only")[0].rsplit(":", 1)[1])
        assoc = tls_associate(tls_port, pki, Verification)
        assert assoc.is_established
        assoc.release()
    finally:
        proc.terminate()
        proc.wait(30)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(tls_toml(pki).replace(pki.key("server"), pki.key("client")))
    bad = run([sys.executable, "-m", "printscp", "serve", "--config", str(wrong),
               "--no-http", "--port", "0", "--data-dir", str(tmp_path / "d2")])
    assert bad.returncode == 2
    message = bad.stderr.strip().splitlines()[-1]  # after the access warnings
    assert message.startswith("printscp: tls.certificate: ")
    assert "matching private key" in message


def test_storage_commitment_report_over_tls(make_node, pki, tmp_path):
    """The N-EVENT-REPORT on a new association goes with TLS to a TLS requester."""
    from pynetdicom.sop_class import StorageCommitmentPushModel

    reports: list[int] = []
    got = threading.Event()
    scu = AE(ae_title="COMMITSCU")
    scu.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.cert("server"), pki.key("server"))
    server_ctx.load_verify_locations(pki.ca)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    def on_report(event):
        reports.append(int(event.event_type))
        got.set()
        return 0x0000, None

    scp = scu.start_server(("127.0.0.1", 0), block=False, ssl_context=server_ctx,
                           evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    try:
        node = make_node(tls_toml(pki, extra=f"""[[remote]]
ae_title = "COMMITSCU"
host = "127.0.0.1"
port = {scp.server_address[1]}
tls = true
"""))
        _study, files = stored_study(tmp_path)
        ds = dcmread(files[0])
        assoc = tls_associate(node.tls_port, pki, CTImageStorage)
        assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()
        ae = AE(ae_title="COMMITSCU")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", node.tls_port, ae_title="PRINTSCP",
                             tls_args=client_tls(pki),
                             ext_neg=[build_role(StorageCommitmentPushModel, scp_role=True)])
        assert assoc.is_established
        info = Dataset()
        info.TransactionUID = "1.2.3.4.5"
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        info.ReferencedSOPSequence = [item]
        status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel,
                                        "1.2.840.10008.1.20.1.1")
        assert status.Status == 0x0000
        assoc.release()  # the report then comes on a new association, with TLS
        assert got.wait(20)
        assert reports == [1]
    finally:
        scp.shutdown()


def test_tls_args_are_none_without_tls():
    assert tls_args(RemoteAE("X", "127.0.0.1", 104)) is None


def test_a_connection_closed_before_its_first_byte_is_no_tls_failure(tls_node, pki, caplog):
    """Health probes and port scans connect and close: no failed handshake is logged
    (nor audited) for them; a client that sends garbage is."""
    with socket.create_connection(("127.0.0.1", tls_node.tls_port)):
        pass
    with socket.create_connection(("127.0.0.1", tls_node.tls_port)) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.settimeout(5)
        while s.recv(100):  # a TLS alert, perhaps; then the close
            pass
    time.sleep(0.5)
    failures = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(failures) == 1, failures
    assoc = tls_associate(tls_node.tls_port, pki, Verification)
    assert assoc.is_established
    assoc.release()


def test_forwarding_to_an_upstream_printer_over_tls(make_node, pki, tmp_path):
    """A [[printer.targets]] of type dicom whose destination's AE title is a [[remote]]
    with tls = true forwards over TLS (here to a second printscp, TLS only)."""
    (tmp_path / "up").mkdir()
    (tmp_path / "front").mkdir()
    upstream = make_node(tls_toml(pki, plain=False), folder=tmp_path / "up",
                         ae_title="FILMUP")
    front = make_node(f"""[[remote]]
ae_title = "FILMUP"
host = "127.0.0.1"
port = {upstream.tls_port}
tls = true
ca_certificates = "{pki.ca}"
certificate = "{pki.cert('client')}"
private_key = "{pki.key('client')}"
[[printer.targets]]
type = "dicom"
destination = "FILMUP@127.0.0.1:{upstream.tls_port}"
""", folder=tmp_path / "front")
    print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", front.port), calling_ae="CT1")
    assert front.spool.wait_idle(60)
    [job] = list_jobs(front.config.data_path)
    assert job["status"] == "DONE", job
    [forwarded] = [d for d in job["deliveries"] if d["kind"] == "dicom"]
    assert forwarded["state"] == "done", forwarded
    [upstream_job] = printed_jobs(upstream)
    assert upstream_job["calling_ae"] == "PRINTSCP"

