"""Signing in and out: ``GET /login`` (the page), ``POST /login`` (its form),
``POST /logout``; and :func:`install`, which wires :mod:`printscp.http.auth` into the
application.

A plain HTML form, no script: it works in any browser and with no internet.  A failed
sign-in says only "wrong name or password" (never which), answers after a short delay,
and after :data:`MAX_FAILURES` failures for one name from one address within
:data:`WINDOW` seconds that name is refused from that address for :data:`LOCKOUT`
seconds, password unchecked.  Each sign-in, failure and sign-out is in the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from printscp import __version__
from printscp.core import audit
from printscp.http import auth
from printscp.http.errors import body
from printscp.http.pages import TEMPLATES

log = logging.getLogger(__name__)

#: Seconds a failed sign-in waits before it is answered (times the failures so far, up
#: to 4 times): guessing is slow, typing a password wrong once costs nothing noticeable.
FAILURE_DELAY = 0.5
MAX_FAILURES = 5
WINDOW = 15 * 60.0
LOCKOUT = 15 * 60.0
_MAX_TRACKED = 10_000

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Sessions, CSRF, ``/login`` and ``/logout`` for ``app`` (create_app calls it; a
    second call does nothing): the CSRF middleware, the sign-in routes, pages without a
    user redirected to the sign-in page, ``csrf_token(request)`` in every template."""
    if getattr(app.state, "printscp_auth_installed", False):
        return
    app.state.printscp_auth_installed = True

    @app.exception_handler(auth.SignInRequired)
    async def _sign_in(request: Request, exc: auth.SignInRequired) -> Response:
        if auth.page_request(request):
            return RedirectResponse(auth.login_url(request), status_code=303)
        return JSONResponse(body(exc.message), status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="printscp"'})

    TEMPLATES.env.globals.setdefault("csrf_token", auth.csrf_token)
    app.include_router(router)
    app.add_middleware(auth.AuthMiddleware)


class Throttle:
    """Failed sign-ins per (name, address): how many, and until when refused."""

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._guard = threading.Lock()

    def locked(self, key: tuple[str, str], now: float | None = None) -> float:
        """Seconds ``key`` stays refused (0: not locked)."""
        now = time.monotonic() if now is None else now
        with self._guard:
            times = [t for t in self._failures.get(key, []) if now - t < WINDOW]
            if len(times) < MAX_FAILURES:
                return 0.0
            return max(0.0, times[-1] + LOCKOUT - now)

    def fail(self, key: tuple[str, str], now: float | None = None) -> int:
        """Note a failure; returns the failures in the window so far."""
        now = time.monotonic() if now is None else now
        with self._guard:
            if len(self._failures) >= _MAX_TRACKED:
                cutoff = now - max(WINDOW, LOCKOUT)
                self._failures = {k: v for k, v in self._failures.items() if v[-1] > cutoff}
            times = [t for t in self._failures.get(key, []) if now - t < WINDOW]
            times.append(now)
            self._failures[key] = times[-MAX_FAILURES:]
            return len(times)

    def succeed(self, key: tuple[str, str]) -> None:
        with self._guard:
            self._failures.pop(key, None)


def _throttle(request: Request) -> Throttle:
    state = request.app.state
    found = getattr(state, "printscp_login_throttle", None)
    if found is None:
        found = state.printscp_login_throttle = Throttle()
    return found


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this console, else ``/``: a sign-in link must not
    send the browser to another site afterwards."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return "/"
    return target


def _page(request: Request, next_url: str, *, name: str = "", error: str | None = None,
          status: int = 200) -> Response:
    console = request.app.state.console
    response = TEMPLATES.TemplateResponse(request, "login.html", {
        "console": console, "user": None, "version": __version__, "twin": None,
        "next": next_url, "name": name, "error": error,
        "csrf": auth.csrf_token(request),
        "no_users": not auth.user_store(request).has_users(),
    }, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (or, already signed in, where ``next`` points)."""
    target = safe_next(next)
    if auth.current_user(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _page(request, target)


@router.post("/login")
async def login(request: Request, name: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/") -> Response:
    """Check the name and password; on success start a session and go to ``next``."""
    target = safe_next(next)
    address = request.client.host if request.client else ""
    key = (name.casefold(), address)
    throttle = _throttle(request)
    data_dir = request.app.state.console.data_dir
    wait = throttle.locked(key)
    if wait:
        minutes = max(1, round(wait / 60))
        await run_in_threadpool(audit.record, data_dir, "user.login", name[:64], user=name[:64],
                                source=address, outcome="refused", reason="locked out")
        return _page(request, target, name=name, status=429,
                     error=f"Too many failed sign-ins: try again in {minutes} minute"
                     f"{'s' if minutes > 1 else ''}.")
    record = await run_in_threadpool(auth.user_store(request).authenticate, name, password)
    if record is None:
        failures = throttle.fail(key)
        log.warning("console sign-in failed for %r from %s (%d in a row)", name[:64],
                    address, failures)
        await run_in_threadpool(audit.record, data_dir, "user.login", name[:64],
                                user=name[:64], source=address, outcome="failure")
        await asyncio.sleep(FAILURE_DELAY * min(failures, 4))
        return _page(request, target, name=name, status=401,
                     error="Wrong name or password.")
    throttle.succeed(key)
    log.info("console sign-in: %s (%s) from %s", record.name, record.role.value, address)
    await run_in_threadpool(audit.record, data_dir, "user.login", record.name,
                            user=record.name, source=address)
    response = RedirectResponse(target, status_code=303)
    auth.sign_in(response, request, record)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session and show the sign-in page."""
    user = auth.current_user(request)
    if user is not None and user is not auth.LOCAL_ADMIN:
        audit.record(request.app.state.console.data_dir, "user.logout", user.name,
                     user=user.name, source=request.client.host if request.client else "")
    response = RedirectResponse("/login", status_code=303)
    auth.sign_out(response, request)
    return response
