"""Known attacks on the DICOM port, each against a live node and each followed by a
C-ECHO from pynetdicom and from DCMTK's echoscu: the node must answer exactly as PS3.8
says (A-ABORT with its source and reason, A-ASSOCIATE-RJ, a DIMSE status), within a
time bound, and keep serving everyone else.

Bytes are made by hand (:mod:`fuzz.wire`): pynetdicom's encoders refuse to send them.
Answers (PS3.8 Table 9-26, A-ABORT source 2 = service provider): reason 2 "unexpected
PDU" for a PDU the state does not allow, 6 "invalid PDU parameter value" for a PDU
whose lengths do not hold together; the state table's AA-8 sends reason 0 where it
does not say more.
"""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

import pytest
from fuzz import wire
from helpers.net import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.dcmtk("echoscu")]

#: How long any refusal may take.
BOUND = 3.0

NODE_TOML = """
[node]
max_associations = 64

[[remote]]
ae_title = "ATTACKER"
host = "127.0.0.1"
port = 1
"""


@pytest.fixture
def attacked(make_node):
    """A node whose log is watched for tracebacks; checked to answer C-ECHO (pynetdicom
    and DCMTK) after the test's attack."""
    with wire.Tracebacks() as tracebacks:
        node = make_node(NODE_TOML)
        node.tracebacks = tracebacks
        yield node
        assert wire.echo_status(node.port) == 0x0000
        assert wire.dcmtk_echo(node.port) == 0


def refused(port: int, data: bytes, *, associate_first: bool = False) -> wire.Answer:
    """Send ``data`` (after an A-ASSOCIATE-RQ/AC when ``associate_first``); the answer."""
    with wire.Peer(port) as peer:
        if associate_first:
            assert peer.associate().kind == "A-ASSOCIATE-AC"
        peer.send(data)
        answer = peer.read_pdu(BOUND + 2)
        assert answer.seconds < BOUND, answer
        return answer


def test_http_request_on_the_dicom_port(attacked):
    answer = refused(attacked.port, b"GET / HTTP/1.1\r\nHost: printscp\r\n\r\n")
    assert answer.abort == (2, 2)  # "G" is no PDU type: unexpected PDU


@pytest.mark.parametrize("kind, reason", [(0x01, 6), (0x04, 2)])
def test_pdu_of_4_gib_before_association(attacked, kind, reason):
    answer = refused(attacked.port, struct.pack(">BBL", kind, 0, 0xFFFFFFFF))
    assert answer.abort == (2, reason)


@pytest.mark.parametrize("kind", [0x04, 0x01, 0x09])
def test_pdu_of_4_gib_after_association(attacked, kind):
    answer = refused(attacked.port, struct.pack(">BBL", kind, 0, 0xFFFFFFFF),
                     associate_first=True)
    assert answer.kind == "A-ABORT" and answer.abort[0] == 2, answer


def _rq_with(context: bytes) -> bytes:
    return wire.associate_rq([context])


@pytest.mark.parametrize("name, context", [
    # item length beyond the bytes of the PDU
    ("overrunning item", wire.item(0x20, bytes([1, 0, 0, 0]) + wire.item(0x30, b"1.2"),
                                   length=200)),
    # item length short of its sub-items
    ("truncated item", wire.item(0x20, bytes([1, 0, 0, 0])
                                 + wire.item(0x30, wire.VERIFICATION.encode())
                                 + wire.item(0x40, wire.IMPLICIT_LE.encode()), length=6)),
    # a sub-item cut off inside its header
    ("item cut inside a sub-item", wire.item(0x20, bytes([1, 0, 0, 0, 0x30, 0]))),
    # abstract syntax sub-item longer than the context item holding it
    ("UID sub-item longer than its item", wire.item(
        0x20, bytes([1, 0, 0, 0]) + wire.item(0x30, wire.VERIFICATION.encode(), length=90)
        + wire.item(0x40, wire.IMPLICIT_LE.encode()))),
])
def test_malformed_presentation_context_items_are_aborted(attacked, name, context):
    answer = refused(attacked.port, _rq_with(context))
    # Evt19 in Sta2: AA-1, "send A-ABORT PDU (service-user source)" (PS3.8 Table 9-7);
    # printscp's own refusals before the association say service-provider.
    assert answer.kind == "A-ABORT" and answer.abort[0] in (0, 2), (name, answer)


