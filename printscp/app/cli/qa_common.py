"""What the ``printscp qa`` commands share: the store options and the store, the one-line
usage error, the site-limit option, and the tables they print.

:mod:`printscp.app.cli.qa` (the display and summary commands) and
:mod:`printscp.app.cli.qa_printer` (the printer commands) both use it; neither imports
the other's commands, so there is no import cycle between them.
"""

from __future__ import annotations

import argparse
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp.app.cli.options import add_data_dir_options, data_dir_of

if TYPE_CHECKING:
    from calibration.qa.results import TestResult
    from calibration.qa.store import QAStore, TestRecord


QA_DB = "qa.sqlite"


class UsageError(Exception):
    """Bad input to a ``qa`` command: one line on stderr, exit status 2."""


def store_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """``--data-dir``, ``--config`` and ``--qa-db``: on ``qa`` itself (before the
    command) and again on each command (after it), so both orders work."""
    if default is None:
        add_data_dir_options(parser)
    else:
        parser.add_argument("--data-dir", metavar="DIR", default=default,
                            help="the node's data directory")
        parser.add_argument("--config", metavar="FILE", default=default,
                            help="the node's TOML configuration, for its data directory")
    parser.add_argument("--qa-db", metavar="FILE", default=default,
                        help=f"the QA store (default: <data-dir>/{QA_DB})")


def common_options() -> argparse.ArgumentParser:
    """A parent parser giving a ``qa`` command the store options after its name
    (``printscp qa status --data-dir DIR``); for :mod:`printscp.app.cli.qa_printer`
    too (``parents=[common_options()]``)."""
    parent = argparse.ArgumentParser(add_help=False)
    store_options(parent, argparse.SUPPRESS)
    return parent


def parse_when(text: str, end_of_day: bool = False) -> datetime:
    """``--from``/``--to``: an ISO date or date and time, local unless it says its
    zone; a date alone ``--to`` means through the end of that day."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2026-01-31 or 2026-01-31T14:00, got {text!r}") from None
    if end_of_day and len(text.strip()) <= 10:
        when = datetime.combine(when.date() + timedelta(days=1), time()) - \
            timedelta(microseconds=1)
    return when if when.tzinfo else when.astimezone()


def parse_site_limit(text: str) -> tuple[str, tuple[float | None, float | None]]:
    """``--limit KEY=LOW:HIGH`` (either bound may be left out: ``lmax_change=-10:10``,
    ``white_point_distance=:0.01``)."""
    key, sep, bounds = text.partition("=")
    low, colon, high = bounds.partition(":")
    if not sep or not colon:
        raise argparse.ArgumentTypeError(
            f"expected FIGURE=LOW:HIGH such as lmax_change=-10:10, got {text!r}")
    try:
        return key.strip(), tuple(float(b) if b.strip() else None  # type: ignore[return-value]
                                  for b in (low, high))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers in {text!r} (FIGURE=LOW:HIGH, either may be empty)") from None


LIMIT_HELP = ("a site's limit FIGURE=LOW:HIGH (either bound may be empty) for a figure the "
              "criteria set does not limit, e.g. lmax_change=-10:10 or "
              "white_point_distance=:0.01; repeatable")


def store_path(args: argparse.Namespace) -> Path:
    """``--qa-db``, else ``<data-dir>/qa.sqlite``."""
    if getattr(args, "qa_db", None):
        return Path(args.qa_db)
    return data_dir_of(args) / QA_DB


def open_store(args: argparse.Namespace, *, create: bool = False) -> QAStore | None:
    """The QA store of the options; None when it does not exist and ``create`` is
    false (nothing recorded yet: the reading commands need not make one)."""
    from calibration.qa.store import QAStore, StoreError

    path = store_path(args)
    try:
        return QAStore(path, create=create)
    except FileNotFoundError:
        return None
    except (StoreError, OSError) as err:
        raise UsageError(str(err)) from None
    except Exception as err:  # sqlite3.DatabaseError: not a database at all
        raise UsageError(f"{path}: {err}") from None


def the_device(store: QAStore | None, device_id: str, args: argparse.Namespace) -> Any:
    """The device ``device_id``; unknown is one line naming it (exit 2)."""
    if store is None:
        raise UsageError(f"unknown device {device_id!r}: no QA store at {store_path(args)} "
                         "(add devices with printscp qa add-device)")
    try:
        return store.device(device_id)
    except KeyError:
        known = ", ".join(d.id for d in store.devices()) or "none"
        raise UsageError(f"unknown device {device_id!r} (known: {known})") from None


def local(when: datetime | None) -> str:
    return "—" if when is None else when.astimezone().strftime("%Y-%m-%d %H:%M")


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def bounds_text(low: float | None, high: float | None) -> str:
    return ":".join("" if b is None else f"{b:g}" for b in (low, high))


def value_text(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}{' ' + unit if unit else ''}"


def figures_table(result: TestResult) -> str:
    """Each figure, its value, its limit, pass/fail (``—``: informative, or not
    computed) and the source of the limit; then each figure's note (why it was not
    computed, what it was computed from)."""
    rows = []
    for f in result.figures:
        outcome = {True: "pass", False: "FAIL", None: "—"}[f.passed]
        rows.append([f.key, value_text(f.value, f.unit), f.limit or "—", outcome,
                     f.source or "—"])
    lines = [table(rows, ["figure", "value", "limit", "result", "source"])]
    lines += [f"  {f.key}: {f.note}" for f in result.figures if f.note]
    return "\n".join(lines)


def print_test(record: TestRecord, baseline: TestRecord | None) -> None:
    """What ``qa test`` (and ``qa test-printer``) print of a recorded test."""
    result = record.result
    against = ""
    if result.kind.value == "constancy":
        against = (f"; baseline #{baseline.id} of {local(baseline.when)}" if baseline
                   else "; no baseline yet (record an acceptance test first)")
    print(f"{record.device_id}: {result.kind.value} test ({result.criteria}), recorded as "
          f"#{record.id} at {local(record.when)} by {record.operator}{against}")
    print(figures_table(result))
    for note in result.notes:
        print(f"note: {note}")
    failed = ", ".join(f.key for f in result.failed)
    print(f"verdict: {result.verdict.value.upper()}" + (f" ({failed})" if failed else ""))
