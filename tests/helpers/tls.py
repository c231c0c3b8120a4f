"""Test certificates, made when the tests run (no key is ever committed).

:func:`make_pki` writes into a folder: a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, an expired client certificate, and a client
certificate from a second, untrusted CA — each as ``NAME.pem`` and ``NAME.key``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    folder: Path

    def cert(self, name: str) -> str:
        return str(self.folder / f"{name}.pem")

    def key(self, name: str) -> str:
        return str(self.folder / f"{name}.key")

    @property
    def ca(self) -> str:
        return self.cert("ca")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "printscp tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
           ) -> None:
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _ca(folder: Path, name: str, now: dt.datetime) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(f"{name} CA"))
            .issuer_name(_name(f"{name} CA")).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(folder, name, cert, key)
    return cert, key


def _leaf(folder: Path, name: str, issuer: Issuer,
          *, server: bool, now: dt.datetime, expired: bool = False) -> None:
    ca_cert, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = (now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired else \
        (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(name))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                   if server else [usage]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    _write(folder, name, builder.sign(ca_key, hashes.SHA256()), key)


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca = _ca(folder, "ca", now)
    _leaf(folder, "server", ca, server=True, now=now)
    _leaf(folder, "client", ca, server=False, now=now)
    _leaf(folder, "expired", ca, server=False, now=now, expired=True)
    rogue = _ca(folder, "rogue-ca", now)
    _leaf(folder, "rogue", rogue, server=False, now=now)
    return Pki(folder)