@pytest.mark.parametrize("abstract, syntax", [(b"", wire.IMPLICIT_LE.encode()),
                                              (wire.VERIFICATION.encode(), b""),
                                              (b"", b"")])
def test_zero_length_uids_are_refused(attacked, abstract, syntax):
    """An empty abstract or transfer syntax: an A-ABORT, or the context rejected in an
    A-ASSOCIATE-AC (PS3.8 9.3.3.2 results 3 or 4) - never a silent thread."""
    answer = refused(attacked.port, _rq_with(wire.context_item(1, abstract, [syntax])))
    if answer.kind == "A-ASSOCIATE-AC":
        assert answer.contexts[1][0] in (3, 4), answer.contexts
    else:
        assert answer.kind == "A-ABORT" and answer.abort[0] == 2, answer


@pytest.mark.parametrize("name, pdu", [
    ("no PDV", wire.pdu(0x04, b"")),
    ("PDV of 1 byte", wire.pdu(0x04, struct.pack(">LB", 1, 1))),
    ("PDV length 0", wire.pdu(0x04, struct.pack(">LBB", 0, 1, 3))),
    ("PDV longer than its PDU", wire.pdu(0x04, wire.pdv(1, 3, b"\0" * 8, length=100))),
])
def test_p_data_without_a_whole_pdv_is_aborted(attacked, name, pdu):
    answer = refused(attacked.port, pdu, associate_first=True)
    assert answer.kind == "A-ABORT" and answer.abort[0] == 2, (name, answer)


@pytest.mark.parametrize("kind", [0x00, 0x08, 0x09, 0x7F, 0xFF])
def test_unknown_pdu_types(attacked, kind):
    before = refused(attacked.port, wire.pdu(kind, b"\0" * 10))
    assert before.abort == (2, 2)
    after = refused(attacked.port, wire.pdu(kind, b"\0" * 10), associate_first=True)
    assert after.kind == "A-ABORT" and after.abort[0] == 2, after


def test_second_associate_rq_on_an_open_association(attacked):
    answer = refused(attacked.port, wire.associate_rq(), associate_first=True)
    assert answer.kind == "A-ABORT" and answer.abort[0] == 2, answer  # AA-8, Sta6 + Evt6


def test_200_presentation_contexts_with_duplicate_ids(attacked):
    """PS3.8 9.3.2.2: each ID unique; they were accepted as 128 (BUGS.md B3)."""
    contexts = [wire.context_item((2 * i + 1) % 256) for i in range(200)]
    answer = refused(attacked.port, wire.associate_rq(contexts))
    assert answer.kind == "A-ASSOCIATE-RJ", \
        f"{answer.kind} with {answer.context_items} presentation contexts"
    assert answer.reject == (1, 2, 1)  # permanent, service-provider (ACSE), no reason


@pytest.mark.parametrize("uid", ["../../x", "/etc/passwd", "..", "1.2/../../../tmp/evil",
                                 "1.2.3\\..\\..\\x"])
