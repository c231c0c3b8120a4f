"""TLS contexts for DICOM TLS (PS3.15 B.9 BCP 195, B.10 Non-Downgrading BCP 195).

Made once from the configuration, checked when made: a certificate that cannot be
read, a key that does not match it or a CA bundle that holds no certificate is a
:class:`~printscp.core.errors.ConfigError` naming the key, before a port opens.

What every context here does, and why (BCP 195 = RFC 9325):

* TLS 1.2 at least (``[tls] min_version`` may raise it to 1.3); TLS 1.3 is chosen
  whenever the peer offers it (OpenSSL negotiates the highest common version).
* Only AEAD cipher suites with forward secrecy for TLS 1.2 (ECDHE/DHE with AES-GCM or
  ChaCha20-Poly1305; RFC 9325 4.2); TLS 1.3's suites are all AEAD.
* No compression (CRIME), no renegotiation, the server's order of suites.
* Peers are verified against ``ca_certificates`` (or the system's CAs); a client
  checks the server's name or address against its certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from printscp.core.errors import ConfigError

#: TLS 1.2 suites allowed (OpenSSL names): ECDHE or DHE key exchange, AEAD ciphers.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
))
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _harden(context: ssl.SSLContext, min_version: str) -> ssl.SSLContext:
    context.minimum_version = _VERSIONS.get(str(min_version), ssl.TLSVersion.TLSv1_2)
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
                        | getattr(ssl, "OP_NO_RENEGOTIATION", 0))
    return context


def _load_chain(context: ssl.SSLContext, certificate: str, private_key: str,
                keys: tuple[str, str]) -> None:
    for path, key in zip((certificate, private_key), keys, strict=True):
        if not Path(path).is_file():
            raise ConfigError(f"{path!r}: no such file; expected a PEM file", key)
    try:
        context.load_cert_chain(certificate, private_key)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise ConfigError(f"{certificate!r} with {private_key!r}: not a PEM certificate "
                          f"and its matching private key ({reason})", keys[0]) from None
    except OSError as exc:
        raise ConfigError(f"{exc.strerror or exc}", keys[0]) from None


def _load_cas(context: ssl.SSLContext, bundle: str, key: str) -> None:
    if not Path(bundle).is_file():
        raise ConfigError(f"{bundle!r}: no such file; expected a PEM bundle of CA "
                          "certificates", key)
    try:
        context.load_verify_locations(cafile=bundle)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{bundle!r}: not a PEM bundle of CA certificates ({exc})",
                          key) from None
    if not context.get_ca_certs():
        raise ConfigError(f"{bundle!r}: holds no CA certificate", key)


def server_context(tls: Any) -> ssl.SSLContext:
    """The listener's context from a :class:`~printscp.config.model.TlsConfig`."""
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls.min_version)
    _load_chain(context, tls.certificate, tls.private_key,
                ("tls.certificate", "tls.private_key"))
    context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_certificate \
        else ssl.CERT_OPTIONAL
    if tls.ca_certificates:
        _load_cas(context, tls.ca_certificates, "tls.ca_certificates")
    elif tls.require_client_certificate:
        raise ConfigError("missing; expected a PEM bundle of the CAs client certificates "
                          "chain to (required with require_client_certificate = true)",
                          "tls.ca_certificates")
    else:
        context.verify_mode = ssl.CERT_NONE  # no CA to check an offered certificate
    # One ticket per connection at most; TLS 1.3 session resumption stays possible.
    context.num_tickets = 1
    return context


def client_context(remote: Any, tls: Any | None = None, key: str = "remote") -> ssl.SSLContext:
    """The context for connecting to ``remote`` (a :class:`~printscp.core.remote.RemoteAE`
    with ``tls`` true): its CAs, else ``tls``'s ([tls] ca_certificates), else the
    system's; its client certificate, else the node's own when ``tls`` is enabled."""
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), getattr(tls, "min_version",
                                                                        "1.2"))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    bundle = remote.ca_certificates or (tls.ca_certificates if tls is not None else "")
    if bundle:
        _load_cas(context, bundle, f"{key}.ca_certificates" if remote.ca_certificates
                  else "tls.ca_certificates")
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if remote.certificate:
        _load_chain(context, remote.certificate, remote.private_key,
                    (f"{key}.certificate", f"{key}.private_key"))
    elif tls is not None and tls.enabled and tls.certificate:
        _load_chain(context, tls.certificate, tls.private_key,
                    ("tls.certificate", "tls.private_key"))
    return context


def tls_args(remote: Any, tls: Any | None = None) -> tuple[ssl.SSLContext, str] | None:
    """pynetdicom's ``tls_args`` for associating with ``remote``: None without TLS."""
    if not getattr(remote, "tls", False):
        return None
    return client_context(remote, tls), remote.host


def peer_subject(certificate: dict[str, Any] | None) -> str:
    """A peer certificate's subject as ``CN=...,O=...`` (for the log and the audit)."""
    if not certificate:
        return ""
    parts: Iterable[Any] = certificate.get("subject", ())
    return ",".join(f"{_SHORT.get(k, k)}={v}" for rdn in parts for k, v in rdn)


_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
          "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}


def certificate_info(path: str) -> dict[str, Any]:
    """What the console shows of a PEM certificate: subject, issuer, validity and the
    days left (negative once expired); ``{"error": ...}`` when it cannot be read.

    ``cryptography`` parses it (Python's ``ssl`` reads certificates only of peers)."""
    from datetime import UTC, datetime

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        return {"path": path, "error": str(exc)}
    now = datetime.now(UTC)
    end = cert.not_valid_after_utc
    return {"path": path, "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": end.isoformat(),
            "days_left": int((end - now).total_seconds() // 86400)}
