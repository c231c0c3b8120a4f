"""Who is asking: the roles, the dependencies routes declare, sessions, CSRF.

``viewer`` sees everything, ``admin`` also acts (reprint, cancel, delete...).  A node
whose console listens on loopback with no users configured treats every request as
the local administrator; as soon as users exist, or the console listens on any other
address, each request must carry a session cookie (``/login``) or an API token
(``Authorization: Bearer ...``, from ``printscp users token``).

Sessions are signed cookies (itsdangerous; the key is generated once into
``data_dir/http-secret``), HttpOnly, SameSite=Strict, Secure over https, valid 12 hours
from the last request.  A session names its user and a digest of the user's password
hash: removing the user or changing the password ends it; the role is read from the
user store on every request, so a changed role applies at once.  Each session has an
id of its own: signing out revokes that id on the server (``data_dir/http-revoked.json``,
kept until the session would have expired), so a copy of the cookie is worth nothing
afterwards.

CSRF: every unsafe request (POST, PUT, PATCH, DELETE) without a bearer token must send
the header ``X-CSRF-Token`` (or, from an HTML form, the field ``csrf_token``) equal to
the ``printscp_csrf`` cookie, which every response to a browser sets.  A page on another site
can neither read that cookie nor set that header, so it cannot drive the console, even
the open local one.  Bearer requests carry no ambient credential and are exempt.

The open local console also refuses requests addressed to a DNS name other than
``localhost`` (``Host: evil.example`` resolving to 127.0.0.1): that is how a web page
reaches a loopback service by DNS rebinding, and then the same-origin rules would let it
read patients' data.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from printscp.http.errors import ApiError, body
from printscp.http.users import (
    Role,
    UserRecord,
    UserStore,
    UserStoreError,
    check_startable,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


__all__ = [
    "CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "LOCAL_ADMIN", "SESSION_COOKIE",
    "AuthMiddleware", "Role", "SignInRequired", "User", "admin", "check_startable",
    "csrf_token", "current_user", "login_url", "page_request", "sign_in", "sign_out",
    "user_store", "viewer",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "printscp_session"
CSRF_COOKIE = "printscp_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_FILE = "http-secret"
#: A session ends this long after its last request (sliding).
SESSION_MAX_AGE = 12 * 3600
#: A session cookie older than this is re-signed on the next response (so the 12 hours
#: slide without a Set-Cookie on every response).
SESSION_REFRESH = 300
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The most of a form body read to find its ``csrf_token`` field.
_FORM_LIMIT = 1 << 20
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")
_STATE_USER = "printscp_user"
_STATE_REFUSED = "printscp_refused"
_STATE_REFRESH = "printscp_refresh"
_STATE_CSRF = "printscp_csrf"
_STATE_SIGNED_OUT = "printscp_signed_out"


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def may_act(self) -> bool:
        return self.role is Role.ADMIN


#: The user of a console open to loopback without configured users.
LOCAL_ADMIN = User("local", Role.ADMIN)


class SignInRequired(ApiError):
    """No identity: a page answers with a redirect to ``/login``, the API with 401."""

    def __init__(self, message: str = "sign in, or send an API token "
                 "(Authorization: Bearer ...)") -> None:
        super().__init__(401, message)


# -- per-application state ----------------------------------------------------------


def load_secret(data_dir: Path) -> bytes:
    """The key that signs session cookies: ``data_dir/http-secret``, made once (0600)
    and shared by every process of the node, so sessions survive a restart."""
    path = Path(data_dir) / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text("ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return bytes.fromhex(path.read_text("ascii").strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


class _Auth:
    """The user store, the session signer and the revoked sessions of one application."""

    def __init__(self, data_dir: Path) -> None:
        self.store = UserStore(data_dir)
        self.sessions = URLSafeTimedSerializer(load_secret(data_dir),
                                               salt="printscp-session")
        self.revoked_path = Path(data_dir) / REVOKED_FILE
        self.revoked = _read_revoked(self.revoked_path)

    def revoke(self, session_id: str) -> None:
        """End session ``session_id`` for good (sign-out): written before returning."""
        from printscp.core.files import atomic_write

        now = time.time()
        self.revoked = {sid: until for sid, until in self.revoked.items() if until > now}
        self.revoked[session_id] = now + SESSION_MAX_AGE
        atomic_write(self.revoked_path, json.dumps(self.revoked).encode(), mode=0o600)

    def is_revoked(self, session_id: str) -> bool:
        return session_id in self.revoked


#: Sessions signed out before they expired: their ids, until when they would have lasted.
REVOKED_FILE = "http-revoked.json"


def _read_revoked(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s): no session is taken as revoked", path, exc)
        return {}
    now = time.time()
    return {str(sid): float(until) for sid, until in data.items()
            if isinstance(until, int | float) and until > now} if isinstance(data, dict) else {}


def _auth(app: Any) -> _Auth:
    found = getattr(app.state, "printscp_auth", None)
    if found is None:
        found = app.state.printscp_auth = _Auth(app.state.console.data_dir)
    return found


def user_store(request: Request) -> UserStore:
    """The users of the node ``request`` is for."""
    return _auth(request.app).store


def _state(conn: HTTPConnection | Scope) -> dict[str, Any]:
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    return scope.setdefault("state", {})


# -- who is asking ------------------------------------------------------------------


def _bearer(conn: HTTPConnection) -> str | None:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _local_host(host_header: str) -> bool:
    """Whether a request addressed to ``host_header`` may be the local administrator:
    an address (no DNS, so no rebinding), ``localhost`` or a single-label name (the
    machine's own name); a dotted DNS name is what a rebinding page would use."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if not host:
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    host = host.rstrip(".")
    return host == "localhost" or host.endswith(".localhost") or "." not in host


def current_user(request: Request) -> User | None:
    """The user making ``request``, or None if it proves no identity.

    A bearer token, if sent, decides alone.  Else: the local administrator when no
    users exist and the console listens on loopback; else the session cookie's user.
    """
    state = _state(request)
    if _STATE_USER in state:
        return state[_STATE_USER]
    try:
        user = _find_user(request, state)
    except UserStoreError as err:
        log.error("%s", err)
        raise ApiError(503, f"the console's user store is unusable: {err}") from None
    state[_STATE_USER] = user
    return user


def _find_user(request: Request, state: dict[str, Any]) -> User | None:
    auth = _auth(request.app)
    token = _bearer(request)
    if token is not None:
        record = auth.store.user_for_token(token)
        return User(record.name, record.role) if record else None
    if not auth.store.has_users() and request.app.state.console.config.http.loopback:
        host = request.headers.get("host", "")
        if _local_host(host):
            return LOCAL_ADMIN
        state[_STATE_REFUSED] = (
            f"this console has no users, so it answers only requests for localhost or "
            f"an address, not for {host!r}; use http://127.0.0.1:PORT/, or add a user "
            f"with `printscp users add NAME --role admin`")
        return None
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data, signed = auth.sessions.loads(raw, max_age=SESSION_MAX_AGE,
                                           return_timestamp=True)
        name, key, sid = data["u"], data["k"], data["s"]
    except (BadSignature, KeyError, TypeError):
        return None
    if not isinstance(sid, str) or auth.is_revoked(sid):
        return None
    record = auth.store.get(name) if isinstance(name, str) else None
    if record is None or not isinstance(key, str) or not hmac.compare_digest(
            record.session_key, key):
        return None
    if time.time() - signed.timestamp() > SESSION_REFRESH:
        state[_STATE_REFRESH] = (record, sid)
    return User(record.name, record.role)


def viewer(request: Request) -> User:
    """Dependency of every route: a signed-in user of any role."""
    user = current_user(request)
    if user is None:
        refused = _state(request).get(_STATE_REFUSED)
        if refused:
            raise ApiError(403, refused)
        raise SignInRequired()
    return user


def admin(request: Request) -> User:
    """Dependency of every route that acts."""
    user = viewer(request)
    if not user.may_act:
        raise ApiError(403, f"user {user.name!r} is a {user.role.value}; this needs an admin")
    return user


# -- sessions and the CSRF cookie ---------------------------------------------------


def _secure(conn: HTTPConnection) -> bool:
    return conn.url.scheme in ("https", "wss")


def _set_session(response: Response, conn: HTTPConnection, record: UserRecord,
                 session_id: str) -> None:
    value = _auth(conn.app).sessions.dumps({"u": record.name, "k": record.session_key,
                                            "s": session_id})
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, path="/",
                        httponly=True, samesite="strict", secure=_secure(conn))


