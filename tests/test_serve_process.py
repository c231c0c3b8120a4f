"""``printscp serve`` as a process: startup line, clean SIGTERM, kill -9 and restart."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.dcmtk import missing, tool
from helpers.net import wait_until
from helpers.print_scu import PrintSCU

from printscp.core import uids

pytestmark = pytest.mark.slow  # every test runs printscp serve


def start(data: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--port", "0", "--bind", "127.0.0.1",
         "--data-dir", str(data), "--http", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+); films go to (.+) \((\d) worker", line)
    assert match, line + proc.stderr.read()
    assert Path(match.group(2)) == (data / "films").resolve()
    return proc, int(match.group(1))


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_cleanly(tmp_path, workers):
    proc, port = start(tmp_path / "data", "--workers", workers)
    with PrintSCU(port) as scu:
        assert scu.assoc.send_c_echo().Status == 0
    kids = children(proc.pid)
    assert len(kids) >= int(workers)  # worker and/or render processes
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopping" in out

    def alive() -> list[int]:
        out = []
        for k in kids:
            try:
                if ") Z" not in Path(f"/proc/{k}/stat").read_text():
                    out.append(k)
            except OSError:
                pass
        return out

    wait_until(lambda: not alive(), 10, interval=0.1)
    assert not alive(), [Path(f"/proc/{k}/cmdline").read_bytes()[:120] for k in alive()]


def test_job_spooled_before_kill_9_is_rendered_after_restart(tmp_path):
    data = tmp_path / "data"
    proc, port = start(data)
    rng = np.random.default_rng(0)
    try:
        with PrintSCU(port) as scu:
            scu.film_session(FilmSessionLabel="BEFORE CRASH")
            # A HIGH resolution 14x17 film of 20 images takes seconds to render.
            fb, boxes, _ = scu.film_box("STANDARD\\4,5", RequestedResolutionID="HIGH")
            for pos, uid in enumerate(boxes, start=1):
                scu.image(uid, pos, rng.integers(0, 4096, (512, 512)).astype(np.uint16))
            assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
            # A crash: every process of the node dies at once, acknowledged job unrendered.
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    spooled = [p for p in (data / "spool").iterdir() if not p.name.startswith(".")]
    assert len(spooled) == 1 and (spooled[0] / "job.json").is_file()
    assert not list((data / "films").glob("*.pdf"))

    jobs = subprocess.run([sys.executable, "-m", "printscp", "jobs", "--data-dir", str(data)],
                          capture_output=True, text=True, check=True).stdout
    assert "PENDING" in jobs

    proc, port = start(data)
    try:
        def spool_empty() -> bool:
            return not [p for p in (data / "spool").iterdir() if not p.name.startswith(".")]

        # The sidecar is written first, then the job leaves the spool: wait for both.
        wait_until(lambda: list((data / "films").glob("*.json")) and spool_empty(), 60,
                   interval=0.2)
        [sidecar] = (data / "films").glob("*.json")
        job = json.loads(sidecar.read_text())
        assert job["status"] == "DONE" and "BEFORE_CRASH" in job["output"]
        assert Path(job["output"]).stat().st_size > 100_000
        assert spool_empty()
        listing = json.loads(subprocess.run(
            [sys.executable, "-m", "printscp", "jobs", "--json", "--data-dir", str(data)],
            capture_output=True, text=True, check=True).stdout)
        assert [j["status"] for j in listing] == ["DONE"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_the_console_answers_where_the_start_line_says_and_stops_with_the_node(tmp_path):
    import httpx

    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--port", "0", "--bind", "127.0.0.1",
         "--data-dir", str(data), "--http", "127.0.0.1:0", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+);.*; console at (http://\S+)$", line)
        assert match, line + proc.stderr.read()
        port, url = int(match.group(1)), match.group(2)
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        assert ready["ready"] and ready["checks"]["dicom_port"]["detail"].endswith(
            f":{port} is listening")
        with PrintSCU(port, calling="ECHOER") as scu:
            assert scu.assoc.send_c_echo().Status == 0
        # both worker processes count into one /metrics
        wait_until(lambda: 'calling_ae="ECHOER"' in httpx.get(f"{url}/metrics").text, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


@pytest.mark.parametrize("http, words", [
    ("0.0.0.0:0", ["no users", "printscp users add"]),
    ("127.0.0.1", ["--http", "HOST:PORT"]),
    ("127.0.0.1:99999", ["--http", "0-65535"]),
])
def test_a_console_that_may_not_start_is_one_line_and_exit_2(tmp_path, http, words):
    done = subprocess.run(
        [sys.executable, "-m", "printscp", "serve", "--port", "0", "--bind", "127.0.0.1",
         "--data-dir", str(tmp_path / "data"), "--workers", "1", "--http", http],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def session_processes(session: int) -> list[int]:
    """Live processes of ``session`` (a server started with start_new_session)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("delay", [1.0, 2.0])
def test_sigterm_while_starting_leaves_no_process(tmp_path, delay):
    """A service manager may stop the node while it starts: its workers' render
    processes (still importing) were left orphaned for good."""
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--port", "0", "--bind", "127.0.0.1",
         "--data-dir", str(tmp_path / "data"), "--workers", "2", "--http", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    try:
        assert proc.returncode == 0, err
        wait_until(lambda: not session_processes(proc.pid), 10, interval=0.1)
        assert not session_processes(proc.pid)
    finally:
        for pid in session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(missing("echoscu") is not None, reason=str(missing("echoscu")))
def test_two_workers_share_the_tls_listener_and_the_plain_one(tmp_path):
    """Both listening sockets are opened before the workers start and handed to them:
    DCMTK echoes on each port, the start line naming both."""
    from helpers.tls import make_pki

    pki = make_pki(tmp_path / "pki")
    toml = tmp_path / "node.toml"
    toml.write_text(f"""[tls]
enabled = true
port = 0
certificate = "{pki.cert('server')}"
private_key = "{pki.key('server')}"
ca_certificates = "{pki.ca}"
""")
    proc = subprocess.Popen(
        [sys.executable, "-m", "printscp", "serve", "--config", str(toml), "--port", "0",
         "--bind", "127.0.0.1", "--data-dir", str(tmp_path / "data"), "--no-http",
         "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+) and with TLS on 127\.0\.0\.1:(\d+);"
                          r".*\(2 worker processes\)", line)
        assert match, line + proc.stderr.read()
        plain, tls = match.groups()
        env = {**os.environ, "TCP_NODELAY": "1"}
        tls_args = ["+tls", pki.key("client"), pki.cert("client"), "+cf", pki.ca]
        for args in ([plain], [*tls_args, tls]) * 2:
            echo = subprocess.run([tool("echoscu"), "-aec", "PRINTSCP", "127.0.0.1", *args],
                                  capture_output=True, text=True, env=env, timeout=30)
            assert echo.returncode == 0, echo.stdout + echo.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
