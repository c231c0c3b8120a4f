"""Is an upstream DICOM printer there?  C-ECHO, then Printer N-GET (PS3.4 H.4.6).

The console's printer test calls this for each DICOM target; it lives here because
only the outputs layer (and below) may open associations, the web side never imports
pynetdicom.  Nothing is printed: one association, two requests, released.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from printscp import net
from printscp.core import uids
from printscp.core.remote import RemoteAE


@dataclass
class ProbeResult:
    """What the printer answered.  ``ok``: it echoed and its Printer Status is not
    FAILURE; ``detail`` says so in one line for a person."""

    ok: bool
    detail: str
    seconds: float
    echo_status: int | None = None
    printer_status: str = ""
    printer_status_info: str = ""
    printer_name: str = ""
    steps: list[str] = field(default_factory=list)


def probe_printer(destination: str, calling_ae: str = "PRINTSCP",
                  timeout: float = 10.0) -> ProbeResult:
    """C-ECHO and Printer N-GET to ``destination`` (``AE@HOST:PORT``).

    Never raises for a network failure: an unreachable or refusing printer is a
    result (``ok`` false) saying why.  A bad ``destination`` is a ValueError.
    """
    remote = RemoteAE.parse(destination)
    t0 = time.perf_counter()

    def done(ok: bool, detail: str, **more: object) -> ProbeResult:
        return ProbeResult(ok, detail, round(time.perf_counter() - t0, 3), **more)  # type: ignore[arg-type]

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    ae.add_requested_context(uids.VERIFICATION, syntaxes)
    ae.add_requested_context(uids.BASIC_GRAYSCALE_PRINT_META, syntaxes)
    try:
        assoc = net.associate(ae, remote.host, remote.port, ae_title=remote.ae_title)
    except (OSError, RuntimeError) as exc:
        return done(False, f"{destination}: cannot associate: {exc}")
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted \
            else "no answer"
        return done(False, f"{destination}: association {why}")
    steps: list[str] = []
    try:
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        echo = None
        if uids.VERIFICATION in accepted:
            st = assoc.send_c_echo()
            echo = int(st.Status) if st and "Status" in st else None
            steps.append("C-ECHO: " + (f"0x{echo:04X}" if echo is not None else "no answer"))
            if echo != 0x0000:
                return done(False, f"{destination}: C-ECHO failed ({steps[-1]})",
                            echo_status=echo, steps=steps)
        else:
            steps.append("C-ECHO: Verification not accepted")
        if uids.BASIC_GRAYSCALE_PRINT_META not in accepted:
            return done(False, f"{destination}: Basic Grayscale Print Management "
                        "not accepted", echo_status=echo, steps=steps)
        # No attribute list: some printers (DCMTK's) refuse optional ones with 0x0105.
        st, ds = assoc.send_n_get([], uids.PRINTER, uids.PRINTER_INSTANCE,
                                  meta_uid=uids.BASIC_GRAYSCALE_PRINT_META)
        code = int(st.Status) if st and "Status" in st else None
        steps.append("Printer N-GET: " + (f"0x{code:04X}" if code is not None
                                          else "no answer"))
        if code is None or code >= 0xA000 or ds is None:
            return done(False, f"{destination}: Printer N-GET failed ({steps[-1]})",
                        echo_status=echo, steps=steps)
        status = str(ds.get("PrinterStatus", "") or "")
        info = str(ds.get("PrinterStatusInfo", "") or "")
        name = str(ds.get("PrinterName", "") or "")
        ok = status != "FAILURE"
        detail = f"{destination}: Printer Status {status or '?'}" + (
            f" ({info})" if info else "")
        return done(ok, detail, echo_status=echo, printer_status=status,
                    printer_status_info=info, printer_name=name, steps=steps)
    finally:
        if assoc.is_established:
            assoc.release()
