"""The console beside the DICOM node: its :class:`~printscp.http.context.Console` and
its HTTP server, started by ``printscp serve`` after the DICOM side is ready.

The console runs in the process that writes the log: the node itself with one worker,
the parent of the workers otherwise, where it shares no interpreter lock with the
receiving processes.  A job the console writes into the spool (a reprint, a released
job) is claimed by whichever worker's spool polls first
(:func:`printscp.jobs.spool.request_enqueue`), as one the command line writes.

Its start is in steps, so that ``printscp serve`` can refuse a console that may not
start and bind its port before the DICOM port listens (:func:`check_console`,
:func:`open_console`: nothing heavy), and import the web stack (FastAPI, uvicorn: about
0.8 s of CPU) later, where it takes no core from the receiving processes
(:func:`build_console`, which starts no thread, so it may run at the lowest priority).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from printscp.config import NodeConfig

LOGGER = logging.getLogger("printscp.console")


class ConsoleError(Exception):
    """The console cannot start (non-loopback without users, port in use...)."""


def check_console(config: NodeConfig) -> None:
    """ConsoleError if the console may not start as configured (bound beyond loopback
    with no users, a user store it cannot read)."""
    from printscp.http.users import check_startable  # not http.auth: FastAPI

    reason = check_startable(config, config.data_path)
    if reason:
        raise ConsoleError(reason)


def open_console(config: NodeConfig) -> socket.socket:
    """The console's listening socket on ``[http]`` bind:port; ConsoleError if it
    cannot bind."""
    from printscp.http.server import listen

    try:
        return listen(config.http.bind, config.http.port)
    except OSError as exc:
        raise ConsoleError(f"the console cannot listen on {config.http.bind}:"
                           f"{config.http.port}: {exc.strerror or exc}") from None


def console_url(config: NodeConfig, sock: socket.socket) -> str:
    """Where the console on ``sock`` answers."""
    from printscp.http.server import url_of

    return url_of(config.http.bind, sock.getsockname()[1])


def build_console(config: NodeConfig, sock: socket.socket, *,
                  dicom_port: Callable[[], int | None], logs: Any = None,
                  tls_port: Callable[[], int | None] = lambda: None) -> Any:
    """The console over ``config``, to serve on ``sock``: an
    :class:`~printscp.http.server.HttpServer` not yet started."""
    from printscp.core import audit
    from printscp.http.app import create_app
    from printscp.http.context import Console, RecentLogs
    from printscp.http.server import HttpServer

    audit.configure(config.data_path, config.audit, ae_title=config.ae_title)
    console = Console(config, dicom_port=dicom_port, tls_port=tls_port,
                      logs=logs if logs is not None else RecentLogs())
    console.job_index.sync()
    return HttpServer(create_app(console), config.http.bind, config.http.port, sock=sock)


def start_console(config: NodeConfig, *, dicom_port: Callable[[], int | None],
                  logs: Any = None, tls_port: Callable[[], int | None] = lambda: None
                  ) -> Any:
    """Build the console over ``config`` and serve it on ``[http]`` bind:port; returns
    the running :class:`~printscp.http.server.HttpServer` (``.url``, ``.stop()``)."""
    check_console(config)
    sock = open_console(config)
    try:
        server = build_console(config, sock, dicom_port=dicom_port, logs=logs,
                               tls_port=tls_port)
    except BaseException:
        sock.close()
        raise
    server.start()
    LOGGER.info("console at %s", server.url)
    return server
