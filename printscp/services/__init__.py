"""DIMSE services: thin handlers that decode requests, call the domain layer and
encode the answer and its status.  One module per service; Print Management one module
per SOP Class (:mod:`printscp.services.print_management`).  Handlers are plain functions
with bound arguments, dispatched by SOP Class (:mod:`printscp.services.dispatch`); a
refused request raises :class:`printscp.core.errors.StatusError`, turned into its
response by :mod:`printscp.services.dimse`.

May import: every layer below (the stores, jobs, printing, config, core) and the network
layer's interface (:mod:`printscp.net.channel`, :mod:`printscp.net.event_reports`),
plus pynetdicom's public API (``evt``, ``AE``, SOP classes); never pynetdicom's
internals, nor :mod:`printscp.app`."""
