"""Human-readable results: the one-screen summary, PNG plots and the PDF report.

Plots are made with matplotlib (Agg, no display needed) and saved as PNG beside
the PDF; the PDF (reportlab) embeds those same PNGs, so what a physicist files
and what other tools read cannot differ.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from calibration.analysis import DIAGNOSTIC_LIMIT, OTHER_LIMIT, Conformance
from calibration.measurements import Measurement


def _verdict(c: Conformance) -> str:
    return "PASS" if c.conforms else "FAIL"


def summary(measured: Measurement, before: Conformance, after: Conformance | None) -> str:
    """The text printed on the terminal: verdict, worst interval, ratios, predictions."""
    lo, hi, err = before.worst()
    lines = [
        f"{measured.source}: {measured.kind}, {measured.ddl.size} levels "
        f"(DDL {int(measured.ddl[0])}..{int(measured.ddl[-1])} of {measured.max_ddl})",
        f"verdict: {_verdict(before)} (limit ±{before.limit:.0%}; "
        f"±10 % {'pass' if before.conforms_10pct else 'fail'}, "
        f"±20 % {'pass' if before.conforms_20pct else 'fail'})",
        f"worst interval: DDL {lo:g}-{hi:g}, contrast error {err:+.1%}",
        f"Lmin {before.lmin:.4g} cd/m², Lmax {before.lmax:.4g} cd/m², "
        f"Lmax/Lmin {before.luminance_ratio:.1f}, Lamb {before.ambient:.4g} cd/m², "
        f"Lamb/Lmin {before.ambient_ratio:.3f}",
    ]
    if measured.is_printer:
        d = before.density
        lines.append(f"Dmin {d['dmin']:.2f} OD, Dmax {d['dmax']:.2f} OD "
                     f"(illumination {measured.illumination:g}, ambient {measured.ambient:g} "
                     "cd/m²)")
    lines += [f"FAIL: {f}" for f in before.failures]
    lines += [f"warning: {w}" for w in before.warnings]
    if after is not None:
        lines.append(f"after calibration (predicted): {_verdict(after)}, max error "
                     f"{after.max_abs_error:.1%}")
    return "\n".join(lines)


def plot_files(measured: Measurement, before: Conformance, after: Conformance | None,
               stem: str | os.PathLike[str]) -> list[Path]:
    """Write the plots as ``<stem>-<name>.png`` and return their paths, in report order."""
    stem = Path(stem)
    out: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = stem.with_name(f"{stem.name}-{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)

    r = before.response
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.semilogy(r.levels, r.luminance, "o-", label="measured (incl. ambient)")
    ax.semilogy(r.levels, r.target_luminance, "k--", label="GSDF target")
    if after is not None:
        ax.semilogy(after.response.levels, after.response.luminance, "s:",
                    label="predicted after calibration")
    ax.set_xlabel("driving level")
    ax.set_ylabel("luminance (cd/m²)")
    ax.set_title("Luminance response")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save(fig, "luminance")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    mid = (r.levels[1:] + r.levels[:-1]) / 2
    ax.plot(mid, r.error * 100, "o-", label="measured")
    if after is not None:
        a = after.response
        ax.plot((a.levels[1:] + a.levels[:-1]) / 2, a.error * 100, "s:",
                label="predicted after calibration")
    for limit, style in ((DIAGNOSTIC_LIMIT, "r--"), (OTHER_LIMIT, "m:")):
        ax.axhline(limit * 100, color=style[0], ls=style[1:], label=f"±{limit:.0%}")
        ax.axhline(-limit * 100, color=style[0], ls=style[1:])
    ax.set_xlabel("driving level (interval midpoint)")
    ax.set_ylabel("dL/L error vs GSDF (%)")
    ax.set_title("Contrast response per interval")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, "contrast")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    width = np.diff(r.levels) * 0.4
    ax.bar(mid - width / 2, r.jnds_per_step, width, label="measured")
    ax.bar(mid + width / 2, r.target_jnds_per_step, width, label="GSDF target")
    ax.set_xlabel("driving level (interval midpoint)")
    ax.set_ylabel("JNDs per step")
    ax.set_title("JND index steps")
    ax.legend()
    save(fig, "jnds")

    if measured.is_printer:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.plot(measured.ddl, measured.values, "o-", label="measured density")
        d = before.density
        for key, label in (("required_min_density", "requested Dmin"),
                           ("required_max_density", "requested Dmax")):
            if d.get(key) is not None:
                ax.axhline(d[key], color="r", ls="--", label=label)
        ax.set_xlabel("driving level")
        ax.set_ylabel("optical density (OD)")
        ax.set_title("Printer characteristic curve")
        ax.grid(True, alpha=0.3)
        ax.legend()
        save(fig, "density")
    return out


def write_pdf(path: str | os.PathLike[str], measured: Measurement, before: Conformance,
              after: Conformance | None, plots: list[Path], *,
              inputs: dict[str, Any], when: datetime) -> Path:
    """First page: inputs, date, verdict and figures; then one plot per half page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import cm
    from reportlab.pdfgen import canvas

    path = Path(path)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle("printscp GSDF calibration report")
    width, height = A4
    y = height - 2 * cm
    pdf.setFont("Helvetica-Bold", 15)
    pdf.drawString(2 * cm, y, f"GSDF conformance: {_verdict(before)}")
    y -= 0.8 * cm
    pdf.setFont("Helvetica", 9)
    text = [f"date: {when.isoformat(timespec='seconds')}"]
    text += [f"{k}: {v}" for k, v in inputs.items()]
    text += ["", *summary(measured, before, after).splitlines()]
    for line in text:
        pdf.drawString(2 * cm, y, line[:120])
        y -= 0.45 * cm
    slot = (height - 4 * cm) / 2
    img_w = width - 4 * cm
    img_h = slot - 0.5 * cm
    for plot in plots:
        if y - img_h < 1.5 * cm:
            pdf.showPage()
            y = height - 2 * cm
        y -= img_h
        pdf.drawImage(str(plot), 2 * cm, y, width=img_w, height=img_h,
                      preserveAspectRatio=True, anchor="c")
        y -= 0.5 * cm
    pdf.showPage()
    pdf.save()
    return path
