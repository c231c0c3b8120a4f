"""AE table entries: the peers printscp connects to, written ``AE@HOST:PORT``.

Also the rules for an AE title and a host every configuration key naming one uses.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from printscp.core.errors import wrong_type, wrong_value

#: What an AE title may be (PS3.5 6.2: Default Character Repertoire without backslash
#: and control characters, leading and trailing spaces not significant).
AE_TITLE_RULE = "an AE title of 1-16 printable ASCII characters, no backslash"
HOST_RULE = "a host name or IP address"
REMOTE_RULE = "AE@HOST:PORT (an AE title of 1-16 characters, a host, a port 1-65535)"
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def check_ae_title(value: object, key: str = "") -> str:
    """``value`` without its insignificant spaces, or :class:`ConfigError` (``key`` named)."""
    if not isinstance(value, str):
        raise wrong_type(value, AE_TITLE_RULE, key)
    title = value.strip(" ")
    if not _AE_TITLE.fullmatch(title):
        raise wrong_value(value, AE_TITLE_RULE, key)
    return title


def check_host(value: object, key: str = "") -> str:
    """A host name (RFC 1123 labels) or an IPv4/IPv6 address, or :class:`ConfigError`."""
    if not isinstance(value, str):
        raise wrong_type(value, HOST_RULE, key)
    host = value.strip()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if not host or len(host) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in labels):
        raise wrong_value(value, HOST_RULE, key)
    return host


def check_port(value: object, key: str = "", *, any_port: bool = False) -> int:
    """A TCP port 1-65535 (or 0, "any free port", when ``any_port``)."""
    low = 0 if any_port else 1
    rule = f"an integer {low}-65535"
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(value, rule, key)
    if not low <= value <= 65535:
        raise wrong_value(value, rule, key, "is out of range")
    return value


@dataclass(frozen=True)
class RemoteAE:
    """A peer we connect to: C-MOVE destination, storage commitment requester..."""

    ae_title: str
    host: str
    port: int
    #: DICOM TLS to this peer (its certificate checked against ``host`` and the CAs).
    tls: bool = False
    #: Our client certificate and key for this peer (PEM; "" : none, or [tls]'s own).
    certificate: str = ""
    private_key: str = ""
    #: CAs this peer's certificate must chain to ("" : [tls] ca_certificates, else the
    #: system's).
    ca_certificates: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", check_ae_title(self.ae_title, "ae_title"))
        object.__setattr__(self, "host", check_host(self.host, "host"))
        check_port(self.port, "port")
        if not isinstance(self.tls, bool):
            raise wrong_type(self.tls, "true or false", "tls")
        for name in ("certificate", "private_key", "ca_certificates"):
            if not isinstance(getattr(self, name), str):
                raise wrong_type(getattr(self, name), "a path to a PEM file", name)
        if bool(self.certificate) != bool(self.private_key):
            raise wrong_value(self.certificate or self.private_key,
                              "certificate and private_key both, or neither",
                              "certificate" if self.certificate else "private_key")

    @classmethod
    def parse(cls, text: str) -> RemoteAE:
        """``AE@HOST:PORT``."""
        ae, _, rest = str(text).partition("@")
        host, _, port = rest.rpartition(":")
        try:
            return cls(ae, host, int(port))
        except ValueError:  # ConfigError included
            raise wrong_value(text, REMOTE_RULE) from None
