"""``--baseline REV``: run an older commit's printscp beside the working tree's.

Shared by ``archive.py`` and ``print_latency.py``.  :func:`baseline` checks REV out
with ``git worktree add --detach`` in a temporary directory (removed again with
``git worktree remove --force`` when the benchmark ends) and yields a :class:`Tree`
for it; :func:`current` is the working tree this script belongs to.  A tree's server
is started exactly as the current one is (``python -m printscp serve ...``, the same
interpreter and arguments) but with ``PYTHONPATH=<tree>`` and ``cwd=<tree>``: ``-m``
puts the cwd first on ``sys.path``, then PYTHONPATH, and the editable install of
the working tree only answers after both (its finder is appended to
``sys.meta_path``), so the tree's own package is the one imported.  That is checked,
not assumed: :meth:`Tree.verify` asks the same interpreter, with the same environment
and cwd, where ``printscp.__main__`` comes from, and :meth:`Tree.serve` checks the
started server's ``/proc/<pid>/cwd`` and ``PYTHONPATH``; :func:`run_python` (code run
with a tree's package, e.g. the archive's bulk load) checks ``printscp.__file__`` as
the child reports it.  A wrong tree raises :class:`WrongTree`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class WrongTree(RuntimeError):
    """A process imported printscp from another tree than the one it was started for."""


@dataclass
class Tree:
    """A checkout of printscp whose package a subprocess can be made to import."""

    root: Path
    #: None for the working tree; the short commit hash for a baseline.
    rev: str | None = None
    _verified: bool = field(default=False, repr=False)

    @property
    def suffix(self) -> str:
        """Appended to a server's name: ``""`` or ``"@<rev>"``."""
        return f"@{self.rev}" if self.rev else ""

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PYTHONPATH"] = str(self.root)  # nothing else: no other tree's package
        return env

    def owns(self, path: str | Path) -> bool:
        return Path(path).resolve().is_relative_to((self.root / "printscp").resolve())

    def verify(self) -> None:
        """Check (once) that a ``python -m printscp`` started by :meth:`serve` imports
        this tree's package."""
        if self._verified:
            return
        probe = ("import importlib.util, json, printscp; print(json.dumps(["
                 "printscp.__file__, importlib.util.find_spec('printscp.__main__').origin]))")
        out = subprocess.run([sys.executable, "-c", probe], env=self.env(), cwd=self.root,
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise WrongTree(f"{self.root}: cannot import printscp: {out.stderr[-800:]}")
        files = json.loads(out.stdout.strip().splitlines()[-1])
        if not all(self.owns(f) for f in files):
            raise WrongTree(f"python -m printscp in {self.root} imports {files}, "
                            f"not {self.root / 'printscp'}")
        self._verified = True

    def check_process(self, pid: int) -> None:
        """The running process ``pid`` has this tree as cwd and PYTHONPATH."""
        proc = Path(f"/proc/{pid}")
        if not proc.exists():  # not Linux, or already gone (the caller sees that)
            return
        end = time.monotonic() + 10  # until the forked child has exec'd python -m printscp
        while b"\0printscp\0" not in (proc / "cmdline").read_bytes() and time.monotonic() < end:
            time.sleep(0.005)
        cwd = Path(os.readlink(proc / "cwd"))
        env = dict(item.split("=", 1) for item in
                   (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                   if "=" in item)
        if cwd.resolve() != self.root.resolve() or env.get("PYTHONPATH") != str(self.root):
            raise WrongTree(f"process {pid}: cwd {cwd}, PYTHONPATH "
                            f"{env.get('PYTHONPATH')!r}; expected {self.root}")

    def serve(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              **popen: Any) -> subprocess.Popen:
        """Start ``python -m printscp serve *args`` with this tree's package.

        A tree whose node serves the console (issue 16) gets it on a free port unless
        ``args`` say otherwise: measured as deployed, and servers side by side do not
        collide on the default 8080."""
        self.verify()
        args = list(args)
        serve_py = self.root / "printscp" / "app" / "cli" / "serve.py"
        if (serve_py.is_file() and '"--http"' in serve_py.read_text("utf-8")
                and not {"--http", "--no-http"} & set(args)):
            args += ["--http", "127.0.0.1:0"]
        proc = subprocess.Popen([sys.executable, "-m", "printscp", "serve", *args],
                                env=self.env(env), cwd=self.root, **popen)
        try:
            self.check_process(proc.pid)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return proc


def current() -> Tree:
    """The working tree these benchmarks belong to."""
    return Tree(ROOT)


def working_tree() -> str:
    """What the working tree's servers run: ``HEAD <short hash>``, and how many files
    under ``printscp/`` differ from it (others may be editing the shared tree)."""
    changed = [line for line in _git("status", "--porcelain", "--", "printscp").splitlines()
               if line.strip()]
    return f"HEAD {_git('rev-parse', '--short=7', 'HEAD')}" + (
        f" + uncommitted changes to {len(changed)} file(s) under printscp/" if changed else "")


def run_python(tree: Tree, code: str, payload: Any, timeout: float = 3600) -> Any:
    """Run ``code`` in a fresh interpreter importing ``tree``'s printscp; it reads
    ``payload`` as JSON from stdin (``json.load(sys.stdin)``) and prints its result as
    JSON on the last line of stdout.  Before ``code`` runs the child reports
    ``printscp.__file__``, which must be in ``tree``."""
    tree.verify()
    prologue = ("import json as _j, sys as _s, printscp as _p\n"
                "print(_j.dumps(_p.__file__), flush=True)\n")
    out = subprocess.run([sys.executable, "-c", prologue + code], input=json.dumps(payload),
                         env=tree.env(), cwd=tree.root, capture_output=True, text=True,
                         timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"python with {tree.root} exited {out.returncode}: "
                           f"{out.stderr[-800:]}")
    lines = out.stdout.strip().splitlines()
    imported = json.loads(lines[0])
    if not tree.owns(imported):
        raise WrongTree(f"child for {tree.root} imported {imported}")
    return json.loads(lines[-1])


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@contextlib.contextmanager
def baseline(rev: str | None) -> Iterator[Tree | None]:
    """A temporary detached worktree of ``rev`` (None: no baseline, yields None)."""
    if not rev:
        yield None
        return
    try:
        short = _git("rev-parse", "--short=7", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"--baseline {rev}: not a commit ({exc.stderr.strip()})") from None
    tmp = Path(tempfile.mkdtemp(prefix="printscp-baseline-"))
    path = tmp / f"printscp-{short}"
    _git("worktree", "add", "--detach", str(path), short)
    try:
        tree = Tree(path, short)
        tree.verify()
        print(f"baseline: {short} ({_git('log', '-1', '--format=%cs %s', short)}) checked "
              f"out in {path}; its servers import {path / 'printscp'}; working tree: HEAD "
              f"{_git('rev-parse', '--short=7', 'HEAD')} and its uncommitted changes; run "
              f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
        yield tree
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _git("worktree", "remove", "--force", str(path))
        with contextlib.suppress(subprocess.CalledProcessError):
            _git("worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)


def turns(items: Sequence[T], r: int) -> list[T]:
    """``items`` in the order of turn ``r`` (rotated by one each turn): with two,
    current then baseline, then baseline then current, ..."""
    k = r % len(items) if items else 0
    return [*items[k:], *items[:k]]


def ratio_line(label: str, ours: Sequence[float], theirs: Sequence[float],
               what: str = "runs") -> str:
    """Paired ratios ``ours`` / ``theirs`` measured in the same turn, and their median."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=False) if a == a and b == b and b > 0]
    if not ratios:
        return f"{label}: no pair"
    med = statistics.median(ratios)
    return (f"{label}: " + " ".join(f"{q:.2f}" for q in ratios)
            + f" (median {med:.2f}, {sum(q >= 1 for q in ratios)} of {len(ratios)} {what} >= 1)")
