"""Shared fixtures: the PS3.14 reference tables and the sample files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SAMPLES = ROOT / "samples"


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
def node(tmp_path):
    """A running printscp node on a free loopback port, data in ``tmp_path``."""
    from printscp.app.node import Node
    from printscp.config import load_config

    config = load_config(None, port=0, bind="127.0.0.1", data_dir=str(tmp_path / "data"))
    running = Node(config).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def cups():
    """A private cupsd with a cups-pdf queue, for this test session (xdist worker)."""
    import cups as private_cups

    reason = private_cups.missing()
    if reason:
        pytest.skip(reason)
    with private_cups.running_cups() as server:
        yield server
