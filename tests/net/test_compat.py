"""printscp.net.compat: the version gate and the canary over pynetdicom's source."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

from printscp.net import compat


def test_every_mirrored_upstream_function_is_unchanged():
    """The canary: the installed pynetdicom's functions that the network layer mirrors,
    wraps or calls by a private name are, byte for byte, those it was written against.
    When this fails after an upgrade, re-read each listed function beside the printscp
    code named with it, then update its fingerprint in printscp/net/compat.py."""
    changed = [f"{m.upstream} (now {compat.current_fingerprint(m.upstream)}): re-read "
               f"{m.ours}" for m in compat.MIRRORED
               if compat.current_fingerprint(m.upstream) != m.fingerprint]
    assert not changed, "pynetdicom changed under printscp.net:\n" + "\n".join(changed)


def test_the_canary_sees_a_one_character_change(monkeypatch):
    """A release that changes one character of a mirrored loop is caught, and the
    failure names the upstream function and what in printscp mirrors it."""
    from printscp.net import reactors

    name = "pynetdicom.dul:DULServiceProvider.run_reactor"
    original = reactors.ORIGINALS[name]
    source = inspect.getsource(original)
    changed_source = source.replace("self._run_loop_delay", "self._run_loop_delay * 2", 1)
    assert changed_source != source
    monkeypatch.setattr(inspect, "getsource",
                        lambda obj: changed_source if obj is original else source)
    mirrored = next(m for m in compat.MIRRORED if m.upstream == name)
    assert compat.current_fingerprint(name) != mirrored.fingerprint
    assert "_dul_loop" in mirrored.ours


def test_every_function_the_loops_replace_is_fingerprinted():
    """Nothing install() replaces escapes the canary."""
    from printscp.net import reactors

    reactors.install()
    fingerprinted = {m.upstream for m in compat.MIRRORED}
    assert set(reactors.ORIGINALS) <= fingerprinted


@pytest.mark.parametrize("version", ["3.0.0", "3.0.4", "3.0.17"])
def test_the_gate_accepts_the_supported_series(version):
    assert compat.check_version(version) == version


@pytest.mark.parametrize("version", ["3.1.0", "2.1.1", "4.0.0", "3.10.2"])
def test_the_gate_refuses_any_other_release_and_says_what_to_install(version):
    with pytest.raises(compat.UnsupportedPynetdicom) as info:
        compat.check_version(version)
    message = str(info.value)
    assert version in message
    assert "pynetdicom>=3.0,<3.1" in message


def test_importing_the_network_layer_with_an_untested_pynetdicom_fails_clearly():
    """In a fresh process whose pynetdicom reports 3.1.0, ``import printscp.net`` (and so
    ``printscp serve``) stops with the gate's message: no half-applied patches."""
    code = textwrap.dedent("""
        from importlib import metadata
        real = metadata.version
        metadata.version = lambda name: "3.1.0" if name == "pynetdicom" else real(name)
        try:
            import printscp.net
        except ImportError as exc:
            print(type(exc).__name__, exc)
        import sys
        print("patched" if "printscp.net.reactors" in sys.modules else "untouched")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first.startswith("UnsupportedPynetdicom")
    assert "pynetdicom 3.1.0" in first and "pynetdicom>=3.0,<3.1" in first
    assert second == "untouched"


def test_each_workaround_names_its_upstream_issue():
    for workaround in compat.WORKAROUNDS:
        assert workaround.upstream.startswith("https://github.com/pydicom/pynetdicom/")
        assert workaround.where


def test_the_implementation_class_uid_of_core_is_pynetdicoms():
    """What the node declares in associations and what it writes on media agree."""
    import pynetdicom

    from printscp.core import uids

    assert uids.IMPLEMENTATION_CLASS_UID == pynetdicom.PYNETDICOM_IMPLEMENTATION_UID


def test_printscp_serve_with_an_untested_pynetdicom_says_so_in_one_line():
    code = textwrap.dedent("""
        import sys
        from importlib import metadata
        real = metadata.version
        metadata.version = lambda name: "2.1.1" if name == "pynetdicom" else real(name)
        from printscp.app.cli.main import main
        sys.exit(main(["serve", "--port", "0", "--bind", "127.0.0.1"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("printscp: ") and "pynetdicom 2.1.1" in out.stderr
