"""printscp.net.reactors: patched pynetdicom keeps working for associations of every age."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import textwrap
import time

import pytest
from helpers.dcmtk import tool
from helpers.net import free_port, wait_for_port


@pytest.mark.slow
@pytest.mark.dcmtk("storescp")
def test_association_opened_before_install_still_sends(tmp_path):
    """An association whose DUL thread started before install() runs pynetdicom's own
    loop; messages sent on it after install() must still go pynetdicom's way (a framed
    message queued to that loop aborted the association)."""
    port = free_port()
    scp = subprocess.Popen([tool("storescp"), "-od", str(tmp_path), str(port)])
    try:
        wait_for_port(port, process=scp)
        code = textwrap.dedent(f"""
            from pynetdicom import AE
            ae = AE("EARLY")
            ae.add_requested_context("1.2.840.10008.1.1")
            assoc = ae.associate("127.0.0.1", {port})
            assert assoc.is_established
            from printscp.net import reactors
            reactors.install()
            statuses = [assoc.send_c_echo().Status for _ in range(3)]
            assoc.release()
            late = ae.associate("127.0.0.1", {port})
            statuses.append(late.send_c_echo().Status)
            late.release()
            print(statuses)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
    finally:
        scp.terminate()
        scp.wait(10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 0, 0, 0]"


@pytest.mark.parametrize("length", [0xFFFFFFF0, 131072 + 1])
def test_a_p_data_pdu_longer_than_our_maximum_aborts_only_its_association(node, length):
    """A P-DATA-TF PDU announcing more than the Maximum Length we negotiated (PS3.8
    9.3.5) aborts its association at once, without reserving the announced bytes; the
    node keeps serving others."""
    from pynetdicom import AE

    from printscp.net import guard_requestor

    ae = AE("FORGER")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", node.port, ae_title="PRINTSCP")
    guard_requestor(assoc)
    assert assoc.is_established
    assert assoc.acceptor.maximum_length == 131072
    assoc.dul.socket.socket.sendall(struct.pack(">BBL", 4, 0, length) + b"\0" * 64)
    deadline = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.02)
    assert assoc.is_aborted
    other = ae.associate("127.0.0.1", node.port, ae_title="PRINTSCP")
    guard_requestor(other)
    try:
        assert other.send_c_echo().Status == 0x0000
    finally:
        other.release()


def test_socket_recv_grows_its_buffer_only_as_bytes_arrive():
    """A PDU body is read into a buffer at most RECV_CHUNK ahead of what arrived: a
    3 MiB body comes whole, a body cut short by the peer comes as far as it got."""
    import threading

    from printscp.net import reactors

    class Transport:
        def __init__(self, sock):
            self.socket = sock

    payload = bytes(range(256)) * (3 * 4096 + 7)
    a, b = socket.socketpair()
    try:
        sender = threading.Thread(target=lambda: (b.sendall(payload), b.close()))
        sender.start()
        got = reactors._socket_recv(Transport(a), len(payload))
        assert bytes(got) == payload
        sender.join()
    finally:
        a.close()
    a, b = socket.socketpair()
    cut = payload[:reactors.RECV_CHUNK + 10]
    try:
        sender = threading.Thread(target=lambda: (b.sendall(cut), b.close()))
        sender.start()
        got = reactors._socket_recv(Transport(a), 0xFFFFFFF0)
        assert bytes(got) == cut
        sender.join()
    finally:
        a.close()


def test_uid_checks_are_kept_but_invalid_uids_still_raise():
    """After install() pynetdicom's UID conversion remembers valid UIDs (the same
    object comes back) and refuses an invalid one every time it comes."""
    from pydicom.uid import UID
    from pynetdicom import pdu_items, presentation

    from printscp.net import reactors

    reactors.install()
    first = pdu_items.set_uid(b"1.2.840.10008.1.2.1", "Transfer Syntax Name")
    assert isinstance(first, UID) and first == "1.2.840.10008.1.2.1"
    assert presentation.set_uid("1.2.840.10008.1.2.1", "Transfer Syntax Name") is first
    for _ in range(2):
        with pytest.raises(ValueError):
            pdu_items.set_uid("1" * 65, "Abstract Syntax Name")  # longer than UI allows
    assert pdu_items.set_uid(None, "Abstract Syntax Name") is None


