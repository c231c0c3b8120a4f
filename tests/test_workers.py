"""Worker processes sharing a port: the least busy one takes each association."""

from __future__ import annotations

import multiprocessing
import socket
import sys

import pytest
from helpers.nodes import node_config

from printscp.app.node import Node
from printscp.app.workers import SharedLoad


def test_shared_load_prefers_the_least_busy():
    counts = multiprocessing.Array("i", 3, lock=False)
    a, b = SharedLoad(counts, 0), SharedLoad(counts, 1)
    assert not a.busier_than_another()
    a.opened()
    assert a.busier_than_another() and not b.busier_than_another()
    b.opened()
    assert a.busier_than_another()  # 1, 1, 0: both are busier than the third
    counts[2] = 1
    assert not a.busier_than_another() and not b.busier_than_another()
    a.closed()
    a.closed()  # never below zero
    assert counts[0] == 0 and b.busier_than_another()


@pytest.mark.slow
def test_two_nodes_on_one_socket_take_two_associations_each(tmp_path, monkeypatch, client):
    """Four associations held open split 2-2, whichever node wakes first: a node with
    more waits for the other (the wait made long here, so timing cannot decide)."""
    monkeypatch.setattr(SharedLoad, "DEFER", 0.3)
    listening = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = listening.getsockname()[1]
    config = node_config(tmp_path, port=port)
    counts = multiprocessing.Array("i", 2, lock=False)
    nodes = [Node(config, listen_socket=listening, recover=i == 0,
                  load=SharedLoad(counts, i)).start() for i in range(2)]
    associations = []
    try:
        for _ in range(4):
            associations.append(client(port, "1.2.840.10008.1.1", calling="CLIENT"))
        assert list(counts) == [2, 2]
        assert sorted(len(n.ae.active_associations) for n in nodes) == [2, 2]
        assert all(a.send_c_echo().Status == 0 for a in associations)
    finally:
        for assoc in associations:
            assoc.release()
        for node in nodes:
            node.stop()
    assert list(counts) == [0, 0]


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_worker_that_dies_before_it_is_ready_fails_the_start_at_once(tmp_path, monkeypatch):
    """Not after the 60 s a worker has to report: the node refuses to start, naming it."""
    import os
    import time

    from printscp.app.workers import WorkerPool

    monkeypatch.setattr(Node, "__init__", lambda *a, **k: os._exit(3))  # forked: inherited
    pool = WorkerPool(node_config(tmp_path), 2)
    started = time.monotonic()
    with pytest.raises(OSError, match=r"worker \d ended \(exit status 3\) before it was ready"):
        pool.start()
    assert time.monotonic() - started < 10
