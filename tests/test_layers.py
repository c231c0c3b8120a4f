"""The house keeps its layers: import contracts, and pynetdicom's internals in net/ only."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "printscp" / "net"
#: pynetdicom modules that are its machinery rather than its API: only printscp.net
#: imports them (pynetdicom's API: the package itself, evt, sop_class, status,
#: dimse_primitives, dsutils, presentation's build_context...).
INTERNAL_MODULES = frozenset({
    "pynetdicom.acse", "pynetdicom.association", "pynetdicom.dimse",
    "pynetdicom.dimse_messages", "pynetdicom.dul", "pynetdicom.fsm", "pynetdicom.pdu",
    "pynetdicom.pdu_items", "pynetdicom.pdu_primitives", "pynetdicom.timer",
    "pynetdicom.transport", "pynetdicom.utils", "pynetdicom._config",
    "pynetdicom._handlers", "pynetdicom._globals",
})


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@cache
def _pynetdicom_private_names() -> frozenset[str]:
    """Every ``_name`` pynetdicom defines or uses as an attribute (not ``__dunder__``)."""
    import pynetdicom

    names: set[str] = set()
    for path in Path(pynetdicom.__file__).parent.rglob("*.py"):
        if {"tests", "apps", "benchmarks"} & set(path.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                name = node.name
            elif isinstance(node, ast.Attribute):
                name = node.attr
            if name and name.startswith("_") and not name.startswith("__"):
                names.add(name)
    return frozenset(names)


def _violations(path: Path, product: bool) -> list[str]:
    """Where ``path`` reaches pynetdicom's private names (or, for product code, its
    internal modules), or pins printscp attributes on its objects."""
    private = _pynetdicom_private_names()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pynetdicom"):
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{where} imports {node.module}.{alias.name}")
            if product and node.module in INTERNAL_MODULES:
                found.append(f"{where} imports pynetdicom's internal {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if product and alias.name in INTERNAL_MODULES:
                    found.append(f"{where} imports pynetdicom's internal {alias.name}")
        elif isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if node.attr.startswith("_printscp"):
                found.append(f"{where} pins {node.attr} on an object")
            elif node.attr in private and owner not in ("self", "cls"):
                found.append(f"{where} uses pynetdicom's private name {node.attr}")
    return found


#: The one exception, by file and name: the stock pynetdicom client of the interop tests
#: (``tests/interop/stock_client.py``) stands for a user's script, so it may not import
#: printscp, and it has to mend pynetdicom 3.0's own requestor race (#875, #820: its
#: reactor thread takes a response off the DIMSE queue while ``send_*()`` waits for
#: it) in its own process, or the test fails about once in 30 runs on a busy machine.
ALLOWED = {"tests/interop/stock_client.py": {"_reactor_checkpoint", "_is_paused"}}


def test_pynetdicoms_private_names_are_used_only_in_the_network_layer():
    found = []
    for path in _python_files("printscp", "lut", "calibration"):
        if NET not in path.parents:
            found += _violations(path, product=True)
    for path in _python_files("tests", "benchmarks"):
        allowed = ALLOWED.get(str(path.relative_to(ROOT)), set())
        found += [v for v in _violations(path, product=False)
                  if v.rsplit(" ", 1)[-1] not in allowed or "private name" not in v]
    assert not found, "outside printscp/net:\n" + "\n".join(found)


def test_the_check_sees_a_private_name(tmp_path, monkeypatch):
    """The scan above is not vacuous: it flags each kind of reach into pynetdicom."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    # The names are put together here so that `git grep` finds pynetdicom's private
    # names under printscp/net/ only, this test included.
    checkpoint, serving, message_table = ("_reactor" "_checkpoint", "_printscp" "_serving",
                                          "_RQ" "_TO_MESSAGE")
    sample = tmp_path / "service.py"
    sample.write_text("from pynetdicom.dul import DULServiceProvider\n"
                      f"from pynetdicom.dimse import {message_table}\n"
                      "def f(assoc):\n"
                      f"    assoc.{checkpoint}.clear()\n"
                      f"    assoc.{serving} = True\n")
    found = _violations(sample, product=True)
    assert sorted(f.split(" ", 1)[1] for f in found) == [
        "imports pynetdicom's internal pynetdicom.dimse",
        "imports pynetdicom's internal pynetdicom.dul",
        f"imports pynetdicom.dimse.{message_table}",
        f"pins {serving} on an object",
        f"uses pynetdicom's private name {checkpoint}",
    ]
    # tests may compare with pynetdicom's internal modules, not use its private names
    assert sorted(f.split(" ", 1)[1] for f in _violations(sample, product=False)) == [
        f"imports pynetdicom.dimse.{message_table}",
        f"pins {serving} on an object",
        f"uses pynetdicom's private name {checkpoint}",
    ]


def _lint_imports() -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    return subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_the_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] contracts: the layers, highest first, and
    no pynetdicom (nor printscp.net) in pure logic."""
    out = _lint_imports()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_there_is_no_import_cycle_between_printscps_modules():
    """No module of printscp, lut or calibration imports itself again through others
    (import-linter's layers cover packages; this covers modules, function-level
    imports included)."""
    import grimp

    graph = grimp.build_graph("printscp", "lut", "calibration", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if module == imported or graph.find_shortest_chain(imported, module) is None:
                continue
            chain = graph.find_shortest_chain(imported, module)
            cycles.append(" -> ".join((module, *chain)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles))[:20])


def test_every_package_says_what_it_is_for_and_what_it_may_import():
    for init in _python_files("printscp", "lut", "calibration"):
        if init.name != "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"{init.relative_to(ROOT)}: no docstring worth the name"
        if init.parent.name not in ("printscp", "cli"):
            assert "may import" in doc.lower(), \
                f"{init.relative_to(ROOT)}: does not say what it may import"
