"""pynetdicom client associations as our tests (and our clients) need them.

Every requestor association gets :func:`printscp.net.guard_requestor`, which works
around races of pynetdicom's requestor that otherwise lose a response now and then.
The ``client`` fixture of ``conftest.py`` wraps :func:`associate` and releases what a
test leaves open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynetdicom import AE
from pynetdicom.association import Association

from helpers.net import HOST
from printscp.net import guard_requestor

#: A presentation context to propose: an abstract syntax (with pynetdicom's default
#: transfer syntaxes), or (abstract syntax, transfer syntax or syntaxes).
Context = str | tuple[str, str | Sequence[str]]


def associate(port: int, *contexts: Context, calling: str = "TESTSCU",
              called: str = "PRINTSCP", **kwargs: Any) -> Association:
    """An association from ``calling`` to ``called`` at 127.0.0.1:``port`` proposing
    ``contexts``, guarded when established (check ``is_established`` for a refusal).
    ``kwargs`` go to :meth:`pynetdicom.AE.associate` (``evt_handlers``, ``ext_neg``)."""
    ae = AE(ae_title=calling)
    for context in contexts:
        if isinstance(context, tuple):
            abstract, syntaxes = context
            ae.add_requested_context(abstract, syntaxes)
        else:
            ae.add_requested_context(context)
    assoc = ae.associate(HOST, port, ae_title=called, **kwargs)
    if assoc.is_established:
        guard_requestor(assoc)
    return assoc
