"""Storage Commitment Push Model SCP: reports on the same and on a new association,
stored / unknown / wrong-class / damaged instances, and a report owed across a restart."""

from __future__ import annotations

import threading

import pytest
from helpers.archive_data import MR_IMAGE, Study, instance
from helpers.clients import associate
from helpers.films import ramp_films
from helpers.net import free_port, refusing_port, wait_until
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

from printscp.app.node import Node
from printscp.core.remote import RemoteAE
from printscp.services.commitment import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE

pytestmark = pytest.mark.slow  # every test runs a node


@pytest.fixture
def start_node(make_node):
    """``start_node(remote_port=None)``: a node whose commitment reports go to MODALITY
    at ``remote_port`` and are retried after 0.2 s."""
    def start(remote_port: int | None = None) -> Node:
        remote = (RemoteAE("MODALITY", "127.0.0.1", remote_port),) if remote_port else None
        node = make_node(start=False, remote=remote)
        node.commitment.retry_initial = 0.2
        return node.start()

    return start


def store(node: Node, n: int = 3) -> list[Dataset]:
    study = Study("P1", "DOE^JANE", "20261101", "A1", images=n)
    datasets = [instance(study, 0, i) for i in range(1, n + 1)]
    assoc = associate(node.port, datasets[0].SOPClassUID, calling="MODALITY")
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    return datasets


def request(refs: list[tuple[str, str]], uid: str | None = None) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = uid or generate_uid()
    items = []
    for sop_class, sop_uid in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


class Reports:
    """N-EVENT-REPORTs a modality receives."""

    def __init__(self) -> None:
        self.items: list[tuple[int, Dataset]] = []
        self.arrived = threading.Event()

    def handler(self, event) -> tuple[int, None]:
        self.items.append((int(event.request.EventTypeID), event.event_information))
        self.arrived.set()
        return 0x0000, None


def test_report_on_the_same_association(start_node, client):
    node = start_node()
    try:
        stored = store(node)
        missing = generate_uid()
        refs = [(d.SOPClassUID, d.SOPInstanceUID) for d in stored]
        refs += [(stored[0].SOPClassUID, missing), (MR_IMAGE, stored[1].SOPInstanceUID)]
        reports = Reports()
        assoc = client(node.port, STORAGE_COMMITMENT, calling="MODALITY",
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.handler)])
        req = request(refs)
        status, _ = assoc.send_n_action(req, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assert status.Status == 0x0000
        assert reports.arrived.wait(10)
        assoc.release()
    finally:
        node.stop()
    [(event_type, info)] = reports.items
    assert event_type == 2  # failures exist
    assert info.TransactionUID == req.TransactionUID
    committed = {i.ReferencedSOPInstanceUID for i in info.ReferencedSOPSequence}
    assert committed == {d.SOPInstanceUID for d in stored}  # stored[1] also as CT
    failed = {i.ReferencedSOPInstanceUID: i.FailureReason for i in info.FailedSOPSequence}
    assert failed == {missing: 0x0112, stored[1].SOPInstanceUID: 0x0119}
    assert not list((node.config.data_path / "commitment").glob("*.json"))


def test_damaged_file_is_a_processing_failure(start_node, client):
    node = start_node()
    try:
        [ds] = store(node, 1)
        [path] = (node.config.data_path / "archive").rglob("*.dcm")
        data = bytearray(path.read_bytes())
        data[-2] ^= 0xFF
        path.write_bytes(bytes(data))
        reports = Reports()
        assoc = client(node.port, STORAGE_COMMITMENT, calling="MODALITY",
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.handler)])
        assoc.send_n_action(request([(ds.SOPClassUID, ds.SOPInstanceUID)]), 1,
                            STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assert reports.arrived.wait(10)
        assoc.release()
    finally:
        node.stop()
    [(event_type, info)] = reports.items
    assert event_type == 2 and info.FailedSOPSequence[0].FailureReason == 0x0110


class ModalitySCP:
    """The requester's own listener: takes the report on a new association, in the
    SCU role of Storage Commitment (the printscp side proposes the SCP role)."""

    def __init__(self, port: int) -> None:
        self.reports = Reports()
        self.ae = AE(ae_title="MODALITY")
        self.ae.add_supported_context(STORAGE_COMMITMENT, scu_role=True, scp_role=True)
        self.port = port
        self.server = None

    def start(self) -> ModalitySCP:
        self.server = self.ae.start_server(
            ("127.0.0.1", self.port), block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, self.reports.handler)])
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


