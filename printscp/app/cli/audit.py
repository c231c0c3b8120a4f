"""``printscp audit``: list the node's audit trail (``DATA_DIR/audit/``), every file.

Newest first, as the console shows it and as an administrator looking into an incident
reads it (``--reverse`` for the order it happened in); a table by default, the lines
as stored (JSON, one a line) with ``--json``.  Filters: ``--since``/``--until`` (a date,
a date and time, or a duration back from now such as ``90m``, ``12h``, ``7d``),
``--patient`` (a Patient ID among the participant objects), ``--ae`` (an AE title or
user among the active participants), ``--event`` (a message name such as ``Query``,
``"DICOM Study Deleted"``, its code ``110112``, or printscp's action word such as
``study.delete``).  Reading the trail is itself recorded (Audit Log Used, PS3.15
A.5.3.2), after the listing so the listing does not show it.

:func:`for_command` sets up the trail of another command-line process (``printscp
jobs``, ``worklist``, ``media``), so their actions are recorded as the node's are.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from printscp.app.cli.options import add_data_dir_options, data_dir_of
from printscp.core import audit

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    text = "list the audit trail (who did what to which patient, study or job)"
    p = sub.add_parser("audit", help=text, description=text[0].upper() + text[1:] + "; "
                       "newest first.")
    add_data_dir_options(p)
    p.add_argument("--since", metavar="WHEN", type=when,
                   help="from this time: 2025-05-01, 2025-05-01T09:30 (UTC unless an "
                   "offset is given), or a duration back from now: 90m, 12h, 7d")
    p.add_argument("--until", metavar="WHEN", type=when, help="up to this time (same forms)")
    p.add_argument("--patient", metavar="ID", help="lines naming this Patient ID")
    p.add_argument("--ae", metavar="TITLE",
                   help="lines with this AE title or user among their participants")
    p.add_argument("--event", metavar="NAME",
                   help="a message (Query, 'DICOM Study Deleted', 110112) or printscp's "
                   "action word (study.delete, dicom.store; a prefix such as job. too)")
    p.add_argument("--limit", metavar="N", type=int, default=100,
                   help="at most N lines (default 100; 0: all)")
    p.add_argument("--reverse", action="store_true", help="oldest first")
    p.add_argument("--json", action="store_true", help="the lines as stored, one a line")
    p.set_defaults(func=run)


def when(text: str) -> datetime:
    """A point in time from ``--since``/``--until``: a duration back from now, or an
    ISO date or date and time (UTC unless it carries an offset)."""
    match = _DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a date (2025-05-01), a date and time (2025-05-01T09:30) "
            "or a duration (90m, 12h, 7d)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time(line: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(line.get("time", "")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _participants(line: dict[str, Any]) -> Iterator[str]:
    yield str(line.get("user") or "")
    for p in line.get("ActiveParticipant") or []:
        if isinstance(p, dict):
            yield str(p.get("UserID") or "")
            yield str(p.get("UserName") or "")


def patients(line: dict[str, Any]) -> list[str]:
    """The Patient IDs among a line's participant objects."""
    return [str(o.get("ParticipantObjectID")) for o in
            line.get("ParticipantObjectIdentification") or []
            if isinstance(o, dict) and o.get("ParticipantObjectTypeCodeRole") ==
            audit.ParticipantObjectTypeCodeRole.PATIENT]


def _objects(line: dict[str, Any], role: audit.ParticipantObjectTypeCodeRole) -> list[str]:
    return [str(o.get("ParticipantObjectID")) for o in
            line.get("ParticipantObjectIdentification") or []
            if isinstance(o, dict) and o.get("ParticipantObjectTypeCodeRole") == role]


