"""Presentation contexts refused by the access rules, answered "user-rejection".

From the EVT_REQUESTED handler (before pynetdicom negotiates), :func:`refuse_contexts`
gives the association a copy of its supported contexts without the refused abstract
syntaxes: ``ACSE._negotiate_as_acceptor`` (pynetdicom 3.0.4) reads
``self.acceptor.supported_contexts`` when it calls ``negotiate_as_acceptor``, and the
acceptor's contexts may be set until the A-ASSOCIATE-AC is built.  pynetdicom then
answers those contexts 0x03 (abstract-syntax-not-supported, a *provider* rejection);
printscp does support them, and it is its *user* that declines them for this peer, so
PS3.8 Table 9-18 calls for 0x01 (user-rejection).  :func:`install` wraps the
``negotiate_as_acceptor`` that ``pynetdicom.acse`` calls to turn exactly those results
into 0x01; nothing else of the negotiation changes.

pynetdicom names used: ``pynetdicom.acse.negotiate_as_acceptor`` (the module global the
ACSE calls) and ``ServiceUser.supported_contexts`` (public).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

#: PS3.8 Table 9-18 presentation context results.
USER_REJECTION = 0x01
ABSTRACT_SYNTAX_NOT_SUPPORTED = 0x03

_installed = False
_lock = threading.Lock()


class _Supported(list):
    """An association's supported contexts, with the abstract syntaxes the access rules
    refused for its peer."""

    refused: frozenset[str] = frozenset()


def refuse_contexts(assoc: Any, abstract_syntaxes: Iterable[str]) -> None:
    """Reject ``assoc``'s presentation contexts for ``abstract_syntaxes`` with result
    0x01 (user-rejection) when it is negotiated; call from EVT_REQUESTED."""
    refused = frozenset(str(uid) for uid in abstract_syntaxes)
    if not refused:
        return
    install()
    acceptor = assoc.acceptor
    kept = _Supported(cx for cx in acceptor.supported_contexts
                      if str(cx.abstract_syntax) not in refused)
    kept.refused = refused
    acceptor.supported_contexts = kept


def _user_rejections(original: Any) -> Any:
    def negotiate_as_acceptor(rq_contexts: Any, ac_contexts: Any, roles: Any = None) -> Any:
        result, ac_roles = original(rq_contexts, ac_contexts, roles)
        refused = getattr(ac_contexts, "refused", None)
        if refused:
            for cx in result:
                if cx.result == ABSTRACT_SYNTAX_NOT_SUPPORTED and \
                        str(cx.abstract_syntax) in refused:
                    cx.result = USER_REJECTION
        return result, ac_roles

    negotiate_as_acceptor.__wrapped__ = original  # type: ignore[attr-defined]
    return negotiate_as_acceptor


def install() -> None:
    """Wrap ``pynetdicom.acse.negotiate_as_acceptor`` once per process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from pynetdicom import acse

        acse.negotiate_as_acceptor = _user_rejections(acse.negotiate_as_acceptor)
        _installed = True
