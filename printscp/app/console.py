"""The console beside the DICOM node: its :class:`~printscp.http.context.Console` and
its HTTP server, started by ``printscp serve`` after the DICOM side is ready.

The console runs in the process that writes the log: the node itself with one worker,
the parent of the workers otherwise, where it shares no interpreter lock with the
receiving processes.  A job the console writes into the spool (a reprint, a released
job) is claimed by whichever worker's spool polls first
(:func:`printscp.jobs.spool.request_enqueue`), as one the command line writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from printscp.config import NodeConfig

LOGGER = logging.getLogger("printscp.console")


class ConsoleError(Exception):
    """The console cannot start (non-loopback without users, port in use...)."""


def start_console(config: NodeConfig, *, dicom_port: Callable[[], int | None],
                  logs: Any = None, tls_port: Callable[[], int | None] = lambda: None
                  ) -> Any:
    """Build the console over ``config`` and serve it on ``[http]`` bind:port; returns
    the running :class:`~printscp.http.server.HttpServer` (``.url``, ``.stop()``)."""
    from printscp.http.app import create_app
    from printscp.http.auth import check_startable
    from printscp.http.context import Console, RecentLogs
    from printscp.http.server import HttpServer

    reason = check_startable(config, config.data_path)
    if reason:
        raise ConsoleError(reason)
    from printscp.core import audit

    audit.configure(config.data_path, config.audit, ae_title=config.ae_title)
    console = Console(config, dicom_port=dicom_port, tls_port=tls_port,
                      logs=logs if logs is not None else RecentLogs())
    console.job_index.sync()
    try:
        server = HttpServer(create_app(console), config.http.bind, config.http.port)
    except OSError as exc:
        raise ConsoleError(f"the console cannot listen on {config.http.bind}:"
                           f"{config.http.port}: {exc.strerror or exc}") from None
    server.start()
    LOGGER.info("console at %s", server.url)
    return server
