"""Moved to :mod:`helpers.cups`; this name stays for ``benchmarks/output_targets.py``."""

from helpers.cups import PrivateCups, missing, running_cups

__all__ = ["PrivateCups", "missing", "running_cups"]
