"""printscp.reactors: patched pynetdicom keeps working for associations of every age."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest
from dcmtk import HAVE_DCMTK, tool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not HAVE_DCMTK, reason="DCMTK not installed")
def test_association_opened_before_install_still_sends(tmp_path):
    """An association whose DUL thread started before install() runs pynetdicom's own
    loop; messages sent on it after install() must still go pynetdicom's way (a framed
    message queued to that loop aborted the association)."""
    port = _free_port()
    scp = subprocess.Popen([tool("storescp"), "-od", str(tmp_path), str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        code = textwrap.dedent(f"""
            from pynetdicom import AE
            ae = AE("EARLY")
            ae.add_requested_context("1.2.840.10008.1.1")
            assoc = ae.associate("127.0.0.1", {port})
            assert assoc.is_established
            from printscp import reactors
            reactors.install()
            statuses = [assoc.send_c_echo().Status for _ in range(3)]
            assoc.release()
            late = ae.associate("127.0.0.1", {port})
            statuses.append(late.send_c_echo().Status)
            late.release()
            print(statuses)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
    finally:
        scp.terminate()
        scp.wait(10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 0, 0, 0]"
