"""Moved to :mod:`helpers.dcmtk`; this name stays for ``tests/test_reactors.py``."""

from helpers.dcmtk import HAVE_DCMTK, tool

__all__ = ["HAVE_DCMTK", "tool"]
