"""The console's users: names, roles, password hashes and API tokens, in
``data_dir/users.json`` (mode 0600).

Passwords are kept only as scrypt hashes (random 16-byte salt, the cost parameters stored
beside each hash so they can be raised later without breaking existing users); API tokens
only as SHA-256 hashes, so a copy of the file signs nobody in.  ``printscp users`` and the
running console share the file: each change is a locked read-modify-write and an atomic
replace, and the console re-reads the file whenever it changes (one ``stat`` a request),
so a removed user or a revoked token stops working at once.

Pure standard library: the command line imports this without the web stack.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printscp.core.files import atomic_write

if TYPE_CHECKING:
    from printscp.config import NodeConfig

USERS_FILE = "users.json"
_LOCK_FILE = ".users.lock"
FORMAT_VERSION = 1

#: scrypt cost for new hashes: about 0.1 s and 32 MiB on a laptop core.  Stored with
#: each hash: raising it later re-hashes nobody, old hashes verify with their own.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 256 * 2**20
_SCRYPT_MAX_N = 2**20  # refuse absurd stored parameters rather than hang a request
NAME_MAX = 64
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
LABEL_MAX = 200
TOKEN_PREFIX = "pst_"
#: A token's "last used" time is written at most this often (each write is an fsync).
LAST_USED_EVERY = 300.0


class Role(StrEnum):
    """What a user may do."""

    VIEWER = "viewer"  #: sees every page and reads the API
    ADMIN = "admin"  #: also acts: reprint, cancel, hold, release, delete, add items


class UserError(ValueError):
    """Bad input (a name, a password, an unknown user or token): one line for the user."""


class UserStoreError(RuntimeError):
    """The users file cannot be read or is not one printscp wrote."""


@dataclass(frozen=True)
class Token:
    id: str
    label: str
    created: str
    last_used: str | None
    sha256: str = field(repr=False)

    def public(self) -> dict[str, Any]:
        """What ``users list --json`` shows: never the hash."""
        return {"id": self.id, "label": self.label, "created": self.created,
                "last_used": self.last_used}


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: Role
    created: str
    password: dict[str, Any] = field(repr=False)
    tokens: tuple[Token, ...] = ()

    @property
    def session_key(self) -> str:
        """Changes when the password does: sessions signed with the old one end."""
        digest = hashlib.sha256(json.dumps(self.password, sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role.value, "created": self.created,
                "tokens": [t.public() for t in self.tokens]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- validation ---------------------------------------------------------------------


def check_name(name: str) -> str:
    """``name`` if it is a valid user name (1-64 characters, no control characters, no
    leading or trailing space), else :class:`UserError`."""
    if not 1 <= len(name) <= NAME_MAX:
        raise UserError(f"user name must be 1 to {NAME_MAX} characters, got {len(name)}")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise UserError(f"user name {name!r} contains a control character")
    if name != name.strip():
        raise UserError(f"user name {name!r} starts or ends with a space")
    return name


def check_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"role must be one of {', '.join(r.value for r in Role)}, "
                        f"got {role!r}") from None


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UserError(f"password must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UserError(f"password must be at most {PASSWORD_MAX} characters")
    return password


# -- password hashes ----------------------------------------------------------------


def hash_password(password: str) -> dict[str, Any]:
    """A new scrypt hash of ``password`` with a fresh salt, with its parameters."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return {"scheme": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": _b64(salt), "hash": _b64(digest)}


def verify_password(password: str, stored: dict[str, Any]) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        if stored["scheme"] != "scrypt":
            return False
        n, r, p = int(stored["n"]), int(stored["r"]), int(stored["p"])
        if not (2 <= n <= _SCRYPT_MAX_N and 1 <= r <= 32 and 1 <= p <= 16):
            return False
        salt = base64.b64decode(stored["salt"], validate=True)
        expected = base64.b64decode(stored["hash"], validate=True)
        digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                                maxmem=_SCRYPT_MAXMEM, dklen=len(expected))
    except (KeyError, TypeError, ValueError):
        return False
    return hmac.compare_digest(digest, expected)


