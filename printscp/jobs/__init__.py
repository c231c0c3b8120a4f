"""Print jobs: the durable spool and its state machine (PENDING -> PRINTING -> DONE |
FAILURE, plus held and cancelled), rendering a spooled job into its film files, naming
those files, and delivering them to the printer profile's targets with retries that
survive restarts.

* :mod:`~printscp.jobs.targets` — where a job goes (file, CUPS, DICOM, archive targets);
* :mod:`~printscp.jobs.spool` — the spool, its worker and the job state machine;
* :mod:`~printscp.jobs.render` — a spooled job to its films (runs in a render process);
* :mod:`~printscp.jobs.naming` — film file names from a target's templates;
* :mod:`~printscp.jobs.delivery` — delivery state per target, retries and back-off;
* :mod:`~printscp.jobs.state` — Execution Status terms, a job's files and markers;
* :mod:`~printscp.jobs.index` — the SQLite index of job summaries and Print Job events;
* :mod:`~printscp.jobs.control` — cancel, hold, release, delete, reprint (console, CLI);
* :mod:`~printscp.jobs.preview` — PNG previews of a stored job's films, cached.

The network deliveries themselves (CUPS, an upstream DICOM printer, the archive) are
handed in by the node, so this package stays free of networking.
May import: :mod:`printscp.core`, :mod:`printscp.printing`, :mod:`lut`; never
pynetdicom or :mod:`printscp.net`.
"""
