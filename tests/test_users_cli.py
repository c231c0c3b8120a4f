"""``printscp users``: adding users (password from stdin, never stored), listing them,
API tokens shown once, removing and revoking, and one clear line + exit 2 for bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from printscp.app.cli.main import main
from printscp.http import users as users_module
from printscp.http.users import UserStore, token_hash, verify_password

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long secret"


@pytest.fixture(autouse=True)
def _cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "SCRYPT_N", 2**10)


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         data: Path, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["users", *argv, "--data-dir", str(data)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_users_add_in_a_subprocess_stores_a_hash_not_the_password(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "printscp", "users", "add", "alice", "--role", "admin",
         "--password-stdin", "--data-dir", str(tmp_path)],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert "alice" in done.stdout
    text = (tmp_path / "users.json").read_text()
    assert PASSWORD not in text
    stored = json.loads(text)["users"][0]
    assert stored["name"] == "alice" and stored["role"] == "admin"
    assert verify_password(PASSWORD, stored["password"])  # the newline is not part of it
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0


def test_list_token_revoke_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(monkeypatch, capsys, tmp_path, "add", "alice", "--role", "admin",
                "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    assert _run(monkeypatch, capsys, tmp_path, "add", "victor", "--role", "viewer",
                "--password-stdin", stdin=PASSWORD)[0] == 0

    code, out, err = _run(monkeypatch, capsys, tmp_path, "token", "alice", "--label", "prom")
    assert code == 0
    token = out.strip()
    assert token.startswith("pst_") and len(out.splitlines()) == 1  # only the token
    assert "shown once" in err
    store = UserStore(tmp_path)
    assert store.user_for_token(token).name == "alice"
    assert token not in (tmp_path / "users.json").read_text()
    assert token_hash(token) in (tmp_path / "users.json").read_text()

    code, out, _ = _run(monkeypatch, capsys, tmp_path, "list")
    assert code == 0 and "alice" in out and "victor" in out and "viewer" in out
    assert "prom" in out and token not in out
    code, out, _ = _run(monkeypatch, capsys, tmp_path, "list", "--json")
    listed = json.loads(out)
    assert [u["name"] for u in listed] == ["alice", "victor"]
    token_id = listed[0]["tokens"][0]["id"]
    assert "sha256" not in listed[0]["tokens"][0] and "password" not in listed[0]

    assert _run(monkeypatch, capsys, tmp_path, "revoke-token", token_id)[0] == 0
    assert UserStore(tmp_path).user_for_token(token) is None
    assert _run(monkeypatch, capsys, tmp_path, "remove", "victor")[0] == 0
    assert [u.name for u in UserStore(tmp_path).users()] == ["alice"]

    audit = [json.loads(x)["action"] for x in
             (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    assert audit == ["user.add", "user.add", "user.token", "user.revoke-token", "user.remove"]


def test_passwd_and_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    _run(monkeypatch, capsys, tmp_path, "add", "alice", "--role", "viewer",
         "--password-stdin", stdin=PASSWORD)
    assert _run(monkeypatch, capsys, tmp_path, "passwd", "alice", "--password-stdin",
                stdin="another secret\n")[0] == 0
    store = UserStore(tmp_path)
    assert store.authenticate("alice", "another secret") is not None
    assert store.authenticate("alice", PASSWORD) is None
    assert _run(monkeypatch, capsys, tmp_path, "role", "alice", "--role", "admin")[0] == 0
    assert UserStore(tmp_path).get("alice").role.value == "admin"


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["add", "bad\x07name", "--role", "admin", "--password-stdin"], PASSWORD,
     "control character"),
    (["add", "x" * 65, "--role", "admin", "--password-stdin"], PASSWORD, "1 to 64"),
    (["add", "bob", "--role", "admin", "--password-stdin"], "short\n", "at least 8"),
    (["add", "bob", "--role", "admin"], "", "use --password-stdin"),  # no terminal
    (["add", "alice", "--role", "viewer", "--password-stdin"], PASSWORD, "exists"),
    (["remove", "nobody"], "", "no user 'nobody'"),
    (["token", "nobody"], "", "no user 'nobody'"),
    (["revoke-token", "deadbeef"], "", "no API token"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str],
                                          argv: list[str], stdin: str, message: str) -> None:
    UserStore(tmp_path).add("alice", "admin", PASSWORD)
    before = (tmp_path / "users.json").read_bytes()
    code, out, err = _run(monkeypatch, capsys, tmp_path, *argv, stdin=stdin)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert err.startswith("printscp users: ")
    assert (tmp_path / "users.json").read_bytes() == before  # nothing changed


def test_unknown_role_is_refused_by_the_parser(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["users", "add", "bob", "--role", "root", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err
