"""Moved to :mod:`helpers.archive_data`; this name stays for ``benchmarks/commitment.py``."""

from helpers.archive_data import CT_IMAGE, MR_IMAGE, Study, instance, write_study

__all__ = ["CT_IMAGE", "MR_IMAGE", "Study", "instance", "write_study"]
