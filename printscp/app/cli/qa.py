"""``printscp qa``: the calibration QA program of displays and printers (issue 19).

Devices and every test of them live in the QA store (:mod:`calibration.qa.store`),
``<data-dir>/qa.sqlite`` unless ``--qa-db`` names another file.  ``qa test`` judges a
display's measurements against its criteria set and its baseline and records the
result; ``qa status`` says what is due; ``qa report`` writes the report a physicist
signs.  The printer commands (``test-printer``, ``print-test``, ``rollback``) come from
:mod:`printscp.app.cli.qa_printer`.

Exit status of ``qa test``: 0 pass, 1 fail, 2 unusable input (as ``calibrate
analyze``).  Every command: 2 with one line naming what is wrong for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from calibration.qa.criteria import CriteriaSet
from printscp.app.cli.options import data_dir_of
from printscp.app.cli.qa_common import (
    LIMIT_HELP,
    UsageError,
    bounds_text,
    common_options,
    local,
    open_store,
    parse_site_limit,
    parse_when,
    print_test,
    store_options,
    store_path,
    table,
    the_device,
)

if TYPE_CHECKING:
    pass

DISPLAY_CRITERIA = tuple(c.value for c in CriteriaSet)




# -- options ----------------------------------------------------------------------------










def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp qa …`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("qa", help="QA program: devices, acceptance/constancy tests, status",
                       description="Acceptance and constancy tests of displays and printers, "
                       "their history, what is due, and reports (docs/qa.md).")
    store_options(p, None)
    p.set_defaults(func=run)
    qsub = p.add_subparsers(dest="qa_command", required=True, metavar="COMMAND")
    common = common_options()

    qsub.add_parser("devices", parents=[common], help="list the devices",
                    description="Every device in the QA store.")

    a = qsub.add_parser("add-device", parents=[common], help="add a display or printer",
                        description="Add a device to the QA store.  A display's identity is "
                        "best read from its EDID (--edid); a printer's id is its printer "
                        "profile name, as the console's Printers page shows it.")
    a.add_argument("device_id", metavar="ID")
    a.add_argument("--kind", required=True, choices=["display", "printer"])
    a.add_argument("--manufacturer", help="default: the EDID's manufacturer id")
    a.add_argument("--model", help="default: the EDID's monitor name")
    a.add_argument("--serial", help="default: the EDID's serial number")
    a.add_argument("--edid", metavar="FILE",
                   help="the display's EDID (/sys/class/drm/*/edid, or a hex dump)")
    a.add_argument("--criteria", metavar="SET",
                   help=f"display: one of {', '.join(DISPLAY_CRITERIA)} (default tg18); "
                   "printers: ps3.14-film")
    a.add_argument("--diagnostic", action=argparse.BooleanOptionalAction, default=True,
                   help="display used for diagnosis: the stricter limits (default yes)")
    a.add_argument("--printer-ae", metavar="AE", default="",
                   help="printer: the called AE title that reaches it")
    a.add_argument("--description", default="", help="where it is, what it is for")
    a.add_argument("--limit", dest="limits", type=parse_site_limit, action="append", default=[],
                   metavar="FIGURE=LOW:HIGH",
                   help=LIMIT_HELP + "; every test of the device is held to them")
    a.add_argument("--interval-days", type=int, default=0, metavar="N",
                   help="the site's schedule: a test keeps the device current N days "
                   "(default 0: its criteria set's interval)")

    e = qsub.add_parser("edit-device", parents=[common], help="change a device's description "
                        "or site limits", description="Change what is known of a device "
                        "(identity, criteria, site limits).  Its recorded tests are not "
                        "touched: each keeps the limits it was judged against.")
    e.add_argument("device_id", metavar="ID")
    for option in ("--manufacturer", "--model", "--serial", "--criteria", "--printer-ae",
                   "--description"):
        e.add_argument(option)
    e.add_argument("--edid", metavar="FILE", help="read manufacturer, model and serial again")
    e.add_argument("--diagnostic", action=argparse.BooleanOptionalAction, default=None)
    e.add_argument("--limit", dest="limits", type=parse_site_limit, action="append",
                   default=[], metavar="FIGURE=LOW:HIGH", help=LIMIT_HELP + " (sets or "
                   "replaces that figure's limit)")
    e.add_argument("--drop-limit", dest="drop", action="append", default=[],
                   metavar="FIGURE", help="remove the site's limit of FIGURE; repeatable")
    e.add_argument("--interval-days", type=int, metavar="N",
                   help="days a test keeps the device current (0: its criteria set's)")

    h = qsub.add_parser("history", parents=[common], help="every test of a device",
                        description="The tests of a device, oldest first.")
    h.add_argument("device_id", metavar="DEVICE")
    h.add_argument("--from", dest="since", type=parse_when, metavar="DATE")
    h.add_argument("--to", dest="until", type=lambda t: parse_when(t, True), metavar="DATE")
    h.add_argument("--json", action="store_true", help="print the records as JSON")

    t = qsub.add_parser("test", parents=[common], help="test a display and record it",
                        description="Judge a display's measurements against its criteria "
                        "set (and, for constancy, its baseline: the latest acceptance "
                        "test), record the test, print each figure against its limit.  "
                        "Exit status: 0 pass, 1 fail, 2 unusable input.")
    t.add_argument("measurements", metavar="MEASUREMENTS", help="the display readings file")
    t.add_argument("--device", required=True, metavar="ID")
    t.add_argument("--kind", required=True, choices=["acceptance", "constancy"])
    t.add_argument("--criteria", choices=DISPLAY_CRITERIA,
                   help="default: the device's criteria set")
    t.add_argument("--operator", default=os.environ.get("USER") or "unknown",
                   help="who ran the test (default $USER)")
    t.add_argument("--json", metavar="FILE", help="also write the record as JSON")
    t.add_argument("--limit", dest="limits", type=parse_site_limit, action="append", default=[],
                   metavar="FIGURE=LOW:HIGH",
                   help=LIMIT_HELP + "; for this test, over the device's own")

    s = qsub.add_parser("status", parents=[common], help="what is due and what is overdue",
                        description="Every device, its last test and verdict, when the next "
                        "constancy test is due, and OVERDUE when that has passed.  Exit "
                        "status 0 when every device's last test passed and none is overdue, "
                        "1 otherwise (a reminder for cron or a monitoring check).")
    s.add_argument("--json", action="store_true", help="print the status as JSON")

    r = qsub.add_parser("report", parents=[common], help="write a device's QA report (PDF)",
                        description="The acceptance/constancy report of a device with its "
                        "trend plots, over its tests from --from to --to.")
    r.add_argument("device_id", metavar="DEVICE")
    r.add_argument("--from", dest="since", type=parse_when, metavar="DATE")
    r.add_argument("--to", dest="until", type=lambda t: parse_when(t, True), metavar="DATE")
    r.add_argument("-o", "--output", required=True, metavar="PDF")
    r.add_argument("--archive", action="store_true",
                   help="also store it in the node's archive as Encapsulated PDF under "
                   "the QA patient")

    from printscp.app.cli import qa_printer  # print-test, test-printer, rollback

    qa_printer.add_printer_commands(qsub)


def run(args: argparse.Namespace) -> int:
    """Run the ``qa`` command: ours from :data:`COMMANDS`, the printer commands by the
    ``qa_func`` their parsers set."""
    func = COMMANDS.get(args.qa_command) or getattr(args, "qa_func", None)
    if func is None:
        raise AssertionError(f"no qa command {args.qa_command}")
    try:
        return func(args)
    except UsageError as err:
        print(f"printscp qa {args.qa_command}: {err}", file=sys.stderr)
        return 2


# -- the store ---------------------------------------------------------------------------






# -- output helpers -------------------------------------------------------------------










# -- commands -------------------------------------------------------------------------
def cmd_devices(args: argparse.Namespace) -> int:
    store = open_store(args)
    devices = store.devices() if store is not None else []
    if not devices:
        print(f"no devices in {store_path(args)} (add one with printscp qa add-device)")
        return 0
    rows = [[d.id, d.kind.value, d.criteria + ("" if d.diagnostic or d.kind.value ==
                                                "printer" else " (non-diagnostic)"),
             " ".join(x for x in (d.manufacturer, d.model) if x) or "—", d.serial or "—",
             d.printer_ae or "—", f"{d.interval_days} d" if d.interval_days else "—",
             d.description] for d in devices]
    print(table(rows, ["id", "kind", "criteria", "model", "serial", "AE", "interval",
                       "description"]))
    return 0


def _from_printer_profile(args: argparse.Namespace, identity: dict[str, str],
                          printer_ae: str) -> tuple[dict[str, str], str]:
    """A printer's identity from its printer profile in ``--config`` (the device id is
    the profile's name): manufacturer, model, serial number and the called AE title that
    reaches it; a name that is no profile of the node is refused, naming the known."""
    from printscp.config import load_config

    config = load_config(args.config)
    try:
        profile = config.printer_named(args.device_id)
    except KeyError as err:
        raise UsageError(f"{err.args[0]} in {args.config}: a printer's device id is its "
                         "printer profile name") from None
    called = profile.ae_title or config.ae_title.strip()
    return ({"manufacturer": profile.manufacturer, "model": profile.model,
             "serial": profile.serial_number}, printer_ae or called)


def cmd_add_device(args: argparse.Namespace) -> int:
    from calibration.qa.devices import Device, EdidError, read_edid
    from calibration.qa.results import DeviceKind

    kind = DeviceKind(args.kind)
    identity = {"manufacturer": "", "model": "", "serial": ""}
    if args.edid:
        if kind is not DeviceKind.DISPLAY:
            raise UsageError("--edid is for displays")
        try:
            edid = read_edid(args.edid)
        except EdidError as err:
            raise UsageError(str(err)) from None
        identity = {k: str(edid[k]) for k in identity}
    printer_ae = args.printer_ae
    if kind is DeviceKind.PRINTER and getattr(args, "config", None):
        identity, printer_ae = _from_printer_profile(args, identity, printer_ae)
    for key in identity:
        if getattr(args, key) is not None:
            identity[key] = getattr(args, key)
    try:
        device = Device(args.device_id, kind, criteria=args.criteria or "",
                        diagnostic=args.diagnostic, description=args.description,
                        printer_ae=printer_ae, site_limits=dict(args.limits),
                        interval_days=args.interval_days,
                        **identity)
    except ValueError as err:
        raise UsageError(str(err)) from None
    store = open_store(args, create=True)
    assert store is not None
    try:
        store.add_device(device)
    except ValueError as err:
        raise UsageError(str(err)) from None
    what = ", ".join(x for x in (" ".join(x for x in (device.manufacturer, device.model) if x),
                                 device.serial and f"serial {device.serial}") if x)
    flags = device.criteria
    if kind is DeviceKind.DISPLAY:
        flags += ", diagnostic" if device.diagnostic else ", non-diagnostic"
    elif device.printer_ae:
        flags += f", AE {device.printer_ae}"
    for key, low, high in device.site_limits:
        flags += f", {key} {bounds_text(low, high)}"
    print(f"added {kind.value} {device.id}{f' ({what})' if what else ''}: criteria {flags}; "
          f"store {store.path}")
    return 0


def cmd_edit_device(args: argparse.Namespace) -> int:
    import dataclasses

    from calibration.qa.devices import EdidError, read_edid

    store = open_store(args)
    device = the_device(store, args.device_id, args)
    assert store is not None
    changes: dict[str, object] = {}
    if args.edid:
        try:
            edid = read_edid(args.edid)
        except EdidError as err:
            raise UsageError(str(err)) from None
        changes.update({k: str(edid[k]) for k in ("manufacturer", "model", "serial")})
    for key in ("manufacturer", "model", "serial", "criteria", "printer_ae", "description",
                "diagnostic", "interval_days"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    limits = device.limits
    for key in args.drop:
        if limits.pop(key, None) is None:
            raise UsageError(f"device {device.id} has no site limit for {key!r} (it has: "
                             f"{', '.join(limits) or 'none'})")
    limits.update(dict(args.limits))
    changes["site_limits"] = limits
    try:
        edited = dataclasses.replace(device, **changes)
        store.update_device(edited)
    except ValueError as err:
        raise UsageError(str(err)) from None
    before, after = device.to_json(), edited.to_json()
    changed = [f"{k}: {before[k]!r} -> {after[k]!r}" for k in after if before[k] != after[k]]
    print(f"{device.id}: " + ("; ".join(changed) if changed else "nothing changed"))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    store = open_store(args)
    device = the_device(store, args.device_id, args)
    assert store is not None
    records = store.history(device.id, args.since, args.until)
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=1, ensure_ascii=False))
        return 0
    if not records:
        print(f"{device.id}: no tests recorded")
        return 0
    rows = [[str(r.id), local(r.when), r.result.kind.value, r.result.criteria,
             r.result.verdict.value.upper(), r.operator,
             "" if r.baseline_id is None else f"#{r.baseline_id}",
             ", ".join(f.key for f in r.result.failed)] for r in records]
    print(table(rows, ["#", "when", "kind", "criteria", "verdict", "operator", "baseline",
                       "failed"]))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from calibration.measurements import MeasurementError
    from calibration.qa.criteria import CriteriaSet
    from calibration.qa.display import evaluate_display, read_display_readings
    from calibration.qa.results import DeviceKind, TestKind

    store = open_store(args)
    device = the_device(store, args.device, args)
    assert store is not None
    if device.kind is not DeviceKind.DISPLAY:
        raise UsageError(f"device {device.id} is a printer: test it with printscp qa "
                         "test-printer")
    kind = TestKind(args.kind)
    criteria = CriteriaSet(args.criteria or device.criteria)
    baseline = store.baseline(device.id) if kind is TestKind.CONSTANCY else None
    try:
        readings = read_display_readings(args.measurements)
        site = {**device.limits, **dict(args.limits)}
        result = evaluate_display(readings, criteria, kind,
                                  None if baseline is None else baseline.result,
                                  diagnostic=device.diagnostic, site_limits=site)
    except (MeasurementError, ValueError, OSError) as err:
        raise UsageError(str(err)) from None
    record = store.record_test(device.id, result, operator=args.operator,
                               source=str(args.measurements))
    print_test(record, baseline)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(record.to_json(), indent=1,
                                                  ensure_ascii=False), encoding="utf-8")
        except OSError as err:
            raise UsageError(f"{args.json}: {err.strerror or err}") from None
        print(f"json: {args.json}")
    return 0 if result.verdict.value == "pass" else 1




def cmd_status(args: argparse.Namespace) -> int:
    from calibration.qa.status import device_status

    store = open_store(args)
    statuses = device_status(store) if store is not None else []
    attention = any(s.overdue or (s.last is not None and s.last.result.verdict.value == "fail")
                    for s in statuses)
    if args.json:
        print(json.dumps([s.to_json() for s in statuses], indent=1, ensure_ascii=False))
        return 1 if attention else 0
    if not statuses:
        print(f"no devices in {store_path(args)} (add one with printscp qa add-device)")
        return 0
    rows = []
    for s in statuses:
        last = s.last
        state = ("OVERDUE: never tested" if last is None else
                 "OVERDUE" if s.overdue else "ok")
        rows.append([s.device.id, s.device.kind.value,
                     "—" if last is None else f"{local(last.when)} {last.result.kind.value}",
                     "—" if last is None else last.result.verdict.value.upper(),
                     local(s.due), state])
    print(table(rows, ["device", "kind", "last test", "verdict", "due", "state"]))
    overdue = sum(s.overdue for s in statuses)
    failed = sum(s.last is not None and s.last.result.verdict.value == "fail" for s in statuses)
    print(f"{len(statuses)} device(s), {overdue} overdue, {failed} failed their last test")
    return 1 if attention else 0


def cmd_report(args: argparse.Namespace) -> int:
    from calibration.qa.report import write_report

    store = open_store(args)
    device = the_device(store, args.device_id, args)
    assert store is not None
    records = store.history(device.id, args.since, args.until)
    if not records:
        raise UsageError(f"no tests of {device.id} in that period" if args.since or
                         args.until else f"no tests of {device.id} recorded yet")
    named = {r.baseline_id for r in records} - {r.id for r in records} - {None}
    baselines = [store.test(i) for i in sorted(named)]  # type: ignore[arg-type]
    try:
        write_report(args.output, device, records, baselines=baselines)
    except OSError as err:
        raise UsageError(f"{args.output}: {err.strerror or err}") from None
    first, last = records[0].when, records[-1].when
    print(f"report: {args.output} ({device.id}, {len(records)} test(s) from "
          f"{local(first)} to {local(last)})")
    if args.archive:
        from printscp.archive.archive import Archive
        from printscp.archive.qa_reports import store_qa_report

        kind = records[-1].result.kind.value
        title = f"QA {kind} report {device.id}"[:64]
        stored = store_qa_report(Archive(data_dir_of(args)),
                                 Path(args.output).read_bytes(), device.id,
                                 device.kind.value, title)
        print(f"archived: patient {stored['patient_id']}, study "
              f"{stored['study_instance_uid']}, instance {stored['sop_instance_uid']}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "devices": cmd_devices, "add-device": cmd_add_device, "edit-device": cmd_edit_device,
    "history": cmd_history,
    "test": cmd_test, "status": cmd_status, "report": cmd_report}
