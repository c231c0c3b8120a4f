"""Hardcopy outputs: rendered films on paper printers (IPP/CUPS) and other destinations."""
