"""Test certificates made with the `cryptography` package (EC P-256: fast).

`make_pki(folder)` writes PEM files and returns their paths:

- `ca` / `ca_key`: the trusted CA;
- `server_cert` / `server_key`: signed by the CA, for 127.0.0.1, ::1 and localhost;
- `client_cert` / `client_key`: signed by the CA (clientAuth);
- `expired_cert` / `expired_key`: a server cert like the first, expired yesterday;
- `other_ca` / `other_ca_key`: a second, untrusted CA;
- `other_server_cert` / `other_server_key`, `other_client_cert` / `other_client_key`:
  signed by the other CA.

`issue_server_cert(pki, cert_path, key_path)` writes a fresh server cert from the
same CA (for rotation tests); `Pki.read(name)` returns a file's bytes.
"""
from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    expired_cert: Path
    expired_key: Path
    other_ca: Path
    other_ca_key: Path
    other_server_cert: Path
    other_server_key: Path
    other_client_cert: Path
    other_client_key: Path

    def read(self, name: str) -> bytes:
        return getattr(self, name).read_bytes()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, key_path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _make_ca(common_name: str):
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(ca_cert, ca_key, common_name: str, *, server: bool, expired: bool = False):
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    before, after = (now - 10 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        sans = [x509.DNSName(n) for n in SERVER_NAMES]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _load_ca(pki: Pki):
    cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    return cert, key


def issue_server_cert(pki: Pki, cert_path: Path, key_path: Path, common_name: str = "roiclass-server") -> x509.Certificate:
    """A fresh server cert from the trusted CA, written to cert_path/key_path (rotation)."""
    ca_cert, ca_key = _load_ca(pki)
    cert, key = _make_leaf(ca_cert, ca_key, common_name, server=True)
    _write(Path(cert_path), cert, key, Path(key_path))
    return cert


def make_pki(folder) -> Pki:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p = {name: folder / f"{name}.pem" for name in (f.name for f in dataclasses.fields(Pki)) if name != "folder"}

    ca_cert, ca_key = _make_ca("roiclass test CA")
    _write(p["ca"], ca_cert, ca_key, p["ca_key"])
    other_cert, other_key = _make_ca("roiclass other CA")
    _write(p["other_ca"], other_cert, other_key, p["other_ca_key"])

    leaves = (
        ("server", ca_cert, ca_key, "roiclass-server", True, False),
        ("client", ca_cert, ca_key, "roiclass-client", False, False),
        ("expired", ca_cert, ca_key, "roiclass-expired", True, True),
        ("other_server", other_cert, other_key, "roiclass-other-server", True, False),
        ("other_client", other_cert, other_key, "roiclass-other-client", False, False),
    )
    for stem, issuer, issuer_key, cn, server, expired in leaves:
        cert, key = _make_leaf(issuer, issuer_key, cn, server=server, expired=expired)
        _write(p[f"{stem}_cert"], cert, key, p[f"{stem}_key"])
    return Pki(folder=folder, **p)


def common_name(cert_pem: bytes) -> str:
    """The subject CN of a PEM certificate (rotation tests compare it)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
