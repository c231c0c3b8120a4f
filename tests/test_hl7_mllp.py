"""The MLLP listener (printscp.hl7.mllp) over real sockets on 127.0.0.1: python-hl7's
asyncio client, raw sockets (split segments, garbage, oversize, idle, too many
connections), ``printscp hl7 send`` in a second process, TLS with the node's
certificate, and a clean stop.

The handler is a stand-in for ``Inbox.receive`` (tests/test_hl7_e2e.py runs the real
one behind ``printscp serve``): AA, or AR for a message holding ``REJECT``.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.net import HOST, port_open, refusing_port, run_coroutine, wait_until

from printscp.hl7.mllp import (
    END,
    START_BLOCK,
    MllpLimits,
    MllpServer,
    ack_code,
    frame,
    send_messages,
    split_messages,
)


def message(control: str, body: str = "") -> bytes:
    return ("MSH|^~\\&|RIS|HOSP|PRINTSCP|RAD|20260101120000||ORM^O01^ORM_O01|"
            f"{control}|P|2.5.1\rPID|||P{control}||DOE^JOHN\r"
            f"ORC|NW|{control}\rOBR|1|{control}||CT^CT HEAD{body}\r").encode()


class StandIn:
    """Records what it received and answers AA (AR for ``REJECT``)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.delay = delay
        self.threads: set[str] = set()

    def __call__(self, msg: bytes, peer: str) -> bytes:
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        self.received.append((msg, peer))
        control = msg.split(b"\r")[0].split(b"|")[9]
        code = b"AR" if b"REJECT" in msg else b"AA"
        return (b"MSH|^~\\&|PRINTSCP|RAD|RIS|HOSP|20260101120001||ACK^O01^ACK|A" + control
                + b"|P|2.5.1\rMSA|" + code + b"|" + control + b"\r")


@pytest.fixture
def served():
    handler = StandIn()
    server = MllpServer(handler, HOST, 0, limits=MllpLimits(
        max_message_bytes=4096, idle_timeout=1.0, max_connections=3)).start()
    yield server, handler
    server.stop()


