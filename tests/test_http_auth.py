"""The console's authentication: who gets in (open loopback, sessions, API tokens), what
a viewer may not do, CSRF, the sign-in page, and when ``printscp serve`` must refuse."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from printscp.config import HttpConfig, NodeConfig
from printscp.http import auth, login
from printscp.http import users as users_module
from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.http.users import Role, UserError, UserStore, verify_password

PASSWORD = "correct horse"


def _app(tmp_path: Path, bind: str = "127.0.0.1"):
    console = Console(NodeConfig(data_dir=str(tmp_path), http=HttpConfig(bind=bind)))
    app = create_app(console)
    login.install(app)  # a no-op once create_app does it

    probe = APIRouter()

    @probe.get("/api/test/whoami")
    def whoami(user: Annotated[auth.User, Depends(auth.viewer)]) -> dict[str, str]:
        return {"name": user.name, "role": user.role.value}

    @probe.post("/api/test/act")
    def act(user: Annotated[auth.User, Depends(auth.admin)]) -> dict[str, str]:
        return {"done_by": user.name}

    @probe.get("/test/page")
    def page(user: Annotated[auth.User, Depends(auth.viewer)]) -> dict[str, str]:
        return {"name": user.name}

    app.include_router(probe)
    return app


def _client(tmp_path: Path, bind: str = "127.0.0.1", **kw) -> TestClient:
    return TestClient(_app(tmp_path, bind), follow_redirects=False, **kw)


def _sign_in(client: TestClient, name: str, password: str = PASSWORD, next_url: str = "/"):
    page = client.get("/login")
    assert page.status_code == 200
    token = client.cookies.get(auth.CSRF_COOKIE)
    assert token, "the sign-in page sets the CSRF cookie"
    return client.post("/login", data={"name": name, "password": password,
                                       "next": next_url, "csrf_token": token})


def _csrf(client: TestClient) -> dict[str, str]:
    return {auth.CSRF_HEADER: client.cookies.get(auth.CSRF_COOKIE)}


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """No delay after a failed sign-in; cheap scrypt (the cost is stored with each hash,
    so verifying works the same; the node's default is checked below)."""
    monkeypatch.setattr(login, "FAILURE_DELAY", 0.0)
    monkeypatch.setattr(users_module, "SCRYPT_N", 2**10)


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    store = UserStore(tmp_path)
    store.add("alice", Role.ADMIN, PASSWORD)
    store.add("victor", Role.VIEWER, PASSWORD)
    return store


# -- who gets in --------------------------------------------------------------------


def test_loopback_without_users_is_open_to_the_local_admin(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.get("/api/test/whoami").json() == {"name": "local", "role": "admin"}
    client.get("/login")  # any page: sets the CSRF cookie
    assert client.post("/api/test/act", headers=_csrf(client)).json() == {"done_by": "local"}


def test_open_local_console_refuses_a_dns_name_other_than_localhost(tmp_path: Path) -> None:
    """A page that rebinds evil.example to 127.0.0.1 must not read the console."""
    client = _client(tmp_path, base_url="http://evil.example:8080")
    r = client.get("/api/test/whoami")
    assert r.status_code == 403 and "localhost" in r.json()["error"]
    ok = _client(tmp_path, base_url="http://localhost:8080")
    assert ok.get("/api/test/whoami").status_code == 200


def test_with_users_the_api_answers_401_and_pages_redirect(tmp_path: Path,
                                                           users: UserStore) -> None:
    client = _client(tmp_path)
    r = client.get("/api/test/whoami")
    assert r.status_code == 401
    assert "error" in r.json() and r.headers["www-authenticate"].startswith("Bearer")
    page = client.get("/test/page?x=1", headers={"Accept": "text/html,*/*"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Ftest%2Fpage%3Fx%3D1"


def test_non_loopback_without_users_lets_nobody_in(tmp_path: Path) -> None:
    client = _client(tmp_path, bind="0.0.0.0")
    assert client.get("/api/test/whoami").status_code == 401


def test_sign_in_sets_a_session_and_goes_to_next(tmp_path: Path, users: UserStore) -> None:
    client = _client(tmp_path)
    r = _sign_in(client, "alice", next_url="/test/page")
    assert r.status_code == 303 and r.headers["location"] == "/test/page"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(auth.SESSION_COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict")
    assert "Secure" not in session  # plain http; Secure over https (below)
    assert any(c.startswith(auth.CSRF_COOKIE + "=") for c in cookies)
    assert client.get("/api/test/whoami").json() == {"name": "alice", "role": "admin"}
    assert client.post("/api/test/act", headers=_csrf(client)).json() == {"done_by": "alice"}


def test_session_cookie_is_secure_over_https(tmp_path: Path, users: UserStore) -> None:
    client = _client(tmp_path, base_url="https://127.0.0.1")
    r = _sign_in(client, "alice")
    session = next(c for c in r.headers.get_list("set-cookie")
                   if c.startswith(auth.SESSION_COOKIE + "="))
    assert "Secure" in session


def test_next_never_leaves_the_console(tmp_path: Path, users: UserStore) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = _sign_in(_client(tmp_path), "alice", next_url=target)
        assert r.headers["location"] == "/"


def test_wrong_password_is_401_with_a_generic_message(tmp_path: Path,
                                                      users: UserStore) -> None:
    client = _client(tmp_path)
    wrong = _sign_in(client, "alice", "not the password")
    unknown = _sign_in(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password" in wrong.text and "Wrong name or password" in unknown.text
    assert auth.SESSION_COOKIE not in client.cookies
    assert client.get("/api/test/whoami").status_code == 401
    lines = [json.loads(x) for x in (tmp_path / "audit" / "audit.jsonl").read_text()
             .splitlines()]
    assert [(x["action"], x["target"], x["outcome"]) for x in lines] == [
        ("user.login", "alice", "failure"), ("user.login", "nobody", "failure")]


def test_repeated_failures_lock_the_name_out_from_that_address(tmp_path: Path,
                                                               users: UserStore) -> None:
    client = _client(tmp_path)
    for _ in range(login.MAX_FAILURES):
        assert _sign_in(client, "alice", "guess-guess").status_code == 401
    locked = _sign_in(client, "alice")  # even the right password
    assert locked.status_code == 429 and "try again" in locked.text
    assert _sign_in(client, "victor").status_code == 303  # other names are not locked


def test_logout_ends_the_session(tmp_path: Path, users: UserStore) -> None:
    client = _client(tmp_path)
    _sign_in(client, "alice")
    r = client.post("/logout", headers=_csrf(client))
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/api/test/whoami").status_code == 401


def test_a_signed_out_session_cookie_is_worth_nothing_even_copied(tmp_path: Path,
                                                                  users: UserStore) -> None:
    client = _client(tmp_path)
    _sign_in(client, "alice")
    stolen = client.cookies.get(auth.SESSION_COOKIE)
    assert client.get("/api/test/whoami").status_code == 200
    client.post("/logout", headers=_csrf(client))
    client.cookies.set(auth.SESSION_COOKIE, stolen)  # replayed after the sign-out
    assert client.get("/api/test/whoami").status_code == 401
    # and after a restart of the console (a new application over the same data)
    again = _client(tmp_path)
    again.cookies.set(auth.SESSION_COOKIE, stolen)
    assert again.get("/api/test/whoami").status_code == 401
    # another session of the same user is not touched
    _sign_in(again, "alice")
    assert again.get("/api/test/whoami").status_code == 200


def test_a_removed_user_or_changed_password_ends_sessions(tmp_path: Path,
                                                          users: UserStore) -> None:
    client = _client(tmp_path)
    _sign_in(client, "alice")
    users.set_password("alice", "another password")
    assert client.get("/api/test/whoami").status_code == 401
    _sign_in(client, "victor")
    assert client.get("/api/test/whoami").status_code == 200
    users.remove("victor")
    assert client.get("/api/test/whoami").status_code == 401


def test_sessions_slide_and_expire(tmp_path: Path, users: UserStore,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(tmp_path)
    _sign_in(client, "alice")
    fresh = client.get("/api/test/whoami")
    assert not any(c.startswith(auth.SESSION_COOKIE) for c in fresh.headers.get_list(
        "set-cookie"))  # young: not re-signed on every response
    monkeypatch.setattr(auth, "SESSION_REFRESH", -1)
    aged = client.get("/api/test/whoami")
    assert any(c.startswith(auth.SESSION_COOKIE + "=") for c in aged.headers.get_list(
        "set-cookie"))  # older than SESSION_REFRESH: the 12 hours start again
    monkeypatch.setattr(auth, "SESSION_MAX_AGE", -1)
    assert client.get("/api/test/whoami").status_code == 401


def test_a_forged_session_cookie_is_nobody(tmp_path: Path, users: UserStore) -> None:
    client = _client(tmp_path)
    client.cookies.set(auth.SESSION_COOKIE, '{"u": "alice"}.forged.sig')
    assert client.get("/api/test/whoami").status_code == 401


# -- roles --------------------------------------------------------------------------


def test_viewer_reads_but_gets_403_on_an_admin_action(tmp_path: Path,
                                                      users: UserStore) -> None:
    client = _client(tmp_path)
    _sign_in(client, "victor")
    assert client.get("/api/test/whoami").json() == {"name": "victor", "role": "viewer"}
    r = client.post("/api/test/act", headers=_csrf(client))
    assert r.status_code == 403 and "admin" in r.json()["error"]
    users.set_role("victor", Role.ADMIN)  # applies at the next request
    assert client.post("/api/test/act", headers=_csrf(client)).status_code == 200


# -- CSRF ---------------------------------------------------------------------------


def test_unsafe_request_without_csrf_header_is_403_naming_it(tmp_path: Path,
                                                             users: UserStore) -> None:
    client = _client(tmp_path)
    _sign_in(client, "alice")
    r = client.post("/api/test/act")
    assert r.status_code == 403 and auth.CSRF_HEADER in r.json()["error"]
    r = client.post("/api/test/act", headers={auth.CSRF_HEADER: "x" * 43})
    assert r.status_code == 403


def test_local_admin_mode_still_requires_csrf(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.post("/api/test/act").status_code == 403  # no cookie
    client.get("/login")
    assert client.post("/api/test/act").status_code == 403  # cookie but no header
    assert client.post("/api/test/act", headers=_csrf(client)).status_code == 200


def test_html_form_may_send_the_token_as_a_field(tmp_path: Path) -> None:
    client = _client(tmp_path)
    client.get("/login")
    token = client.cookies.get(auth.CSRF_COOKIE)
    r = client.post("/api/test/act", data={"csrf_token": token})
    assert r.status_code == 200
    assert client.post("/api/test/act", data={"csrf_token": "y" * 43}).status_code == 403


def test_pages_set_the_csrf_cookie_and_templates_can_read_it(tmp_path: Path,
                                                             users: UserStore) -> None:
    client = _client(tmp_path)
    r = client.get("/login")
    assert r.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/login">' in r.text
    set_cookie = next(c for c in r.headers.get_list("set-cookie")
                      if c.startswith(auth.CSRF_COOKIE + "="))
    assert "HttpOnly" not in set_cookie  # console.js copies it into the header
    token = client.cookies.get(auth.CSRF_COOKIE)
    assert f'name="csrf_token" value="{token}"' in r.text
    again = client.get("/login")  # already set: not set again
    assert not any(c.startswith(auth.CSRF_COOKIE) for c in again.headers.get_list("set-cookie"))


# -- API tokens ---------------------------------------------------------------------


def test_bearer_token_works_without_csrf(tmp_path: Path, users: UserStore) -> None:
    token_record, token = users.new_token("alice", "monitoring")
    client = _client(tmp_path)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/test/whoami", headers=bearer).json()["name"] == "alice"
    assert client.post("/api/test/act", headers=bearer).json() == {"done_by": "alice"}
    assert users.get("alice").tokens[0].last_used is not None
    bad = {"Authorization": "Bearer pst_" + "x" * 43}
    assert client.get("/api/test/whoami", headers=bad).status_code == 401
    assert client.post("/api/test/act", headers=bad).status_code == 401
    users.revoke_token(token_record.id)
    assert client.get("/api/test/whoami", headers=bearer).status_code == 401


def test_viewer_token_cannot_act(tmp_path: Path, users: UserStore) -> None:
    _, token = users.new_token("victor")
    client = _client(tmp_path)
    r = client.post("/api/test/act", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


# -- the store ----------------------------------------------------------------------


def test_store_keeps_only_hashes_in_a_private_file(tmp_path: Path, users: UserStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = users.new_token("alice")
    path = tmp_path / "users.json"
    text = path.read_text()
    assert PASSWORD not in text and token not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(text)["users"][0]["password"]
    assert stored["scheme"] == "scrypt" and stored["n"] == users_module.SCRYPT_N
    monkeypatch.undo()  # the node's own cost, not the tests' cheap one
    assert users_module.SCRYPT_N >= 2**15
    assert users_module.hash_password(PASSWORD)["n"] == users_module.SCRYPT_N
    assert verify_password(PASSWORD, stored) and not verify_password("nope", stored)
    assert users.authenticate("alice", PASSWORD) is not None
    assert users.authenticate("alice", "nope") is None
    assert users.authenticate("nobody", PASSWORD) is None


@pytest.mark.parametrize("name", ["", "x" * 65, "tab\there", " lead", "nul\x00"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError):
        UserStore(tmp_path).add(name, Role.VIEWER, PASSWORD)


def test_session_secret_is_made_once_and_private(tmp_path: Path, users: UserStore) -> None:
    _sign_in(_client(tmp_path), "alice")
    secret = tmp_path / auth.SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = secret.read_text()
    client = _client(tmp_path)  # a restarted console: same key, sessions survive
    _sign_in(client, "alice")
    assert secret.read_text() == first
    assert _client(tmp_path, cookies=dict(client.cookies)).get(
        "/api/test/whoami").status_code == 200


# -- starting -----------------------------------------------------------------------


def test_check_startable(tmp_path: Path) -> None:
    def config(bind: str) -> NodeConfig:
        return NodeConfig(data_dir=str(tmp_path), http=HttpConfig(bind=bind, port=8080))

    assert auth.check_startable(config("127.0.0.1"), tmp_path) is None
    assert auth.check_startable(config("0.0.0.0"), tmp_path) == (
        "the console listens on 0.0.0.0:8080 but no users are configured: add one with "
        "`printscp users add NAME --role admin`, or bind [http] to 127.0.0.1")
    assert "[::]:8080" in auth.check_startable(config("::"), tmp_path)
    UserStore(tmp_path).add("alice", Role.ADMIN, PASSWORD)
    assert auth.check_startable(config("0.0.0.0"), tmp_path) is None
    (tmp_path / "users.json").write_text("not json")
    assert "users.json" in auth.check_startable(config("127.0.0.1"), tmp_path)
