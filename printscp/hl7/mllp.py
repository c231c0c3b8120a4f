"""HL7 v2 over MLLP (the Minimal Lower Layer Protocol): ``<VT> message <FS><CR>``.

:class:`MllpServer` is the listener ``printscp serve`` starts when ``[hl7] enabled``:
an asyncio server in a thread of its own with its own event loop, so the DICOM side's
threads never wait on it.  One connection carries many messages in sequence; each is
answered with its acknowledgement, in order, before the next is read (HL7 v2.5.1
ch. 2 original mode: the sender waits for the ACK).

The handler (``Inbox.receive``: parse, apply, write the log, fsync) runs in one worker
thread for the whole server, never on the loop: an fsync of tens of milliseconds must
not stall the other connections' reads, and applying one message at a time keeps two
connections from racing on one order (an NW on one and its CA on another).

Framing is done here on asyncio's own ``StreamReader.readuntil(<FS><CR>)`` rather than
with ``hl7.mllp``'s ``readblock``: that one raises ``InvalidBlockError`` after it has
consumed a block that does not start with ``<VT>``, so a message preceded by stray bytes
(a CR/LF "keep-alive" some interface engines send between messages) would be lost
unanswered.  As the MLLP receiver of HL7's transport specification does, bytes outside
a block are discarded and the block from its last ``<VT>`` is the message.  The client
side (:func:`send_messages`, ``printscp hl7 send``) is ``hl7.mllp``'s
``open_hl7_connection`` with its ``writeblock``/``readblock``.

Limits: a message larger than ``max_message_bytes`` closes the connection (a log line
says so: nothing is acknowledged, the sender sees the close), a connection silent for
``idle_timeout`` seconds is closed, and connections beyond ``max_connections`` are closed
as they arrive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

LOGGER = logging.getLogger("printscp.hl7.mllp")

START_BLOCK = b"\x0b"  # <VT>
END_BLOCK = b"\x1c"  # <FS>
CARRIAGE_RETURN = b"\x0d"
END = END_BLOCK + CARRIAGE_RETURN

#: ``(message, peer) -> ACK``: what the server calls for each message (Inbox.receive).
Handler = Callable[[bytes, str], bytes]


def frame(message: bytes) -> bytes:
    """``message`` as one MLLP block."""
    return START_BLOCK + message + END


@dataclass(frozen=True)
class MllpLimits:
    """What one connection may do (``[hl7]`` max_message_kb, idle_timeout,
    max_connections)."""

    max_message_bytes: int = 1 << 20
    idle_timeout: float = 300.0
    max_connections: int = 16


class _TlsFirst(asyncio.StreamReaderProtocol):
    """Reads nothing until :meth:`MllpServer._start_tls` starts TLS: a ClientHello read
    into the stream's buffer first would be lost to the TLS layer (and the handshake
    would hang)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()  # type: ignore[attr-defined]
        super().connection_made(transport)


