"""Associations printscp requests: the Print SCU, forwarding to a film imager, storage
commitment reports on a new association, and the test suite's clients."""

from __future__ import annotations

from typing import Any

from printscp.net import reactors


def guard_requestor(assoc: Any) -> None:
    """Make ``assoc``, and every association the process opens after it, safe from
    pynetdicom 3.0's requestor races (:data:`printscp.net.compat.WORKAROUNDS`).

    Installs the event-driven loops and the wrapped ``_serve_request`` and ``send_msg``
    (:mod:`printscp.net.reactors`) if they are not yet: an association already running
    pynetdicom's own loop keeps it, but its sends are serialized, a response its
    reactor takes is put back for the parked sender (pynetdicom #875), and a reactor
    parked by a sender stays marked paused after a peer's N-EVENT-REPORT (#820).
    """
    reactors.install()


def associate(ae: Any, host: str, port: int, **kwargs: Any) -> Any:
    """``ae.associate(host, port, **kwargs)`` on printscp's loops (installed first, so
    that the new association runs them), guarded as :func:`guard_requestor` says."""
    reactors.install()
    return ae.associate(host, port, **kwargs)
