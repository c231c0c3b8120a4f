"""The REST API, one module per area (jobs and films, printers, archive, workflow, the
node); each has a ``router`` the application mounts under ``/api``.

May import what :mod:`printscp.http` may import, and printscp.http's own modules."""
