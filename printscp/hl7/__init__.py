"""HL7 v2 interface: orders and patient updates from a RIS into the worklist and archive.

A RIS sends orders (ORM^O01, OMI^O23) and patient updates (ADT^A08, A31, A40) over MLLP;
:class:`printscp.hl7.inbox.Inbox` is the whole inbound path independent of the network
(parse, de-duplicate, apply, log durably, acknowledge), so the MLLP server
(:mod:`printscp.hl7.mllp`), ``printscp hl7 replay`` and the tests all enter it the same way.

* :mod:`printscp.hl7.messages` — parsing with the ``hl7`` library, field access by
  ``SEG-n.c``, ACK building (HL7 v2.5.1 ch. 2: MSA, ERR, table 0357);
* :mod:`printscp.hl7.orders` — ORM/OMI to worklist items (IHE RAD TF-2 RAD-4/RAD-13,
  TF-2x Appendix B);
* :mod:`printscp.hl7.patients` — ADT updates and merges of worklist items and the
  archive's patient level, with the record that undoes a merge;
* :mod:`printscp.hl7.log` — every message received, with its outcome and ACK (SQLite);
* :mod:`printscp.hl7.settings` — :class:`Hl7Settings`, the mapping per sending application.

May import: :mod:`printscp.archive`, :mod:`printscp.worklist`, :mod:`printscp.mpps`,
:mod:`printscp.query`, :mod:`printscp.core` and the ``hl7`` package; never pynetdicom,
:mod:`printscp.net`, the services or the configuration (which builds our settings).
"""