class MllpServer:
    """``start()`` listens (the port is then known) and serves in a thread;
    ``stop()`` closes every connection, lets a message being applied finish, and
    leaves no thread behind."""

    def __init__(self, handler: Handler, host: str = "0.0.0.0", port: int = 2575, *,
                 limits: MllpLimits | None = None, ssl_context: ssl.SSLContext | None = None,
                 sock: socket.socket | None = None) -> None:
        self.handler = handler
        self.host, self._port = host, port
        self.limits = limits or MllpLimits()
        self.ssl_context = ssl_context
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        # One thread applies every message (see the module's docstring).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="printscp-hl7-apply")
        #: Messages answered and connections closed for a limit, for the log and tests.
        self.answered = 0
        self.refused = 0

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    def start(self) -> MllpServer:
        """Listen and serve; OSError (port in use...) here, in the caller's thread."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="printscp-hl7",
                                        daemon=True)
        self._thread.start()
        ready.wait()
        if self._error is not None:
            self._thread.join()
            self._executor.shutdown()
            raise self._error
        LOGGER.info("HL7 MLLP listening on %s:%d%s", self.host, self.port,
                    " with TLS" if self.ssl_context else "")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        where = {"sock": self._sock} if self._sock is not None else \
            {"host": self.host, "port": self._port, "reuse_address": True}
        def protocol() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=self.limits.max_message_bytes + 2, loop=loop)
            cls = _TlsFirst if self.ssl_context is not None else asyncio.StreamReaderProtocol
            return cls(reader, self._connection, loop=loop)

        try:  # TLS is started per connection (_start_tls): see there
            self._server = loop.run_until_complete(loop.create_server(
                protocol, **where))  # type: ignore[arg-type]
        except BaseException as exc:
            self._error = exc
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener and every connection, wait for the message being applied
        (it is durable; its ACK may not be sent, and the sender's retry is answered by
        the log's de-duplication), and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            self._executor.shutdown(wait=True)
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._executor.shutdown(wait=True)
        self._server = None
        LOGGER.info("HL7 MLLP listener stopped")

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{address[0]}:{address[1]}"
        task = asyncio.current_task()
        if len(self._tasks) >= self.limits.max_connections:
            self.refused += 1
            LOGGER.warning("HL7 connection from %s closed: %d connections open already "
                           "([hl7] max_connections)", peer, len(self._tasks))
            writer.close()
            return
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        LOGGER.info("HL7 connection from %s", peer)
        try:
            if self.ssl_context is not None and not await self._start_tls(writer, peer):
                return
            await self._serve(reader, writer, peer)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, ssl.SSLError) as exc:
            LOGGER.info("HL7 connection from %s lost: %s", peer, exc)
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _start_tls(self, writer: asyncio.StreamWriter, peer: str) -> bool:
        """The TLS handshake, here rather than by ``start_server(ssl=...)``: there a
        failed handshake (no, an untrusted or an expired client certificate) is only
        logged by asyncio at DEBUG; here it is a log line and a Security Alert in the
        audit trail, as on the DICOM side."""
        assert self.ssl_context is not None
        try:
            await asyncio.wait_for(writer.start_tls(self.ssl_context),
                                   min(self.limits.idle_timeout, 60.0))
        except (OSError, TimeoutError, EOFError) as exc:
            reason = "no handshake in time" if isinstance(exc, TimeoutError) else \
                getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            LOGGER.warning("HL7 connection from %s: TLS handshake failed: %s", peer, reason)
            with contextlib.suppress(Exception):
                from printscp.core import audit

                audit.node_authentication_failed(peer.rpartition(":")[0],
                                                 f"HL7 MLLP TLS handshake failed: {reason}")
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: str) -> None:
        limits = self.limits
        loop = asyncio.get_running_loop()
        while True:
            try:
                block = await asyncio.wait_for(reader.readuntil(END), limits.idle_timeout)
            except TimeoutError:
                LOGGER.info("HL7 connection from %s closed: idle for %g s ([hl7] "
                            "idle_timeout)", peer, limits.idle_timeout)
                return
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    LOGGER.warning("HL7 connection from %s closed in the middle of a message "
                                   "(%d bytes discarded)", peer, len(exc.partial))
                else:
                    LOGGER.info("HL7 connection from %s closed", peer)
                return
            except (asyncio.LimitOverrunError, ValueError):
                self.refused += 1
                LOGGER.warning("HL7 connection from %s closed: message over %d KiB "
                               "([hl7] max_message_kb)", peer, limits.max_message_bytes // 1024)
                return
            start = block.rfind(START_BLOCK)
            if start < 0:
                LOGGER.warning("HL7 from %s: %d bytes without a start block <VT> discarded",
                               peer, len(block))
                continue
            if start > 0:
                LOGGER.info("HL7 from %s: %d bytes before <VT> discarded", peer, start)
            message = block[start + 1:-len(END)]
            ack = await loop.run_in_executor(self._executor, self._apply, message, peer)
            if ack is None:
                return  # closed unanswered: the sender sends it again
            writer.write(frame(ack))
            await writer.drain()
            self.answered += 1

    def _apply(self, message: bytes, peer: str) -> bytes | None:
        """The handler's ACK; None when it raised.  The inbox answers bad input itself
        (AE/AR); it raises only when it cannot record the message (the database cannot
        be written).  Then no ACK is sent and the connection is closed: the sender,
        waiting for an ACK, sends the message again (MLLP's retry), where an AE or AR
        could make it give up on a message that was never looked at."""
        try:
            return self.handler(message, peer)
        except Exception:
            LOGGER.exception("HL7 message from %s not applied: closing the connection "
                             "unanswered, so that the sender sends it again", peer)
            return None

    def __enter__(self) -> MllpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the client side: printscp hl7 send ---------------------------------------------------
def split_messages(data: bytes) -> list[bytes]:
    """The messages of a file: MLLP blocks if it has any, else one message per ``MSH``
    segment; segments end with CR (LF and CRLF, as editors write them, become CR)."""
    if START_BLOCK in data:
        blocks = [b.split(END_BLOCK, 1)[0] for b in data.split(START_BLOCK)[1:]]
        return [b for b in blocks if b.strip()]
    text = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    messages: list[list[bytes]] = []
    for segment in text.split(b"\r"):
        if not segment.strip():
            continue
        if segment.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return [b"\r".join(m) + b"\r" for m in messages]


def ack_code(ack: bytes) -> tuple[str, str]:
    """MSA-1 (AA, AE, AR, CA, CE, CR) and a text: MSA-3, else the ERR segments' ERR-8
    (user message) or ERR-3 (error code); ``("", why)`` when there is no MSA."""
    segments = re.split(rb"[\r\n]+", ack)
    sep = b"|"
    for seg in segments:
        if seg.startswith(b"MSH") and len(seg) > 3:
            sep = seg[3:4]
    code, text, errors = "", "", []
    for seg in segments:
        fields = seg.split(sep)
        if fields[0] == b"MSA":
            code = fields[1].decode("latin-1") if len(fields) > 1 else ""
            text = fields[3].decode("latin-1") if len(fields) > 3 else ""
        elif fields[0] == b"ERR":
            detail = fields[8] if len(fields) > 8 and fields[8] else \
                fields[3] if len(fields) > 3 else b""
            location = fields[2] if len(fields) > 2 else b""
            errors.append(" ".join(x.decode("latin-1") for x in (location, detail) if x))
    if not code:
        return "", "no MSA segment in the answer"
    return code, "; ".join(x for x in (text, *errors) if x)


async def _send(host: str, port: int, messages: Iterable[bytes], timeout: float,
                ssl_context: ssl.SSLContext | None) -> list[bytes]:
    from hl7.mllp import open_hl7_connection

    reader, writer = await asyncio.wait_for(
        open_hl7_connection(host, port, ssl=ssl_context, limit=64 << 20), timeout)
    acks = []
    try:
        for message in messages:
            writer.writeblock(message)
            await writer.drain()
            acks.append(await asyncio.wait_for(reader.readblock(), timeout))
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return acks


def send_messages(host: str, port: int, messages: Iterable[bytes], *, timeout: float = 30.0,
                  ssl_context: ssl.SSLContext | None = None) -> list[bytes]:
    """Send ``messages`` in order over one MLLP connection; their ACKs, in order.
    OSError (refused, unreachable, timed out) when the peer cannot be reached or drops
    the connection.  Callable from any thread, also one whose event loop is running (a
    caller's asyncio application, a test beside Playwright): the exchange then runs on a
    thread of its own."""
    batch = list(messages)
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: the usual case, the command line
            return asyncio.run(_send(host, port, batch, timeout, ssl_context))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(
                _send(host, port, batch, timeout, ssl_context))).result()
    except TimeoutError:
        raise TimeoutError(f"no answer from {host}:{port} in {timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise ConnectionError(f"{host}:{port} closed the connection before it "
                              "acknowledged") from None
