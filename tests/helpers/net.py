"""Loopback ports and waiting: a free port, a port that refuses, waiting for a port to
listen or for any condition to hold."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def refusing_port() -> tuple[socket.socket, int]:
    """A socket bound to a loopback port but not listening, and its port: connections
    are refused, and no other test (xdist worker) is given the port while the socket
    stays open.  Close the socket to let a server take the port."""
    holder = socket.socket()
    holder.bind((HOST, 0))
    return holder, int(holder.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def wait_until(predicate: Callable[[], T], timeout: float = 10.0,
               interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns a true value or ``timeout`` seconds pass; its
    last value (false on timeout), for the caller to assert on."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_for_port(port: int, timeout: float = 10.0,
                  process: subprocess.Popen | None = None) -> None:
    """Return once ``127.0.0.1:port`` accepts connections; RuntimeError if ``process``
    (the server, when given) exits first, TimeoutError after ``timeout`` seconds."""
    def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before "
                               f"listening on port {port}")
        return port_open(port)

    if not wait_until(ready, timeout):
        raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def run_coroutine(coro: Any) -> Any:
    """``asyncio.run(coro)`` on a thread of its own.  A session's Playwright (the browser
    tests) keeps an event loop running in the main thread of the xdist worker it ran in,
    and ``asyncio.run`` refuses to start beside it."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
