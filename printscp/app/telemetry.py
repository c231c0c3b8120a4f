"""Metrics of every process of a node in one place: prometheus-client's multiprocess mode.

``printscp serve`` is a parent (serving HTTP), worker processes receiving associations
and a render process per worker, and each counts (:mod:`printscp.core.metrics`).
prometheus-client decides how a process keeps its values once, when
``prometheus_client`` is first imported (``values.ValueClass``, 0.26): with
``PROMETHEUS_MULTIPROC_DIR`` set, every value lives in a per-process mmapped file in
that folder, which ``/metrics`` adds up (:func:`printscp.http.metrics.render`).  So
:func:`prepare` must run before anything imports prometheus-client, and the spawned
processes inherit the variable (they import it afresh).

Counters of a process that ended stay in its file and keep counting in the totals, as
they must; ``prometheus_client.multiprocess.mark_process_dead`` only removes the files
of ``live*`` gauges, and the node keeps no gauge in its processes (the gauges are
computed when scraped), so nothing needs doing when a worker exits.

Tests and a :class:`~printscp.app.node.Node` used as a library do not call it: their
counts stay in the default registry of their one process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from printscp.core.live import RUN_DIR

#: The environment variable prometheus-client reads.
ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir(data_dir: str | os.PathLike[str]) -> Path:
    """Where the processes of the node using ``data_dir`` keep their counts."""
    return Path(data_dir).resolve() / RUN_DIR / "metrics"


def prepare(data_dir: str | os.PathLike[str]) -> Path:
    """Put this process and the processes it will spawn in multiprocess mode, with the
    counts of a previous run of the node cleared; returns the folder.

    Call it before anything imports ``prometheus_client`` (``printscp serve`` does,
    first thing).  Calling it again for the same folder, here or in a process it
    spawned, changes nothing (the files are in use); calling it after prometheus-client
    chose its single-process values raises RuntimeError, since this process's counts
    would then never reach ``/metrics``.
    """
    path = metrics_dir(data_dir)
    if os.environ.get(ENV) == str(path):
        return path  # by this process already, or by the parent that spawned it: in use
    if _value_class_chosen():
        raise RuntimeError(
            "prometheus_client was imported before printscp.app.telemetry.prepare(): "
            "this process would count in memory /metrics does not read (import order)")
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[ENV] = str(path)
    return path


def _value_class_chosen() -> bool:
    """Whether prometheus-client has already picked how this process keeps values."""
    return "prometheus_client.values" in sys.modules


def multiprocess() -> bool:
    """Whether this process counts in multiprocess mode."""
    return bool(os.environ.get(ENV))
