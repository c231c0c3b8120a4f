"""``/healthz`` answers while the process runs; ``/readyz`` says whether the node can do
its work now, and each failing check names what failed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from printscp.http.health import healthz, readyz

CHECKS = {"dicom_port", "archive_index", "jobs_index", "spool", "disk"}


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` cannot be written, even by root (immutable); skips where that cannot
    be arranged."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True) if chattr else None
    if done is None or done.returncode != 0:
        pytest.skip("root here, and chattr +i is not available to make a folder read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_healthz_says_the_process_answers():
    answer = healthz()
    assert answer["status"] == "ok" and answer["pid"] == os.getpid()
    assert answer["version"] and answer["uptime_seconds"] >= 0


@pytest.mark.slow
def test_a_running_node_is_ready(node):
    ok, checks = readyz(node.config.data_path, node.config, node.port)
    assert ok, checks
    assert set(checks) == CHECKS
    assert all(c["ok"] and c["detail"] for c in checks.values())
    assert checks["dicom_port"]["detail"] == f"DICOM port 127.0.0.1:{node.port} is listening"


@pytest.mark.slow
def test_not_ready_when_the_dicom_port_is_closed(node):
    port = node.port
    node.stop()
    ok, checks = readyz(node.config.data_path, node.config, port)
    assert not ok
    assert [name for name, c in checks.items() if not c["ok"]] == ["dicom_port"]
    assert f"127.0.0.1:{port} is not accepting connections" in checks["dicom_port"]["detail"]


@pytest.mark.slow
def test_not_ready_when_the_spool_is_read_only(node):
    spool = node.config.data_path / "spool"
    with read_only(spool):
        ok, checks = readyz(node.config.data_path, node.config, node.port)
    assert not ok
    assert [name for name, c in checks.items() if not c["ok"]] == ["spool"]
    assert f"spool {spool} is not writable" in checks["spool"]["detail"]
    assert not [p for p in spool.iterdir() if p.name.startswith(".readyz")]


@pytest.mark.slow
def test_not_ready_when_a_database_cannot_be_written(node):
    database = node.config.data_path / "index.sqlite"
    with read_only(database):
        ok, checks = readyz(node.config.data_path, node.config, node.port)
    assert not ok
    assert [name for name, c in checks.items() if not c["ok"]] == ["archive_index"]
    assert "index.sqlite" in checks["archive_index"]["detail"]


def test_not_ready_below_the_disk_failure_threshold(tmp_path):
    from helpers.nodes import node_config

    huge = 1 << 40  # MiB: more than any disk has
    config = node_config(tmp_path, disk_warning_mb=huge, disk_failure_mb=huge)
    config.data_path.mkdir()
    ok, checks = readyz(config.data_path, config, 1)
    assert not ok and not checks["disk"]["ok"]
    assert f"failure threshold {huge} MiB (node.disk_failure_mb)" in checks["disk"]["detail"]
    # A data directory never used yet: its databases are not made yet, which is fine.
    assert checks["archive_index"]["ok"] and checks["jobs_index"]["ok"]
