"""The console's HTTP server: bound at construction, served on a thread, stopped cleanly."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from fastapi import FastAPI

from printscp.http.server import HttpServer


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "x" * 2000}

    return app


def test_serves_on_a_free_port_and_stops_without_a_thread_left():
    server = HttpServer(_app(), "127.0.0.1", 0).start()
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=server.url) as client:  # one kept-alive connection
            for _ in range(3):
                assert client.get("/ping").json()["pong"] == "x" * 2000
    finally:
        server.stop()
    assert not [t for t in threading.enumerate() if t.name == "printscp-http"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/ping", timeout=2)


def test_accepted_connections_send_without_delay():
    """Nagle's algorithm off: a response's body is not held for the client's ACK."""
    server = HttpServer(_app(), "127.0.0.1", 0)
    try:
        assert server._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.stop()


def test_a_port_in_use_fails_at_construction():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            HttpServer(_app(), "127.0.0.1", port)
