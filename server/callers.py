"""Who is calling: the identity the engine shares batches and caps in-flight ROIs by.

In order: the bearer token (only a truncated SHA-256 of it, so the token never
reaches the engine, logs or metrics), else the TLS client certificate's subject
(mutual TLS), else the peer connection (`ipv4:10.0.0.5:53422`: each connection
is its own caller, so behind a proxy or load balancer that pools connections
give clients tokens or certificates).
"""
from __future__ import annotations

from roiclass.server.security.tokens import authorization, bearer_token, token_digest

TOKEN_HASH_CHARS = 16  # 64 bits of the SHA-256: ample to keep callers apart


def caller_id(context) -> str:
    """The caller of a gRPC call (a servicer context, sync or asyncio)."""
    value = authorization(context)
    if value:
        # The same reading and digest as the token check (security/tokens.py).
        token = bearer_token(value) or value.strip()
        return f"token:{token_digest(token).hex()[:TOKEN_HASH_CHARS]}"
    auth = context.auth_context() or {}
    subject = auth.get("x509_subject") or auth.get("x509_common_name")
    if subject:
        return "cert:" + subject[0].decode("utf-8", "replace")
    return "peer:" + (context.peer() or "")