def _set_csrf(response: Response, conn: HTTPConnection, value: str) -> None:
    # Readable by the page's script (it copies it into the header): not HttpOnly.
    response.set_cookie(CSRF_COOKIE, value, path="/", httponly=False, samesite="strict",
                        secure=_secure(conn))


def _cookie_csrf(conn: HTTPConnection) -> str | None:
    value = conn.cookies.get(CSRF_COOKIE, "")
    return value if _TOKEN_SHAPE.fullmatch(value) else None


def csrf_token(request: Request) -> str:
    """The CSRF token forms of this response must carry (``<input type="hidden"
    name="csrf_token" value="{{ csrf_token(request) }}">``): the cookie's, or a new one
    the response sets."""
    state = _state(request)
    if _STATE_CSRF not in state:
        state[_STATE_CSRF] = _cookie_csrf(request) or secrets.token_urlsafe(32)
    return state[_STATE_CSRF]


def sign_in(response: Response, request: Request, record: UserRecord) -> None:
    """Start a session for ``record`` on ``response``, with a fresh CSRF token (one an
    attacker may have planted before the sign-in is worth nothing after it)."""
    _set_session(response, request, record, secrets.token_urlsafe(16))
    token = secrets.token_urlsafe(32)
    _state(request)[_STATE_CSRF] = token
    _set_csrf(response, request, token)


