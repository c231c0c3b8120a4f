"""``printscp qa print-test | test-printer | rollback``: film printer QC that closes the loop.

* ``print-test --printer NAME`` prints the QC film (:mod:`calibration.qa.test_film`)
  as a print job of that printer profile, spooled like any other job (the running node
  renders it with the printer's current profile); ``--to AE@HOST:PORT`` sends it to a
  DICOM printer with the code ``printscp print`` uses.
* ``test-printer READINGS --device NAME`` judges the densitometer readings of that
  film (:func:`calibration.qa.film.evaluate_film`), records the test in the QA store
  and prints each figure; exit 0 pass, 1 fail, 2 unusable input.  With
  ``--recalibrate`` a failed test makes a new profile version from the readings
  (:mod:`calibration.qa.profiles`), records the calibration (Printer N-GET's Date and
  Time of Last Calibration) and prints the next QC film with it.
* ``rollback PRINTER [--to VERSION]`` makes an older profile version current.

The device id of a printer is its printer profile name (``[printer] name`` or
``[printers.NAME]``); its film box defaults give the films' Min/Max Density,
Illumination and Reflected Ambient Light.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp.app.cli.options import parse_nonnegative, parse_od
from printscp.app.cli.qa_common import UsageError, common_options

if TYPE_CHECKING:
    from calibration.qa.film import FilmReadings
    from lut.device import CharacteristicCurve
    from printscp.config.model import NodeConfig, PrinterConfig
    from printscp.printing.film_box import FilmBox

#: Calling AE title of QC films sent to a remote printer, and of spooled ones.
QA_AE = "PRINTSCP-QA"


def _response_or_site_limit(text: str) -> str | tuple[str, tuple[float | None, float | None]]:
    """``--limit diagnostic|other`` (as ``calibrate analyze``) or ``--limit FIGURE=LOW:HIGH``
    (as ``qa test``)."""
    if text in ("diagnostic", "other"):
        return text
    from printscp.app.cli.qa_common import parse_site_limit

    return parse_site_limit(text)


def add_printer_commands(qsub: argparse._SubParsersAction) -> None:
    """Register the printer commands under ``printscp qa`` (called by its module)."""
    common = common_options()
    p = qsub.add_parser(
        "print-test", parents=[common], help="print a printer's QC film",
        description="Print the QC film (a step wedge of known P-values, a SMPTE-style "
        "pattern, a label with the date, device and profile version) as a print job of "
        "printer profile NAME, rendered by the running node with its current profile; "
        "or, with --to, on a DICOM printer.")
    p.add_argument("--printer", required=True, metavar="NAME", help="printer profile name")
    p.add_argument("--to", metavar="AE@HOST:PORT", help="print on this DICOM printer instead")
    p.add_argument("--steps", type=int, default=32, metavar="N",
                   help="steps of the wedge (default 32, PS3.14 Annex D.2.1)")
    p.add_argument("--dpi", type=float, metavar="DPI",
                   help="with --to: the remote printer's resolution (default 300)")
    p.add_argument("--save", metavar="FILE", help="also write the QC film as DICOM")

    t = qsub.add_parser(
        "test-printer", parents=[common], help="judge a QC film's readings and record them",
        description="Judge the densitometer readings of a printer's QC film (PS3.14 "
        "contrast response, Dmin/Dmax, speed, contrast and base+fog against the baseline), "
        "record the test, print each figure.  Exit status: 0 pass, 1 fail, 2 unusable "
        "input.  READINGS: CSV 'step,density[,p_value]' with optional base_fog and dmax "
        "rows (docs/qa.md).")
    t.add_argument("readings", metavar="READINGS")
    t.add_argument("--device", required=True, metavar="PRINTER",
                   help="the printer's device id (its printer profile name)")
    t.add_argument("--kind", choices=["acceptance", "constancy"],
                   help="default: constancy when the printer has a baseline, else acceptance")
    t.add_argument("--steps", type=int, default=32, metavar="N",
                   help="steps of the printed film, for readings without p_value (default 32)")
    t.add_argument("--limit", dest="limits", type=_response_or_site_limit, action="append",
                   default=[], metavar="diagnostic|other|FIGURE=LOW:HIGH",
                   help="contrast response limit: diagnostic ±10%% (default) or other "
                   "±20%%; or a site's limit FIGURE=LOW:HIGH for one figure, e.g. "
                   "dmax_change=-0.2: (added to the device's own; repeatable)")
    t.add_argument("--intervals", type=int, default=None, metavar="N",
                   help="judge the contrast response over N intervals (default 8; TG18's "
                   "17 asks more than 0.01 OD readings can give at the light end)")
    t.add_argument("--illumination", type=parse_nonnegative, metavar="L0",
                   help="light box luminance cd/m² (default: the printer's film box default)")
    t.add_argument("--ambient", type=parse_nonnegative, metavar="La",
                   help="reflected ambient light cd/m² (default: the printer's)")
    t.add_argument("--min-density", type=parse_od, metavar="OD",
                   help="Min Density of the films (default: the printer's)")
    t.add_argument("--max-density", type=parse_od, metavar="OD",
                   help="Max Density of the films (default: the printer's)")
    t.add_argument("--operator", default=os.environ.get("USER") or "unknown",
                   help="who ran the test (default $USER)")
    t.add_argument("--json", metavar="FILE", help="also write the record as JSON")
    t.add_argument("--recalibrate", action="store_true",
                   help="on a failure: a new profile version from the readings, the "
                   "calibration recorded, and the next QC film printed with it")
    t.add_argument("--printed-with", metavar="VERSION",
                   help="the profile version the film was printed with (default: current)")
    t.add_argument("--levels", type=int, choices=[8, 16],
                   help="device levels the films are rendered at (default: 16 when a film "
                   "target of the printer writes 16 bits, else 8)")
    t.add_argument("--no-print", action="store_true",
                   help="with --recalibrate: do not print the next QC film")

    r = qsub.add_parser(
        "rollback", parents=[common], help="make an older printer profile version current",
        description="Make the profile version before the current one (or --to VERSION) "
        "the one the printer's jobs render with.  No version is ever deleted.")
    r.add_argument("printer", metavar="PRINTER")
    r.add_argument("--to", metavar="VERSION", help="e.g. 1 or v0001")
    p.set_defaults(qa_func=cmd_print_test)
    t.set_defaults(qa_func=cmd_test_printer)
    r.set_defaults(qa_func=cmd_rollback)


# -- configuration -------------------------------------------------------------------
def _node(args: argparse.Namespace) -> tuple[NodeConfig, Path]:
    """The node's configuration (``--config``, else the defaults) and data directory
    (``--data-dir`` first)."""
    from printscp.config import load_config
    from printscp.config.model import NodeConfig

    config_path = getattr(args, "config", None)
    config = load_config(config_path) if config_path else NodeConfig()
    data_dir = getattr(args, "data_dir", None)
    if data_dir:
        config = dataclasses.replace(config, data_dir=str(data_dir))
    return config, config.data_path


def _printer(config: NodeConfig, name: str) -> PrinterConfig:
    try:
        return config.printer_named(name)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None


def _conditions(printer: PrinterConfig) -> dict[str, float]:
    """Min/Max Density (OD), Illumination and Reflected Ambient Light of the printer's
    films, from its film box defaults (the PS3.3 defaults where it has none)."""
    box = printer.film_box_defaults
    return {"min_density": int(box.get("min_density", 20)) / 100.0,
            "max_density": int(box.get("max_density", 300)) / 100.0,
            "illumination": float(box.get("illumination", 2000)),
            "ambient": float(box.get("reflected_ambient_light", 10))}


def qc_film_box(printer: PrinterConfig, *, steps: int = 32, dpi: float | None = None,
                profile: str = "", when: dt.datetime | None = None
                ) -> tuple[FilmBox, Any, float]:
    """The Film Box of ``printer``'s QC film: its film box defaults, STANDARD\\1,1, the
    QC film image at the image area's size at the printing resolution (one pixel per
    printer dot, REPLICATE).  Returns (film box, the QC film, dpi)."""
    from calibration.qa.test_film import qc_film
    from printscp.printing.film_box import FilmBox
    from printscp.printing.image_box import ImageBox
    from printscp.printing.layout import printable_area

    attrs = {**printer.film_box_defaults, "image_display_format": "STANDARD\\1,1",
             "magnification_type": "REPLICATE"}
    attrs.pop("smoothing_type", None)
    film_box = FilmBox(**attrs)
    dpi = float(dpi or printer.dpi or film_box.requested_resolution_id.dpi)  # type: ignore[union-attr]
    rows, columns, _ = printable_area(film_box.film_size_id, film_box.film_orientation,  # type: ignore[arg-type]
                                      dpi)
    film = qc_film(rows, columns, steps=steps, device=printer.name, profile=profile,
                   when=when)
    film_box.set_image(1, ImageBox(position=1, pixels=film.pixels,
                                   photometric_interpretation="MONOCHROME2", bits_stored=12))
    return film_box, film, dpi


def _profile_label(data_dir: Path, printer: PrinterConfig) -> str:
    from calibration.qa.profiles import current_version

    version = current_version(data_dir, printer.name)
    if version is not None:
        return version.name
    return Path(printer.output_profile).name if printer.output_profile else "pdf-srgb"


# -- print-test -----------------------------------------------------------------------
def cmd_print_test(args: argparse.Namespace) -> int:
    config, data_dir = _node(args)
    printer = _printer(config, args.printer)
    if args.steps < 2 or args.steps > 256:
        raise UsageError(f"--steps must be 2..256, got {args.steps}")
    try:
        if args.to:
            return _print_remote(args, printer)
        job_id, film = spool_qc_film(config, data_dir, printer, steps=args.steps)
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    print(f"QC film of printer {printer.name} spooled as print job {job_id} "
          f"(profile {_profile_label(data_dir, printer)}; the node renders it)")
    _save(args, film, printer, 25.4 / float(printer.dpi or 300))
    return 0


def spool_qc_film(config: NodeConfig, data_dir: Path, printer: PrinterConfig, *,
                  steps: int = 32) -> tuple[str, Any]:
    """Spool ``printer``'s QC film as a print job (durably, then queued for whichever
    worker of the node polls first), as the print service spools a film it receives.
    Returns (job id, the QC film)."""
    from printscp.core.uids import UID_ROOT
    from printscp.jobs.index import JobIndex
    from printscp.jobs.spool import (
        QUEUED_INFO,
        PrintJob,
        new_job_id,
        now_iso,
        print_job_uid,
        record_state,
        request_enqueue,
        write_job,
    )
    from printscp.printing.film_session import FilmSession
    from printscp.printing.records import film_box_record, session_record

    film_box, film, _ = qc_film_box(printer, steps=steps,
                                    profile=_profile_label(data_dir, printer))
    session = FilmSession(**{**printer.film_session_defaults,
                             "film_session_label": f"QC film {printer.name}"[:64]})
    arrays: dict[str, Any] = {}
    job_id = new_job_id()
    job = PrintJob(job_id=job_id, created=now_iso(), calling_ae=QA_AE,
                   called_ae=printer.ae_title or config.ae_title, peer="printscp qa print-test",
                   session=session_record(session),
                   films=[film_box_record(film_box, arrays, "film1")],
                   extra={"print_job_uid": print_job_uid(job_id, UID_ROOT),
                          **config.job_printing(printer)})
    spool_dir = data_dir / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    write_job(spool_dir, job, arrays)
    job.extra["status_info"] = QUEUED_INFO
    record_state(job, JobIndex(data_dir), "QC film (printscp qa print-test)")
    request_enqueue(data_dir, job_id)
    return job_id, film


def _print_remote(args: argparse.Namespace, printer: PrinterConfig) -> int:
    from printscp.outputs.print_scu import PrintError, parse_destination, print_films

    destination = parse_destination(args.to)
    film_box, film, dpi = qc_film_box(printer, steps=args.steps, dpi=args.dpi or 300,
                                      profile="remote")
    try:
        result = print_films([film_box], destination, calling_ae=QA_AE,
                             session={"FilmSessionLabel": f"QC film {printer.name}"[:64]},
                             on_step=lambda step: print(step, flush=True))
    except (PrintError, OSError) as err:
        print(f"printscp qa print-test: failed: {err}", file=sys.stderr)
        return 2
    print(f"QC film printed on {args.to}; printer status {result.printer_status}")
    _save(args, film, printer, 25.4 / dpi)
    return 0


def _save(args: argparse.Namespace, film: Any, printer: PrinterConfig, spacing: float) -> None:
    if not getattr(args, "save", None):
        return
    from calibration.qa.test_film import qc_film_dataset

    qc_film_dataset(film, pixel_spacing_mm=spacing, device=printer.name).save_as(
        args.save, enforce_file_format=True)
    print(f"QC film saved as {args.save}")


# -- test-printer ---------------------------------------------------------------------
def cmd_test_printer(args: argparse.Namespace) -> int:
    from calibration.analysis import DIAGNOSTIC_LIMIT, OTHER_LIMIT
    from calibration.measurements import MeasurementError
    from calibration.qa.film import FILM_INTERVALS, evaluate_film, read_film_readings
    from calibration.qa.results import DeviceKind, TestKind
    from printscp.app.cli.qa_common import open_store, print_test, the_device

    config, data_dir = _node(args)
    printer = _printer(config, args.device)
    store = open_store(args)
    device = the_device(store, args.device, args)
    assert store is not None
    if device.kind is not DeviceKind.PRINTER:
        raise UsageError(f"device {device.id} is a display: test it with printscp qa test")
    baseline = store.baseline(device.id)
    recalibrated = _recalibrated_since(data_dir, printer.name, baseline)
    kind = TestKind(args.kind) if args.kind else (
        TestKind.CONSTANCY if baseline is not None and not recalibrated
        else TestKind.ACCEPTANCE)
    if recalibrated and not args.kind:
        print(f"profile {recalibrated} is newer than the acceptance test: this film sets "
              "the new baseline (acceptance test)")
    elif baseline is not None and kind is TestKind.CONSTANCY and \
            baseline.result.verdict.value == "fail":
        print(f"note: the baseline, acceptance test #{baseline.id}, failed; the changes "
              "below are measured from a failing film (record a passing acceptance test)")
    conditions = _conditions(printer)
    for key in ("min_density", "max_density", "illumination", "ambient"):
        if getattr(args, key) is not None:
            conditions[key] = float(getattr(args, key))
    try:
        readings = read_film_readings(args.readings, steps=args.steps)
        result = evaluate_film(
            readings, kind, None if baseline is None or kind is TestKind.ACCEPTANCE
            else baseline.result,
            limit=OTHER_LIMIT if "other" in args.limits else DIAGNOSTIC_LIMIT,
            intervals=args.intervals or FILM_INTERVALS,
            site_limits={**device.limits, **dict(x for x in args.limits
                                                  if isinstance(x, tuple))},
            **conditions)
    except (MeasurementError, ValueError) as err:
        raise UsageError(str(err)) from None
    import dataclasses

    # The profile the film was printed with belongs to its record: a report over months
    # must show where a recalibration or a rollback changed the printer's response.
    profile = args.printed_with or _profile_label(data_dir, printer)
    result = dataclasses.replace(
        result, inputs={**result.inputs, "profile": profile},
        notes=(*result.notes, f"film printed with profile {profile}"))
    record = store.record_test(device.id, result, operator=args.operator,
                               source=str(args.readings))
    print_test(record, baseline if kind is TestKind.CONSTANCY else None)
    out: dict[str, Any] = record.to_json()
    passed = result.verdict.value == "pass"
    if args.recalibrate and passed:
        print("recalibration: not needed (the test passed)")
    elif args.recalibrate:
        try:
            out["recalibration"] = recalibrate(args, config, data_dir, printer, readings,
                                               conditions)
        except (ValueError, OSError) as err:
            raise UsageError(f"recalibration: {err}") from None
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False),
                                       encoding="utf-8")
        except OSError as err:
            raise UsageError(f"{args.json}: {err.strerror or err}") from None
        print(f"json: {args.json}")
    return 0 if passed else 1


def _curve_in_use(data_dir: Path, printer: PrinterConfig, printed_with: str | None
                  ) -> tuple[CharacteristicCurve, str]:
    """The characteristic curve the QC film was printed with, and what it is."""
    from calibration.qa.profiles import current_version, find_version
    from printscp.printing.profile import OutputProfile, default_profile

    if printed_with:
        try:
            version = find_version(data_dir, printer.name, printed_with)
        except KeyError as err:
            raise ValueError(str(err.args[0])) from None
        return OutputProfile.from_file(version.path).curve, version.name
    version = current_version(data_dir, printer.name)
    if version is not None:
        return OutputProfile.from_file(version.path).curve, version.name
    if printer.output_profile:
        return OutputProfile.from_file(printer.output_profile).curve, printer.output_profile
    return default_profile().curve, "pdf-srgb (built in)"


def step_levels(printer: PrinterConfig, curve: CharacteristicCurve, p_values: list[int], *,
                bits: int, conditions: dict[str, float]) -> list[int]:
    """The device level (DDL of ``curve``) each P-value of the QC film is printed at:
    the renderer's own tables (Presentation LUT to 16-bit P-values, then the output
    profile's device table), as :func:`printscp.printing.render.render_film` applies
    them to the flat middle of each step."""
    import numpy as np

    from printscp.printing.film_box import FilmBox
    from printscp.printing.image_box import ImageBox
    from printscp.printing.profile import OutputProfile
    from printscp.printing.render import pvalue_table

    box = ImageBox(position=1, pixels=np.zeros((2, 2), np.uint16),
                   photometric_interpretation="MONOCHROME2", bits_stored=12)
    attrs = {**printer.film_box_defaults, "image_display_format": "STANDARD\\1,1",
             "min_density": round(conditions["min_density"] * 100),
             "max_density": round(conditions["max_density"] * 100),
             "illumination": round(conditions["illumination"]),
             "reflected_ambient_light": round(conditions["ambient"])}
    film_box = FilmBox(**attrs)
    table = pvalue_table(film_box, box)
    device = OutputProfile("printed-with", curve).table(
        bits, film_box.min_density_od, film_box.max_density_od,
        float(film_box.illumination), float(film_box.reflected_ambient_light))
    top = 255 if bits == 8 else 65535
    levels = device[table[np.asarray(p_values)]].astype(np.float64)
    return np.rint(levels * (curve.max_ddl / top)).astype(int).tolist()


def recalibrate(args: argparse.Namespace, config: NodeConfig, data_dir: Path,
                printer: PrinterConfig, readings: FilmReadings,
                conditions: dict[str, float]) -> dict[str, Any]:
    """Make and install a new profile version from ``readings`` (see the module
    docstring); returns what it did, for ``--json``."""
    import numpy as np

    from calibration.qa.film import FILM_INTERVALS, evaluate_film, simulated_readings
    from calibration.qa.profiles import add_version, recalibrated_curve, versions
    from calibration.qa.results import TestKind
    from lut.device import interpolate_curve
    from printscp.core.printer_state import Calibration, record_calibration

    bits = args.levels or (16 if any(getattr(t, "bits", 8) == 16 for t in printer.targets)
                           else 8)
    curve, what = _curve_in_use(data_dir, printer, args.printed_with)
    levels = step_levels(printer, curve, list(readings.p_values), bits=bits,
                         conditions=conditions)
    new_curve = recalibrated_curve(levels, readings.density, curve)
    if not versions(data_dir, printer.name):  # keep what was in use, for a rollback
        add_version(data_dir, printer.name, curve, make_current=False,
                    note="the profile in use before QA recalibration", source=what)
    version = add_version(data_dir, printer.name, new_curve,
                          note=f"recalibrated from {args.readings}", source=str(args.readings))
    # What the next film should read if the printer keeps its new curve.
    new_levels = step_levels(printer, new_curve, list(readings.p_values), bits=bits,
                             conditions=conditions)
    full = interpolate_curve(new_curve)
    predicted = evaluate_film(
        simulated_readings(new_levels, lambda lv: full[np.asarray(lv)],
                           steps=readings.steps, p_values=readings.p_values,
                           base_fog=readings.base_fog),
        TestKind.ACCEPTANCE, intervals=args.intervals or FILM_INTERVALS, **conditions)
    # The verdict of a calibration is the next film's test, not this prediction: the
    # record keeps none (the console said "conforms" beside a failing QC test).
    state = record_calibration(data_dir, Calibration(
        dt.datetime.now().replace(microsecond=0), str(version.path), None), printer.name)
    failed = ", ".join(f.key for f in predicted.failed)
    print(f"recalibration: profile {version.name} from {len(readings.steps)} steps "
          f"(printed with {what}, {bits}-bit levels): {version.path}")
    print(f"recalibration: the next film should {'pass' if not failed else 'fail'} "
          f"(response error {predicted.value('response_max_error'):.1f} %"
          + (f"; still failing: {failed}" if failed else "") + ")")
    if "dmax" in failed:
        print("recalibration: the printer no longer reaches the films' Max Density; a "
              "profile cannot add density: service the printer or lower max_density")
    print(f"recalibration: recorded for Printer N-GET in {state}")
    done: dict[str, Any] = {"version": version.name, "path": str(version.path),
                            "printed_with": what, "levels": bits,
                            "predicted": predicted.verdict.value, "state": str(state)}
    if not args.no_print:
        job_id, _ = spool_qc_film(config, data_dir, printer, steps=len(readings.steps))
        print(f"recalibration: next QC film spooled as print job {job_id} (profile "
              f"{version.name}); its readings make the new acceptance test")
        done["print_job"] = job_id
    return done


def _recalibrated_since(data_dir: Path, printer: str, baseline: Any) -> str:
    """The current QA profile version's name when it was made current (recalibrated, or
    rolled back to) after the ``baseline`` test: the printer's response was changed on
    purpose, so the next film is a new acceptance test, not a constancy test against
    the old one."""
    from calibration.qa.profiles import CURRENT, current_version, profile_dir

    version = current_version(data_dir, printer)
    if version is None or baseline is None:
        return ""
    try:  # made current: by --recalibrate, or by qa rollback
        made = dt.datetime.fromtimestamp((profile_dir(data_dir, printer) / CURRENT)
                                         .stat().st_mtime, dt.UTC)
    except OSError:
        return ""
    return version.name if made > baseline.when else ""


# -- rollback -------------------------------------------------------------------------
def cmd_rollback(args: argparse.Namespace) -> int:
    from calibration.qa.profiles import current_version, rollback

    _, data_dir = _node(args)
    before = current_version(data_dir, args.printer)
    try:
        version = rollback(data_dir, args.printer, args.to)
    except (KeyError, ValueError) as err:
        raise UsageError(str(err.args[0])) from None
    print(f"printer {args.printer}: profile {before.name if before else '-'} -> "
          f"{version.name} ({version.note or 'no note'}); new jobs render with {version.path}")
    from printscp.core.printer_state import Calibration, record_calibration

    try:
        when = dt.datetime.fromisoformat(version.created).astimezone().replace(tzinfo=None)
    except ValueError:
        when = dt.datetime.now().replace(microsecond=0)
    record_calibration(data_dir, Calibration(when, str(version.path), None), args.printer)
    print(f"printer {args.printer}: Date/Time of Last Calibration now {when:%Y-%m-%d %H:%M:%S} "
          f"(when {version.name} was made)")
    return 0


COMMANDS = {"print-test": cmd_print_test, "test-printer": cmd_test_printer,
            "rollback": cmd_rollback}
