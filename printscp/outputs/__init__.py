"""Where rendered films leave the node: paper printers over IPP (CUPS), and DICOM
printers through the Print SCU (``printscp print``, forwarding to a film imager).

* :mod:`~printscp.outputs.ipp` — a minimal IPP/1.1 client;
* :mod:`~printscp.outputs.hardcopy` — a rendered job onto a CUPS queue;
* :mod:`~printscp.outputs.print_scu` — films to any DICOM printer (Print SCU);
* :mod:`~printscp.outputs.forward` — a spooled job forwarded to an upstream printer.

May import: :mod:`printscp.core`, :mod:`printscp.printing`, :mod:`printscp.jobs` and the
network layer's public interface (:mod:`printscp.net`).
"""
