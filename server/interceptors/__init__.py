"""The server's interceptors: the error mapper, token auth and the drain gate.

All wrap every handler kind of one service (wrapping.py), in this order
(app.create_server): the error mapper outermost, so auth failures and drain
refusals are mapped and counted like any error; then auth, so a caller
without a valid token learns nothing else (not even that the server drains)
and is never counted in flight; then the drain gate.
"""
from roiclass.server.interceptors.auth import AuthInterceptor
from roiclass.server.interceptors.drain import DrainGate
from roiclass.server.interceptors.error_mapping import ErrorMapper

__all__ = ["AuthInterceptor", "DrainGate", "ErrorMapper"]
