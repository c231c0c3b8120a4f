"""``[access]`` per service: who may use which service, as a peer sees it on the wire.

One node (module scope) gives each service group its own rule, each of a different kind
of entry (an AE title, AE@IP, "known", AE@host name, a CIDR network, an IP address);
peers are pynetdicom associations (from other loopback addresses where the rule is a
network) and DCMTK's echoscu, storescu, findscu -S/-W, getscu and movescu.

A refused service's presentation contexts are rejected at negotiation (result 0x01,
user-rejection: DCMTK's tools report no acceptable presentation context); where one
context serves two groups the request is answered 0x0124 Refused: Not authorized; a
C-MOVE to an AE the retrieve rule would not admit is 0xA801.  Each refusal is a log
line naming the rule and a Security Alert in the audit trail, and the node serves on.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from helpers.archive_data import Study, write_study
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.nodes import make_node
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role
from pynetdicom.sop_class import (
    BasicGrayscalePrintManagementMeta,
    CTImageStorage,
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from printscp.config import load_config
from printscp.core.access import AccessEntry
from printscp.net import guard_requestor
from printscp.services import access
from printscp.services.access import AccessPolicy, exposure_warnings, groups_of

pytestmark = pytest.mark.slow

CONFIG = """
[access]
echo = ["OKECHO"]
store = ["OKSTORE@127.0.0.1"]
query = ["known"]
retrieve = ["known"]
print = ["OKPRINT@localhost"]
worklist = ["127.0.0.8/29"]
mpps = ["127.0.0.2"]
commitment = ["OKCOMMIT"]
events = ["OKEVENTS"]

[[remote]]
ae_title = "OKQUERY"
host = "127.0.0.1"
port = 11113

[[remote]]
ae_title = "OKRETRIEVE"
host = "localhost"
port = 11113

[[remote]]
ae_title = "FARAWAY"
host = "192.0.2.1"
port = 11113
"""

#: group -> (a context of it, an AE title and a source address its rule admits)
GROUPS = {
    "echo": (Verification, "OKECHO", "127.0.0.1"),
    "store": (CTImageStorage, "OKSTORE", "127.0.0.1"),
    "query": (StudyRootQueryRetrieveInformationModelFind, "OKQUERY", "127.0.0.1"),
    "retrieve": (StudyRootQueryRetrieveInformationModelGet, "OKRETRIEVE", "127.0.0.1"),
    "print": (BasicGrayscalePrintManagementMeta, "OKPRINT", "127.0.0.1"),
    "worklist": (ModalityWorklistInformationFind, "ANYONE", "127.0.0.9"),
    "mpps": (ModalityPerformedProcedureStep, "ANYONE", "127.0.0.2"),
    "commitment": (StorageCommitmentPushModel, "OKCOMMIT", "127.0.0.1"),
    "events": (StorageCommitmentPushModel, "OKEVENTS", "127.0.0.1"),
}
STUDY = Study("ACC1", "DOE^JANE", "20260101", "ACCESS1", modality="CT", series=1, images=2)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The node of :data:`CONFIG` holding one study, and its data folder."""
    tmp = tmp_path_factory.mktemp("access")
    node = make_node(tmp, CONFIG)
    files = write_study(STUDY, tmp / "study")
    store = associate(node.port, CTImageStorage, calling="OKSTORE")
    assert [int(store.send_c_store(pydicom.dcmread(f)).Status) for f in files] == [0, 0]
    store.release()
    yield node, tmp
    node.stop()


def propose(port: int, context: str, calling: str, source: str = "127.0.0.1",
            **kwargs) -> object:
    """An association proposing ``context`` from ``calling`` at ``source``."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(context)
    for role in kwargs.pop("roles", ()):
        ae.add_requested_context(role)
    assoc = ae.associate("127.0.0.1", port, ae_title="PRINTSCP",
                         bind_address=(source, 0), **kwargs)
    if assoc.is_established:
        guard_requestor(assoc)
    return assoc


def results(assoc) -> dict[str, int]:
    """Each proposed abstract syntax's presentation context result."""
    out = {str(cx.abstract_syntax): cx.result for cx in assoc.rejected_contexts}
    out.update({str(cx.abstract_syntax): 0 for cx in assoc.accepted_contexts})
    return out


def audit_lines(folder: Path) -> list[dict]:
    lines = []
    for path in sorted((folder / "data" / "audit").glob("*.jsonl")):
        lines += [json.loads(t) for t in path.read_text().splitlines() if t.strip()]
    return lines


