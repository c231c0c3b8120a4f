"""Access rule entries: who a rule of ``[access]`` names.

Pure parsing and matching, no networking.  An entry is one of:

* ``"any"``: every peer;
* ``"known"``: a calling AE title of the AE table (``[[remote]]``), connecting from that
  entry's host;
* ``"AE"``: that calling AE title, from any host;
* ``"AE@HOST"``: that calling AE title from that host (an IP address or a host name);
* ``"@HOST"``, an IP address, or a CIDR network (``"10.1.0.0/16"``): any AE title
  from there.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from printscp.core.errors import wrong_type, wrong_value
from printscp.core.remote import check_ae_title, check_host

ACCESS_ENTRY_RULE = ('"any", "known", an AE title, AE@HOST, @HOST, an IP address or a '
                     'CIDR network such as 10.1.0.0/16')


@dataclass(frozen=True)
class AccessEntry:
    """One parsed entry (see the module's docstring)."""

    text: str
    ae_title: str = ""   # "" : any AE title
    host: str = ""       # "" : any host (or the AE table's host for "known")
    network: Any = None  # an ipaddress network, for IP and CIDR entries
    any: bool = False
    known: bool = False

    @classmethod
    def parse(cls, value: Any, key: str = "") -> AccessEntry:
        if not isinstance(value, str):
            raise wrong_type(value, ACCESS_ENTRY_RULE, key)
        text = value.strip()
        if text.lower() == "any":
            return cls(text, any=True)
        if text.lower() == "known":
            return cls(text, known=True)
        try:
            return cls(text, network=ipaddress.ip_network(text, strict=False))
        except ValueError:
            if "/" in text and "@" not in text:  # a CIDR network, not an AE title
                raise wrong_value(value, ACCESS_ENTRY_RULE, key) from None
        title, at, host = text.partition("@")
        try:
            if title or not at:
                title = check_ae_title(title, key)
            if at:
                host = check_host(host, key)
        except Exception:
            raise wrong_value(value, ACCESS_ENTRY_RULE, key) from None
        if at:
            try:
                return cls(text, ae_title=title, network=ipaddress.ip_network(host))
            except ValueError:
                return cls(text, ae_title=title, host=host.lower())
        return cls(text, ae_title=title)


def check_access_entry(value: Any, key: str = "") -> str:
    """``value`` if it is a valid entry (the config keeps the text)."""
    AccessEntry.parse(value, key)
    return value.strip()
