"""Transport security and authentication: TLS files, the token table, scopes."""
from roiclass.server.security.config import SecurityConfig, SecurityConfigError, is_loopback
from roiclass.server.security.scopes import ADMIN, CLASSIFY, METRICS, SCOPES, scope_for
from roiclass.server.security.tokens import TokenFileError, TokenTable, bearer_token

__all__ = [
    "ADMIN", "CLASSIFY", "METRICS", "SCOPES", "SecurityConfig", "SecurityConfigError", "TokenFileError",
    "TokenTable", "bearer_token", "is_loopback", "scope_for",
]