def test_traversal_uids_in_c_store_are_refused_and_nothing_is_written(attacked, tmp_path,
                                                                        uid):
    from fuzz.test_messages import STORE_SC, encode, open_association, sc_image

    from printscp.net import pdata

    before = set(tmp_path.rglob("*")) | set(Path.cwd().iterdir())
    data_set = encode(sc_image(uid), implicit=False)
    with open_association(attacked.port) as peer:
        peer.send(wire.message_stream(STORE_SC, wire.store_rq(wire.SECONDARY_CAPTURE, uid),
                                      data_set))
        answer = peer.read_message(BOUND)
        assert answer.kind == "P-DATA-TF", answer
        status = pdata.command_us(answer.messages[0][0], pdata.STATUS)
        assert status in (0xA900, 0xC000), hex(status or 0)  # refused: UID not valid
        peer.release()
    created = (set(tmp_path.rglob("*")) | set(Path.cwd().iterdir())) - before
    outside = [p for p in created if not p.is_relative_to(attacked.config.data_path)]
    assert not outside, outside
    assert not [p for p in created if p.suffix == ".dcm"], created
    assert not Path("/tmp/evil").exists() and not Path("/x").exists()


def test_64_concurrent_associations_are_all_served(attacked):
    from helpers.clients import associate

    statuses: list[int | None] = []
    start = threading.Barrier(64)

    def client() -> None:
        start.wait()
        assoc = associate(attacked.port, wire.VERIFICATION, calling="BURST")
        try:
            statuses.append(int(assoc.send_c_echo().Status) if assoc.is_established else None)
        finally:
            if assoc.is_established:
                assoc.release()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert statuses == [0] * 64, statuses
    assert elapsed < 20, elapsed


def test_30_aborts_mid_transfer_leave_nothing_findable(attacked):
    """Half of a C-STORE's data set, then an A-ABORT: 30 times.  No instance of them is
    found by C-FIND, and no temporary file stays in the archive."""
    from fuzz.test_messages import STORE_SC, encode, fixed_uid, open_association, sc_image

    uids = []
    for _ in range(30):
        uid = fixed_uid(9)
        uids.append(uid)
        ds = sc_image(uid, size=64)
        ds.PatientID = "ABORTED"
        data_set = encode(ds, implicit=False)
        with open_association(attacked.port) as peer:
            stream = wire.message_stream(STORE_SC, wire.store_rq(wire.SECONDARY_CAPTURE, uid),
                                         data_set, data_cuts=[len(data_set) // 2])
            peer.send(stream[:len(stream) - len(data_set) // 3])
            peer.send(wire.abort_rq())
    data = attacked.config.data_path
    assert wait_until(lambda: not list(data.rglob(".tmp-*")), 10), list(data.rglob(".tmp-*"))
    assert not [p for p in data.rglob("*.dcm") if any(u in p.name for u in uids)]
    from helpers.clients import associate
    from pydicom.dataset import Dataset

    assoc = associate(attacked.port, wire.STUDY_ROOT_FIND, calling="ATTACKER")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.PatientID = "ABORTED"
    query.StudyInstanceUID = query.SeriesInstanceUID = ""
    query.SOPInstanceUID = ""
    found = [ds for status, ds in assoc.send_c_find(query, wire.STUDY_ROOT_FIND)
             if status and status.Status in (0xFF00, 0xFF01)]
    assoc.release()
    assert found == [], [str(d.SOPInstanceUID) for d in found]


def test_undecodable_associate_rq_does_not_hold_a_thread(make_node):
    """It held its association and a thread for the ACSE timeout (BUGS.md B1)."""
    attacked = make_node(NODE_TOML)
    answer = refused(attacked.port, wire.associate_rq(called="\0" * 16))
    assert answer.kind == "A-ABORT"
    assert wait_until(lambda: not attacked.ae.active_associations, 5), \
        f"{len(attacked.ae.active_associations)} association(s) still held"


def test_garbage_connections_do_not_lock_clients_out(make_node):
    """60 of them locked every client out for 30 s (BUGS.md B4)."""
    import random

    attacked = make_node(NODE_TOML)
    rng = random.Random(17)
    for _ in range(60):
        with wire.Peer(attacked.port) as peer:
            peer.send(b"\x01\x00" + bytes(rng.randrange(256) for _ in range(rng.randrange(300))))
            peer.finish()
            peer.drain(BOUND)
    with wire.Peer(attacked.port) as peer:
        answer = peer.associate()
        assert answer.kind == "A-ASSOCIATE-AC", answer.reject
        peer.release()
