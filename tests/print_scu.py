"""Moved to :mod:`helpers.print_scu`; this name stays for ``benchmarks/print_latency.py``."""

from helpers.print_scu import META, PrintSCU, color_item, gray_item

__all__ = ["META", "PrintSCU", "color_item", "gray_item"]
