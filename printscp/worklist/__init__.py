"""Modality Worklist (PS3.4 Annex K): scheduled procedure steps a modality asks for.

The node keeps worklist items in its own database (``<data_dir>/index.sqlite``, tables
``worklist_*``) rather than in a folder of files as DCMTK's ``wlmscpfs`` does, so that a
C-FIND is one indexed SQL query, imports are transactional, and the MPPS service can move
an item through its states (:meth:`~printscp.worklist.items.WorklistStore.mark`) without
racing a file writer.

* :mod:`printscp.worklist.items` — the items, their validation, queries and status API;
* :mod:`printscp.worklist.importing` — items from command-line fields, CSV, DICOM JSON
  and DICOM files (DCMTK ``.wl`` files included);
* :mod:`printscp.app.cli.worklist` — ``printscp worklist add|import|list|remove``;
* :mod:`printscp.services.worklist` — the C-FIND SCP of the Modality Worklist
  Information Model – FIND SOP Class (1.2.840.10008.5.1.4.31).

May import: :mod:`printscp.core` and :mod:`printscp.query`; never pynetdicom,
:mod:`printscp.net`, the archive or MPPS.
"""
