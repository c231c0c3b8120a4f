"""Running a subcommand: a reader that goes away (``| head -1``) is no traceback."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import argparse
from printscp.app.cli.dispatch import dispatch

def func(args):
    for i in range(200_000):
        print(f"row {i}")
    return 0

raise SystemExit(dispatch(argparse.Namespace(func=func)))
"""


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"row 0\n"
    proc.stdout.close()  # as head -1 does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