# -- negotiation, per service group ----------------------------------------------------

@pytest.mark.parametrize("group", list(GROUPS))
def test_a_refused_peer_sees_the_services_contexts_rejected_by_the_user(served, group,
                                                                       caplog):
    node, _ = served
    context = GROUPS[group][0]
    with caplog.at_level(logging.WARNING, logger="printscp.access"):
        assoc = propose(node.port, context, "STRANGER")
        assert not assoc.is_established  # nothing accepted: pynetdicom aborts at once
    assert results(assoc) == {context: 0x01}  # user-rejection (PS3.8 Table 9-18)
    assert f'access.{group}: calling AE "STRANGER" from 127.0.0.1' in caplog.text


@pytest.mark.parametrize("group", list(GROUPS))
def test_an_allowed_peer_has_the_services_contexts_accepted(served, group):
    node, _ = served
    context, calling, source = GROUPS[group]
    assoc = propose(node.port, context, calling, source)
    try:
        assert assoc.is_established
        assert results(assoc) == {context: 0x00}
    finally:
        assoc.release()


def test_only_the_refused_services_are_rejected_on_a_mixed_association(served, caplog):
    node, _ = served
    ae = AE(ae_title="OKECHO")
    for context in (Verification, StudyRootQueryRetrieveInformationModelFind,
                    BasicGrayscalePrintManagementMeta):
        ae.add_requested_context(context)
    with caplog.at_level(logging.WARNING, logger="printscp.access"):
        assoc = ae.associate("127.0.0.1", node.port, ae_title="PRINTSCP")
    try:
        assert results(assoc) == {Verification: 0, BasicGrayscalePrintManagementMeta: 1,
                                  StudyRootQueryRetrieveInformationModelFind: 1}
        assert int(assoc.send_c_echo().Status) == 0
    finally:
        assoc.release()
    assert 'access.query: calling AE "OKECHO" from 127.0.0.1 is not "known"' in caplog.text
    assert 'access.print: calling AE "OKECHO" from 127.0.0.1 is not "OKPRINT@localhost"' \
        in caplog.text


