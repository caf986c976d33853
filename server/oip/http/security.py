"""Tokens and caller identity on the REST API, read the way the gRPC side reads them.

The token check is the gRPC auth interceptor's own `check(method, authorization)`,
called with the name of the RPC a route stands for (routes.py), so both APIs
need the same scope for the same operation (security/scopes.py) and say the
same messages; a SIGHUP re-read of the token file reaches both. The caller
(fair sharing in the engine) is computed like server/callers.py does: the
token's hash, else the TLS client certificate's subject, else the connection.
"""
from __future__ import annotations

from typing import Protocol

from roiclass.server.callers import TOKEN_HASH_CHARS
from roiclass.server.security.tokens import bearer_token, token_digest


class TokenCheck(Protocol):
    def check(self, method: str, authorization: str | None) -> None:
        """Returns when allowed; raises Unauthenticated / PermissionDenied."""


def caller_of(authorization: str | None, peercert: dict | None, peername) -> str:
    if authorization:
        token = bearer_token(authorization) or authorization.strip()
        return f"token:{token_digest(token).hex()[:TOKEN_HASH_CHARS]}"
    if peercert and peercert.get("subject"):
        # ssl's subject, in certificate order: ((("countryName", "DE"),), (("commonName", "c"),)) ->
        # RFC 2253's string, last RDN first ("CN=c,C=DE"), as gRPC's x509_subject reads it.
        subject = ",".join(f"{_SHORT.get(k, k)}={v}" for rdn in reversed(peercert["subject"]) for k, v in rdn)
        return "cert:" + subject
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"peer:ipv6:[{host}]:{port}" if ":" in host else f"peer:ipv4:{host}:{port}"
    return "peer:"


# RFC 2253's short attribute names.
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "localityName": "L", "stateOrProvinceName": "ST", "streetAddress": "STREET", "domainComponent": "DC",
          "userId": "UID"}
