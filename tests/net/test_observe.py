"""The fast paths fire pynetdicom's events and write its log, as its own paths do.

C-STORE, C-FIND and C-GET are served on the DUL thread, with messages parsed and framed
by printscp.net; a monitor bound to pynetdicom's notification events, and pynetdicom's
debug log (``printscp serve -d``), must still see every message of them, once.
"""

from __future__ import annotations

import logging
import subprocess
from collections import Counter

import pytest
from helpers.archive_data import Study, write_study
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.nodes import known_clients, make_node
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from printscp.net import server
from printscp.services import query_retrieve, storage

pytestmark = pytest.mark.slow

STUDY = Study("OBS1", "OBSERVED^ONE", "20261201", "ACCOBS1", images=3)


@pytest.fixture
def watched(tmp_path, monkeypatch):
    """A node whose fast paths count what they serve, with a monitor bound to every
    DIMSE and PDU event; yields (node, files, events, claims)."""
    claims: Counter[str] = Counter()

    def counting(name, claim):
        def wrapper(*args, **kwargs):
            served = claim(*args, **kwargs)
            if served is None:
                return None

            def serve():
                claims[name] += 1
                served()
            return serve
        return wrapper

    monkeypatch.setattr(storage, "claim_store", counting("store", storage.claim_store))
    monkeypatch.setattr(query_retrieve, "claim_find",
                        counting("find", query_retrieve.claim_find))
    node = make_node(tmp_path, remote=known_clients())
    events: list[tuple[str, str]] = []
    for event, name in ((evt.EVT_DIMSE_RECV, "recv"), (evt.EVT_DIMSE_SENT, "sent")):
        node.server.bind(event, lambda e, n=name: events.append((n, type(e.message).__name__)))
    pdus: Counter[str] = Counter()
    for event, name in ((evt.EVT_PDU_RECV, "pdu-recv"), (evt.EVT_DATA_RECV, "data-recv"),
                        (evt.EVT_PDU_SENT, "pdu-sent"), (evt.EVT_DATA_SENT, "data-sent")):
        node.server.bind(event, lambda e, n=name: pdus.update([n]))
    try:
        yield node, write_study(STUDY, tmp_path / "study"), events, claims, pdus
    finally:
        node.stop()


def test_a_fast_c_store_fires_the_dimse_events_once(watched):
    node, files, events, claims, pdus = watched
    assoc = associate(node.port, CTImageStorage)
    try:
        statuses = [int(assoc.send_c_store(dcmread(f)).Status) for f in files]
    finally:
        assoc.release()
    assert statuses == [0, 0, 0]
    assert claims["store"] == 3  # served on the fast path, not by pynetdicom
    assert Counter(events) == {("recv", "C_STORE_RQ"): 3, ("sent", "C_STORE_RSP"): 3}
    # the received P-DATA PDUs and the framed responses fire the PDU-level events too
    assert pdus["pdu-recv"] >= 6 and pdus["pdu-recv"] == pdus["data-recv"]
    assert pdus["pdu-sent"] >= 3 and pdus["pdu-sent"] == pdus["data-sent"]


def test_a_fast_c_find_and_a_c_get_fire_the_dimse_events(watched):
    node, files, events, claims, _ = watched
    store = associate(node.port, CTImageStorage)
    for f in files:
        assert int(store.send_c_store(dcmread(f)).Status) == 0
    store.release()
    events.clear()

    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = dcmread(files[0]).StudyInstanceUID
    query.SeriesInstanceUID = dcmread(files[0]).SeriesInstanceUID
    query.SOPInstanceUID = ""
    find = associate(node.port, StudyRootQueryRetrieveInformationModelFind)
    found = [int(st.Status) for st, _ in find.send_c_find(
        query, StudyRootQueryRetrieveInformationModelFind)]
    find.release()
    assert found == [0xFF00] * 3 + [0]
    assert claims["find"] == 1
    assert Counter(events) == {("recv", "C_FIND_RQ"): 1, ("sent", "C_FIND_RSP"): 4}
    events.clear()

    retrieved = []

    def on_store(event):
        retrieved.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    query.QueryRetrieveLevel = "SERIES"
    del query.SOPInstanceUID
    get = associate(node.port, StudyRootQueryRetrieveInformationModelGet, CTImageStorage,
                    ext_neg=[build_role(CTImageStorage, scp_role=True)],
                    evt_handlers=[(evt.EVT_C_STORE, on_store)])
    got = [int(st.Status) for st, _ in get.send_c_get(
        query, StudyRootQueryRetrieveInformationModelGet)]
    get.release()
    assert got[-1] == 0 and len(retrieved) == 3
    assert Counter(events) == {("recv", "C_GET_RQ"): 1, ("sent", "C_STORE_RQ"): 3,
                               ("recv", "C_STORE_RSP"): 3, ("sent", "C_GET_RSP"): 4}


@pytest.mark.dcmtk("storescu")
def test_the_debug_log_shows_dcmtk_stores_served_on_the_fast_path(tmp_path, caplog,
                                                                   monkeypatch):
    """``printscp serve -d`` turns pynetdicom's log on: a storescu of two files logs two
    received Store Requests, each once, with its DIMSE message (pynetdicom logs nothing
    for a C-STORE-RSP it sends; the event itself is checked above)."""
    claimed = []
    original = storage.claim_store
    monkeypatch.setattr(storage, "claim_store",
                        lambda *a, **k: claimed.append(1) or original(*a, **k))
    files = write_study(STUDY, tmp_path / "study")[:2]
    pynetdicom_log = logging.getLogger("pynetdicom")
    monkeypatch.setattr(pynetdicom_log, "level", logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pynetdicom")
    node = make_node(tmp_path)
    try:
        out = subprocess.run([tool("storescu"), "-aec", "PRINTSCP", "127.0.0.1",
                              str(node.port), *map(str, files)],
                             capture_output=True, text=True, timeout=60)
    finally:
        node.stop()
        monkeypatch.undo()
        server.configure_logging()  # pynetdicom's handlers off again for later tests
    assert out.returncode == 0, out.stderr
    assert len(claimed) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m == "Received Store Request" for m in messages) == 2
    assert sum("Message Type                  : C-STORE RQ" in m for m in messages) == 2
