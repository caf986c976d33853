"""TlsConfig and the token: how a client proves who it talks to and who it is.

    Classifier("server:50051", tls=TlsConfig(ca="ca.pem"), token="...")
    Classifier("server:50051", tls=True)                # system CAs
    Classifier("server:50051", tls=TlsConfig(ca="ca.pem", cert="client.pem", key="client.key"))  # mTLS

Files are read when the client is made. The token goes out as
`authorization: Bearer <token>` metadata on every call.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import grpc

from .errors import InvalidInputError

logger = logging.getLogger(__name__)

Pem = Union[str, "os.PathLike[str]", bytes]  # a file path, or the PEM bytes themselves


@dataclass(frozen=True)
class TlsConfig:
    """ca: CAs that the server's certificate must chain to (None = the system's).
    cert / key: this client's certificate and key, for mutual TLS (both or neither).
    server_name: the name to check the certificate against, when it is not the
    address's host (e.g. connecting by IP to a cert for a DNS name)."""

    ca: Pem | None = None
    cert: Pem | None = None
    key: Pem | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise InvalidInputError("tls", "cert and key go together (mutual TLS): give both or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=_read("tls.ca", self.ca),
            private_key=_read("tls.key", self.key),
            certificate_chain=_read("tls.cert", self.cert),
        )

    def options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def _read(field: str, pem: Pem | None) -> bytes | None:
    if pem is None or isinstance(pem, bytes):
        return pem
    try:
        return Path(pem).read_bytes()
    except OSError as exc:
        raise InvalidInputError(field, f"cannot read {os.fspath(pem)!r}: {exc.strerror or exc}") from None


def tls_config(tls: "TlsConfig | bool | None") -> TlsConfig | None:
    """The constructor's `tls` argument: True = system CAs, False/None = plaintext."""
    if tls is True:
        return TlsConfig()
    if tls is None or tls is False:
        return None
    if not isinstance(tls, TlsConfig):
        raise InvalidInputError("tls", f"must be a TlsConfig, True or None, got {type(tls).__name__}")
    return tls


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: () without a token."""
    if token is None:
        return ()
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        raise InvalidInputError("token", "must be a non-empty string without spaces")
    return (("authorization", f"Bearer {token}"),)


def plaintext_token_warning(address: str) -> None:
    """One WARNING when a token would cross the network unencrypted (loopback is fine)."""
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass  # a DNS name: not known to be local
    logger.warning("a token is sent in plaintext to %s: pass tls= to encrypt it", address)
