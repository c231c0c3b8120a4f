"""The node API (issue 16 section 3): what the node is (version, AE titles, ports,
uptime, free disk, its configuration with secrets masked), its live associations and
its recent log lines; plus the audit trail of console and command-line actions."""

from __future__ import annotations

import dataclasses
import enum
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from printscp import __version__
from printscp.core import audit
from printscp.core.printer_state import printer_condition
from printscp.http.auth import viewer
from printscp.http.errors import ApiError

router = APIRouter(tags=["node"], dependencies=[Depends(viewer)])

#: Configuration keys whose values are never shown (passwords, keys, tokens...).
SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|token|private|credential|api_?key|"
                        r"(^|_)key$|hash|salt", re.IGNORECASE)
MASK = "********"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):[^@/\s]+@",
                           re.IGNORECASE)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def plain(value: Any, key: str = "") -> Any:
    """``value`` as JSON data, any secret in it masked: a key naming a secret has its
    value replaced, a URL's password too."""
    if key and SECRET_KEY.search(key) and value not in (None, "", [], {}):
        return MASK
    if hasattr(value, "to_json") and callable(value.to_json):
        return plain(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), f.name)
                for f in dataclasses.fields(value) if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)
    return value


def disk(console: Any) -> dict[str, Any]:
    """Free space of the data directory's file system, and what the node makes of it."""
    config = console.config
    path = Path(console.data_dir)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    status, info = printer_condition(usage.free, config.disk_warning_mb << 20,
                                     config.disk_failure_mb << 20)
    return {"path": str(console.data_dir), "free_bytes": usage.free,
            "total_bytes": usage.total, "used_bytes": usage.used,
            "warning_bytes": config.disk_warning_mb << 20,
            "failure_bytes": config.disk_failure_mb << 20, "status": status,
            "status_info": info}


def tls_info(console: Any) -> dict[str, Any]:
    """The DICOM TLS listener: where, how, and the node's certificate."""
    tls = console.config.tls
    if not tls.enabled:
        return {"enabled": False}
    from printscp.core.tls import certificate_info

    port = console.tls_port()
    return {"enabled": True, "bind": console.config.bind,
            "port": port if port is not None else tls.port, "listening": port is not None,
            "plain": tls.plain, "min_version": str(tls.min_version),
            "require_client_certificate": tls.require_client_certificate,
            "certificate": certificate_info(tls.certificate)}


def node_info(console: Any, request: Request | None = None) -> dict[str, Any]:
    """What ``GET /api/node`` answers (the node page shows the same)."""
    config = console.config
    started = datetime.fromisoformat(console.started)
    dicom_port = console.dicom_port()
    http_port = request.url.port if request is not None else None
    return {
        "version": __version__, "ae_title": config.ae_title,
        "called_ae_titles": list(config.called_ae_titles),
        "dicom": {"bind": config.bind, "port": dicom_port if dicom_port is not None
                  else config.port, "listening": dicom_port is not None},
        "http": {"bind": config.http.bind, "port": http_port or config.http.port},
        "tls": tls_info(console),
        "started": console.started,
        "uptime_seconds": round((datetime.now(UTC) - started).total_seconds()),
        "workers": config.worker_count, "data_dir": str(console.data_dir),
        "disk": disk(console),
        "printers": ["default", *config.printers],
        "archive": config.archive.enabled, "worklist": config.worklist.enabled,
        "config": plain(config),
    }


@router.get("/node", summary="Version, AE titles, ports, uptime, free disk, configuration")
def get_node(request: Request) -> dict[str, Any]:
    return node_info(request.app.state.console, request)


def live_associations(console: Any) -> list[dict[str, Any]]:
    """The node's open associations, from every receiving process."""
    try:
        from printscp.core.live import read_live
    except ImportError:  # the reader is not there yet: nothing to show
        return []
    return read_live(console.data_dir)


@router.get("/node/associations", summary="Associations open now")
def get_associations(request: Request) -> dict[str, Any]:
    items = live_associations(request.app.state.console)
    return {"items": items, "total": len(items)}


def log_lines(console: Any, level: str | None, text: str | None, limit: int
              ) -> list[dict[str, Any]]:
    if level and level.strip().upper() not in LOG_LEVELS:
        raise ApiError(400, f"level must be one of {', '.join(LOG_LEVELS)}", "query.level")
    return console.logs.lines(level=level.strip().upper() if level else None, text=text,
                              limit=limit)


@router.get("/node/logs", summary="Recent log lines, newest first")
def get_logs(request: Request,
             level: Annotated[str | None, Query(
                 description="this level and above: " + ", ".join(LOG_LEVELS))] = None,
             text: Annotated[str | None, Query(description="contained, any case")] = None,
             limit: Annotated[int, Query(ge=1, le=2000)] = 200) -> dict[str, Any]:
    items = log_lines(request.app.state.console, level, text, limit)
    return {"items": items, "total": len(items)}


@router.get("/node/audit", summary="The audit trail of actions, newest first")
def get_audit(request: Request,
              limit: Annotated[int, Query(ge=1, le=2000)] = 200) -> dict[str, Any]:
    items = audit.read(request.app.state.console.data_dir, limit)
    audit.record(request.app.state.console.data_dir, "audit.read", "console",
                 user=viewer(request).name, source=request.client.host if request.client
                 else "", shown=len(items))  # reading the trail is recorded (PS3.15 A.5.3.2)
    return {"items": items, "total": len(items)}

