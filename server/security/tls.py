"""TLS for the gRPC port and /metrics, re-read without a restart.

`CertificateFiles` watches the PEM files: each new TLS handshake asks it for
the current configuration, and it re-reads the files when one of their
(mtime, size, inode) changed or after `force_reload()` (SIGHUP). A half-written
or mismatched pair is refused with a WARNING and the old pair stays in use,
so rotating never breaks the listener. Connections already open keep the
certificate they were made with: in-flight calls are unharmed.
"""
from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from roiclass.server.security.config import SecurityConfig, SecurityConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PemSet:
    cert: bytes
    key: bytes
    client_ca: bytes | None


def _stamp(path: Path | None):
    if path is None:
        return None
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _check_pair(cert: Path, key: Path, client_ca: Path | None) -> None:
    """ssl's loader checks that the files parse and that the key matches the certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(f"--tls-cert {cert} / --tls-key {key}: not a usable PEM pair ({exc})") from None
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise SecurityConfigError(f"--tls-client-ca {client_ca}: not usable PEM certificates ({exc})") from None


class CertificateFiles:
    def __init__(self, security: SecurityConfig):
        self.security = security
        self._lock = threading.Lock()
        self._force = False
        self._stamps = None
        self.generation = 0  # how many times the files were (re)loaded
        self._grpc_generation = 0
        self.current = self._read()  # raises SecurityConfigError: the server does not start

    def _paths(self):
        s = self.security
        return s.tls_cert, s.tls_key, s.tls_client_ca

    def _read(self) -> PemSet:
        cert, key, ca = self._paths()
        try:
            stamps = tuple(_stamp(p) for p in self._paths())
        except OSError as exc:
            raise SecurityConfigError(f"TLS file missing: {exc}") from None
        _check_pair(cert, key, ca)
        pems = PemSet(cert.read_bytes(), key.read_bytes(), ca.read_bytes() if ca is not None else None)
        self._stamps = stamps
        self.generation += 1
        return pems

    def force_reload(self) -> None:
        with self._lock:
            self._force = True

    def changed(self) -> bool:
        """Re-reads the files if they changed (or a reload was forced); True when a new set is in use."""
        with self._lock:
            try:
                stamps = tuple(_stamp(p) for p in self._paths())
            except OSError as exc:
                log.warning("TLS files not readable, keeping the loaded certificate: %s", exc)
                return False
            if stamps == self._stamps and not self._force:
                return False
            self._force = False
            try:
                self.current = self._read()
            except SecurityConfigError as exc:
                self._stamps = stamps  # do not retry on every handshake until they change again
                log.warning("TLS files changed but are not usable, keeping the loaded certificate: %s", exc)
                return False
            log.info("TLS certificate re-read from %s (generation %d)", self.security.tls_cert, self.generation)
            return True

    # -- gRPC --------------------------------------------------------------
    def _grpc_config(self) -> grpc.ServerCertificateConfiguration:
        pems = self.current
        return grpc.ssl_server_certificate_configuration([(pems.key, pems.cert)], root_certificates=pems.client_ca)

    def _fetch(self):
        # Called by gRPC on each new handshake: None = keep the configuration in use.
        try:
            self.changed()
            if self.generation == self._grpc_generation:
                return None
            self._grpc_generation = self.generation
            return self._grpc_config()
        except Exception:  # noqa: BLE001 - an exception here would fail the handshake
            log.exception("TLS certificate fetch failed; keeping the loaded certificate")
            return None

    def server_credentials(self) -> grpc.ServerCredentials:
        self._grpc_generation = self.generation
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(), self._fetch,
            require_client_authentication=self.security.require_client_cert,
        )

    # -- /metrics (ssl module) ----------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        """A server context whose SNI hook swaps in a fresh context when the files change."""
        made = {"ctx": self._make_ssl_context(), "generation": self.generation}

        def on_handshake(sslobj, server_name, _ctx):
            self.changed()
            if made["generation"] != self.generation:
                made["ctx"], made["generation"] = self._make_ssl_context(), self.generation
            if sslobj.context is not made["ctx"]:
                sslobj.context = made["ctx"]
            return None

        base = self._make_ssl_context()
        base.sni_callback = on_handshake
        return base

    def _make_ssl_context(self) -> ssl.SSLContext:
        # ssl loads a key pair from files only; they were just checked by changed().
        s = self.security
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certfile=str(s.tls_cert), keyfile=str(s.tls_key))
        if s.tls_client_ca is not None:
            ctx.load_verify_locations(cafile=str(s.tls_client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED  # config.check: a client CA always comes with require
        return ctx

