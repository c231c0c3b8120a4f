"""A node that answers is ready: it accepts only once started, and what still warms up
afterwards runs when the node is idle, at the lowest priority, or at once when asked for."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest
from helpers.nodes import node_config

from printscp.app.node import Node
from printscp.core.background import Background, IdleWatch
from printscp.jobs import render

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread scheduling")


@linux_only
def test_background_work_runs_at_the_lowest_priority_and_only_its_own_thread():
    seen = Background(lambda: os.sched_getscheduler(0), "test-warm-up").wait(10)
    assert seen == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller keeps its priority
    wanted = Background(lambda: os.sched_getscheduler(0), "test-wanted", lowest=False)
    assert wanted.wait(10) == os.SCHED_OTHER


def test_background_hands_over_result_and_exception():
    release = threading.Event()
    work = Background(lambda: release.wait(10) and 42, "test-result")
    assert not work.done
    with pytest.raises(TimeoutError):
        work.wait(0.05)
    release.set()
    assert work.wait(10) == 42 and work.done
    with pytest.raises(ZeroDivisionError):
        Background(lambda: 1 // 0, "test-error").wait(10)


def test_idle_watch_wants_the_grace_period_without_a_break():
    busy = [False]
    watch = IdleWatch(lambda: not busy[0], grace=0.2)
    assert not watch.due()
    time.sleep(0.12)
    busy[0] = True  # a request in the middle starts the wait again
    assert not watch.due()
    busy[0] = False
    assert not watch.due()
    time.sleep(0.12)
    assert not watch.due()
    time.sleep(0.12)
    assert watch.due()


def _answered(port: int, timeout: float) -> bytes:
    """What a node sends back to an A-ASSOCIATE-RQ within ``timeout`` (b"" if nothing)."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE
    from pynetdicom.presentation import build_context

    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title, primitive.called_ae_title = "ECHOSCU", "PRINTSCP"
    primitive.maximum_length_received = 16384
    context = build_context("1.2.840.10008.1.1")
    context.context_id = 1
    primitive.presentation_context_definition_list = [context]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(pdu.encode())
        try:
            return sock.recv(1)
        except TimeoutError:
            return b""


@pytest.mark.slow
def test_a_started_node_answers_only_once_it_accepts(tmp_path):
    """A connection made before accept() waits in the queue (it is not refused) and is
    answered once the node accepts: printscp serve's workers accept when all are ready."""
    listening = socket.create_server(("127.0.0.1", 0), backlog=16)
    port = listening.getsockname()[1]
    node = Node(node_config(tmp_path, port=port), listen_socket=listening)
    try:
        node.start(accept=False)
        node.wait_ready()
        assert _answered(port, 0.5) == b""
        waiting = threading.Thread(target=lambda: answers.append(_answered(port, 10)))
        answers: list[bytes] = []
        waiting.start()
        time.sleep(0.2)
        node.accept()
        waiting.join(15)
        assert answers == [b"\x02"]  # A-ASSOCIATE-AC
    finally:
        node.stop()


def test_the_render_module_imports_nothing_heavy():
    """A render process imports it first thing, at the normal priority; the rendering
    stack comes with warm_up() (or with the first job)."""
    import subprocess

    code = ("import sys, printscp.jobs.render; "
            "print(sorted(m for m in ('numpy', 'cv2', 'PIL', 'reportlab', 'pydicom') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert render.started() is True


def test_a_lazy_module_is_imported_on_first_use():
    """printscp serve stands requests in for pydicom, which imports it for downloads only."""
    import subprocess

    code = "\n".join([
        "import sys, types",
        "from printscp.app.launch import lazy_import",
        "lazy_import('colorsys')",
        "import colorsys",  # the import statement alone loads nothing
        "stand_in = sys.modules['colorsys']",
        "assert type(stand_in) is not types.ModuleType and 'rgb_to_hsv' not in vars(stand_in)",
        "assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)",
        "assert type(sys.modules['colorsys']) is types.ModuleType",  # the real one now
        "assert colorsys.hsv_to_rgb(0.0, 1.0, 1.0) == (1.0, 0.0, 0.0)",
        "lazy_import('no_such_module_here')",
        "assert 'no_such_module_here' not in sys.modules",
    ])
    subprocess.run([sys.executable, "-c", code], check=True)
