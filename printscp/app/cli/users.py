"""``printscp users add|passwd|role|list|remove|token|revoke-token``: who may use the
console.

Users live in ``<data_dir>/users.json`` (:mod:`printscp.http.users`: scrypt password
hashes, API tokens as SHA-256 hashes, mode 0600); a running node sees changes at its
next request, no restart needed.  Passwords are asked on the terminal (twice), or read
as one line from standard input with ``--password-stdin`` (scripts, never the command
line, where ``ps`` would show them).  Each change is in the audit trail.

Exit status: 0 done; 2 nothing done (a bad name, role or password, an unknown user or
token, an unreadable users file).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence

from printscp.app.cli.dispatch import dispatch
from printscp.app.cli.options import add_data_dir_options, data_dir_of
from printscp.core import audit
from printscp.http.users import (
    PASSWORD_MIN,
    Role,
    UserError,
    UserStore,
    UserStoreError,
    check_name,
)

PROG = "printscp users"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``printscp users ...`` (called by :mod:`printscp.app.cli.main`)."""
    p = sub.add_parser("users", help="users of the web console and their API tokens",
                       description="Add and remove the users who may sign in to the web "
                       "console (viewer: sees; admin: also reprints, cancels, deletes), "
                       "and the API tokens scripts send as 'Authorization: Bearer TOKEN'.")
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="users_command", required=True)
    roles = [r.value for r in Role]

    a = cmds.add_parser("add", help="add a user",
                        description=f"Add a user; the password (at least {PASSWORD_MIN} "
                        "characters) is asked twice on the terminal.")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=roles)
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password as one line from standard input")
    add_data_dir_options(a)

    pw = cmds.add_parser("passwd", help="change a user's password",
                         description="Change a user's password; their open console "
                         "sessions end.  API tokens stay valid.")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password as one line from standard input")
    add_data_dir_options(pw)

    r = cmds.add_parser("role", help="change a user's role")
    r.add_argument("name")
    r.add_argument("--role", required=True, choices=roles)
    add_data_dir_options(r)

    ls = cmds.add_parser("list", help="list users and their API tokens",
                         description="Users with their role, and their tokens' id, label, "
                         "creation and last use (never the tokens themselves).")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_data_dir_options(ls)

    rm = cmds.add_parser("remove", help="remove a user and their API tokens")
    rm.add_argument("name")
    add_data_dir_options(rm)

    t = cmds.add_parser("token", help="make an API token for a user (shown once)",
                        description="Print a new API token for NAME on standard output. "
                        "Only its hash is kept: store it now, it cannot be shown again.")
    t.add_argument("name")
    t.add_argument("--label", default="", help="what the token is for (e.g. 'monitoring')")
    add_data_dir_options(t)

    rv = cmds.add_parser("revoke-token", help="revoke an API token by its id")
    rv.add_argument("id", help="the token's id (printscp users list)")
    add_data_dir_options(rv)


def run(args: argparse.Namespace) -> int:
    store = UserStore(data_dir_of(args))
    try:
        return COMMANDS[args.users_command](store, args)
    except (UserError, UserStoreError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _audit(store: UserStore, action: str, target: str, **details: object) -> None:
    audit.record(store.data_dir, action, target, user=_who(), source="cli", **details)


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin, or asked twice on the terminal."""
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ; nothing changed")
    return first


def cmd_add(store: UserStore, args: argparse.Namespace) -> int:
    check_name(args.name)
    if store.get(args.name) is not None:  # say so before asking a password
        raise UserError(f"user {args.name!r} exists (change the password with "
                        f"`printscp users passwd {args.name}`)")
    record = store.add(args.name, args.role, _password(args))
    _audit(store, "user.add", record.name, role=record.role.value)
    print(f"user {record.name} added ({record.role.value})")
    return 0


def cmd_passwd(store: UserStore, args: argparse.Namespace) -> int:
    if store.get(args.name) is None:
        raise UserError(f"no user {args.name!r} (see `printscp users list`)")
    store.set_password(args.name, _password(args))
    _audit(store, "user.password", args.name)
    print(f"password of {args.name} changed; their console sessions have ended")
    return 0


def cmd_role(store: UserStore, args: argparse.Namespace) -> int:
    store.set_role(args.name, args.role)
    _audit(store, "user.role", args.name, role=args.role)
    print(f"{args.name} is now {args.role}")
    return 0


def cmd_list(store: UserStore, args: argparse.Namespace) -> int:
    users = store.users()
    if args.json:
        print(json.dumps([u.public() for u in users], indent=2, ensure_ascii=False))
        return 0
    if not users:
        print("no users (the console is open only on loopback; "
              "add one with `printscp users add NAME --role admin`)")
        return 0
    width = max(4, *(len(u.name) for u in users))
    print(f"{'NAME':<{width}}  {'ROLE':<6}  CREATED")
    for u in users:
        print(f"{u.name:<{width}}  {u.role.value:<6}  {u.created}")
    tokens = [(u.name, t) for u in users for t in u.tokens]
    if tokens:
        print()
        print(f"{'TOKEN':<8}  {'USER':<{width}}  {'CREATED':<25}  {'LAST USED':<25}  LABEL")
        for name, t in tokens:
            print(f"{t.id:<8}  {name:<{width}}  {t.created:<25}  "
                  f"{t.last_used or 'never':<25}  {t.label}")
    return 0


def cmd_remove(store: UserStore, args: argparse.Namespace) -> int:
    record = store.remove(args.name)
    _audit(store, "user.remove", record.name, role=record.role.value,
           tokens=len(record.tokens))
    print(f"user {record.name} removed"
          + (f" with {len(record.tokens)} API token(s)" if record.tokens else ""))
    return 0


def cmd_token(store: UserStore, args: argparse.Namespace) -> int:
    token, secret = store.new_token(args.name, args.label)
    _audit(store, "user.token", args.name, token=token.id, label=token.label)
    print(secret)
    print(f"API token {token.id} for {args.name}: shown once, store it now "
          f"(revoke with `printscp users revoke-token {token.id}`)", file=sys.stderr)
    return 0


def cmd_revoke(store: UserStore, args: argparse.Namespace) -> int:
    owner, token = store.revoke_token(args.id)
    _audit(store, "user.revoke-token", owner, token=token.id, label=token.label)
    print(f"API token {token.id} of {owner} revoked")
    return 0


COMMANDS: dict[str, Callable[[UserStore, argparse.Namespace], int]] = {
    "add": cmd_add, "passwd": cmd_passwd, "role": cmd_role, "list": cmd_list,
    "remove": cmd_remove, "token": cmd_token, "revoke-token": cmd_revoke}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="printscp")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
