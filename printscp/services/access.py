"""Access rules: who may associate, and who may use which service (``[access]``).

Policy only; the node applies it (:meth:`printscp.app.node.Node._on_requested`):

* :meth:`AccessPolicy.check` says whether an A-ASSOCIATE-RQ is accepted at all, and if
  not, with which A-ASSOCIATE-RJ result, source and reason (PS3.8 9.3.4):
  ``calling_ae_titles`` and ``require_called_ae``;
* :meth:`AccessPolicy.grants` says which service groups (:data:`SERVICE_GROUPS`) a
  calling AE title from a peer address may use.  A presentation context whose every
  group is refused is rejected at negotiation (:func:`refused_classes`, result 0x01
  user-rejection, PS3.8 Table 9-18: the service user declines an abstract syntax it
  supports); the association itself is accepted, so the peer learns exactly which
  abstract syntaxes were refused (DCMTK tools print each context's result and
  "No Acceptable Presentation Contexts");
* where a context serves two groups, the request decides (:func:`guard_handlers`):
  a C-STORE on a storage context accepted for C-GET sub-operations, a Storage
  Commitment N-ACTION or N-EVENT-REPORT on the one Storage Commitment context, and the
  destination of a C-MOVE.

Each refusal is logged at WARNING naming the rule (``access.query: calling AE "X"
from 10.1.2.3 is not "known"``) and written to the audit trail (:func:`audit_refusal`).

The service groups, by SOP Class (:func:`groups_of`):

==============  ===================================================================
echo            Verification
store           the storage SOP classes (a peer sending C-STORE to us)
query           Patient / Study Root Query/Retrieve FIND
retrieve        Patient / Study Root Query/Retrieve GET and MOVE (and the storage
                classes, whose SCP role a C-GET requester takes)
print           Basic Grayscale / Color Print Management Meta, Presentation LUT,
                Basic Annotation Box, Print Job, Printer, Printer Configuration
                Retrieval (and the meta classes' Film Session, Film Box, Image Box)
worklist        Modality Worklist Information Model FIND
mpps            Modality Performed Procedure Step
commitment      Storage Commitment Push Model, N-ACTION (a peer asking us to commit)
events          N-EVENT-REPORT requests a peer sends us on an association it opened:
                Storage Commitment Push Model results (PS3.4 J.3.3: the SCP may
                report on a new association, taking the SCP role).  Printer and Print
                Job events go from an SCP to its SCU on the SCU's own association, so
                printscp receives them only as a requestor, never here.
==============  ===================================================================
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from printscp.core import uids
from printscp.core.access import AccessEntry
from printscp.core.status import NOT_AUTHORIZED, PROCESSING_FAILURE

LOGGER = logging.getLogger("printscp.access")

#: (result, source, reason): rejected-permanent, DICOM UL service-user.
REJECT_CALLING_AE = (0x01, 0x01, 0x03)  #: calling-AE-title-not-recognized
REJECT_CALLED_AE = (0x01, 0x01, 0x07)  #: called-AE-title-not-recognized

SERVICE_GROUPS = ("echo", "store", "query", "retrieve", "print", "worklist", "mpps",
                  "commitment", "events")

# Refusals per request: NOT_AUTHORIZED (PS3.7 9.1.1.1.9 C-STORE, 10.1.2-10.1.6 N-services);
# N-EVENT-REPORT has no "not authorized" (PS3.7 10.1.1.1.8): PROCESSING_FAILURE.


@functools.cache
def _class_groups() -> dict[str, tuple[str, ...]]:
    """SOP Class UID -> the groups whose rule admits a context of it (built on first
    use: the storage classes come from pynetdicom's table)."""
    from printscp.mpps.steps import MPPS_SOP_CLASS
    from printscp.services import commitment, query_retrieve, storage, worklist

    table: dict[str, tuple[str, ...]] = {uids.VERIFICATION: ("echo",)}
    for uid in storage.STORAGE_CLASSES:
        table[str(uid)] = ("store", "retrieve")
    for uid in query_retrieve.QR_CLASSES:
        table[str(uid)] = ("query",) if str(uid) in query_retrieve.FIND_CLASSES \
            else ("retrieve",)
    for uid in (uids.BASIC_GRAYSCALE_PRINT_META, uids.BASIC_COLOR_PRINT_META,
                uids.BASIC_FILM_SESSION, uids.BASIC_FILM_BOX, uids.BASIC_GRAYSCALE_IMAGE_BOX,
                uids.BASIC_COLOR_IMAGE_BOX, uids.PRESENTATION_LUT, uids.BASIC_ANNOTATION_BOX,
                uids.PRINT_JOB, uids.PRINTER, uids.PRINTER_CONFIGURATION_RETRIEVAL):
        table[uid] = ("print",)
    for uid in worklist.WORKLIST_CLASSES:
        table[str(uid)] = ("worklist",)
    table[MPPS_SOP_CLASS] = ("mpps",)
    table[commitment.STORAGE_COMMITMENT] = ("commitment", "events")
    return table


#: Entries parsed once (the config holds them as text, checked when it was loaded).
_parse = functools.lru_cache(maxsize=4096)(AccessEntry.parse)


def groups_of(sop_class: str) -> tuple[str, ...]:
    """The service groups a presentation context of ``sop_class`` serves (empty for a
    class printscp does not serve: negotiation rejects it anyway, 0x03)."""
    return _class_groups().get(str(sop_class), ())


def _address(text: str) -> Any:
    """``text`` as an IP address (an IPv4-mapped IPv6 address as its IPv4), or None."""
    try:
        address = ipaddress.ip_address(str(text).split("%")[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def resolve(host: str) -> frozenset[Any]:
    """Every address ``host`` (a name or an address) resolves to; empty if it does not
    resolve (the entry then matches nobody, and the log says so once)."""
    literal = _address(host)
    if literal is not None:
        return frozenset({literal})
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        LOGGER.warning("access: host %s does not resolve (%s); its entries match nobody",
                       host, exc)
        return frozenset()
    return frozenset(a for a in (_address(info[4][0]) for info in infos) if a is not None)


@dataclass(frozen=True)
class Grants:
    """What one association's peer may use: ``allowed`` groups, and for each refused
    one the log line that names its rule."""

    calling_ae: str
    host: str
    allowed: frozenset[str]
    refusals: Mapping[str, str] = field(default_factory=dict)

    def allows(self, group: str) -> bool:
        return group in self.allowed

    def refusal(self, group: str) -> str:
        return self.refusals.get(group, f'access.{group}: calling AE "{self.calling_ae}" '
                                 f"from {self.host} is not allowed")


def _everything(calling_ae: str = "", host: str = "") -> Grants:
    """A peer allowed everything (an association whose grants were never worked out)."""
    return Grants(calling_ae, host, frozenset(SERVICE_GROUPS))


@dataclass(frozen=True)
class AccessPolicy:
    """``calling`` entries are ``AE`` (any host) or ``AE@address``; empty allows anyone.
    ``ae_titles`` are the called AE titles the node answers to (one per printer).
    ``rules`` holds each service group's entries (a group absent: ``"any"``), ``known``
    the AE table as (AE title, host) pairs, for ``"known"``."""

    ae_titles: tuple[str, ...]
    calling: tuple[str, ...] = ()
    require_called_ae: bool = False
    rules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    known: tuple[tuple[str, str], ...] = ()
    #: Host name -> addresses; swapped in tests.  Each name is resolved once.
    resolver: Callable[[str], frozenset[Any]] = resolve
    _resolved: dict[str, frozenset[Any]] = field(default_factory=dict, compare=False,
                                                 repr=False)
    _lock: Any = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> AccessPolicy:
        """The node's policy: ``[access]``, its called AE titles and its AE table."""
        access = config.access
        return cls(config.called_ae_titles, access.calling_ae_titles,
                   access.require_called_ae,
                   rules={group: tuple(getattr(access, group)) for group in SERVICE_GROUPS},
                   known=tuple((r.ae_title, r.host) for r in config.remote), **kwargs)

    def check(self, calling_ae: str, called_ae: str, host: str) -> tuple[int, int, int] | None:
        """None to accept, else the (result, source, reason) to reject with."""
        if self.require_called_ae and called_ae.strip() not in self.ae_titles:
            return REJECT_CALLED_AE
        if not self.calling:
            return None
        calling_ae = calling_ae.strip()
        for entry in self.calling:
            title, _, allowed_host = entry.partition("@")
            if title.strip() == calling_ae and (not allowed_host or allowed_host == host):
                return None
        return REJECT_CALLING_AE

    # -- per service --------------------------------------------------------------------

    def addresses(self, host: str) -> frozenset[Any]:
        """``host``'s addresses, resolved on first use and kept (a rule is read at every
        association; a name server is asked once per name and process)."""
        with self._lock:
            cached = self._resolved.get(host)
        if cached is None:
            cached = self.resolver(host)
            with self._lock:
                self._resolved[host] = cached
        return cached

    def matches(self, entry: AccessEntry, calling_ae: str, address: Any) -> bool:
        """Whether ``entry`` admits ``calling_ae`` connecting from ``address``."""
        if entry.any:
            return True
        if entry.known:
            return any(title == calling_ae and address in self.addresses(host)
                       for title, host in self.known)
        if entry.ae_title and entry.ae_title != calling_ae:
            return False
        if entry.network is not None:
            return address is not None and address.version == entry.network.version \
                and address in entry.network
        if entry.host:
            return address in self.addresses(entry.host)
        return True  # an AE title alone: from any host

    def allows(self, group: str, calling_ae: str, host: str) -> bool:
        """Whether ``group``'s rule admits ``calling_ae`` from ``host``."""
        entries = self.rules.get(group, ("any",))
        address = _address(host)
        calling_ae = calling_ae.strip()
        return any(self.matches(_parse(e), calling_ae, address) for e in entries)

    def grants(self, calling_ae: str, host: str) -> Grants:
        """The groups ``calling_ae`` from ``host`` may use, and why the others not."""
        calling_ae = calling_ae.strip()
        allowed, refusals = set(), {}
        for group in SERVICE_GROUPS:
            if self.allows(group, calling_ae, host):
                allowed.add(group)
            else:
                refusals[group] = refusal_line(group, calling_ae, host,
                                               self.rules.get(group, ()))
        return Grants(calling_ae, host, frozenset(allowed), refusals)

    def destination_allowed(self, destination: str, host: str) -> bool:
        """Whether a C-MOVE may send to ``destination`` (an AE table entry at ``host``):
        only to an AE the ``retrieve`` rule would let retrieve itself, so a peer allowed
        to retrieve cannot hand the archive to an AE the rules keep out of it."""
        entries = self.rules.get("retrieve", ("any",))
        title = destination.strip()
        for text in entries:
            entry = _parse(text)
            if entry.any or entry.known:
                return True  # the destination is an AE table entry: it is "known"
            if entry.ae_title and entry.ae_title != title:
                continue
            if entry.network is None and not entry.host and entry.ae_title:
                return True
            if any(self.matches(entry, title, address) for address in self.addresses(host)):
                return True
        return False


def refusal_line(group: str, calling_ae: str, host: str, entries: Iterable[str]) -> str:
    """The log line naming the rule that refused a group."""
    entries = tuple(entries)
    who = f'access.{group}: calling AE "{calling_ae}" from {host}'
    if not entries:
        return f"{who} is refused (access.{group} = [] refuses everyone)"
    if len(entries) == 1:
        return f'{who} is not "{entries[0]}"'
    return f"{who} matches none of " + ", ".join(f'"{e}"' for e in entries)


def refused_classes(grants: Grants, supported: Iterable[str]) -> set[str]:
    """The abstract syntaxes of ``supported`` whose every service group ``grants``
    refuses: their presentation contexts are rejected at negotiation."""
    refused = set()
    for uid in supported:
        groups = groups_of(uid)
        if groups and not any(grants.allows(g) for g in groups):
            refused.add(str(uid))
    return refused


def refuse_services(assoc: Any, grants: Grants) -> set[str]:
    """From EVT_REQUESTED: reject at negotiation the presentation contexts of every
    service ``grants`` refuses as a whole (result 0x01 user-rejection), logging one line
    per refused service the peer proposed; the refused abstract syntaxes."""
    if len(grants.allowed) == len(SERVICE_GROUPS):
        return set()
    from printscp.net import access_hook

    supported = (str(cx.abstract_syntax) for cx in assoc.acceptor.supported_contexts)
    refused = refused_classes(grants, supported)
    if not refused:
        return refused
    proposed = {str(cx.abstract_syntax) for cx in
                assoc.requestor.primitive.presentation_context_definition_list or ()}
    named = {g for uid in refused & proposed for g in groups_of(uid)} - grants.allowed
    for group in sorted(named, key=SERVICE_GROUPS.index):
        log_refusal(grants.refusal(group), assoc, "presentation contexts rejected")
    access_hook.refuse_contexts(assoc, refused)
    return refused


# -- per association and per request --------------------------------------------------

_by_association: weakref.WeakKeyDictionary[Any, Grants] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def remember(assoc: Any, grants: Grants) -> None:
    """Keep ``grants`` for the requests ``assoc`` brings (:func:`grants_of`)."""
    with _registry_lock:
        _by_association[assoc] = grants


def grants_of(assoc: Any) -> Grants:
    """What ``assoc``'s peer may use (everything if no rule was applied to it)."""
    with _registry_lock:
        found = _by_association.get(assoc)
    return found if found is not None else _everything()


def log_refusal(line: str, assoc: Any = None, what: str = "") -> None:
    """The WARNING line of a refusal, then its audit event."""
    LOGGER.warning("%s%s", line, f" ({what})" if what else "")
    audit_refusal(line, assoc, what)


def audit_refusal(line: str, assoc: Any = None, what: str = "") -> None:
    """Record a refusal in the audit trail: a Security Alert (PS3.15 A.5.3.14), event
    type Use of Restricted Function (110132), outcome minor failure (refused, no harm
    done), naming the calling AE, its address and the rule.  Never raises; nothing when
    the trail's event API (:func:`printscp.core.audit.emit`) is absent."""
    from printscp.core import audit

    emit = getattr(audit, "emit", None)
    if emit is None:
        return
    ae = host = ""
    if assoc is not None:
        try:
            ae = str(assoc.requestor.ae_title).strip()
            host = str(assoc.requestor.address)
        except Exception:
            pass
    try:
        emit(audit.AuditEvent.SECURITY_ALERT, audit.EventOutcomeIndicator.MINOR_FAILURE,
             type=audit.EventTypeCode.USE_OF_RESTRICTED_FUNCTION, ae=ae, host=host,
             description=line, rule=line.split(":", 1)[0], operation=what)
    except Exception:  # emit never raises; an older trail without these names might
        LOGGER.debug("audit of an access refusal failed", exc_info=True)


def _status(code: int, comment: str) -> Any:
    from printscp.services.dimse import status_dataset

    return status_dataset(code, comment)


def guard_store(handler: Callable[..., Any]) -> Callable[..., Any]:
    """EVT_C_STORE: a peer allowed to retrieve (C-GET, which needs the storage contexts)
    but not to store is answered 0x0124 Refused: Not authorized (PS3.7 9.1.1.1.9)."""

    @functools.wraps(handler)
    def guarded(event: Any, *args: Any) -> Any:
        grants = grants_of(event.assoc)
        if not grants.allows("store"):
            log_refusal(grants.refusal("store"), event.assoc, "C-STORE")
            return _status(NOT_AUTHORIZED, "not authorized (access.store)")
        return handler(event, *args)

    return guarded


def guard_commitment(handler: Callable[..., Any], group: str, code: int,
                     operation: str) -> Callable[..., Any]:
    """EVT_N_ACTION / EVT_N_EVENT_REPORT of Storage Commitment: the one context serves
    both ``commitment`` (the peer's requests) and ``events`` (the peer's reports)."""
    from printscp.services.commitment import STORAGE_COMMITMENT

    field_name = "RequestedSOPClassUID" if operation == "N-ACTION" else "AffectedSOPClassUID"

    @functools.wraps(handler)
    def guarded(event: Any, *args: Any) -> Any:
        sop_class = str(getattr(event.request, field_name, "") or "")
        if sop_class == STORAGE_COMMITMENT:
            grants = grants_of(event.assoc)
            if not grants.allows(group):
                log_refusal(grants.refusal(group), event.assoc, operation)
                return _status(code, f"not authorized (access.{group})"), None
        return handler(event, *args)

    return guarded


def guard_move(handler: Callable[..., Iterator[Any]], policy: AccessPolicy,
               remote_host: Callable[[str], str | None]) -> Callable[..., Iterator[Any]]:
    """EVT_C_MOVE: the destination must be an AE the ``retrieve`` rule admits
    (:meth:`AccessPolicy.destination_allowed`), else 0xA801 Refused: Move Destination
    unknown, as for an AE outside the AE table (PS3.4 C.4.2.1.5)."""

    @functools.wraps(handler)
    def guarded(event: Any, *args: Any) -> Iterator[Any]:
        destination = event.move_destination
        name = (destination.decode("ascii", "replace") if isinstance(destination, bytes)
                else str(destination)).strip()
        host = remote_host(name)
        if host is not None and not policy.destination_allowed(name, host):
            grants = grants_of(event.assoc)
            log_refusal(f'access.retrieve: C-MOVE destination "{name}" ({host}) is not '
                        "allowed to retrieve", event.assoc,
                        f'C-MOVE by "{grants.calling_ae}" from {grants.host}')
            yield None, None  # pynetdicom answers 0xA801
            return
        yield from handler(event, *args)

    return guarded


def guard_handlers(handlers: list[tuple[Any, ...]], policy: AccessPolicy,
                   remote_host: Callable[[str], str | None]) -> list[tuple[Any, ...]]:
    """The node's pynetdicom handlers with the per-request access checks around the
    services whose contexts serve more than one group."""
    from pynetdicom import evt

    out = []
    for item in handlers:
        event, fn, *rest = item
        if event is evt.EVT_C_STORE:
            fn = guard_store(fn)
        elif event is evt.EVT_C_MOVE:
            fn = guard_move(fn, policy, remote_host)
        elif event is evt.EVT_N_ACTION:
            fn = guard_commitment(fn, "commitment", NOT_AUTHORIZED, "N-ACTION")
        elif event is evt.EVT_N_EVENT_REPORT:
            fn = guard_commitment(fn, "events", PROCESSING_FAILURE, "N-EVENT-REPORT")
        out.append((event, fn, *rest))
    return out


def exposure_warnings(config: Any) -> list[str]:
    """Warning lines for ``printscp serve``: the node listens beyond loopback
    (``[node] bind``) while query or retrieve is open to ``"any"`` (any host that
    reaches the port may then read every stored patient back)."""
    from printscp.config.model import is_loopback

    if is_loopback(config.bind) or not config.archive.enabled:
        return []
    lines = []
    for group in ("query", "retrieve"):
        entries = getattr(config.access, group)
        if any(AccessEntry.parse(e).any for e in entries):
            shown = ", ".join(f'"{e}"' for e in entries)
            lines.append(f"printscp serve: warning: access.{group} = [{shown}] lets any AE "
                         f"that reaches {config.bind} port {config.port} {group} the "
                         'archive; list the AEs that need it, or "known" ([[remote]])')
    return lines
