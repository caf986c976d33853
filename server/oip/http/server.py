"""HttpServer: the REST API (routes.py) as an aiohttp site on the server's own event loop.

Why aiohttp: it is asyncio-native, so the site runs on the loop that runs
grpc.aio and awaits the same engine futures with no thread hop, and the
protocol core is shared as is (ASGI servers such as uvicorn want to own the
loop and the process; a WSGI or threaded server would put a thread between
each request and the engine); it serves TLS from an ssl.SSLContext (the one
with the certificate-rotation hook, security/tls.py), binds with
SO_REUSEPORT (workers share the port), cancels a handler whose client went
away, and it is mature and actively released (aio-libs) with a small
dependency tree. README.md beside this file says more.

Per request, in this order: the error middleware (every failure becomes
`{"error": ...}` with the status of errors.HTTP_STATUS), the token check of
the route's RPC (the gRPC auth interceptor's own check), the drain gate
(new requests get 503 while the server drains; in-flight ones are counted,
so the shutdown waits for them as for gRPC calls).
"""
from __future__ import annotations

import functools
import os
import ssl

from aiohttp import web

from roiclass.server.oip.http import routes
from roiclass.server.oip.http.errors import error_body, error_message, http_status
from roiclass.server.oip.http.security import TokenCheck, caller_of

KEEPALIVE_TIMEOUT_S = 75.0  # idle keep-alive connections are closed after this long
SHUTDOWN_TIMEOUT_S = 1.0  # the drain already waited for the in-flight requests


def _error_response(status: int, message: str, headers=None) -> web.Response:
    return web.Response(body=error_body(message), status=status, content_type="application/json",
                        headers=headers)


def _errors(max_body_bytes: int):
    @web.middleware
    async def errors(request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own: no route (404), wrong method (405), too large (413)
            if exc.status < 400:
                raise
            message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            if exc.status == 413:
                message = f"request body too large: at most {max_body_bytes} bytes (--max-message-mb)"
            elif exc.status == 404:
                message = f"no such endpoint: {request.method} {request.path}"
            elif exc.status == 405:
                message = f"{request.method} is not allowed on {request.path}"
            return _error_response(exc.status, message, {k: v for k, v in exc.headers.items() if k == "Allow"})
        except Exception as exc:  # noqa: BLE001 - mapped to a status here, on purpose
            status = http_status(exc)
            headers = {"WWW-Authenticate": 'Bearer realm="roiclass"'} if status == 401 else None
            return _error_response(status, error_message(exc, f"{request.method} {request.path}"), headers)

    return errors


class HttpServer:
    def __init__(self, protocol, servicer, *, auth: TokenCheck | None, gate, observer, max_body_bytes: int):
        """protocol: oip.core.InferenceProtocol; servicer: the v1 servicer (/v1/classify); auth: the
        gRPC auth interceptor (None: no tokens); gate: its DrainGate; observer: RequestObserver."""
        self.auth = auth  # None: no token check; the app replaces its tokens on SIGHUP in place
        self.gate = gate  # the DrainGate shared with the gRPC services
        self._ctx = routes.Context(protocol, servicer, observer, max_body_bytes, lambda: gate.draining)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def application(self) -> web.Application:
        app = web.Application(middlewares=[_errors(self._ctx.max_body_bytes)],
                              client_max_size=self._ctx.max_body_bytes)
        for method, path, rpc, handler in routes.ROUTES:
            if method == "GET":  # and HEAD (load balancers' probes), without the body
                app.router.add_get(path, self._guarded(rpc, handler))
            else:
                app.router.add_route(method, path, self._guarded(rpc, handler))
        return app

    def _guarded(self, rpc: str, handler: routes.Handler):
        ctx = self._ctx

        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            authorization = request.headers.get("Authorization")
            if self.auth is not None:
                self.auth.check(rpc, authorization)  # security/scopes.py: the probes need no token
            transport = request.transport
            caller = caller_of(  # as server/callers.py reads a gRPC call's
                authorization,
                transport.get_extra_info("peercert") if transport is not None else None,
                transport.get_extra_info("peername") if transport is not None else None)
            if rpc in routes.PROBES:
                return await handler(ctx, request, caller)
            async with self.gate.scope(None):  # 503 while draining; counted in flight
                return await handler(ctx, request, caller)

        return guarded

    async def start(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                    reuse_port: bool = False) -> int:
        # handler_cancellation: a client that disconnects cancels its request (routes._cancellable).
        self._runner = web.AppRunner(self.application(), handler_cancellation=True, access_log=None,
                                     keepalive_timeout=KEEPALIVE_TIMEOUT_S, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), port, ssl_context=ssl_context,
                           reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(f"cannot listen on {host}:{port} (--http-port): {reason}") from None
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
