"""Serving the console: uvicorn on a thread of the node's process.

The socket is bound before the thread starts, so a port in use is an error at start
(``printscp serve`` says so and exits) rather than a line in a log; ``port`` is the one
bound (``--http 127.0.0.1:0`` picks a free port).  ``printscp serve`` binds it with
:func:`listen` before it imports the web stack (uvicorn is imported when the server is
made): connections wait in the socket's queue until the console serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

#: Seconds ``stop()`` waits for open requests before the thread is left to die.
STOP_TIMEOUT = 5.0

#: Bytes a connection may have queued in its transport before a response waits for
#: them to go (asyncio's default: 64 KiB, resumed at 16 KiB).  A WADO-RS study is
#: half-megabyte files in a row: with 64 KiB each file waited until the one before had
#: nearly drained, and the socket ran dry between them.
WRITE_BUFFER = 4 << 20


def _protocol() -> type:
    """uvicorn's HTTP/1.1 protocol, with :data:`WRITE_BUFFER` on each connection."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            transport.set_write_buffer_limits(high=WRITE_BUFFER)
            super().connection_made(transport)

    return Protocol


def listen(host: str, port: int) -> socket.socket:
    """The console's listening socket on ``host:port`` (OSError if it cannot bind)."""
    sock = socket.create_server((host, port), family=_family(host), backlog=128)
    # Inherited by every accepted connection (Linux): uvicorn writes a response's
    # head and body separately, and on a kept-alive connection Nagle's algorithm held
    # the body until the client's delayed ACK, 40 ms later, for every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def url_of(host: str, port: int) -> str:
    """The console's address when it listens on ``host`` (as configured) and ``port``."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpServer:
    """``start()`` serves ``app`` on ``host:port`` (or on ``sock``, from :func:`listen`)
    until ``stop()``."""

    def __init__(self, app: Any, host: str, port: int, sock: socket.socket | None = None
                 ) -> None:
        import uvicorn

        self.app, self.host = app, host
        self._sock = sock if sock is not None else listen(host, port)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=STOP_TIMEOUT, http=_protocol())
        config.load()  # the protocol and loop modules, here rather than when serving
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return url_of(self.host, self.port)

    def start(self, timeout: float = 10.0) -> HttpServer:
        self._thread = threading.Thread(target=self._run, name="printscp-http", daemon=True)
        self._thread.start()
        done = threading.Event()

        def started() -> None:
            while not self._server.started and self._thread and self._thread.is_alive():
                done.wait(0.01)

        started()
        if not self._server.started:
            raise OSError(f"the console did not start on {self.url}")
        return self

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT + 1)
            self._thread = None
        with contextlib.suppress(OSError):
            self._sock.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