def test_report_on_a_new_association_when_the_requester_left(start_node, client):
    port = free_port()
    modality = ModalitySCP(port).start()
    node = start_node(remote_port=port)
    try:
        stored = store(node, 2)
        assoc = client(node.port, STORAGE_COMMITMENT, calling="MODALITY")
        req = request([(d.SOPClassUID, d.SOPInstanceUID) for d in stored])
        status, _ = assoc.send_n_action(req, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assoc.release()  # does not wait for the report
        assert status.Status == 0
        assert modality.reports.arrived.wait(15)
    finally:
        node.stop()
        modality.stop()
    [(event_type, info)] = modality.reports.items
    assert event_type == 1 and "FailedSOPSequence" not in info
    assert len(info.ReferencedSOPSequence) == 2


def test_a_report_owed_survives_a_restart(start_node, client):
    holder, port = refusing_port()
    node = start_node(remote_port=port)
    try:
        stored = store(node, 1)
        assoc = client(node.port, STORAGE_COMMITMENT, calling="MODALITY")
        req = request([(stored[0].SOPClassUID, stored[0].SOPInstanceUID)])
        assoc.send_n_action(req, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assoc.release()
        pending = node.config.data_path / "commitment" / f"{req.TransactionUID}.json"
        # The modality is not listening: the first attempt fails.
        assert wait_until(lambda: '"attempts": 0' not in pending.read_text(), 10)
    finally:
        node.stop()
        holder.close()
    assert pending.exists()  # still owed
    modality = ModalitySCP(port).start()
    again = start_node(remote_port=port)
    try:
        assert modality.reports.arrived.wait(15)
    finally:
        again.stop()
        modality.stop()
    [(event_type, info)] = modality.reports.items
    assert event_type == 1 and info.TransactionUID == req.TransactionUID
    assert not pending.exists()


@pytest.mark.parametrize(("action_type", "instance", "body", "status"), [
    (2, STORAGE_COMMITMENT_INSTANCE, "ok", 0x0123),
    (1, "1.2.3.4", "ok", 0x0112),
    (1, STORAGE_COMMITMENT_INSTANCE, "no-transaction", 0x0120),
    (1, STORAGE_COMMITMENT_INSTANCE, "no-references", 0x0120),
    (1, STORAGE_COMMITMENT_INSTANCE, "bad-item", 0x0106),
])
def test_bad_requests_are_refused(start_node, client, action_type, instance, body, status):
    node = start_node()
    ds = request([("1.2.840.10008.5.1.4.1.1.2", "1.2.3")])
    if body == "no-transaction":
        del ds.TransactionUID
    elif body == "no-references":
        del ds.ReferencedSOPSequence
    elif body == "bad-item":
        del ds.ReferencedSOPSequence[0].ReferencedSOPClassUID
    try:
        assoc = client(node.port, STORAGE_COMMITMENT, calling="MODALITY")
        rsp, _ = assoc.send_n_action(ds, action_type, STORAGE_COMMITMENT, instance)
        assoc.release()
    finally:
        node.stop()
    assert rsp.Status == status


def test_print_n_action_still_works_beside_commitment(node):
    """N-ACTION is shared: Print Management keeps its own handler."""
    from printscp.outputs.print_scu import print_films

    result = print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", node.port), timeout=20)
    assert result.films == 1
