"""``printscp hl7 log|replay|send``: the HL7 v2 messages the node received, and a sender
for testing an interface.

Registered by :func:`add_parser` (called by :mod:`printscp.app.cli.main`).
Exit status: ``log`` 0 (2 no database); ``replay`` 0 applied (AA), 1 not (AE/AR), 2 no such message;
``send`` 0 every message answered AA (or CA), 1 any AE/AR (CE/CR), 2 the peer could not be
reached or dropped the connection.  Bad options or configuration: 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from printscp.app.cli.dispatch import dispatch
from printscp.app.cli.options import add_data_dir_options, data_dir_of, parse_day

#: Outcomes ``hl7 log --status`` filters on, and the log's status each means
#: (:class:`printscp.hl7.log.Status`: the ACK code, or the row's state).
STATUSES = {"applied": "AA", "error": "AE", "rejected": "AR", "duplicate": "DUPLICATE",
            "received": "RECEIVED", "undone": "UNDONE"}
#: Acknowledgement codes that mean "applied" (original and enhanced mode).
ACCEPTED = ("AA", "CA")


def _host_port(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:2575), "
                                         f"got {text!r}")
    return host, int(port)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp hl7 log|replay|unmerge|send`` (called by
    :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("hl7", help="HL7 v2 orders received over MLLP; send messages",
                       description="The HL7 v2 messages printscp serve received on its "
                       "[hl7] MLLP port (orders, patient updates) with their outcome; apply "
                       "one again; send a message file to an MLLP listener.")
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="hl7_command", required=True)
    log = cmds.add_parser("log", help="list received messages with their outcome",
                          description="One line per received message: id, time, sender, "
                          "type, control id, outcome (applied, rejected, error) and why.")
    add_data_dir_options(log)
    log.add_argument("--since", type=parse_day, metavar="DATE",
                     help="messages received on or after DATE (YYYY-MM-DD)")
    log.add_argument("--status", choices=tuple(STATUSES), help="only messages with this "
                     "outcome: applied (AA), error (AE), rejected (AR), duplicate (a resent "
                     "control id, answered with the original's ACK), received (being applied, "
                     "or the node stopped meanwhile), undone (a merge undone)")
    log.add_argument("--limit", type=int, default=200, metavar="N",
                     help="at most N messages, the newest (default 200)")
    log.add_argument("--json", action="store_true", help="print JSON instead of a table")
    replay = cmds.add_parser("replay", help="apply one received message again",
                             description="Apply the message with this id (printscp hl7 log) "
                             "again, as if it had just arrived, and print its MSA.")
    add_data_dir_options(replay)
    replay.add_argument("id", type=int, help="the message's id in printscp hl7 log")
    unmerge = cmds.add_parser("unmerge", help="undo an applied patient update or merge",
                              description="Undo what the applied ADT message with this id "
                              "(an A40 merge, or an A08/A31 update) changed, from the record "
                              "it left in the log: worklist items and archive patient rows "
                              "as they were (items keep a status reached since).  Audited; "
                              "the message is then listed as undone.")
    add_data_dir_options(unmerge)
    unmerge.add_argument("id", type=int, help="the message's id in printscp hl7 log")
    send = cmds.add_parser("send", help="send a message file over MLLP",
                           description="Send each message of FILE (MLLP blocks, or segments "
                           "one a line, each message beginning with MSH) over one MLLP "
                           "connection, and print each acknowledgement's MSA.  Exit status "
                           "0 all AA, 1 any AE/AR, 2 the peer could not be reached.")
    send.add_argument("file", type=Path, help="the message file ('-': standard input)")
    send.add_argument("--to", type=_host_port, required=True, metavar="HOST:PORT",
                      help="the MLLP listener")
    send.add_argument("--timeout", type=float, default=30.0, metavar="S",
                      help="seconds to wait for the connection and each ACK (default 30)")
    send.add_argument("--tls", action="store_true",
                      help="MLLP inside TLS (the system's CAs verify the listener)")
    send.add_argument("--ca", metavar="PEM", help="with --tls: the CA bundle to verify with")
    send.add_argument("--certificate", metavar="PEM",
                      help="with --tls: our client certificate (a listener with [tls] "
                      "require_client_certificate asks for one)")
    send.add_argument("--private-key", metavar="PEM", help="with --tls: its private key")
    send.add_argument("-q", "--quiet", action="store_true", help="print only what is not AA")


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.hl7_command](args)


def _settings(args: argparse.Namespace) -> Any:
    if args.config:
        from printscp.config import load_config

        return load_config(args.config).hl7.settings()
    return None


def _as_dict(entry: Any) -> dict[str, Any]:
    if hasattr(entry, "to_dict"):
        out = entry.to_dict(raw=False)
    elif dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        out = dataclasses.asdict(entry)
    elif isinstance(entry, dict):
        out = dict(entry)
    else:
        out = dict(getattr(entry, "_asdict", lambda: vars(entry))())
    return {k: (v.isoformat() if isinstance(v, datetime | date) else
                v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
            for k, v in out.items()}


#: Columns of ``hl7 log``'s table: the first of each tuple's names an entry has.
COLUMNS = (("id", ("id",)), ("received", ("received_at",)), ("peer", ("peer",)),
           ("sender", ("sending_application",)), ("type", ("message_type",)),
           ("control id", ("control_id",)), ("status", ("status",)),
           ("detail", ("error",)))


def _table(rows: list[dict[str, Any]]) -> str:
    cols = [(title, next((n for n in names if any(n in r for r in rows)), None))
            for title, names in COLUMNS]
    cols = [(title, name) for title, name in cols if name is not None]
    cells = [[title.upper() for title, _ in cols]]
    for row in rows:
        cells.append([" ".join(str(row.get(name) if row.get(name) is not None else "")
                               .split())[:60] for _, name in cols])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def cmd_log(args: argparse.Namespace) -> int:
    from printscp.hl7.log import HL7Log

    data_dir = data_dir_of(args)
    if not (data_dir / "index.sqlite").exists():
        print(f"printscp hl7 log: no database in {data_dir}", file=sys.stderr)
        return 2
    # --since is a local day: its midnight, in UTC as the log keeps times.
    since = datetime.combine(args.since, datetime.min.time()).astimezone() \
        if args.since else None
    status = STATUSES[args.status] if args.status else None
    entries = [_as_dict(e) for e in HL7Log.for_data_dir(data_dir).entries(
        since=since, status=status, limit=args.limit)]
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
    elif not entries:
        print("no HL7 messages")
    else:
        print(_table(entries))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from printscp.hl7.inbox import Inbox
    from printscp.hl7.mllp import ack_code

    inbox = Inbox(data_dir_of(args), _settings(args))
    try:
        ack = inbox.replay(args.id)
    except (KeyError, LookupError, ValueError) as exc:
        print(f"printscp hl7 replay: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    code, text = ack_code(ack)
    print(f"{args.id}: {code} {text}".rstrip())
    return 0 if code in ACCEPTED else 1


def cmd_unmerge(args: argparse.Namespace) -> int:
    from printscp.hl7.inbox import Inbox

    inbox = Inbox(data_dir_of(args), _settings(args))
    try:
        restored = inbox.unmerge(args.id)
    except (KeyError, ValueError) as exc:
        print(f"printscp hl7 unmerge: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    done = ", ".join(f"{k} {v}" for k, v in restored.items()) or "nothing left to restore"
    print(f"{args.id}: undone ({done})")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from printscp.hl7.mllp import ack_code, send_messages, split_messages

    try:
        data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except OSError as exc:
        print(f"printscp hl7 send: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    messages = split_messages(data)
    if not messages:
        print(f"printscp hl7 send: {args.file}: no HL7 message (no MSH segment)",
              file=sys.stderr)
        return 2
    ssl_context = None
    if args.tls:
        import ssl

        try:
            ssl_context = ssl.create_default_context(cafile=args.ca)
            if args.certificate:
                ssl_context.load_cert_chain(args.certificate, args.private_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"printscp hl7 send: TLS: {exc}", file=sys.stderr)
            return 2
    host, port = args.to
    try:
        acks = send_messages(host, port, messages, timeout=args.timeout,
                             ssl_context=ssl_context)
    except OSError as exc:
        # asyncio's refusal reads "Connect call failed (...)": say what it means.
        why = "connection refused" if isinstance(exc, ConnectionRefusedError) else \
            str(exc) if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        print(f"printscp hl7 send: {host}:{port}: {why}", file=sys.stderr)
        return 2
    status = 0
    for index, (message, ack) in enumerate(zip(messages, acks, strict=True), 1):
        code, text = ack_code(ack)
        if code not in ACCEPTED:
            status = 1
        if code in ACCEPTED and args.quiet:
            continue
        control = _control_id(message)
        print(f"{index} {control}: MSA {code} {text}".rstrip())
    return status


def _control_id(message: bytes) -> str:
    """MSH-10 of ``message`` ("" if it has none)."""
    header = message.split(b"\r", 1)[0]
    if not header.startswith(b"MSH") or len(header) < 4:
        return ""
    fields = header.split(header[3:4])
    return fields[9].decode("latin-1") if len(fields) > 9 else ""


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "log": cmd_log, "replay": cmd_replay, "unmerge": cmd_unmerge, "send": cmd_send}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="printscp")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
