"""The atheris corpus as regression tests, and a bounded atheris run per target.

Every file of ``tests/fuzz/corpus/<target>/`` (the committed seeds, and each crash the
harness found, renamed ``crash-<what>``) goes through its target once: a crash that
comes back fails here.  ``test_atheris_budget`` fuzzes each target for
``PRINTSCP_ATHERIS_SECONDS`` seconds when that is set (each run also pays ~10 s of
instrumenting imports, so the test suite leaves it to .ci/run, 20 s per target).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fuzz import atheris_harness as harness


def _case(target, path):
    """A crash named ``crash-B<n>-...`` stands for an open bug of BUGS.md: strict xfail."""
    if path.name.startswith("crash-B"):
        return pytest.param(target, path, marks=pytest.mark.xfail(
            strict=True, reason=f"BUGS.md {path.name.split('-')[1]}"))
    return pytest.param(target, path)


CASES = [_case(target, path) for target in harness.TARGET_NAMES
         for path in sorted((harness.CORPUS / target).glob("*"))]


@pytest.mark.parametrize("target, path", CASES,
                         ids=[f"{c.values[0]}/{c.values[1].name}" for c in CASES])
def test_corpus_input_is_handled(target, path):
    harness.TARGETS[target](path.read_bytes())


def test_each_found_crash_is_kept():
    """crash-multivalued-columns: an image sequence item with Columns of two values was
    a TypeError in printscp.printing.pixel_data (0x0110 and a traceback); now 0x0106.
    crash-multivalued-high-bit: the same with High Bit (and the other optional ones).
    crash-multivalued-image-box-position: an Image Box N-SET whose Image Box Position has
    two values was a TypeError in image_box.n_set (BUGS.md B7); now 0x0106.
    crash-text-rows: an image item whose Rows reads as text (another VR) was a
    ValueError from int(); now 0x0106 naming Rows (found by the CI budget)."""
    for name in ("crash-multivalued-columns", "crash-multivalued-high-bit",
                 "crash-multivalued-image-box-position", "crash-text-rows"):
        assert (harness.CORPUS / "dataset" / name).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("target", harness.TARGET_NAMES)
def test_atheris_budget(target, tmp_path):
    pytest.importorskip("atheris")
    # CI's bounded budget: 10 s of fuzzing per target (plus ~10 s instrumenting the
    # imports); PRINTSCP_ATHERIS_SECONDS sets another, 0 skips.
    seconds = os.environ.get("PRINTSCP_ATHERIS_SECONDS", "10")
    if seconds == "0":
        pytest.skip("PRINTSCP_ATHERIS_SECONDS=0")
    done = subprocess.run([sys.executable, "-m", "tests.fuzz.atheris_harness", "--target",
                           target, "--seconds", seconds, "--json"],
                          cwd=harness.ROOT, capture_output=True, text=True,
                          timeout=int(seconds) + 180)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