def test_the_reactor_leaves_a_parked_senders_response_on_the_queue():
    """A C-MOVE's sub-association sits idle between its C-STOREs; its reactor took the
    C-STORE-RSP meant for the sender, which then waited for it until the DIMSE timeout
    (1 move of 10 hung, 300 instances to movescu with the cores busy)."""
    from printscp.net.testing import IdleAssociation, run_association_reactor

    assoc = IdleAssociation()
    run_association_reactor(assoc)
    assert assoc.served == []
    assert assoc.dimse.msg_queue.get_nowait() == (1, "C-STORE-RSP for the sender")


@pytest.mark.parametrize("paused", [False, True])
def test_a_c_store_on_an_association_that_has_ended_fails_instead_of_waiting(monkeypatch,
                                                                               paused):
    """Its reactor has ended, parked or not: the sub-operation fails at once (and the
    C-MOVE counts it) instead of waiting for the reactor, or for a response, forever."""
    import threading

    from printscp.net import channel
    from printscp.net.testing import EndedAssociation

    monkeypatch.setattr(channel, "frame_stored_file", lambda *a, **k: (1, b"", b""))
    assoc = EndedAssociation(paused)
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            channel.send_c_store_file(assoc, "/nonexistent", "1.2", "1.2.3",
                                      "1.2.840.10008.1.2.1")
        except channel.AssociationClosed as exc:
            outcome.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert outcome and "closed" in str(outcome[0])
    assert assoc.checkpoint_open()  # left open for whoever comes next


def test_no_c_store_goes_out_once_the_peer_aborted_even_before_the_reactor_noticed(tmp_path):
    """A C-MOVE destination that aborts while a C-STORE is out: the next sub-operation
    (here one that pynetdicom itself must convert) fails at once; it waited the whole
    DIMSE timeout for an answer when it went out on the still "established" association
    (about one move in two with a second test process running)."""
    from printscp.net import channel
    from printscp.net.testing import AbortQueuedAssociation

    assoc = AbortQueuedAssociation()
    channel.send_stored_files_as_is(assoc)
    stored = channel.StoredFile(tmp_path / "x.dcm", "1.2.840.10008.5.1.4.1.1.2", "1.2.3",
                                "1.2.840.10008.1.2.1")
    with pytest.raises(channel.AssociationClosed):
        assoc.send_c_store(stored, 2)
    assert assoc.sent == []


@pytest.mark.slow
def test_associations_work_when_descriptors_pass_fd_setsize(tmp_path):
    """A busy process (files, databases, sockets) hands out descriptors numbered 1024
    and more; select() refuses those, and every new association then failed."""
    import os
    import resource

    from helpers.nodes import make_node
    from helpers.print_scu import PrintSCU

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300:
        pytest.skip(f"only {soft} descriptors allowed")
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        node = make_node(tmp_path)
        try:
            with PrintSCU(node.port) as scu:  # both ends' sockets above 1100
                assert scu.assoc.send_c_echo().Status == 0
        finally:
            node.stop()
    finally:
        for fd in held:
            os.close(fd)


@pytest.mark.slow
def test_the_listening_socket_queues_128_connections(tmp_path):
    """socketserver listens again with its default backlog of 5 (a burst of clients
    then lost SYNs and waited 20 s); the node's server asks for 128."""
    import shutil

    from helpers.nodes import make_node

    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2)")
    node = make_node(tmp_path)
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{node.port}"], capture_output=True,
                             text=True, check=True).stdout.split()
        assert out[0] == "LISTEN" and out[2] == "128", out  # Send-Q: the backlog
    finally:
        node.stop()


