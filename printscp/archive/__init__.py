"""The archive: instance files stored as received, their SQLite index, printed films as
Encapsulated PDF instances, storage commitment checks and DICOMDIR media; independent
of the network (the services layer speaks DIMSE for it).

* :mod:`~printscp.archive.archive` — what a C-STORE does: check, store durably, index;
* :mod:`~printscp.archive.files` — the instance files under validated UIDs;
* :mod:`~printscp.archive.index` — patients/studies/series/instances, C-FIND queries;
* :mod:`~printscp.archive.instance_json` — image-level attributes as DICOM JSON;
* :mod:`~printscp.archive.films` — printed films as Encapsulated PDF instances;
* :mod:`~printscp.archive.commitment` — storage commitment checks and their requests;
* :mod:`~printscp.archive.media` — DICOMDIR File-sets (export and import);
* :mod:`~printscp.archive.browse` — what the console shows and does: patients, studies
  and series with counts, series thumbnails, deleting a study, delivered commitment
  reports.

May import: :mod:`printscp.core`, :mod:`printscp.query`; never pynetdicom or
:mod:`printscp.net`.
"""