#: Verified against when the name is unknown, so a wrong name costs as long as a wrong
#: password and the timing says nothing about which names exist.
_DUMMY_HASH: dict[str, Any] | None = None


def _dummy_hash() -> dict[str, Any]:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- the file -----------------------------------------------------------------------




def _parse(data: dict[str, Any], where: Path) -> dict[str, UserRecord]:
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise UserStoreError(f"{where}: not a printscp users file (version "
                             f"{FORMAT_VERSION})")
    out: dict[str, UserRecord] = {}
    try:
        for u in data["users"]:
            tokens = tuple(Token(t["id"], t.get("label", ""), t["created"],
                                 t.get("last_used"), t["sha256"]) for t in u["tokens"])
            out[u["name"]] = UserRecord(u["name"], Role(u["role"]), u["created"],
                                        dict(u["password"]), tokens)
    except (KeyError, TypeError, ValueError) as err:
        raise UserStoreError(f"{where}: damaged entry ({err!r})") from None
    return out


def _dump(users: dict[str, UserRecord]) -> bytes:
    rows = []
    for u in users.values():
        rows.append({"name": u.name, "role": u.role.value, "created": u.created,
                     "password": u.password,
                     "tokens": [{"id": t.id, "label": t.label, "created": t.created,
                                 "last_used": t.last_used, "sha256": t.sha256}
                                for t in u.tokens]})
    text = json.dumps({"version": FORMAT_VERSION, "users": rows}, indent=2,
                      ensure_ascii=False)
    return (text + "\n").encode("utf-8")