@pytest.mark.slow
@pytest.mark.parametrize("header", [
    struct.pack(">BBL", 0x01, 0, 0xFFFFFFFF),  # an A-ASSOCIATE-RQ announcing 4 GiB
    struct.pack(">BBL", 0x04, 0, 0xFFFFFFFF),  # P-DATA before any association
    struct.pack(">BBL", 0x02, 0, 10),  # an A-ASSOCIATE-AC sent to the acceptor
])
def test_a_bad_pdu_header_before_association_is_aborted_at_once(tmp_path, header):
    """Six bytes held a socket and a thread for over 70 s; now an A-ABORT answers the
    header alone (PS3.8 state table, Sta2: AA-1), and the node serves on."""
    from helpers.nodes import make_node
    from helpers.print_scu import PrintSCU

    node = make_node(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
            s.sendall(header)
            t0 = time.monotonic()
            answer = b""
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                answer += chunk
            assert time.monotonic() - t0 < 3
        assert answer[:1] == b"\x07" and len(answer) == 10, answer  # A-ABORT, then closed
        with PrintSCU(node.port) as scu:
            assert scu.assoc.send_c_echo().Status == 0
    finally:
        node.stop()


def _associate_rq(context_id: int = 1, transfer_syntax: bytes = b"1.2.840.10008.1.2") -> bytes:
    """An A-ASSOCIATE-RQ PDU for Verification, hand-made so it can be wrong."""
    def item(kind: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(payload)) + payload

    context = item(0x20, bytes([context_id, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1")
                   + item(0x40, transfer_syntax))
    user = item(0x50, item(0x51, struct.pack(">L", 16384)) + item(0x52, b"1.2.3.4"))
    body = (struct.pack(">HH", 1, 0) + b"PRINTSCP".ljust(16) + b"ATTACKER".ljust(16)
            + bytes(32) + item(0x10, b"1.2.840.10008.3.1.1.1") + context + user)
    return struct.pack(">BBL", 1, 0, len(body)) + body


@pytest.mark.slow
@pytest.mark.parametrize("pdu, answer", [
    (_associate_rq(), b"\x02"),  # well formed: A-ASSOCIATE-AC
    (_associate_rq(context_id=2), b"\x07"),  # an even presentation context ID
    (_associate_rq(transfer_syntax=b""), b"\x07"),  # an empty transfer syntax
])
def test_a_malformed_associate_request_is_answered_at_once(tmp_path, pdu, answer):
    """These raised inside pynetdicom's negotiation and killed its thread: no answer,
    and socket and threads held until the timeouts.  Now an A-ABORT, at once."""
    from helpers.nodes import make_node
    from helpers.print_scu import PrintSCU

    node = make_node(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
            s.sendall(pdu)
            assert s.recv(1) == answer
        with PrintSCU(node.port) as scu:
            assert scu.assoc.send_c_echo().Status == 0
    finally:
        node.stop()


@pytest.mark.slow
def test_a_p_data_pdu_without_a_pdv_is_aborted(tmp_path):
    """PS3.8 9.3.5: a P-DATA-TF holds one PDV item at least; an empty one was ignored."""
    from helpers.nodes import make_node

    node = make_node(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
            s.sendall(_associate_rq())
            kind, _, length = struct.unpack(">BBL", s.recv(6, socket.MSG_WAITALL))
            assert kind == 0x02
            s.recv(length, socket.MSG_WAITALL)  # the A-ASSOCIATE-AC
            s.sendall(struct.pack(">BBL", 0x04, 0, 0))
            assert s.recv(1) == b"\x07"  # A-ABORT
    finally:
        node.stop()


@pytest.mark.slow
@pytest.mark.dcmtk("echoscu")
def test_silent_connections_do_not_lock_clients_out(tmp_path):
    """40 connections that never send an A-ASSOCIATE-RQ: pynetdicom counted them against
    the association limit (16), and every client was rejected for some 30 s.  Now only
    associations that asked count, and the oldest silent connections make room."""
    from helpers.nodes import make_node
    from helpers.print_scu import PrintSCU

    node = make_node(tmp_path)
    silent = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(40)]
    try:
        time.sleep(0.3)
        with PrintSCU(node.port) as scu:
            assert scu.assoc.send_c_echo().Status == 0
        done = subprocess.run([tool("echoscu"), "-aec", "PRINTSCP", "127.0.0.1",
                               str(node.port)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr  # DCMTK's echoscu too
        # the oldest silent ones were aborted (A-ABORT, then closed)
        silent[0].settimeout(5)
        assert silent[0].recv(1) == b"\x07"
    finally:
        for s in silent:
            s.close()
        node.stop()


@pytest.mark.slow
def test_the_association_limit_counts_associations(tmp_path):
    from helpers.net import wait_until
    from helpers.nodes import make_node
    from helpers.print_scu import PrintSCU

    node = make_node(tmp_path, "[node]\nmax_associations = 3\n")
    try:
        scus = [PrintSCU(node.port).__enter__() for _ in range(3)]
        refused = PrintSCU(node.port)
        assert refused.assoc.is_rejected  # transient, local limit exceeded
        assert (refused.assoc.acceptor.primitive.result,
                refused.assoc.acceptor.primitive.diagnostic) == (0x02, 0x02)
        for scu in scus:
            scu.close()
        wait_until(lambda: len(node.ae.active_associations) == 0, 10)
        with PrintSCU(node.port) as scu:  # released: room again
            assert scu.assoc.send_c_echo().Status == 0
    finally:
        node.stop()


def test_ended_associations_are_freed(make_node, tmp_path):
    """Served associations (echo, store, and Q/R with its request hooks) leave nothing
    behind: their hooks' closures over the association kept every one alive before,
    about 50 KB each (150 MiB a minute under load)."""
    import gc

    from helpers.archive_data import Study, write_study
    from pynetdicom.association import Association

    node = make_node('[access]\nquery = ["any"]\n')
    files = write_study(Study("GC1", "FREED^ALL", "20260101", "A1", images=2), tmp_path)
    where = ["127.0.0.1", str(node.port)]
    for _ in range(3):
        for cmd in ([tool("echoscu"), *where],
                    [tool("storescu"), *where, *map(str, files)],
                    [tool("findscu"), "-S", "-k", "QueryRetrieveLevel=STUDY", "-k",
                     "PatientName", *where]):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while node.ae.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    gc.collect()
    # This node's own (other tests in this process may still hold theirs).
    alive = [a for a in gc.get_objects()
             if isinstance(a, Association) and a.is_acceptor and a.ae is node.ae]
    assert alive == []


def test_a_rejection_taken_for_a_failed_connection_is_a_rejection(monkeypatch):
    """pynetdicom's requestor aborts when the A-ASSOCIATE-RJ came back, and the DUL
    closed the connection, before it checked the socket: the RJ it left on the queue
    makes the association rejected, with its result, source and reason."""
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import A_ASSOCIATE

    from printscp.net import reactors

    reactors.install()

    def racing_request(assoc):  # what pynetdicom's request() left behind in that race
        rj = A_ASSOCIATE()
        rj.result, rj.result_source, rj.diagnostic = 0x01, 0x01, 0x07
        assoc.dul.to_user_queue.put(rj)
        assoc.is_aborted = True

    monkeypatch.setitem(reactors.ORIGINALS, "pynetdicom.association:Association.request",
                        racing_request)
    ae = AE(ae_title="RACE")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", free_port(), ae_title="OTHER")
    assert assoc.is_rejected and not assoc.is_aborted and not assoc.is_established
    rj = assoc.acceptor.primitive
    assert (rj.result, rj.result_source, rj.diagnostic) == (1, 1, 7)
