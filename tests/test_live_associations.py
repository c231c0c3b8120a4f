"""Each node process publishes its open associations (who, since when, services,
operations, bytes) to ``data/run/``; the console merges every live process's list."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers.net import wait_until
from pydicom import dcmread

from printscp.app.live import LiveAssociations
from printscp.core import live
from printscp.core.live import read_live

VERIFICATION = "1.2.840.10008.1.1"


@pytest.fixture
def live_node(make_node):
    """A node whose open associations are published (as ``printscp serve`` wires it)."""
    started = []

    def make(**overrides):
        node = make_node(start=False, **overrides)
        published = LiveAssociations(node.config.data_path, interval=0.05)
        handlers = node.handlers
        node.handlers = lambda: [*handlers(), *published.handlers()]
        node.start()
        published.start()
        started.append(published)
        return node, published

    yield make
    for published in started:
        published.stop()


def test_lists_of_live_processes_are_merged_and_dead_ones_dropped(tmp_path):
    live.publish(tmp_path, [{"id": "b", "since": "2024-01-01T10:00:01Z"}])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = live.live_file(tmp_path, int(dead.stdout))
    stale.write_text(json.dumps([{"id": "ghost", "since": "2024-01-01T09:00:00Z"}]))
    other = live.live_file(tmp_path, os.getppid())  # a live process (pytest's parent)
    other.write_text(json.dumps([{"id": "a", "since": "2024-01-01T10:00:00Z"}]))
    assert [a["id"] for a in read_live(tmp_path)] == ["a", "b"]
    assert not stale.exists()
    live.publish(tmp_path, [])  # none open: the file goes
    assert not live.live_file(tmp_path).exists()
    assert read_live(tmp_path / "nothing-here") == []


@pytest.mark.slow
def test_an_open_association_is_published_and_goes_when_it_closes(live_node, client,
                                                                   samples):
    node, _ = live_node()
    data = node.config.data_path
    ct = dcmread(samples / "CT_small.dcm")
    assoc = client(node.port, VERIFICATION,
                   (ct.SOPClassUID, ct.file_meta.TransferSyntaxUID), calling="LIVE_SCU")
    assert assoc.send_c_echo().Status == 0
    assert assoc.send_c_store(ct).Status == 0

    def done_both() -> list[dict]:
        found = read_live(data)
        return found if found and found[0]["operations_total"] == 2 else []

    (seen,) = wait_until(done_both, timeout=5)
    assert live.live_file(data).exists()
    assert seen["calling_ae"] == "LIVE_SCU" and seen["called_ae"] == "PRINTSCP"
    assert seen["peer"] == "127.0.0.1" and seen["peer_port"] > 0
    assert seen["pid"] == os.getpid()
    assert seen["since"].endswith("Z") and seen["since"][:2] == "20"
    assert seen["operations"] == {"C-ECHO": 1, "C-STORE": 1}
    assert seen["services"] == ["Verification SOP Class", "CT Image Storage"]
    # The data set came in and two responses went out.
    assert seen["bytes_received"] > (samples / "CT_small.dcm").stat().st_size - 1000
    assert 0 < seen["bytes_sent"] < 2000
    assoc.release()
    assert wait_until(lambda: not live.live_file(data).exists(), timeout=5)
    assert read_live(data) == []


@pytest.mark.slow
def test_the_file_is_removed_when_the_node_stops(live_node, client):
    node, published = live_node()
    client(node.port, VERIFICATION)
    assert wait_until(lambda: read_live(node.config.data_path), timeout=5)
    node.stop()
    published.stop()
    assert not live.live_file(node.config.data_path).exists()
