"""SecurityConfig: TLS files, client-certificate policy, token file, reflection."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path


class SecurityConfigError(ValueError):
    """A security setting that cannot work; the message names the flag or file."""


@dataclass(frozen=True)
class SecurityConfig:
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key: the server speaks TLS
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # mTLS: client certificates must chain to these CAs
    require_client_cert: bool = False  # mTLS: a handshake without a valid client cert fails (needs tls_client_ca)
    auth_tokens: Path | None = None  # token file (tokens.py); None = no token check
    reflection: bool = True

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def check(self) -> None:
        """Raises SecurityConfigError naming the flag for settings that do not go together."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SecurityConfigError("--tls-cert and --tls-key go together: give both or neither")
        if self.tls_client_ca is not None and not self.tls:
            raise SecurityConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        if self.require_client_cert and self.tls_client_ca is None:
            raise SecurityConfigError("--tls-require-client-cert needs --tls-client-ca (the CAs to verify against)")
        if self.tls_client_ca is not None and not self.require_client_cert:
            # gRPC's server credentials verify client certificates only when they require one:
            # an "optional" client CA would accept any certificate unchecked.
            raise SecurityConfigError("--tls-client-ca needs --tls-require-client-cert "
                                      "(gRPC verifies client certificates only when it requires them)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