class UserStore:
    """The users of the node whose data directory is ``data_dir``.

    Thread-safe; safe against ``printscp users`` changing the file meanwhile.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / USERS_FILE
        self._guard = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._users: dict[str, UserRecord] = {}
        self._by_token: dict[str, tuple[str, str]] = {}  # sha256 -> (user, token id)
        self._last_used_written: dict[str, float] = {}

    # reading ---------------------------------------------------------------------

    def _load(self) -> dict[str, UserRecord]:
        """The users as the file says now (re-read only when it changed)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._guard:
                self._seen, self._users, self._by_token = None, {}, {}
            return {}
        except OSError as err:
            raise UserStoreError(f"{self.path}: {err.strerror}") from None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._guard:
            if key == self._seen:
                return self._users
            try:
                users = _parse(json.loads(self.path.read_bytes()), self.path)
            except FileNotFoundError:
                users = {}
            except (OSError, ValueError) as err:
                raise UserStoreError(f"{self.path}: cannot be read ({err})") from None
            self._seen, self._users = key, users
            self._by_token = {t.sha256: (u.name, t.id) for u in users.values()
                              for t in u.tokens}
            return users

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        return sorted(self._load().values(), key=lambda u: u.name)

    def has_users(self) -> bool:
        return bool(self._load())

    def get(self, name: str) -> UserRecord | None:
        return self._load().get(name)

    def authenticate(self, name: str, password: str) -> UserRecord | None:
        """The user ``name`` if ``password`` is theirs.  Takes as long for an unknown
        name as for a wrong password.  Slow on purpose (scrypt): call it off the event
        loop."""
        user = self._load().get(name)
        ok = verify_password(password, user.password if user else _dummy_hash())
        return user if ok and user is not None else None

    def user_for_token(self, token: str) -> UserRecord | None:
        """The owner of API token ``token`` (and note when it was last used)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        digest = token_hash(token)
        users = self._load()
        with self._guard:
            hit = self._by_token.get(digest)
        if hit is None:
            return None
        user = users.get(hit[0])
        if user is not None:
            self._note_use(hit[1])
        return user

    def _note_use(self, token_id: str) -> None:
        now = time.monotonic()
        last = self._last_used_written.get(token_id)
        if last is not None and now - last < LAST_USED_EVERY:
            return
        self._last_used_written[token_id] = now
        with contextlib.suppress(OSError, UserError, UserStoreError), \
                self._change() as users:
            for name, u in users.items():
                tokens = tuple(t if t.id != token_id else Token(
                    t.id, t.label, t.created, _now(), t.sha256) for t in u.tokens)
                users[name] = UserRecord(u.name, u.role, u.created, u.password, tokens)

    # changing --------------------------------------------------------------------

    @contextlib.contextmanager
    def _change(self) -> Iterator[dict[str, UserRecord]]:
        """Read, let the caller change, write back: under a lock file, so the console
        and ``printscp users`` never lose each other's changes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._guard:
                self._seen = None  # read the file itself, not the cache
            users = dict(self._load())
            yield users
            atomic_write(self.path, _dump(users), mode=0o600)
            with self._guard:
                self._seen = None
        finally:
            os.close(fd)  # releases the lock

    def add(self, name: str, role: str | Role, password: str) -> UserRecord:
        name, role = check_name(name), check_role(role)
        check_password(password)
        pw = hash_password(password)
        with self._change() as users:
            if name in users:
                raise UserError(f"user {name!r} exists (change the password with "
                                f"`printscp users passwd {name}`)")
            users[name] = record = UserRecord(name, role, _now(), pw)
        return record

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        pw = hash_password(password)
        with self._change() as users:
            u = self._known(users, name)
            users[name] = UserRecord(u.name, u.role, u.created, pw, u.tokens)

    def set_role(self, name: str, role: str | Role) -> None:
        role = check_role(role)
        with self._change() as users:
            u = self._known(users, name)
            users[name] = UserRecord(u.name, role, u.created, u.password, u.tokens)

    def remove(self, name: str) -> UserRecord:
        with self._change() as users:
            u = self._known(users, name)
            del users[name]
        return u

    def new_token(self, name: str, label: str = "") -> tuple[Token, str]:
        """A new API token for ``name``: its record and the token itself, which is
        stored nowhere (only its SHA-256) and so can be shown only now."""
        if len(label) > LABEL_MAX or any(unicodedata.category(c) == "Cc" for c in label):
            raise UserError(f"token label must be at most {LABEL_MAX} characters, "
                            "without control characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._change() as users:
            u = self._known(users, name)
            ids = {t.id for v in users.values() for t in v.tokens}
            token_id = secrets.token_hex(4)
            while token_id in ids:
                token_id = secrets.token_hex(4)
            token = Token(token_id, label, _now(), None, token_hash(secret))
            users[name] = UserRecord(u.name, u.role, u.created, u.password,
                                     (*u.tokens, token))
        return token, secret

    def revoke_token(self, token_id: str) -> tuple[str, Token]:
        """Remove the token ``token_id``; returns its owner's name and the token."""
        with self._change() as users:
            for name, u in users.items():
                for t in u.tokens:
                    if t.id == token_id:
                        users[name] = UserRecord(
                            u.name, u.role, u.created, u.password,
                            tuple(x for x in u.tokens if x.id != token_id))
                        return name, t
            raise UserError(f"no API token with id {token_id!r} (see `printscp users list`)")

    @staticmethod
    def _known(users: dict[str, UserRecord], name: str) -> UserRecord:
        try:
            return users[name]
        except KeyError:
            raise UserError(f"no user {name!r} (see `printscp users list`)") from None


def check_startable(config: NodeConfig, data_dir: str | os.PathLike[str]) -> str | None:
    """Why ``printscp serve`` must not start the console as configured (None: it may):
    bound beyond loopback with no users, or a user store it cannot read.  (Here, not
    in :mod:`printscp.http.auth`: ``serve`` asks before its DICOM port listens, and
    importing the web stack would put off listening by a second.)"""
    http = config.http
    if not http.enabled:
        return None
    try:
        has_users = UserStore(data_dir).has_users()
    except UserStoreError as err:
        return f"the console's user store is unusable: {err}"
    if has_users or http.loopback:
        return None
    where = f"[{http.bind}]:{http.port}" if ":" in http.bind else f"{http.bind}:{http.port}"
    return (f"the console listens on {where} but no users are configured: add one with "
            f"`printscp users add NAME --role admin`, or bind [http] to 127.0.0.1")
