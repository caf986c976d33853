"""security.py: the REST caller reads like server/callers.py's for gRPC."""
from __future__ import annotations

from roiclass.server.callers import TOKEN_HASH_CHARS
from roiclass.server.oip.http.security import caller_of
from roiclass.server.security.tokens import token_digest

SUBJECT = ((("organizationName", "Acme"),), (("commonName", "client-1"),))  # certificate order


def test_token_then_certificate_then_connection():
    token = "tok-0123456789abcdef"
    assert caller_of(f"Bearer {token}", {"subject": SUBJECT}, ("127.0.0.1", 5)) == \
        f"token:{token_digest(token).hex()[:TOKEN_HASH_CHARS]}"
    assert caller_of(None, {"subject": SUBJECT}, ("127.0.0.1", 5)) == "cert:CN=client-1,O=Acme"  # RFC 2253, as gRPC
    assert caller_of(None, None, ("10.0.0.5", 53422)) == "peer:ipv4:10.0.0.5:53422"
    assert caller_of(None, {}, ("::1", 9, 0, 0)) == "peer:ipv6:[::1]:9"
    assert caller_of(None, None, None) == "peer:"
