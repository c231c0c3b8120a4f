"""What the console says about a printer profile: its status, what it supports, its
targets and how they fare, its calibration and its last QC test (the QA store of
``printscp qa``); and the test of its targets.

Status comes from the same sources the Printer N-GET uses (free disk through
:func:`printscp.core.printer_state.printer_condition`, failing targets through
:func:`printscp.jobs.delivery.unhealthy_targets`), so the page and a modality's
N-GET agree.  Reading is cheap and local (a ``statvfs``, a few small JSON files and
one query of the QA store);
only :func:`test_targets` goes to the network.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from printscp.config import NodeConfig, PrinterConfig
from printscp.core.printer_state import last_calibration, printer_condition
from printscp.jobs.delivery import OFFLINE_INFO, unhealthy_targets
from printscp.jobs.targets import (
    ArchiveTarget,
    CupsTarget,
    DicomTarget,
    FileTarget,
    Target,
)
from printscp.printing.enums import FilmSize, MagnificationType, MediumType

#: Seconds one target's test may take before it counts as failed.
TEST_TIMEOUT = 10.0


def profiles(config: NodeConfig) -> list[tuple[str, PrinterConfig]]:
    """Every printer profile with its configuration section: ``printer`` first, then
    each ``printers.NAME`` in file order."""
    return [("printer", config.printer),
            *((f"printers.{key}", p) for key, p in config.printers.items())]


def find_profile(config: NodeConfig, name: str) -> tuple[str, PrinterConfig] | None:
    """The profile ``name`` designates: its Printer Name (what job records carry), its
    ``[printers.NAME]`` key or its called AE title; None if none does."""
    name = name.strip()
    found = profiles(config)
    for matches in (lambda s, p: p.name == name,
                    lambda s, p: s == f"printers.{name}" or s == name,
                    lambda s, p: called_ae(config, p) == name):
        for section, p in found:
            if matches(section, p):
                return section, p
    return None


def called_ae(config: NodeConfig, p: PrinterConfig) -> str:
    """The called AE title that reaches ``p`` (the default printer: the node's)."""
    return p.ae_title or config.ae_title.strip()


def profile_targets(config: NodeConfig, p: PrinterConfig) -> tuple[Target, ...]:
    """Where the films of ``p`` go (its targets, plus the archive when it stores
    films), as the print service snapshots them into each job."""
    return config.job_targets(p)


def target_where(t: Target) -> str:
    """A target's address in one line (queue, AE@HOST:PORT, folder)."""
    if isinstance(t, CupsTarget):
        return f"{t.queue}@{t.server}"
    if isinstance(t, DicomTarget):
        return t.destination
    if isinstance(t, FileTarget):
        return f"{t.directory}/{t.name}.{t.format.value}"
    return "archive"


def _health(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Each target's last recorded health (``<data>/targets/*.json``) by label."""
    out: dict[str, dict[str, Any]] = {}
    folder = data_dir / "targets"
    if not folder.is_dir():
        return out
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("target"):
            out[str(data["target"])] = data
    return out


def _iso(epoch: object) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    from datetime import UTC

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def target_states(data_dir: Path, printer_name: str, targets: tuple[Target, ...]
                  ) -> list[dict[str, Any]]:
    """Each target with its live state: ``ok`` after its last delivery (None when
    none was recorded: file targets, or nothing printed there yet), the error and
    the Printer Status Info term, and since when."""
    health = _health(data_dir)
    out = []
    for t in targets:
        h = health.get(t.label)
        if h is not None and h.get("printer") not in (None, "", printer_name):
            h = None  # the same label on another printer
        state = "unknown" if h is None else "ok" if h.get("ok", True) else "failing"
        out.append({"label": t.label, "kind": t.kind.value, "where": target_where(t),
                    "state": state, "ok": None if h is None else bool(h.get("ok", True)),
                    "error": (h or {}).get("error") or "", "info": (h or {}).get("info") or "",
                    "since": _iso((h or {}).get("since"))})
    return out


def condition(config: NodeConfig, p: PrinterConfig, free_bytes: int) -> tuple[str, str]:
    """(Printer Status, Printer Status Info) as the Printer N-GET computes them: the
    disk first, then a target waiting to retry makes it WARNING / PRINTER OFFLINE."""
    status, info = printer_condition(free_bytes, config.disk_warning_mb << 20,
                                     config.disk_failure_mb << 20)
    if status == "FAILURE":
        return status, info
    if unhealthy_targets(config.data_path, p.name):
        return "WARNING", OFFLINE_INFO
    return status, info


def free_bytes(data_dir: Path) -> int:
    """Free space on the data directory's disk (its nearest existing folder)."""
    path = Path(data_dir)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def calibration(data_dir: Path, printer: str | None = None) -> dict[str, Any] | None:
    """Date/Time of Last Calibration of ``printer`` (its own, else the node's) and the
    verdict stored with it (None: never recorded)."""
    cal = last_calibration(data_dir, printer)
    if cal is None:
        return None
    return {"date": cal.when.strftime("%Y%m%d"), "time": cal.when.strftime("%H%M%S"),
            "when": cal.when.isoformat(timespec="seconds"), "conforms": cal.conforms,
            "profile": cal.profile}


#: The QA store of a node, in its data directory (``printscp qa``, issue 19).
QA_DB = "qa.sqlite"


def qc_states(data_dir: Path, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each QA device's last QC (test, verdict, due, overdue) by device id, from the QA
    store of the data directory (empty when there is none).  A printer's device id
    is its profile's Printer Name.  Read in one query for every device
    (:func:`calibration.qa.status.device_status`); a store that cannot be read gives
    ``{"*": {"error": …}}`` rather than breaking the page."""
    path = Path(data_dir) / QA_DB
    if not path.exists():
        return {}
    from calibration.qa.status import device_status
    from calibration.qa.store import QAStore

    try:
        with QAStore(path, create=False) as store:
            statuses = device_status(store, now)
    except Exception as exc:  # the page shows it; the rest of the page still works
        return {"*": {"error": f"QA store {path}: {type(exc).__name__}: {exc}"}}
    out = {}
    for st in statuses:
        last = st.last
        out[st.device.id] = {
            "device": st.device.id, "test_id": None if last is None else last.id,
            "when": None if last is None else last.when.isoformat(timespec="seconds"),
            "kind": None if last is None else last.result.kind.value,
            "verdict": None if last is None else last.result.verdict.value,
            "failed": [] if last is None else [f.key for f in last.result.failed],
            "due": None if st.due is None else st.due.isoformat(timespec="seconds"),
            "overdue": st.overdue, "error": ""}
    return out


def printer_qc(qc: dict[str, dict[str, Any]], p: PrinterConfig) -> dict[str, Any] | None:
    """The QC of ``p`` among :func:`qc_states` (None: not a QA device)."""
    return qc.get(p.name) or qc.get("*")


def qa_profile(data_dir: Path, printer: str) -> dict[str, str] | None:
    """The printer profile version ``printscp qa test-printer --recalibrate`` made current
    (new jobs render with it instead of the configured ``output_profile``), None when
    QA has made none."""
    from calibration.qa.profiles import current_version

    version = current_version(data_dir, printer)
    if version is None:
        return None
    return {"version": version.name, "path": str(version.path), "created": version.created,
            "note": version.note}


def printer_status(config: NodeConfig, section: str, p: PrinterConfig,
                   free: int | None = None,
                   qc: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the console shows of profile ``p`` (of configuration ``section``);
    ``qc`` is :func:`qc_states` when the caller has read it already."""
    data_dir = config.data_path
    free = free_bytes(data_dir) if free is None else free
    qc = qc_states(data_dir) if qc is None else qc
    status, info = condition(config, p, free)
    targets = profile_targets(config, p)
    defaults_box, defaults_session = p.film_box_defaults, p.film_session_defaults
    return {
        "name": p.name, "section": section, "called_ae_title": called_ae(config, p),
        "status": status, "status_info": info, "free_bytes": free,
        "manufacturer": p.manufacturer, "model": p.model, "serial_number": p.serial_number,
        "film_sizes": [str(s) for s in (p.film_sizes or tuple(FilmSize))],
        "display_formats": list(p.display_formats) or
        ["STANDARD", "ROW", "COL", *p.custom_layouts],
        "magnification_types": [str(m) for m in
                                (p.magnification_types or tuple(MagnificationType))],
        "medium_types": [str(m) for m in MediumType],
        "default_film_size": str(defaults_box.get("film_size_id", "")),
        "default_medium_type": str(defaults_session.get("medium_type", "")),
        "min_density_range": list(p.min_density_range),
        "max_density_range": list(p.max_density_range),
        "output_profile": p.output_profile or "pdf-srgb (built in)",
        "qa_profile": qa_profile(data_dir, p.name),
        "targets": target_states(data_dir, p.name, targets),
        "calibration": calibration(data_dir, p.name),
        "qc": printer_qc(qc, p),
    }


def all_printers(config: NodeConfig) -> list[dict[str, Any]]:
    """:func:`printer_status` of every profile (one disk check and one read of the QA
    store for all)."""
    free = free_bytes(config.data_path)
    qc = qc_states(config.data_path)
    return [printer_status(config, section, p, free, qc) for section, p in profiles(config)]


# -- the test action -------------------------------------------------------------------
def _writable(folder: Path) -> tuple[bool, str]:
    """Whether a file can be created in ``folder`` (or its nearest existing parent,
    where the target would create it); tried with a real temporary file."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return False, f"{probe} is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".printscp-test-"):
            pass
    except OSError as exc:
        return False, f"{probe}: not writable ({exc.strerror or exc})"
    where = "" if probe == folder else f" (will be created under {probe})"
    return True, f"{folder} is writable{where}"


def _file_folder(data_dir: Path, t: FileTarget) -> Path:
    """The fixed part of a file target's folder (before any template field)."""
    fixed = t.directory
    if "{" in fixed:
        head = fixed.split("{", 1)[0]
        fixed = head.rsplit("/", 1)[0] if "/" in head else ""
    base = Path(fixed or ".")
    return base if base.is_absolute() else data_dir / base


def check_cups(t: CupsTarget, timeout: float = TEST_TIMEOUT) -> tuple[bool, str]:
    """The CUPS queue's state (IPP Get-Printer-Attributes): ok when it is not stopped
    and accepts jobs."""
    from printscp.outputs import ipp

    try:
        attrs = ipp.get_printer_attributes(ipp.printer_uri(t.server, t.queue), timeout)
    except (ipp.IppError, ValueError, OSError) as exc:
        return False, str(exc)
    state = str(attrs.get("printer-state", "?"))
    reasons = [str(r) for r in attrs.get("printer-state-reasons", []) or []  # type: ignore[union-attr]
               if str(r) != "none"]
    accepting = attrs.get("printer-is-accepting-jobs", True)
    ok = state != "stopped" and accepting is not False
    detail = f"queue {t.queue}: {state}" + (f" ({', '.join(reasons)})" if reasons else "")
    if accepting is False:
        detail += ", not accepting jobs"
    message = attrs.get("printer-state-message")
    if message:
        detail += f": {message}"
    return ok, detail


def check_dicom(t: DicomTarget, node_ae: str, timeout: float = TEST_TIMEOUT
                ) -> tuple[bool, str]:
    """C-ECHO then Printer N-GET to the upstream printer."""
    from printscp.outputs.probe import probe_printer

    try:
        result = probe_printer(t.destination, t.calling_ae or node_ae,
                               min(timeout, t.timeout))
    except ValueError as exc:
        return False, str(exc)
    return result.ok, result.detail + (f" [{'; '.join(result.steps)}]" if result.steps
                                       else "")


def check_target(config: NodeConfig, t: Target) -> tuple[bool, str]:
    """Whether target ``t`` could take a film now, and what was found."""
    if isinstance(t, CupsTarget):
        return check_cups(t)
    if isinstance(t, DicomTarget):
        return check_dicom(t, config.ae_title.strip())
    if isinstance(t, FileTarget):
        return _writable(_file_folder(config.data_path, t))
    if isinstance(t, ArchiveTarget):
        if not config.archive.enabled:
            return False, "the archive is disabled ([archive] enabled = false)"
        return _writable(config.data_path / "archive")
    return False, f"no test for {t.kind.value} targets"


def test_targets(config: NodeConfig, p: PrinterConfig,
                 check: Callable[[NodeConfig, Target], tuple[bool, str]] = check_target
                 ) -> list[dict[str, Any]]:
    """Check every target of ``p`` at once (one thread each); per target
    ``{target, kind, where, ok, detail, seconds}`` in the profile's order."""
    targets = profile_targets(config, p)

    def one(t: Target) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            ok, detail = check(config, t)
        except Exception as exc:  # a test reports, it never breaks the page
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        return {"target": t.label, "kind": t.kind.value, "where": target_where(t),
                "ok": ok, "detail": detail, "seconds": round(time.perf_counter() - t0, 3)}

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(targets)),
                            thread_name_prefix="printer-test") as pool:
        return list(pool.map(one, targets))
