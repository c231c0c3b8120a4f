"""Base helpers every other layer may use; this package imports nothing of printscp's.

* :mod:`~printscp.core.status` — DIMSE status codes (PS3.7 Annex C, PS3.4), one table;
* :mod:`~printscp.core.uids` — SOP Class and well-known SOP Instance UIDs;
* :mod:`~printscp.core.files` — atomic writes, durable renames, safe file names;
* :mod:`~printscp.core.database` — the node's SQLite database and its writer lock;
* :mod:`~printscp.core.remote` — AE table entries (``AE@HOST:PORT``);
* :mod:`~printscp.core.errors` — errors shared by every layer;
* :mod:`~printscp.core.printer_state` — the printer's persistent state (last calibration);
* :mod:`~printscp.core.progress` — a progress bar for long commands.

May import: the standard library and third-party packages only (no pynetdicom).
"""
