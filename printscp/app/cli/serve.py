"""``printscp serve``: run the node until SIGINT or SIGTERM.

``-v``/``-d`` set the log level; :func:`printscp.app.cli.main.setup_logging` applies them.
Exit status: 0 stopped by a signal, 2 a bad configuration or the node could not start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp import __version__

if TYPE_CHECKING:
    from printscp.config import NodeConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp serve`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser(
        "serve", help="run the DICOM print server",
        description="Run the printscp node: Verification, Print Management (grayscale "
        "and color, Presentation LUT), Storage and Query/Retrieve (FIND, MOVE, GET). Films "
        "are written as PDF under DATA_DIR/films/, stored instances under DATA_DIR/archive/. "
        "With [hl7] enabled, also HL7 v2 orders and patient updates over MLLP (port 2575).",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration (docs/configuration.md)")
    p.add_argument("--port", type=int, help="TCP port (default 11112)")
    p.add_argument("--ae-title", help="our AE title (default PRINTSCP)")
    p.add_argument("--bind", help="address to listen on (default 0.0.0.0, all interfaces)")
    p.add_argument("--data-dir", help="where spool, films and logs go (default ./printscp-data)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="receiving processes sharing the port (default: one per core, max 4)")
    p.add_argument("--remote", action="append", default=[], metavar="AE@HOST:PORT",
                   help="a peer (C-MOVE destination...), in addition to the config's [[remote]] "
                   "table; repeatable")
    http = p.add_mutually_exclusive_group()
    http.add_argument("--http", metavar="HOST:PORT",
                      help="serve the console and its API there (default [http] bind and "
                      "port: 127.0.0.1:8080; port 0 picks a free one)")
    http.add_argument("--no-http", action="store_true", help="no console, no HTTP at all")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log one line per association and per job state change")
    p.add_argument("-d", "--debug", action="count", default=0,
                   help="also one line per DIMSE message; -dd adds pynetdicom's own dumps")
    p.add_argument("--log-file", type=Path, metavar="PATH",
                   help="also write the log to PATH (rotated at 10 MB, 5 kept)")
    p.add_argument("--log-format", choices=["text", "json"], default="text",
                   help="text lines, or one JSON object a line with the fields "
                   "(association, calling_ae, job_id...)")
    p.set_defaults(func=run)


def http_option(value: str | None, no_http: bool, config: NodeConfig) -> NodeConfig:
    """``config`` with ``--http HOST:PORT`` or ``--no-http`` applied."""
    from dataclasses import replace

    from printscp.config import HttpConfig
    from printscp.core.errors import ConfigError

    if no_http:
        return replace(config, http=replace(config.http, enabled=False))
    if value is None:
        return config
    host, colon, port = value.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit():
        raise ConfigError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)", "--http")
    try:
        http = HttpConfig(enabled=True, bind=host, port=int(port))
    except ConfigError as err:
        raise ConfigError(err.problem, "--http") from None
    return replace(config, http=http)


def run(args: argparse.Namespace) -> int:
    """Start the node; see :func:`_serve` for the order of a start."""
    # From the first instant (python -m printscp serve keeps them from before its
    # imports): a SIGTERM while the node starts (a service manager restarting it) is
    # kept for when the start is done, then the node stops in order.  Killed half-way
    # by the default handler, the parent left its workers' render processes, still
    # importing, orphaned for good.
    from printscp.app.stopping import keep

    stopping = keep()
    from printscp.config import load_config

    # A ConfigError is left to printscp.app.cli.dispatch, which reports every one.
    config = load_config(args.config, port=args.port, ae_title=args.ae_title,
                         bind=args.bind, data_dir=args.data_dir, workers=args.workers)
    if args.remote:
        from dataclasses import replace

        from printscp.core.remote import RemoteAE

        config = replace(config, remote=config.remote + tuple(
            RemoteAE.parse(r) for r in args.remote)).validate()
    config = http_option(args.http, args.no_http, config)
    return _serve(args, config, stopping)


def _serve(args: argparse.Namespace, config: NodeConfig, stopping: list[int]) -> int:
    """The order of a start: what may refuse it (nothing heavy), the listening sockets
    (a client connecting from then on waits in their queue), the workers, which accept
    once every one is ready, and the console last.

    With several workers the parent imports the receiving stack once listening, before
    forking them (they share it), and serves nothing itself.  It imports the console's web
    stack (0.8 s of CPU) once the workers are ready and have been idle a moment, at the
    lowest priority (:mod:`printscp.core.background`), or at once and at the normal
    priority when a client connects to the console first (a browser, a health check, a
    metrics scraper), and serves the console once that is done: the start line names it
    at once (its socket is bound; a request waits in its queue until then).  With one
    worker the node is this process, and the console is made before it accepts: a
    low-priority thread holding this interpreter's lock would stall the receiving threads.
    """
    import time

    from printscp.app import logs, telemetry
    from printscp.services.access import exposure_warnings

    for warning in exposure_warnings(config):  # query/retrieve open to "any" beyond loopback
        print(warning, file=sys.stderr, flush=True)
    # Before anything imports prometheus_client (the node does): multiprocess counts.
    telemetry.prepare(config.data_path)
    if config.tls.enabled:  # a bad certificate, key or CA bundle: one line, nothing opened
        from printscp.core.tls import server_context

        server_context(config.tls)
    from printscp.app.console import (
        ConsoleError,
        build_console,
        check_console,
        console_url,
        open_console,
    )
    from printscp.app.workers import listen

    console_socket = None
    try:
        if config.http.enabled:  # before the DICOM port opens: refuse at once
            check_console(config)
        sockets = listen(config)
        if config.http.enabled:
            try:
                console_socket = open_console(config)
            except ConsoleError:
                for sock in sockets:
                    if sock is not None:
                        sock.close()
                raise
    except (ConsoleError, OSError) as err:
        print(f"printscp serve: {err}", file=sys.stderr)
        return 2
    # Here, once listening and before the workers are forked: they inherit the receiving
    # stack instead of each importing it, and a pynetdicom the network layer was not made
    # for is refused in one line (UnsupportedPynetdicom, printscp.app.cli.dispatch)
    # rather than in every worker.
    from printscp.app.node import Node

    recent = logs.recent_lines(getattr(args, "log_handlers", []))
    workers = config.worker_count
    console: Any = None
    node: Any = None
    try:
        if workers == 1:
            node = Node(config, listen_socket=sockets[0], tls_socket=sockets[1])
            node.start(accept=False)
            node.wait_ready()
            if console_socket is not None:
                console = build_console(config, console_socket, dicom_port=lambda: node.port,
                                        tls_port=lambda: node.tls_port, logs=recent).start()
            node.accept()
        else:
            from printscp.app.workers import WorkerPool

            node = WorkerPool(config, workers, log_settings=args.log_settings,
                              log_handlers=args.log_handlers)
            node.start(sockets)  # returns once every worker is ready and accepts
    except (OSError, ValueError) as err:
        if workers == 1 and node is not None:
            node.stop()
        print(f"printscp serve: {err}", file=sys.stderr)
        return 2
    hl7: Any = None
    if config.hl7.enabled:
        from printscp.app.hl7_listener import start_hl7, stop_hl7

        try:
            hl7 = start_hl7(config)
        except (OSError, ValueError) as err:
            if console is not None:
                console.stop()
            node.stop()
            print(f"printscp serve: HL7 cannot listen on {config.hl7_bind}:"
                  f"{config.hl7.port}: {getattr(err, 'strerror', None) or err}",
                  file=sys.stderr)
            return 2
        where_hl7 = f"; HL7 MLLP{' with TLS' if config.hl7.tls else ''} on " \
            f"{config.hl7_bind}:{hl7.port}"
    else:
        where_hl7 = ""
    films = (config.data_path / "films").resolve()
    where = f"; console at {console_url(config, console_socket)}" \
        if console_socket is not None else ""
    tls_port = node.tls_port
    if tls_port is None:
        listening = f"{config.bind}:{node.port}"
    elif config.tls.plain:
        listening = f"{config.bind}:{node.port} and with TLS on {config.bind}:{tls_port}"
    else:
        listening = f"{config.bind}:{tls_port} with TLS only"
    print(f"printscp {__version__}: {config.ae_title} listening on {listening}; "
          f"films go to {films} ({workers} worker process{'es' if workers > 1 else ''})"
          f"{where}{where_hl7}", flush=True)
    from functools import partial

    from printscp.core.background import Background, IdleWatch

    watch = IdleWatch(node.idle) if console_socket is not None and console is None else None
    warming: Any = None
    status = 0
    while not stopping:
        time.sleep(0.1)
        wanted = watch is not None and _waiting(console_socket)
        if watch is not None and (wanted or watch.due()):
            watch = None
            warming = Background(partial(
                build_console, config, console_socket, dicom_port=lambda: node.port,
                tls_port=lambda: node.tls_port, logs=recent), "printscp-console-warm-up",
                lowest=not wanted)
        if warming is not None and warming.done:
            try:  # the serving thread made here, by a thread of normal priority
                console = warming.wait().start()
            except Exception as err:  # any: the node stops, exit status 2
                print(f"printscp serve: the console did not start: {err}", file=sys.stderr,
                      flush=True)
                status = 2
                break
            finally:
                warming = None
    print("printscp: stopping (jobs not yet rendered stay spooled for the next start)",
          flush=True)
    if hl7 is not None:
        stop_hl7(hl7)
    if console is not None:
        console.stop()
    node.stop()
    return status


def _waiting(sock: Any) -> bool:
    """Whether a client waits in ``sock``'s queue (a listening socket: readable)."""
    import select

    return bool(select.select([sock], [], [], 0)[0])
