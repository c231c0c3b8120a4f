"""``/healthz`` and ``/readyz``: whether the process answers, and whether the node can
do its work now.

Readiness is what a load balancer or an orchestrator asks before sending traffic, every
few seconds, so each check is cheap and takes nothing the DICOM side needs: the DICOM
port is tried with a plain TCP connect (closed before any A-ASSOCIATE-RQ, which the node
logs at DEBUG only), the databases are checked for writability without taking their
write lock (a writer waiting on a probe would delay a C-STORE), the spool by creating
and removing a small file in it, the disk against ``node.disk_failure_mb`` (the level
at which the printers report FAILURE / SUPPLY EMPTY).  Each failing check says what
failed and why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from printscp import __version__
from printscp.config import NodeConfig

#: Seconds the DICOM port may take to accept the probe's connection.
CONNECT_TIMEOUT = 1.0
#: The node's databases, by check name: the archive index (shared with the worklist and
#: MPPS) and the job index.
DATABASES = {"archive_index": "index.sqlite", "jobs_index": "jobs.sqlite"}

_STARTED = time.time()


def healthz() -> dict[str, Any]:
    """The process answers: its version, pid and uptime."""
    return {"status": "ok", "version": __version__, "pid": os.getpid(),
            "uptime_seconds": round(time.time() - _STARTED, 1)}


def readyz(data_dir: str | os.PathLike[str], config: NodeConfig, dicom_port: int
           ) -> tuple[bool, dict[str, dict[str, Any]]]:
    """(ready, checks): every check as ``{"ok": bool, "detail": "..."}``, by name
    (``dicom_port``, ``archive_index``, ``jobs_index``, ``spool``, ``disk``, and with
    DICOM TLS ``tls_certificate``)."""
    data = Path(data_dir)
    checks = {
        "dicom_port": _port(config.bind, dicom_port),
        **{name: _database(data / file) for name, file in DATABASES.items()},
        "spool": _spool(data / "spool"),
        "disk": _disk(data, config),
    }
    if config.tls.enabled:
        checks["tls_certificate"] = _certificate(config.tls.certificate)
    return all(c["ok"] for c in checks.values()), checks


def _certificate(path: str) -> dict[str, Any]:
    """The DICOM TLS certificate: readable and not expired (every TLS client would be
    refused by its peer's verification)."""
    from printscp.core.tls import certificate_info

    info = certificate_info(path)
    if "error" in info:
        return _check(False, f"TLS certificate {path}: {info['error']}")
    if info["days_left"] < 0:
        return _check(False, f"TLS certificate {info['subject']} expired on "
                             f"{info['not_after'][:10]}")
    return _check(True, f"TLS certificate {info['subject']} valid until "
                        f"{info['not_after'][:10]} ({info['days_left']} days)")


def _check(ok: bool, detail: str) -> dict[str, Any]:
    return {"ok": ok, "detail": detail}


def probe_address(bind: str) -> str:
    """Where to reach a server bound to ``bind``: loopback for a wildcard address."""
    if bind in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    if bind == "::":
        return "::1"
    return bind


def _port(bind: str, port: int) -> dict[str, Any]:
    host = probe_address(bind)
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        return _check(False, f"DICOM port {where} is not accepting connections "
                             f"({exc.strerror or exc})")
    return _check(True, f"DICOM port {where} is listening")


def _database(path: Path) -> dict[str, Any]:
    """The database file, its directory (journal, WAL and shared-memory files are
    made there) and, when it exists, a read of its schema."""
    name = path.name
    folder = path.parent
    if not folder.is_dir():
        return _check(False, f"{name}: its folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        return _check(False, f"{name}: its folder {folder} is not writable")
    if not path.exists():
        return _check(True, f"{name}: not created yet; {folder} is writable")
    if not os.access(path, os.R_OK | os.W_OK):
        return _check(False, f"{name}: {path} is not writable")
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=2.0)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return _check(False, f"{name}: cannot be read: {exc}")
    return _check(True, f"{name}: writable")


def _spool(folder: Path) -> dict[str, Any]:
    """A file created and removed in the spool folder (what an N-ACTION needs)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".readyz-", dir=folder)
    except OSError as exc:
        return _check(False, f"spool {folder} is not writable ({exc.strerror or exc})")
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return _check(True, f"spool {folder} is writable")


def _disk(data_dir: Path, config: NodeConfig) -> dict[str, Any]:
    folder = data_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    threshold = config.disk_failure_mb << 20
    detail = (f"{free >> 20} MiB free on the data directory's disk; failure threshold "
              f"{config.disk_failure_mb} MiB (node.disk_failure_mb)")
    return _check(free >= threshold, detail)
