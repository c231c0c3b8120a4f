"""Several receiving processes on one port: how ``printscp serve`` uses every core.

pynetdicom handles each association in a Python thread, so one process receives
on one core at most (the GIL), and its 1-ms polling loops cost more the more
associations are open.  ``printscp serve`` therefore starts ``workers`` processes,
each a complete :class:`~printscp.node.Node` with its own render process,
listening on the same port with SO_REUSEPORT; the kernel spreads incoming
associations over them.  Nothing is shared but the data directory: an
association's print objects live in the process that received it, job ids and
film names are unique, and only worker 0 recovers the spool at start.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import socket
from dataclasses import replace
from typing import Any

from printscp.config import NodeConfig

READY_TIMEOUT = 60.0


def _reserve_port(config: NodeConfig) -> socket.socket:
    """Bind (without listening) so the port is ours: with port 0, all workers then share
    the port the kernel picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.bind, config.port))
    return sock


def _worker_main(config: NodeConfig, index: int, stop: Any, ready: Any) -> None:
    from printscp.node import Node, die_with_parent

    die_with_parent()
    # The handler only raises a flag: it runs between two bytecodes of this thread,
    # which may hold the shared stop event's lock (in wait()); taking that lock there
    # (stop.set()) deadlocked the worker, and the parent's stop() with it.
    terminated: list[bool] = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
    try:
        node = Node(config, reuse_port=True, recover=index == 0).start()
    except Exception as exc:
        ready.put((index, f"{type(exc).__name__}: {exc}"))
        return
    ready.put((index, None))
    while not terminated and not stop.wait(0.2):
        pass
    node.stop()


class WorkerPool:
    """``start()`` the worker processes, ``stop()`` them (each finishes its current film).

    Workers are not daemonic (they have render processes of their own); they die
    with the parent through :func:`~printscp.node.die_with_parent` instead.
    """

    def __init__(self, config: NodeConfig, count: int) -> None:
        self.config = config
        self.count = count
        self.port = config.port
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._procs: list[Any] = []

    def start(self) -> WorkerPool:
        reserved = _reserve_port(self.config)
        try:
            self.port = reserved.getsockname()[1]
            config = replace(self.config, port=self.port)
            ready = self._ctx.Queue()
            for index in range(self.count):
                proc = self._ctx.Process(target=_worker_main, name=f"printscp-worker-{index}",
                                         args=(config, index, self._stop, ready))
                proc.start()
                self._procs.append(proc)
            errors = []
            for _ in range(self.count):
                try:
                    index, error = ready.get(timeout=READY_TIMEOUT)
                except queue.Empty:
                    errors.append("a worker did not start in time")
                    break
                if error:
                    errors.append(f"worker {index}: {error}")
            if errors:
                self.stop()
                raise OSError("; ".join(errors))
        finally:
            reserved.close()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
        with contextlib.suppress(Exception):
            self._procs.clear()