def _raw(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


_BUFFERS: dict[int, bytes] = {}


def _read_block(s: socket.socket) -> bytes:
    """The next MLLP block from ``s`` (blocks that arrived together are kept apart)."""
    data = _BUFFERS.pop(s.fileno(), b"")
    while END not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    block, _, rest = data.partition(END)
    if rest:
        _BUFFERS[s.fileno()] = rest
    assert block.startswith(START_BLOCK)
    return block[1:]


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_library_client_several_messages_one_connection(served) -> None:
    server, handler = served

    async def talk() -> list[bytes]:
        from hl7.mllp import open_hl7_connection

        reader, writer = await open_hl7_connection(HOST, server.port)
        acks = []
        for i in range(5):
            writer.writeblock(message(f"C{i}"))
            await writer.drain()
            acks.append(await reader.readblock())
        writer.close()
        await writer.wait_closed()
        return acks

    acks = run_coroutine(talk())
    assert [ack_code(a)[0] for a in acks] == ["AA"] * 5
    assert [a.split(b"MSA|AA|")[1].strip() for a in acks] == [f"C{i}".encode()
                                                              for i in range(5)]
    assert [m for m, _ in handler.received] == [message(f"C{i}") for i in range(5)]
    assert handler.received[0][1].startswith("127.0.0.1:")
    # the handler ran off the event loop, in the one apply thread
    assert handler.threads == {next(iter(handler.threads))}
    assert next(iter(handler.threads)).startswith("printscp-hl7-apply")


def test_pipelined_messages_answered_in_order(served) -> None:
    server, _ = served
    with _raw(server.port) as s:
        s.sendall(b"".join(frame(message(f"P{i}")) for i in range(10)))
        controls = [_read_block(s).split(b"MSA|AA|")[1].strip() for _ in range(10)]
    assert controls == [f"P{i}".encode() for i in range(10)]


def test_message_split_across_segments(served) -> None:
    server, handler = served
    block = frame(message("SPLIT"))
    with _raw(server.port) as s:
        for i in range(0, len(block), 7):  # the <FS><CR> trailer split too
            s.sendall(block[i:i + 7])
            time.sleep(0.005)
        assert ack_code(_read_block(s)) == ("AA", "")
    assert handler.received[-1][0] == message("SPLIT")


def test_garbage_before_start_block_is_discarded(served) -> None:
    server, handler = served
    with _raw(server.port) as s:
        s.sendall(b"\r\n\r\nnoise" + frame(message("G1")) + b"\n" + frame(message("G2")))
        assert [ack_code(_read_block(s))[0] for _ in range(2)] == ["AA", "AA"]
        s.sendall(b"no start block at all" + END + frame(message("G3")))
        assert ack_code(_read_block(s))[0] == "AA"
    assert [m for m, _ in handler.received] == [message(c) for c in ("G1", "G2", "G3")]


def test_oversize_message_closes_the_connection(served, caplog) -> None:
    server, handler = served
    caplog.set_level(logging.WARNING, "printscp.hl7.mllp")
    with _raw(server.port) as s:
        s.sendall(frame(message("BIG", "X" * 8000)))
        assert wait_until(lambda: _closed(s))
    assert not handler.received
    assert "over 4 KiB" in caplog.text and "max_message_kb" in caplog.text
    with _raw(server.port) as s:  # the listener still serves
        s.sendall(frame(message("AFTER")))
        assert ack_code(_read_block(s))[0] == "AA"


def test_idle_connection_is_closed(served) -> None:
    server, _ = served
    with _raw(server.port) as s:
        started = time.monotonic()
        s.settimeout(5)
        assert _closed(s)
        assert 0.8 < time.monotonic() - started < 4


def test_connections_beyond_the_limit_are_closed(served) -> None:
    server, _ = served
    held = [_raw(server.port) for _ in range(3)]
    try:
        for s in held:  # each is being served
            s.sendall(frame(message("H")))
            _read_block(s)
        with _raw(server.port) as extra:
            assert _closed(extra)
        assert server.refused == 1
    finally:
        for s in held:
            s.close()


def test_handler_failure_closes_unanswered(caplog) -> None:
    """The inbox raises only when it cannot record a message: no ACK (an AE or AR could
    make the RIS give up), the connection closed, so that the RIS sends it again."""
    failing = [True]
    handler = StandIn()

    def flaky(msg: bytes, peer: str) -> bytes:
        if failing:
            raise OSError(28, "No space left on device")
        return handler(msg, peer)

    with MllpServer(flaky, HOST, 0) as server:
        with pytest.raises(ConnectionError):
            send_messages(HOST, server.port, [message("F1")], timeout=5)
        assert "closing the connection unanswered" in caplog.text
        failing.clear()  # space again: the resend is applied
        (ack,) = send_messages(HOST, server.port, [message("F1")], timeout=5)
    assert ack_code(ack)[0] == "AA"
    assert [m for m, _ in handler.received] == [message("F1")]


def test_stop_leaves_no_thread_and_closes_port() -> None:
    before = {t.name for t in threading.enumerate()}
    handler = StandIn(delay=0.3)
    server = MllpServer(handler, HOST, 0).start()
    port = server.port
    s = _raw(port)
    s.sendall(frame(message("INFLIGHT")))
    time.sleep(0.1)  # being applied when the stop comes
    server.stop()
    s.close()
    assert handler.received and handler.received[0][0] == message("INFLIGHT")  # finished
    assert not port_open(port)
    left = {t.name for t in threading.enumerate()} - before
    assert not [n for n in left if n.startswith("printscp-hl7")], left


def test_port_in_use_raises_at_start() -> None:
    with socket.create_server((HOST, 0)) as busy, pytest.raises(OSError):
        MllpServer(StandIn(), HOST, busy.getsockname()[1]).start()
    assert not [t for t in threading.enumerate() if t.name == "printscp-hl7"]


def test_tls_with_the_node_certificate(tmp_path: Path) -> None:
    import ssl

    from helpers.tls import make_pki

    from printscp.config import TlsConfig
    from printscp.core.tls import server_context

    pki = make_pki(tmp_path / "pki")
    context = server_context(TlsConfig(
        enabled=True, certificate=pki.cert("server"), private_key=pki.key("server"),
        ca_certificates=pki.ca, require_client_certificate=False))
    handler = StandIn()
    with MllpServer(handler, HOST, 0, ssl_context=context) as server:
        client = ssl.create_default_context(cafile=pki.ca)
        acks = send_messages(HOST, server.port, [message("T1"), message("T2")],
                             timeout=5, ssl_context=client)
        assert [ack_code(a)[0] for a in acks] == ["AA", "AA"]
        with pytest.raises(OSError):  # plain MLLP to the TLS port: no answer
            send_messages(HOST, server.port, [message("T3")], timeout=2)
    assert [m for m, _ in handler.received] == [message("T1"), message("T2")]


def test_tls_handshake_failure_is_logged(tmp_path: Path, caplog) -> None:
    """A client without the certificate the node requires: refused, one log line (and a
    Security Alert where the process has an audit trail)."""
    import ssl

    from helpers.tls import make_pki

    from printscp.config import TlsConfig
    from printscp.core.tls import server_context

    caplog.set_level(logging.WARNING, "printscp.hl7.mllp")
    pki = make_pki(tmp_path / "pki")
    context = server_context(TlsConfig(
        enabled=True, certificate=pki.cert("server"), private_key=pki.key("server"),
        ca_certificates=pki.ca))
    handler = StandIn()
    with MllpServer(handler, HOST, 0, ssl_context=context) as server:
        client = ssl.create_default_context(cafile=pki.ca)
        with pytest.raises(OSError):
            send_messages(HOST, server.port, [message("N1")], timeout=5, ssl_context=client)
        wait_until(lambda: "TLS handshake failed" in caplog.text)
        client.load_cert_chain(pki.cert("client"), pki.key("client"))
        (ack,) = send_messages(HOST, server.port, [message("Y1")], timeout=5,
                               ssl_context=client)
        assert ack_code(ack)[0] == "AA"
    assert [m for m, _ in handler.received] == [message("Y1")]


# -- printscp hl7 send, a second process --------------------------------------------------
def _send(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "printscp", "hl7", "send", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_printscp_hl7_send(served, tmp_path: Path) -> None:
    server, handler = served
    plain = tmp_path / "orders.hl7"  # segments a line, as an editor writes them
    plain.write_bytes(b"\n".join(message(c).replace(b"\r", b"\n").rstrip()
                                 for c in ("S1", "S2", "S3")) + b"\n")
    done = _send(str(plain), "--to", f"{HOST}:{server.port}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 S1: MSA AA", "2 S2: MSA AA", "3 S3: MSA AA"]
    assert [m for m, _ in handler.received] == [message(c) for c in ("S1", "S2", "S3")]
    assert len({p for _, p in handler.received}) == 1  # one connection

    framed = tmp_path / "framed.hl7"
    framed.write_bytes(frame(message("S4")) + frame(message("S5", "REJECT")))
    done = _send(str(framed), "--to", f"{HOST}:{server.port}")
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["1 S4: MSA AA", "2 S5: MSA AR"]

    holder, closed = refusing_port()
    with holder:
        done = _send(str(framed), "--to", f"{HOST}:{closed}", "--timeout", "5")
    assert done.returncode == 2 and "refused" in done.stderr.lower()


# -- pieces --------------------------------------------------------------------------------
def test_split_messages() -> None:
    one, two = message("A"), message("B")
    assert split_messages(one + two) == [one, two]
    assert split_messages((one + two).replace(b"\r", b"\r\n")) == [one, two]
    assert split_messages(b"\r\n" + frame(one) + b"\n" + frame(two)) == [one, two]
    assert split_messages(b"") == []


def test_ack_code() -> None:
    ack = (b"MSH|^~\\&|A|B|C|D|20260101||ACK^O01^ACK|1|P|2.5.1\rMSA|AE|X1\r"
           b"ERR||PID^1^3|101^Required field missing^HL70357|E||||patient id missing\r")
    assert ack_code(ack) == ("AE", "PID^1^3 patient id missing")
    assert ack_code(b"MSH|^~\\&|A\r") == ("", "no MSA segment in the answer")


def test_send_messages_from_a_thread_whose_loop_runs(served) -> None:
    """``send_messages`` called where an event loop is running (an asyncio application;
    Playwright's loop in the browser tests' worker) still sends and returns the ACKs."""
    server, _ = served

    async def inside_a_loop() -> list[bytes]:
        return send_messages(HOST, server.port, [message("L1")], timeout=5)

    (ack,) = run_coroutine(inside_a_loop())  # a loop runs where it is called
    assert ack_code(ack)[0] == "AA"
