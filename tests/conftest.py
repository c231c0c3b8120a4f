"""Shared fixtures (the PS3.14 reference tables, the sample files, nodes, client
associations, a private CUPS) and the skips of tests whose system tools are missing.

Markers (registered in pyproject.toml): ``dcmtk("tool", ...)`` runs DCMTK's tools (by
default: DCMTK at all), ``poppler("tool", ...)`` reads PDFs with poppler-utils (by
default pdftoppm and pdfinfo), ``cups`` needs cupsd with cups-pdf, ``chromium`` a
Chromium browser; each is skipped, with the reason, when they are missing.  ``slow``
marks what takes more than about a second or starts server processes:
``pytest -m "not slow"`` is the fast subset.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import clients, dcmtk, nodes
from helpers import cups as private_cups

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SAMPLES = ROOT / "samples"

CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@functools.cache
def _missing_poppler(*names: str) -> str | None:
    absent = [n for n in names or ("pdftoppm", "pdfinfo") if shutil.which(n) is None]
    return f"needs poppler's {', '.join(absent)} (apt-get install poppler-utils)" if absent \
        else None


@functools.cache
def _missing(marker: str, args: tuple[str, ...]) -> str | None:
    if marker == "dcmtk":
        return dcmtk.missing(*args)
    if marker == "poppler":
        return _missing_poppler(*args)
    if marker == "cups":
        return private_cups.missing()
    if marker == "chromium" and not any(shutil.which(name) for name in CHROMIUM):
        return f"needs Chromium ({', '.join(CHROMIUM)} not found; apt-get install chromium)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip a test marked with a system tool that is missing here, saying which."""
    for item in items:
        for name in ("dcmtk", "poppler", "cups", "chromium"):
            for marker in item.iter_markers(name):
                reason = _missing(name, tuple(marker.args))
                if reason:
                    item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def ps314_tables() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """PS3.14 2016a published tables as (first column, second column) float arrays."""
    raw = json.loads((DATA / "ps314_tables.json").read_text())
    out = {}
    for name, table in raw.items():
        if name.startswith("_"):
            continue
        keys = np.array([float(k) for k in table["values"]])
        vals = np.array([float(v) for v in table["values"].values()])
        out[name] = (keys, vals)
    return out


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_node(toml=None, *, folder=tmp_path, start=True, **overrides)``: a node of
    :func:`helpers.nodes.node_config` (loopback, free port, data in ``folder/data``);
    the ones still running are stopped after the test."""
    made = []

    def make(toml: str | Path | None = None, *, folder: Path | None = None,
             start: bool = True, **overrides: Any) -> Any:
        node = nodes.make_node(folder or tmp_path, toml, start=start, **overrides)
        made.append(node)
        return node

    yield make
    for node in reversed(made):
        if node.server is not None:
            node.stop()


@pytest.fixture
def node(make_node):
    """A running printscp node on a free loopback port, data in ``tmp_path/data``."""
    return make_node()


@pytest.fixture
def client() -> Iterator[Callable[..., Any]]:
    """``client(port, *contexts, calling="TESTSCU", called="PRINTSCP", **kwargs)``: an
    established, guarded association (:func:`helpers.clients.associate`); released after
    the test if still open."""
    opened = []

    def connect(port: int, *contexts: clients.Context, **kwargs: Any) -> Any:
        assoc = clients.associate(port, *contexts, **kwargs)
        assert assoc.is_established, f"association to port {port} not established"
        opened.append(assoc)
        return assoc

    yield connect
    for assoc in opened:
        if assoc.is_established:
            assoc.release()


@pytest.fixture(scope="session")
def cups():
    """A private cupsd with a cups-pdf queue, for this test session (xdist worker)."""
    reason = private_cups.missing()
    if reason:
        pytest.skip(reason)
    with private_cups.running_cups() as server:
        yield server