def sign_out(response: Response, request: Request) -> None:
    """End the session: revoked on the server, and the browser drops the cookie."""
    _state(request)[_STATE_SIGNED_OUT] = True
    auth = _auth(request.app)
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            sid = auth.sessions.loads(raw, max_age=SESSION_MAX_AGE)["s"]
        except (BadSignature, KeyError, TypeError):
            sid = None
        if isinstance(sid, str):
            auth.revoke(sid)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure(request))


# -- the middleware -----------------------------------------------------------------


class AuthMiddleware:
    """Refuses unsafe requests without the CSRF token; adds the cookies responses need
    (the CSRF cookie when the browser has none, a re-signed session cookie when it
    ages)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        if scope["method"] in UNSAFE_METHODS and _bearer(conn) is None:
            refusal, receive = await self._check_csrf(conn, receive)
            if refusal is not None:
                await JSONResponse(body(refusal), status_code=403)(scope, receive, send)
                return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self._cookies(
                    conn, message)
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _check_csrf(self, conn: HTTPConnection,
                          receive: Receive) -> tuple[str | None, Receive]:
        cookie = _cookie_csrf(conn)
        sent = conn.headers.get(CSRF_HEADER.lower())
        ctype = conn.headers.get("content-type", "").partition(";")[0].strip().lower()
        if sent is None and ctype == "application/x-www-form-urlencoded":
            data, receive = await _buffer(receive)
            if data is not None:
                fields = parse_qs(data.decode("latin-1"), max_num_fields=1000)
                sent = (fields.get(CSRF_FIELD) or [None])[0]
        if cookie is None:
            return (f"CSRF check failed: no {CSRF_COOKIE} cookie; load a console page "
                    f"first and send the cookie's value in the {CSRF_HEADER} header "
                    f"(scripts: use an API token)"), receive
        if not sent or not hmac.compare_digest(sent.encode(), cookie.encode()):
            return (f"CSRF check failed: send the header {CSRF_HEADER} with the value of "
                    f"the {CSRF_COOKIE} cookie (scripts: use an API token)"), receive
        return None, receive

    @staticmethod
    def _cookies(conn: HTTPConnection, start: Message) -> list[tuple[bytes, bytes]]:
        headers = start.get("headers", [])
        already = b";".join(v for k, v in headers if k.lower() == b"set-cookie")
        state = _state(conn)
        out = Response()
        refresh = state.get(_STATE_REFRESH)
        if (refresh is not None and not state.get(_STATE_SIGNED_OUT)
                and SESSION_COOKIE.encode() + b"=" not in already):
            _set_session(out, conn, *refresh)
        # Every browser response (no bearer token) sets it if missing: pages, the
        # sign-in page, its redirects, the JSON a page's script fetched.
        wants_csrf = _bearer(conn) is None or _STATE_CSRF in state
        if (wants_csrf and CSRF_COOKIE.encode() + b"=" not in already
                and _cookie_csrf(conn) is None):
            token = state.get(_STATE_CSRF) or secrets.token_urlsafe(32)
            state[_STATE_CSRF] = token
            _set_csrf(out, conn, token)
        return [(k, v) for k, v in out.raw_headers if k == b"set-cookie"]


async def _buffer(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the request body (None if over :data:`_FORM_LIMIT`) and a ``receive`` that
    hands it to the application again."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _FORM_LIMIT:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    data, replayed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": data, "more_body": False}
        return await receive()

    return data, replay


# -- wiring -------------------------------------------------------------------------


def page_request(request: Request) -> bool:
    """Whether a browser asks for a page (answered by a redirect to ``/login``)."""
    return (request.method in ("GET", "HEAD") and not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")
