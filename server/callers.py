"""Who is calling: the identity the engine shares batches and caps in-flight ROIs by.

In order: the bearer token (only a truncated SHA-256 of it, so the token never
reaches the engine, logs or metrics), else the TLS client certificate's subject
(mutual TLS), else the peer connection (`ipv4:10.0.0.5:53422`: each connection
is its own caller, so behind a proxy or load balancer that pools connections
give clients tokens or certificates).
"""
from __future__ import annotations

import hashlib

TOKEN_HASH_CHARS = 16  # 64 bits of the SHA-256: ample to keep callers apart


def caller_id(context) -> str:
    """The caller of a gRPC call (a servicer context, sync or asyncio)."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            token = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, rest = token.partition(" ")
            if scheme.lower() == "bearer":
                token = rest
            digest = hashlib.sha256(token.strip().encode()).hexdigest()
            return f"token:{digest[:TOKEN_HASH_CHARS]}"
    auth = context.auth_context() or {}
    subject = auth.get("x509_subject") or auth.get("x509_common_name")
    if subject:
        return "cert:" + subject[0].decode("utf-8", "replace")
    return "peer:" + (context.peer() or "")
