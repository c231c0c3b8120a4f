"""Moved to :mod:`helpers.upstream`; this name stays for ``benchmarks/output_targets.py``."""

from helpers.upstream import running_dcmprscp

__all__ = ["running_dcmprscp"]