def test_a_known_ae_queries_and_a_known_ae_from_another_host_is_refused(served, caplog):
    node, _ = served
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.AccessionNumber = ""
    known = propose(node.port, StudyRootQueryRetrieveInformationModelFind, "OKQUERY")
    try:
        found = [(int(st.Status), str(ds.AccessionNumber) if ds else None)
                 for st, ds in known.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
    finally:
        known.release()
    assert found == [(0xFF00, "ACCESS1"), (0, None)]
    with caplog.at_level(logging.WARNING, logger="printscp.access"):
        far = propose(node.port, StudyRootQueryRetrieveInformationModelFind, "FARAWAY")
    assert results(far) == {StudyRootQueryRetrieveInformationModelFind: 0x01}
    assert 'access.query: calling AE "FARAWAY" from 127.0.0.1 is not "known"' in caplog.text


def test_a_known_ae_whose_host_is_a_name_retrieves(served, tmp_path):
    """OKRETRIEVE's AE table host is "localhost": resolved, and it matches 127.0.0.1."""
    node, _ = served
    received = []
    ae = AE(ae_title="OKRETRIEVE")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    from pynetdicom import evt

    def on_store(event):
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    assoc = ae.associate("127.0.0.1", node.port, ae_title="PRINTSCP",
                         ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    guard_requestor(assoc)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = pydicom.dcmread(
        write_study(STUDY, tmp_path / "again")[0]).StudyInstanceUID
    try:
        statuses = [int(st.Status) for st, _ in
                    assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    assert statuses[-1] == 0 and len(received) == 2


# -- per request: the contexts two services share --------------------------------------

def test_a_peer_that_may_retrieve_but_not_store_is_refused_its_c_store(served, tmp_path):
    """The storage contexts serve C-GET's sub-operations too: accepted for OKRETRIEVE,
    whose C-STORE is then refused 0x0124 and not stored."""
    node, _ = served
    other = Study("ACC2", "ROE^RICHARD", "20260202", "ACCESS2", modality="CT", series=1,
                  images=1)
    ds = pydicom.dcmread(write_study(other, tmp_path / "s")[0])
    assoc = associate(node.port, CTImageStorage, calling="OKRETRIEVE")
    try:
        rsp = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert int(rsp.Status) == 0x0124
    assert "access.store" in str(rsp.get("ErrorComment", ""))
    assert not list((node.config.data_path / "archive").rglob(f"{ds.SOPInstanceUID}*"))


def commitment_request() -> Dataset:
    request = Dataset()
    request.TransactionUID = generate_uid()
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = generate_uid()
    request.ReferencedSOPSequence = Sequence([item])
    return request


@pytest.mark.parametrize(("calling", "expected"), [("OKCOMMIT", 0x0000),
                                                  ("OKEVENTS", 0x0124)])
def test_storage_commitment_requests_follow_the_commitment_rule(served, calling, expected):
    node, _ = served
    assoc = associate(node.port, StorageCommitmentPushModel, calling=calling)
    try:
        status, _ = assoc.send_n_action(commitment_request(), 1, StorageCommitmentPushModel,
                                        "1.2.840.10008.1.20.1.1")
    finally:
        assoc.release()
    assert int(status.Status) == expected


class Peer:
    """What the guards read of an association (weak-referenceable, as one is)."""

    requestor = SimpleNamespace(ae_title="OKCOMMIT", address="127.0.0.1")


def test_an_event_report_from_a_peer_outside_the_events_rule_is_refused(caplog):
    """N-EVENT-REPORT (no "not authorized" in PS3.7 10.1.1.1.8): Processing failure."""
    seen = []
    guarded = access.guard_commitment(lambda event: seen.append(event) or (0, None),
                                      "events", access.PROCESSING_FAILURE,
                                      "N-EVENT-REPORT")
    assoc = Peer()
    policy = AccessPolicy(("PRINTSCP",), rules={"events": ("OKEVENTS",)})
    access.remember(assoc, policy.grants("OKCOMMIT", "127.0.0.1"))
    event = SimpleNamespace(assoc=assoc, request=SimpleNamespace(
        AffectedSOPClassUID=StorageCommitmentPushModel))
    with caplog.at_level(logging.WARNING, logger="printscp.access"):
        status, _ = guarded(event)
    assert int(status.Status) == 0x0110 and not seen
    assert 'access.events: calling AE "OKCOMMIT" from 127.0.0.1 is not "OKEVENTS"' \
        in caplog.text
    access.remember(assoc, policy.grants("OKEVENTS", "127.0.0.1"))
    assert guarded(event) == (0, None) and seen == [event]


def test_a_move_goes_only_to_an_ae_the_retrieve_rule_admits(make_node, tmp_path, caplog):
    """retrieve = MOVER from loopback: MOVER may move to itself, not to ELSEWHERE (in
    the AE table, but not allowed to retrieve): 0xA801, as for an unknown AE."""
    node = make_node(
        '[access]\nretrieve = ["MOVER@127.0.0.1"]\n'
        '[[remote]]\nae_title = "MOVER"\nhost = "127.0.0.1"\nport = 11113\n'
        '[[remote]]\nae_title = "ELSEWHERE"\nhost = "127.0.0.1"\nport = 11114\n')
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = generate_uid()  # nothing matches: no sub-association
    finals = {}
    with caplog.at_level(logging.WARNING, logger="printscp.access"):
        for destination in ("MOVER", "ELSEWHERE"):
            assoc = associate(node.port, StudyRootQueryRetrieveInformationModelMove,
                              calling="MOVER")
            try:
                finals[destination] = [int(st.Status) for st, _ in assoc.send_c_move(
                    query, destination, StudyRootQueryRetrieveInformationModelMove)][-1]
            finally:
                assoc.release()
    assert finals == {"MOVER": 0x0000, "ELSEWHERE": 0xA801}
    assert 'access.retrieve: C-MOVE destination "ELSEWHERE" (127.0.0.1) is not allowed' \
        in caplog.text


# -- DCMTK's tools ---------------------------------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*args], capture_output=True, text=True, timeout=60)


def no_context(res: subprocess.CompletedProcess) -> bool:
    """DCMTK's words for an association with no presentation context accepted."""
    text = (res.stdout + res.stderr).lower()
    return res.returncode != 0 and ("no acceptable presentation context" in text
                                    or "no presentation context" in text)


@pytest.mark.dcmtk("echoscu")
def test_echoscu(served):
    node, _ = served
    port = str(node.port)
    refused = run(tool("echoscu"), "-aet", "STRANGER", "-aec", "PRINTSCP", "127.0.0.1", port)
    assert no_context(refused), refused.stderr
    ok = run(tool("echoscu"), "-aet", "OKECHO", "-aec", "PRINTSCP", "127.0.0.1", port)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.dcmtk("findscu")
def test_findscu_patient_and_study_root_and_worklist(served, tmp_path):
    node, _ = served
    port = str(node.port)
    base = [tool("findscu"), "-aec", "PRINTSCP"]
    refused = run(*base, "-S", "-aet", "STRANGER", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", "AccessionNumber", "127.0.0.1", port)
    assert no_context(refused), refused.stderr
    patient_root = run(*base, "-P", "-aet", "STRANGER", "-k", "QueryRetrieveLevel=PATIENT",
                       "-k", "PatientID", "127.0.0.1", port)
    assert no_context(patient_root), patient_root.stderr
    far = run(*base, "-S", "-aet", "FARAWAY", "-k", "QueryRetrieveLevel=STUDY",
              "127.0.0.1", port)
    assert no_context(far), far.stderr
    ok = run(*base, "-S", "-aet", "OKQUERY", "-X", "-od", str(tmp_path), "-k",
             "QueryRetrieveLevel=STUDY", "-k", "AccessionNumber", "127.0.0.1", port)
    assert ok.returncode == 0, ok.stderr
    found = [pydicom.dcmread(p).AccessionNumber for p in tmp_path.glob("rsp*.dcm")]
    assert found == ["ACCESS1"]
    # worklist = 127.0.0.8/29: findscu connects from 127.0.0.1
    worklist = run(*base, "-W", "-aet", "OKQUERY", "-k", "ScheduledProcedureStepSequence",
                   "127.0.0.1", port)
    assert no_context(worklist), worklist.stderr


@pytest.mark.dcmtk("getscu", "movescu")
def test_getscu_and_movescu(served, tmp_path):
    node, _ = served
    port = str(node.port)
    study = pydicom.dcmread(write_study(STUDY, tmp_path / "s")[0]).StudyInstanceUID
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"]
    refused = run(tool("getscu"), "-S", "-aet", "STRANGER", "-aec", "PRINTSCP", *keys,
                  "-od", str(tmp_path), "127.0.0.1", port)
    assert no_context(refused), refused.stderr + refused.stdout
    out = tmp_path / "got"
    out.mkdir()
    ok = run(tool("getscu"), "-S", "-aet", "OKRETRIEVE", "-aec", "PRINTSCP", *keys,
             "-od", str(out), "127.0.0.1", port)
    assert ok.returncode == 0, ok.stderr
    assert len(list(out.iterdir())) == 2
    moved = run(tool("movescu"), "-S", "-aet", "STRANGER", "-aec", "PRINTSCP", "-aem",
                "OKQUERY", *keys, "127.0.0.1", port)
    assert no_context(moved), moved.stderr


@pytest.mark.dcmtk("storescu")
def test_storescu(served, tmp_path):
    node, _ = served
    port = str(node.port)
    other = Study("ACC3", "POE^EDGAR", "20260303", "ACCESS3", modality="CT", series=1,
                  images=1)
    path = write_study(other, tmp_path / "s")[0]
    refused = run(tool("storescu"), "-aet", "STRANGER", "-aec", "PRINTSCP", "127.0.0.1",
                  port, str(path))
    assert refused.returncode != 0
    assert "presentation context" in (refused.stdout + refused.stderr).lower()
    not_authorized = run(tool("storescu"), "-v", "-aet", "OKRETRIEVE", "-aec", "PRINTSCP",
                         "127.0.0.1", port, str(path))
    # DCMTK 3.6.7 has no name for it: "Received Store Response (Unknown Status: 0x124)"
    assert "status: 0x124" in (not_authorized.stdout + not_authorized.stderr).lower()
    ok = run(tool("storescu"), "-aet", "OKSTORE", "-aec", "PRINTSCP", "127.0.0.1", port,
             str(path))
    assert ok.returncode == 0, ok.stderr


# -- the log, the audit trail, and the node serving on -----------------------------------

def test_refusals_are_security_alerts_in_the_audit_trail(make_node, tmp_path):
    """The trail is the process's (the node started last): a node of its own here."""
    node = make_node(CONFIG)
    propose(node.port, StudyRootQueryRetrieveInformationModelFind, "AUDITED")
    deadline = time.monotonic() + 5
    alerts: list[dict] = []
    while not alerts and time.monotonic() < deadline:
        alerts = [line for line in audit_lines(tmp_path)
                  if line.get("rule") == "access.query" and "AUDITED" in json.dumps(line)]
        time.sleep(0.05)
    assert alerts, audit_lines(tmp_path)[-3:]
    alert = alerts[0]
    assert alert["EventID"]["code"] == "110113"  # Security Alert
    assert alert["EventTypeCode"]["code"] == "110132"  # Use of Restricted Function
    assert alert["EventOutcomeIndicator"] == 4  # minor failure: refused
    assert alert["EventOutcomeDescription"] == \
        'access.query: calling AE "AUDITED" from 127.0.0.1 is not "known"'


def test_the_node_serves_on_after_refusals(served):
    node, _ = served
    for _ in range(20):
        propose(node.port, StudyRootQueryRetrieveInformationModelFind, "STRANGER")
    assoc = associate(node.port, Verification, calling="OKECHO")
    try:
        assert int(assoc.send_c_echo().Status) == 0
    finally:
        assoc.release()
    deadline = time.monotonic() + 5
    while node.ae.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.ae.active_associations == []


def test_printscp_serve_warns_when_anyone_beyond_loopback_may_query(tmp_path):
    """[node] bind on every interface, query open to "any": one warning line (stderr)."""
    config = tmp_path / "open.toml"
    config.write_text('[access]\nquery = ["any"]\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--config", str(config), "--bind",
         "0.0.0.0", "--port", "0", "--no-http", "--workers", "1", "--data-dir",
         str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert "listening" in proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    warnings = [line for line in err.splitlines() if "warning: access." in line]
    assert warnings == [
        'printscp serve: warning: access.query = ["any"] lets any AE that reaches 0.0.0.0 '
        'port 0 query the archive; list the AEs that need it, or "known" ([[remote]])']


# -- the rules themselves (no network) ---------------------------------------------------

def policy(rules: dict[str, tuple[str, ...]], known=(), names=None) -> AccessPolicy:
    names = names or {}
    asked: list[str] = []

    def resolver(host: str) -> frozenset:
        asked.append(host)
        return access.resolve(names.get(host, host))

    made = AccessPolicy(("PRINTSCP",), rules=rules, known=known, resolver=resolver)
    object.__setattr__(made, "asked", asked)  # what the resolver was asked
    return made


@pytest.mark.parametrize(("entry", "calling", "host", "allowed"), [
    ("any", "X", "10.1.2.3", True),
    ("known", "PACS", "10.1.2.3", True),
    ("known", "PACS", "10.1.2.4", False),  # a known AE from another host
    ("known", "OTHER", "10.1.2.3", False),
    ("known", "PACS", "::ffff:10.1.2.3", True),  # IPv4-mapped peer address
    ("PACS", "PACS", "192.168.0.9", True),  # an AE title alone: any host
    ("PACS", "PAC", "10.1.2.3", False),
    ("pacs", "PACS", "10.1.2.3", False),  # AE titles are case-sensitive
    ("PACS@10.1.2.3", "PACS", "10.1.2.3", True),
    ("PACS@10.1.2.3", "PACS", "10.1.2.30", False),
    ("PACS@pacs.example", "PACS", "10.1.2.3", True),  # a host name, resolved
    ("PACS@pacs.example", "PACS", "10.9.9.9", False),
    ("@10.1.2.3", "ANY", "10.1.2.3", True),
    ("@pacs.example", "ANY", "10.1.2.4", False),
    ("10.1.2.3", "ANY", "10.1.2.3", True),
    ("10.1.0.0/16", "ANY", "10.1.200.7", True),
    ("10.1.0.0/16", "ANY", "10.2.0.1", False),
    ("fd00::/8", "ANY", "fd00::5", True),
    ("fd00::/8", "ANY", "10.1.2.3", False),
])
def test_each_kind_of_entry(entry, calling, host, allowed):
    rules = policy({"query": (entry,)}, known=(("PACS", "10.1.2.3"),),
                   names={"pacs.example": "10.1.2.3"})
    assert rules.allows("query", calling, host) is allowed
    assert rules.grants(calling, host).allows("query") is allowed


def test_a_host_name_is_resolved_once():
    rules = policy({"query": ("known",), "retrieve": ("known",)},
                   known=(("PACS", "pacs.example"),), names={"pacs.example": "10.1.2.3"})
    for _ in range(5):
        assert rules.grants("PACS", "10.1.2.3").allows("retrieve")
    assert rules.asked == ["pacs.example"]


def test_a_name_that_does_not_resolve_matches_nobody():
    rules = AccessPolicy(("PRINTSCP",), rules={"query": ("PACS@nowhere.invalid",)},
                         resolver=lambda host: frozenset())
    assert not rules.allows("query", "PACS", "10.1.2.3")


def test_the_refusal_line_names_the_rule():
    rules = policy({"query": ("known", "10.0.0.0/8"), "retrieve": ()})
    grants = rules.grants("X", "192.168.1.5")
    assert grants.refusal("query") == ('access.query: calling AE "X" from 192.168.1.5 '
                                       'matches none of "known", "10.0.0.0/8"')
    assert grants.refusal("retrieve") == ('access.retrieve: calling AE "X" from '
                                          '192.168.1.5 is refused (access.retrieve = [] '
                                          'refuses everyone)')


def test_the_defaults_let_anyone_send_and_only_known_aes_read_back(tmp_path):
    config = load_config(None, data_dir=str(tmp_path))
    rules = AccessPolicy.from_config(config)
    grants = rules.grants("MODALITY", "10.1.2.3")
    assert grants.allowed == {"echo", "store", "print", "worklist", "mpps", "commitment",
                              "events"}


@pytest.mark.parametrize(("uid", "groups"), [
    (Verification, ("echo",)),
    (CTImageStorage, ("store", "retrieve")),
    (StudyRootQueryRetrieveInformationModelFind, ("query",)),
    ("1.2.840.10008.5.1.4.1.2.1.1", ("query",)),  # Patient Root FIND
    (StudyRootQueryRetrieveInformationModelGet, ("retrieve",)),
    (StudyRootQueryRetrieveInformationModelMove, ("retrieve",)),
    (BasicGrayscalePrintManagementMeta, ("print",)),
    ("1.2.840.10008.5.1.1.18", ("print",)),  # Basic Color Print Management Meta
    ("1.2.840.10008.5.1.1.23", ("print",)),  # Presentation LUT
    ("1.2.840.10008.5.1.1.15", ("print",)),  # Basic Annotation Box
    ("1.2.840.10008.5.1.1.14", ("print",)),  # Print Job
    ("1.2.840.10008.5.1.1.16.376", ("print",)),  # Printer Configuration Retrieval
    (ModalityWorklistInformationFind, ("worklist",)),
    (ModalityPerformedProcedureStep, ("mpps",)),
    (StorageCommitmentPushModel, ("commitment", "events")),
    ("1.2.3.4", ()),
])
def test_each_sop_class_belongs_to_its_service_groups(uid, groups):
    assert groups_of(uid) == groups


@pytest.mark.parametrize(("bind", "query", "retrieve", "expected"), [
    ("0.0.0.0", ("any",), ("known",), ["query"]),
    ("0.0.0.0", ("known",), ("any", "PACS"), ["retrieve"]),
    ("10.1.2.3", ("any",), ("any",), ["query", "retrieve"]),
    ("127.0.0.1", ("any",), ("any",), []),  # loopback only
    ("0.0.0.0", ("known",), ("known",), []),  # the defaults
])
def test_exposure_warnings(tmp_path, bind, query, retrieve, expected):
    path = tmp_path / "c.toml"
    path.write_text(f"[access]\nquery = {json.dumps(list(query))}\n"
                    f"retrieve = {json.dumps(list(retrieve))}\n")
    config = load_config(path, bind=bind, data_dir=str(tmp_path))
    lines = exposure_warnings(config)
    assert [line.split("access.")[1].split(" ")[0] for line in lines] == expected


def test_a_move_destination_must_be_admitted_by_the_retrieve_rule():
    rules = policy({"retrieve": ("VIEWER", "10.5.0.0/16", "PACS@10.1.2.3")})
    assert rules.destination_allowed("VIEWER", "192.168.0.1")
    assert rules.destination_allowed("WS1", "10.5.3.3")
    assert rules.destination_allowed("PACS", "10.1.2.3")
    assert not rules.destination_allowed("PACS", "10.1.2.4")
    assert not rules.destination_allowed("LAPTOP", "192.168.0.1")
    assert policy({"retrieve": ("known",)}).destination_allowed("LAPTOP", "192.168.0.1")


def test_entries_parse_as_the_configuration_checks_them():
    assert AccessEntry.parse("known").known and AccessEntry.parse("any").any
    assert AccessEntry.parse("PACS@10.1.2.3").network is not None
    assert AccessEntry.parse("PACS@pacs.example").host == "pacs.example"
