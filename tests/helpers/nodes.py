"""printscp nodes for tests: on a free loopback port, their data under a test's folder.

The ``node`` and ``make_node`` fixtures of ``conftest.py`` use these and stop what
they started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp.app.node import Node
from printscp.config import load_config
from printscp.core.remote import RemoteAE

if TYPE_CHECKING:
    from printscp.config import NodeConfig


#: Calling AE titles the tests query and retrieve from: DCMTK's and pynetdicom's tools'
#: defaults, and the tests' own clients.
QR_CLIENTS = ("FINDSCU", "GETSCU", "MOVESCU", "TESTSCU", "MOVER", "GETTER")


def known_clients(*titles: str, host: str = "127.0.0.1", port: int = 11113
                  ) -> tuple[RemoteAE, ...]:
    """``titles`` (default :data:`QR_CLIENTS`) as AE table entries on ``host``.

    ``[access]`` lets only "known" AEs (the AE table, their host checked) query and
    retrieve, as a hospital node is configured; a test that is not about access makes
    its clients known rather than opening the archive to everyone.  ``port`` is where a
    C-MOVE to one of them would go (nothing listens there unless a test says so)."""
    return tuple(RemoteAE(title, host, port) for title in titles or QR_CLIENTS)


def node_config(folder: Path, toml: str | Path | None = None, **overrides: Any) -> NodeConfig:
    """The configuration of a test node: port 0 on 127.0.0.1, data in ``folder/data``.

    ``toml`` is a configuration file, or its text (written to ``folder/node.toml``);
    ``overrides`` are :class:`NodeConfig` fields and win over the file, as the command
    line's options do."""
    if isinstance(toml, str):
        path = folder / "node.toml"
        path.write_text(toml)
        toml = path
    settings = {"port": 0, "bind": "127.0.0.1", "data_dir": str(folder / "data"), **overrides}
    return load_config(toml, **settings)


def make_node(folder: Path, toml: str | Path | None = None, *, start: bool = True,
              **overrides: Any) -> Node:
    """A :class:`Node` of :func:`node_config`, started unless ``start`` is false."""
    node = Node(node_config(folder, toml, **overrides))
    return node.start() if start else node


def printed_jobs(node: Node) -> list[dict]:
    """The film sidecars (``films/*.json``) of every job ``node`` printed, oldest first,
    once its spool is idle."""
    node.spool.wait_idle()
    films = (node.config.data_path / "films").glob("*.json")
    return sorted((json.loads(p.read_text()) for p in films), key=lambda j: j["job_id"])
