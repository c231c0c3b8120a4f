"""The console: REST API (with its OpenAPI document), web pages, ``/metrics``, health.

A FastAPI application (:func:`printscp.http.app.create_app`) over a
:class:`~printscp.http.context.Console`, which holds the node's configuration and the
domain objects the pages and the API call (the job index and job control, the archive,
the worklist...).  Every page is rendered on the server from the same data its JSON
twin under ``/api/`` returns, so scripts and the browser see one truth; the pages'
assets ship inside the package and work offline.

It may import printscp.config, printscp.archive, printscp.worklist, printscp.mpps,
printscp.query, printscp.outputs, printscp.jobs, printscp.printing, calibration, lut and
printscp.core; never printscp.services, printscp.app or pynetdicom (a printer's test
action reaches a DICOM peer through printscp.outputs).
"""
