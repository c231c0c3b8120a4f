"""Test scaffolding, one implementation of each piece (``tests/`` is on ``sys.path``,
so tests import ``helpers.<module>``):

* :mod:`helpers.net`: free and refusing loopback ports, waiting for a port or a condition;
* :mod:`helpers.clients`: client associations with what our clients need (``guard_requestor``);
* :mod:`helpers.nodes`: printscp nodes from a configuration, and the jobs they printed;
* :mod:`helpers.images`: step wedges and ramps;
* :mod:`helpers.films`: films to print, and PDF pages read back as pixels, counts, sizes;
* :mod:`helpers.print_scu`: a pynetdicom Print SCU and its image items;
* :mod:`helpers.archive_data`: synthetic patients, studies and CT/MR instances;
* :mod:`helpers.mpps`: MPPS data sets as a modality sends them;
* :mod:`helpers.dcmtk`: DCMTK's tools by path, why they are missing, dcmdspfn's curves,
  and dcmpsprt + dcmprscu as a print client;
* :mod:`helpers.upstream`: DCMTK's dcmprscp as an upstream printer;
* :mod:`helpers.cups`: a private cupsd with a cups-pdf queue.

``conftest.py`` turns them into fixtures (``node``, ``make_node``, ``client``, ``cups``)
and skips the tests marked ``dcmtk``, ``cups``, ``poppler`` or ``chromium`` when the
tools they need are missing.
"""
