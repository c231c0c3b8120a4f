"""``/metrics``: the node's Prometheus exposition.

Two kinds of numbers go out.  What the processes count as they work (associations,
DIMSE latency, job state changes, films printed, render and delivery times:
:mod:`printscp.core.metrics`) comes from prometheus-client's per-process files when
``printscp serve`` runs in multiprocess mode (:mod:`printscp.app.telemetry`), else from
this process's default registry.  What describes the node now (open associations, jobs
by state and printer, spool depth, archive size, free disk, printer status) is read
when scraped, by :class:`NodeCollector`, from what the node keeps on disk anyway: no
worker pays to keep a gauge current, and every process sees the same figures.

Everything read here is cheap with 10,000 jobs and 50,000 instances: one grouped count
per printer profile in the job index, one count and sum in the archive index (fast when
``instances(size)`` is indexed), a directory listing of ``spool/`` and ``run/``, a
``statvfs``.  A part that cannot be read (a database being replaced, a folder gone) is
left out of the scrape and logged; the rest still answers.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from printscp.config import NodeConfig
from printscp.core.live import read_live
from printscp.http import printer_status
from printscp.jobs.delivery import unhealthy_targets
from printscp.jobs.index import STATES, JobIndex

LOGGER = logging.getLogger("printscp.http.metrics")

#: The environment variable that puts prometheus-client in multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Printer Status (2110,0010) values, one series each per printer (a state set).
PRINTER_STATUSES = ("NORMAL", "WARNING", "FAILURE")


def render(data_dir: str | os.PathLike[str], config: NodeConfig) -> tuple[bytes, str]:
    """The body of ``/metrics`` and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get(MULTIPROC_ENV)
    if path and os.path.isdir(path):
        MultiProcessCollector(registry, path)
    else:
        registry.register(_DefaultRegistry())
    registry.register(NodeCollector(Path(data_dir), config))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _DefaultRegistry:
    """This process's own counts (single-process mode), passed through."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class NodeCollector:
    """The gauges computed at scrape time (see the module docstring)."""

    def __init__(self, data_dir: Path, config: NodeConfig) -> None:
        self.data_dir = data_dir
        self.config = config

    def collect(self) -> Iterator[Metric]:
        parts: list[Callable[[], list[Metric]]] = [
            self._associations, self._jobs, self._spool, self._archive, self._disk]
        for part in parts:
            try:
                yield from part()
            except (OSError, sqlite3.Error, ValueError) as exc:
                LOGGER.warning("/metrics: %s left out: %s", part.__name__.strip("_"), exc)

    def _associations(self) -> list[Metric]:
        gauge = GaugeMetricFamily("printscp_open_associations",
                                  "Associations open now, by calling AE", labels=["calling_ae"])
        by_ae = Counter(str(a.get("calling_ae") or "?") for a in read_live(self.data_dir))
        for calling_ae, n in sorted(by_ae.items()):
            gauge.add_metric([calling_ae], n)
        return [gauge]

    def _jobs(self) -> list[Metric]:
        gauge = GaugeMetricFamily(
            "printscp_jobs_by_state", "Print jobs known to the job index, by Execution "
            "Status (HELD: pending jobs on hold, also counted as PENDING) and printer",
            labels=["state", "printer"])
        index = job_index(self.data_dir)
        for profile in self._printers():
            for state in (*STATES, "HELD"):
                _, count = index.query(printer=profile.name, state=state, limit=0)
                gauge.add_metric([state, profile.name], count)
        return [gauge]

    def _printers(self) -> list[Any]:
        """The printer profiles, one per Printer Name (two profiles may share one, and
        a series must appear once)."""
        named = {p.name: p for _, p in printer_status.profiles(self.config)}
        return list(named.values())

    def _spool(self) -> list[Metric]:
        depth = 0
        try:
            with os.scandir(self.data_dir / "spool") as entries:
                depth = sum(1 for e in entries if not e.name.startswith(".") and e.is_dir())
        except FileNotFoundError:
            pass
        return [GaugeMetricFamily("printscp_spool_depth", "Print jobs in the spool, waiting "
                                  "or printing (not yet finished)", value=depth)]

    def _archive(self) -> list[Metric]:
        if not self.config.archive.enabled:
            return []
        instances, size = archive_totals(self.data_dir)
        return [GaugeMetricFamily("printscp_archive_instances", "Instances in the archive",
                                  value=instances),
                GaugeMetricFamily("printscp_archive_bytes", "Bytes of the archive's "
                                  "instance files", value=size)]

    def _disk(self) -> list[Metric]:
        free = printer_status.free_bytes(self.data_dir)
        total = shutil.disk_usage(_existing(self.data_dir)).total
        disk = [GaugeMetricFamily("printscp_disk_free_bytes",
                                  "Free space on the data directory's disk", value=free),
                GaugeMetricFamily("printscp_disk_size_bytes",
                                  "Size of the data directory's disk", value=total),
                GaugeMetricFamily("printscp_disk_failure_threshold_bytes",
                                  "Free space below which printers report FAILURE and the "
                                  "node is not ready (node.disk_failure_mb)",
                                  value=self.config.disk_failure_mb << 20)]
        status = GaugeMetricFamily(
            "printscp_printer_status", "Printer Status of each printer profile, as its "
            "Printer N-GET reports it: 1 for the current status", labels=["printer", "status"])
        failing = GaugeMetricFamily(
            "printscp_printer_targets_failing", "Output targets of each printer profile "
            "whose last delivery failed (waiting to retry)", labels=["printer"])
        unhealthy = Counter(str(t.get("printer") or "") for t in
                            unhealthy_targets(self.data_dir))
        for profile in self._printers():
            now, _ = printer_status.condition(self.config, profile, free)
            for value in PRINTER_STATUSES:
                status.add_metric([profile.name, value], 1 if value == now else 0)
            failing.add_metric([profile.name], unhealthy.get(profile.name, 0))
        return [*disk, status, failing]


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# -- the databases, read-only ---------------------------------------------------------
_INDEXES: dict[Path, JobIndex] = {}
_INDEXES_LOCK = threading.Lock()


def job_index(data_dir: Path) -> JobIndex:
    """The job index of ``data_dir``, opened once per process (opening runs its
    schema under the database's writer lock)."""
    key = Path(data_dir).resolve()
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = JobIndex(key)
        return index


#: The archive index's file in the data directory (printscp.archive.archive).
ARCHIVE_INDEX = "index.sqlite"


def archive_totals(data_dir: Path) -> tuple[int, int]:
    """(instances, bytes of their files) from the archive index, read-only: a scrape
    never takes the writers' lock.  (0, 0) when there is no index yet."""
    path = Path(data_dir) / ARCHIVE_INDEX
    if not path.exists():
        return 0, 0
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=5.0)
    try:
        row: Any = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM instances").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0, 0
        raise
    finally:
        db.close()
    return int(row[0]), int(row[1])