def matches(line: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether ``line`` passes the filters of ``args``."""
    if args.since is not None or args.until is not None:
        moment = _time(line)
        if moment is None:
            return False
        if args.since is not None and moment < args.since:
            return False
        if args.until is not None and moment > args.until:
            return False
    if args.patient is not None and args.patient not in patients(line):
        return False
    if args.ae is not None:
        wanted = args.ae.strip().casefold()
        if not any(p.strip().casefold() == wanted for p in _participants(line)):
            return False
    if args.event is not None:
        wanted = args.event.strip().casefold()
        event = line.get("EventID") or {}
        word = str(line.get("action") or "").casefold()
        names = {str(event.get("code", "")).casefold(),
                 str(event.get("meaning", "")).casefold(), word}
        if wanted not in names and not (wanted.endswith(".") and word.startswith(wanted)):
            return False
    return True


def run(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    out = sys.stdout
    shown = 0
    rows: list[tuple[str, ...]] = []
    for line in audit.lines(data_dir, newest_first=not args.reverse):
        if not matches(line, args):
            continue
        if args.json:
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        else:
            rows.append(_row(line))
        shown += 1
        if args.limit and shown >= args.limit:
            break
    if not args.json:
        _table(rows, out)
    for_command(args)
    audit.emit(audit.AuditEvent.AUDIT_LOG_USED, audit.Outcome.SUCCESS,
               action=audit.EventActionCode.READ, user=_who(), word="audit.read",
               objects=[audit.participant_object(
                   str(data_dir / audit.AUDIT_DIR), audit.ParticipantObjectTypeCode.SYSTEM_OBJECT,
                   audit.ParticipantObjectTypeCodeRole.SECURITY_RESOURCE,
                   audit.ParticipantObjectIDTypeCode.URI)], shown=shown,
               filters={k: str(v) for k in ("since", "until", "patient", "ae", "event")
                        if (v := getattr(args, k)) is not None} or None)
    return 0


_HEADER = ("TIME (UTC)", "EVENT", "ACT", "OUTCOME", "WHO", "FROM", "PATIENT", "OBJECT",
           "ACTION")


def _row(line: dict[str, Any]) -> tuple[str, ...]:
    event = line.get("EventID") or {}
    kind = (line.get("EventTypeCode") or {}).get("meaning")
    name = str(event.get("meaning", "?")) + (f" ({kind})" if kind else "")
    moment = _time(line)
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "?"
    indicator = line.get("EventOutcomeIndicator")
    outcome = str(line.get("outcome") or "")
    if indicator not in (None, 0):
        text = str(line.get("EventOutcomeDescription") or outcome)
        outcome = f"{indicator}: {text}"[:60]
    objects = (_objects(line, audit.ParticipantObjectTypeCodeRole.REPORT)
               or _objects(line, audit.ParticipantObjectTypeCodeRole.JOB)
               or ([str(line.get("target"))] if line.get("target") else []))
    return (stamp, name, str(line.get("EventActionCode") or ""), outcome or "success",
            str(line.get("user") or ""), str(line.get("source") or ""),
            ",".join(patients(line)), ",".join(objects), str(line.get("action") or ""))


def _table(rows: list[tuple[str, ...]], out: Any) -> None:
    widths = [max(len(r[c]) for r in [_HEADER, *rows]) for c in range(len(_HEADER))]
    for row in [_HEADER, *rows]:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                  + "\n")
    out.write(f"{len(rows)} line{'' if len(rows) == 1 else 's'}\n")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def for_command(args: argparse.Namespace) -> str:
    """Set up this command-line process's audit trail (the node's data directory, its
    ``[audit]`` when ``--config`` is given); returns the user to name in its lines (the
    operating-system user)."""
    config = None
    if getattr(args, "config", None):
        from printscp.config import load_config

        config = load_config(args.config)
    audit.configure(data_dir_of(args), config.audit if config is not None else None,
                    ae_title=config.ae_title if config is not None else "")
    return _who()


def action(args: argparse.Namespace, word: str, target: str, outcome: str = "success",
           **details: Any) -> None:
    """Record printscp's ``word`` (``job.cancel``, ``worklist.add``...) done from the
    command line (:func:`printscp.core.audit.record`); never raises."""
    try:
        user = for_command(args)
        audit.record(data_dir_of(args), word, target, user=user, source="cli",
                     outcome=outcome, **details)
    except Exception as exc:  # a bad --config was reported by the command itself
        print(f"printscp: not in the audit trail: {exc}", file=sys.stderr)


def media_export(args: argparse.Namespace, archive: Any, records: list[Any], output: Any,
                 files: int, skipped: int) -> None:
    """Data Export (PS3.15 A.5.3.7): instances written as a File-set to ``output``
    (Destination Media), with their patients and studies."""
    from printscp.services.audit_events import patients_of

    try:
        user = for_command(args)
        studies = sorted({r.study_uid for r in records})
        audit.emit(audit.AuditEvent.EXPORT, audit.Outcome.MINOR_FAILURE if skipped
                   else audit.Outcome.SUCCESS, action=audit.EventActionCode.READ, user=user,
                   patient=sorted(set(patients_of(archive, studies).values()) - {""}),
                   study=studies, participants=[audit.participant(
                       str(output), requestor=False, role=audit.RoleIDCode.DESTINATION_MEDIA,
                       id_type=audit.UserIDTypeCode.URI)],
                   local_role=audit.RoleIDCode.SOURCE, word="media.export",
                   target=str(output), source="cli", files=files, skipped=skipped or None,
                   description=f"{skipped} file(s) skipped" if skipped else "")
    except Exception as exc:
        print(f"printscp: not in the audit trail: {exc}", file=sys.stderr)


def media_import(args: argparse.Namespace, directory: Any, outcomes: list[Any],
                 failed: int) -> None:
    """Data Import (PS3.15 A.5.3.8): a File-set read from ``directory`` (Source
    Media) into the archive, with the patients and studies stored."""
    try:
        user = for_command(args)
        stored = [o for o in outcomes if not o.status]
        audit.emit(audit.AuditEvent.IMPORT, audit.Outcome.MINOR_FAILURE if failed
                   else audit.Outcome.SUCCESS, action=audit.EventActionCode.CREATE, user=user,
                   patient=sorted({o.patient for o in stored} - {""}),
                   study=sorted({o.study for o in stored} - {""}),
                   participants=[audit.participant(
                       str(directory), requestor=False, role=audit.RoleIDCode.SOURCE_MEDIA,
                       id_type=audit.UserIDTypeCode.URI)],
                   local_role=audit.RoleIDCode.DESTINATION, word="media.import",
                   target=str(directory), source="cli", instances=len(stored),
                   failed=failed or None,
                   description=f"{failed} file(s) not imported" if failed else "")
    except Exception as exc:
        print(f"printscp: not in the audit trail: {exc}", file=sys.stderr)
