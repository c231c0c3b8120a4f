"""Delivering a rendered film to a CUPS queue (hardcopy on paper).

The render step already laid the film out on the target's paper (fit or tiled at
true size) as a PDF in the job's spool folder; here it is submitted over IPP with
the paper's media name and the session's Number of Copies, and the CUPS job id is
recorded.  A job counts as delivered once CUPS accepted it; the queue's own state
is then CUPS's business (``lpstat`` shows it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from printscp.jobs.delivery import DeliveryError
from printscp.jobs.targets import CupsTarget
from printscp.outputs import ipp
from printscp.printing.paper import IPP_MEDIA, PaperPolicy, ipp_job_attributes


def submit(target: CupsTarget, folder: Path, document: Path, pages: int = 1) -> dict[str, Any]:
    """Submit ``document`` (``pages`` sheets per copy of the job in spool ``folder``)
    to ``target``'s queue; the target's own ``options`` win over ours."""
    job = json.loads((Path(folder) / "job.json").read_text("utf-8"))
    session = job.get("session", {})
    label = str(session.get("film_session_label") or "").strip()
    name = f"{job.get('calling_ae', '').strip() or 'printscp'} {label or job['job_id']}"
    uri = ipp.printer_uri(target.server, target.queue)
    try:
        job_id = ipp.print_job(
            uri, document.read_bytes(), job_name=name[:255], user=target.user,
            copies=int(session.get("number_of_copies") or 1),
            media=IPP_MEDIA.get(target.paper.upper()),
            job_attributes={**ipp_job_attributes(PaperPolicy(target.fit), pages=pages),
                            **target.options})
    except ipp.IppError as exc:
        detail = str(exc)  # most name the URI already
        where = detail if detail.startswith(uri) else f"{uri}: {detail}"
        raise DeliveryError(f"CUPS {where}", retriable=exc.retriable) from None
    return {"cups_job_id": job_id, "printer_uri": uri, "paper": target.paper.upper(),
            "fit": target.fit, "sheets_per_copy": pages}
