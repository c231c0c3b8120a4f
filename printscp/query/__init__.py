"""Query matching (PS3.4 C.2.2.2), shared by the archive's C-FIND, the Modality
Worklist and (later) QIDO-RS: once in Python, once as SQL conditions.

Pure logic. May import: :mod:`printscp.core`; never pynetdicom or :mod:`printscp.net`.
"""
