"""Token auth: every call of a service it guards (ObjectClassifier, the Open Inference
Protocol's) needs `authorization: Bearer <token>` with the scope of its method
(security/scopes.py); OPEN methods (the protocol's liveness/readiness) need none.

Missing or unknown token -> UNAUTHENTICATED; a known token without the scope
-> PERMISSION_DENIED naming the scope. Health and reflection are other
services, so they pass untouched (ScopedInterceptor). The messages never
hold the token.
"""
from __future__ import annotations

import grpc

from roiclass.server.errors import RoiclassError
from roiclass.server.interceptors.wrapping import Call, ScopedInterceptor
from roiclass.server.security.scopes import OPEN, scope_for
from roiclass.server.security.tokens import TokenTable, authorization, bearer_token


class Unauthenticated(RoiclassError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(RoiclassError):
    code = grpc.StatusCode.PERMISSION_DENIED


class AuthInterceptor(ScopedInterceptor):
    def __init__(self, service: str | tuple[str, ...], tokens: TokenTable):
        super().__init__(service)
        self.tokens = tokens

    def check(self, method: str, authorization: str | None) -> None:
        """Returns when the token grants the method's scope, else raises Unauthenticated / PermissionDenied."""
        needed = scope_for(method)
        if needed == OPEN:
            return
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated("a token is required: send 'authorization: Bearer <token>' "
                                  "(gRPC metadata, or the HTTP Authorization header)")
        grant = self.tokens.lookup(token)
        if grant is None:
            raise Unauthenticated("unknown token")
        if needed not in grant.scopes:
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs a token with the scope '{needed}'")

    def scope(self, call: Call) -> "_AuthScope":
        return _AuthScope(self, call)


class _AuthScope:
    """One call's check (a class, not a generator: it runs per call)."""
    __slots__ = ("auth", "call")

    def __init__(self, auth: AuthInterceptor, call: Call):
        self.auth, self.call = auth, call

    async def __aenter__(self) -> None:
        self.auth.check(self.call.method, authorization(self.call.context))

    async def __aexit__(self, *exc_info) -> bool:
        return False
