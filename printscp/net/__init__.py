"""The network layer: the only package that knows pynetdicom's private names.

printscp serves and requests associations with pynetdicom 3.0, whose threads poll with
1 ms sleeps and whose reactors race their senders.  This package replaces the loops with
event-driven ones, works around the races, and gives the rest of printscp a small
interface instead of pynetdicom's internals:

* :mod:`~printscp.net.compat` — the version gate (run when this package is imported), the
  fingerprints of every upstream function the loops mirror, and the upstream issue each
  workaround works around;
* :mod:`~printscp.net.reactors` — the event-driven DUL and association loops, P-DATA read
  and written whole, fast paths on the DUL thread (patches pynetdicom's classes once,
  :func:`install`);
* :mod:`~printscp.net.hooks` — printscp's state for one association, in one object;
* :mod:`~printscp.net.channel` — what services use: send a message, park the reactor and
  wait for an answer, C-CANCEL, fast paths, stored files sent as they are;
* :mod:`~printscp.net.observe` — pynetdicom's events and debug log for the fast paths;
* :mod:`~printscp.net.event_reports` — N-EVENT-REPORTs to an SCU on its own association;
* :mod:`~printscp.net.server` — the association server (shared listening socket,
  balanced workers, TCP_NODELAY/QUICKACK);
* :mod:`~printscp.net.requestor` — associations printscp requests;
* :mod:`~printscp.net.pdata` — P-DATA framing and command sets by hand (pure);
* :mod:`~printscp.net.testing` — doubles of pynetdicom's objects for the loops' tests.

May import: pynetdicom (any of it), pydicom and :mod:`printscp.core`; nothing else of
printscp. Every other package reaches pynetdicom's internals only through this one.
"""

from printscp.net.compat import check_version

check_version()

from printscp.net.reactors import install  # noqa: E402
from printscp.net.requestor import associate, guard_requestor  # noqa: E402

__all__ = ["associate", "check_version", "guard_requestor", "install"]
