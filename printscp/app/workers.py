"""Several receiving processes on one port: how ``printscp serve`` uses every core.

pynetdicom handles each association in Python threads, so one process receives on
one core at most (the GIL).  ``printscp serve`` therefore starts ``workers``
processes, each a complete :class:`~printscp.app.node.Node` with its own render
process, accepting on one listening socket the parent opened: every worker polls
it and the least busy one accepts the connection (:class:`SharedLoad`).
(SO_REUSEPORT, used before, hashes connections to workers: four storescu on
loopback often all landed on one worker while the other idled.)  Nothing else is
shared but the data directory: an
association's print objects live in the process that received it, job ids and
film names are unique, and only worker 0 recovers the spool at start.

The workers are forked (on Linux), before the parent has started any thread: they
inherit the configuration and the modules it pulled in (pydicom, numpy: 0.5 s of CPU
each worker spent importing again when spawned), and import the receiving stack in
parallel.  (Their render processes are spawned: a worker has threads by then.)

A worker accepts only once every worker is ready (imports done, services started, its
render process started): until then connections wait in the listening socket's queue.
Otherwise the first worker ready took every association of a burst sent as soon as the
node answered, and served them on one core while the other was still importing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from printscp.app import logs
from printscp.app.logs import LogSettings
from printscp.config import NodeConfig

READY_TIMEOUT = 60.0


class SharedLoad:
    """Each worker's open associations, in memory the workers share, so that the
    least busy takes a new one.

    Every worker wakes for a connection; one that holds more associations than another
    waits :data:`DEFER` seconds before trying to accept it, in which a less busy
    worker (woken by the same connection) takes it.  Left to the race, four storescu
    connections went 3-1 to two workers in half the runs, and the worker with three
    then set the pace (about 400 instead of 480 instances/s).  A worker too busy to
    accept in time still leaves the connection to the other: nobody waits longer.
    """

    DEFER = 0.002

    def __init__(self, counts: Any, index: int) -> None:
        self.counts, self.index = counts, index
        self._lock = threading.Lock()  # += on shared memory is not atomic across threads

    def busier_than_another(self) -> bool:
        mine = self.counts[self.index]
        return any(n < mine for i, n in enumerate(self.counts) if i != self.index)

    def opened(self) -> None:
        with self._lock:
            self.counts[self.index] += 1

    def closed(self) -> None:
        with self._lock:
            self.counts[self.index] = max(0, self.counts[self.index] - 1)

    def idle(self) -> bool:
        """No worker holds an association."""
        return not any(self.counts)


def listen(config: NodeConfig) -> tuple[socket.socket | None, socket.socket | None]:
    """The node's listening sockets, plain and TLS, shared by the workers (with port 0,
    on the port the kernel picked); None where the node does not listen.

    ``printscp serve`` opens them first thing after reading its configuration: a
    client connecting then waits in the queue until the node accepts."""
    plain = tls = None
    try:
        if not (config.tls.enabled and not config.tls.plain):
            plain = socket.create_server((config.bind, config.port), backlog=128)
        if config.tls.enabled:
            tls = socket.create_server((config.bind, config.tls.port), backlog=128)
    except OSError:
        if plain is not None:
            plain.close()
        raise
    return plain, tls


def _worker_main(config: NodeConfig, index: int, sock: socket.socket | None, stop: Any,
                 ready: Any, loads: Any, log_queue: Any = None,
                 log_settings: LogSettings | None = None,
                 tls_sock: socket.socket | None = None, go: Any = None) -> None:
    from printscp.app.stopping import die_with_parent

    die_with_parent()
    if log_queue is not None and log_settings is not None:
        logs.in_worker(log_queue, log_settings)  # before the node, which reads the levels
    # The handler only raises a flag: it runs between two bytecodes of this thread,
    # which may hold the shared stop event's lock (in wait()); taking that lock there
    # (stop.set()) deadlocked the worker, and the parent's stop() with it.
    terminated: list[bool] = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    try:
        from printscp.app.node import Node  # already imported by a forking parent

        node = Node(config, listen_socket=sock, recover=index == 0,
                    load=SharedLoad(loads, index), tls_socket=tls_sock).start(accept=False)
        node.wait_ready(READY_TIMEOUT)
    except Exception as exc:
        ready.put((index, f"{type(exc).__name__}: {exc}"))
        return
    ready.put((index, None))
    while not terminated and not stop.is_set():  # until every worker is ready
        if go is None or go.wait(0.05):
            node.accept()
            break
    while not terminated and not stop.wait(0.2):
        pass
    node.stop()


class WorkerPool:
    """``start()`` the worker processes, ``stop()`` them (each finishes its current film).

    Workers are not daemonic (they have render processes of their own); they die
    with the parent through :func:`~printscp.app.node.die_with_parent` instead.
    """

    def __init__(self, config: NodeConfig, count: int, *,
                 log_settings: LogSettings | None = None,
                 log_handlers: list[logging.Handler] | None = None) -> None:
        self.config = config
        self.count = count
        self._log_settings = log_settings
        self._log_handlers = log_handlers
        self.port = config.port
        #: The DICOM TLS port, None without TLS.
        self.tls_port: int | None = None
        # fork: see the module's docstring; elsewhere than Linux, fork is not safe.
        self._ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        self._stop = self._ctx.Event()
        self._go = self._ctx.Event()  # every worker is ready: accept
        self._procs: list[Any] = []
        self._logs: logs.WorkerLogs | None = None
        self._loads: Any = None

    def start(self, sockets: tuple[socket.socket | None, socket.socket | None] | None = None
              ) -> WorkerPool:
        """Start the workers on ``sockets`` (from :func:`listen`; by default opened
        here, and closed here either way) and return once each is ready and accepts.

        Call it before this process starts threads (they would be forked half-way):
        the log listener starts here, after the workers."""
        listening, tls_listening = sockets if sockets is not None else listen(self.config)
        try:
            config = self.config
            if listening is not None:
                self.port = listening.getsockname()[1]
                config = replace(config, port=self.port)
            if tls_listening is not None:
                self.tls_port = tls_listening.getsockname()[1]
                config = replace(config, tls=replace(config.tls, port=self.tls_port))
                if listening is None:
                    self.port = self.tls_port
            if self._ctx.get_start_method() == "fork":
                # One resource tracker, inherited, for every worker's render process.
                from multiprocessing import resource_tracker

                resource_tracker.ensure_running()
                # What is imported so far, out of the collector's way: the workers'
                # collections would otherwise write to (and copy) every page of it.
                gc.freeze()
            ready = self._ctx.Queue()
            loads = self._loads = self._ctx.Array("i", self.count, lock=False)  # SharedLoad
            if self._log_settings is not None and self._log_handlers is not None:
                self._logs = logs.WorkerLogs(self._ctx, self._log_settings,
                                             self._log_handlers)
            log_queue = self._logs.queue if self._logs is not None else None
            for index in range(self.count):
                proc = self._ctx.Process(target=_worker_main, name=f"printscp-worker-{index}",
                                         args=(config, index, listening, self._stop, ready,
                                               loads, log_queue, self._log_settings,
                                               tls_listening, self._go))
                proc.start()
                self._procs.append(proc)
            if self._logs is not None:
                self._logs.start()
            errors = self._wait_ready(ready)
            if errors:
                self.stop()
                raise OSError("; ".join(errors))
            self._go.set()
        finally:
            for sock in (listening, tls_listening):  # each ready worker holds its own copy
                if sock is not None:
                    sock.close()
        return self

    def _wait_ready(self, ready: Any) -> list[str]:
        """Every worker's report (errors, if any); a worker that died without one is an
        error at once, not after :data:`READY_TIMEOUT`."""
        errors: list[str] = []
        pending = set(range(self.count))
        deadline = time.monotonic() + READY_TIMEOUT
        while pending and not errors:
            try:
                index, error = ready.get(timeout=0.2)
            except queue.Empty:
                dead = [i for i in sorted(pending) if not self._procs[i].is_alive()]
                if dead:
                    errors.append(f"worker {dead[0]} ended (exit status "
                                  f"{self._procs[dead[0]].exitcode}) before it was ready")
                elif time.monotonic() > deadline:
                    errors.append("a worker did not start in time")
                continue
            pending.discard(index)
            if error:
                errors.append(f"worker {index}: {error}")
        return errors

    def idle(self) -> bool:
        """No worker holds an association."""
        return self._loads is None or not any(self._loads)

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
        with contextlib.suppress(Exception):
            self._procs.clear()
        if self._logs is not None:  # after the workers: their last lines are written
            self._logs.stop()
            self._logs = None
