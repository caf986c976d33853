"""The /metrics HTTP(S) endpoint: prometheus_client's WSGI app behind an
optional TLS context and an optional Authorization check.

The TLS handshake runs in the request's own thread (not in accept()), so a
slow or silent client holds up nobody else. Request lines are not logged
(they could carry nothing secret, but headers are never logged either).
"""
from __future__ import annotations

import socket
import ssl
import threading
from socketserver import ThreadingMixIn
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

# Authorization header value (or None) -> HTTP status: 200, 401 or 403.
Authorize = Callable[[str | None], int]
_REASONS = {401: "401 Unauthorized", 403: "403 Forbidden"}
HANDSHAKE_TIMEOUT_S = 10.0


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        if self.ssl_context is not None:
            request.settimeout(HANDSHAKE_TIMEOUT_S)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a failed handshake (no/wrong client cert, plaintext) ends that connection only
        super().finish_request(request, client_address)


def _guarded(app, authorize: Authorize | None):
    if authorize is None:
        return app

    def guarded(environ, start_response):
        status = authorize(environ.get("HTTP_AUTHORIZATION"))
        if status != 200:
            headers = [("Content-Type", "text/plain")]
            if status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="roiclass metrics"'))
            start_response(_REASONS.get(status, "403 Forbidden"), headers)
            message = "a token is required" if status == 401 else "the token lacks the scope 'metrics'"
            return [message.encode() + b"\n"]
        return app(environ, start_response)

    return guarded


def start_metrics_http(registry: CollectorRegistry, host: str, port: int,
                       ssl_context: ssl.SSLContext | None = None,
                       authorize: Authorize | None = None) -> WSGIServer:
    class Server(_Server):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = make_server(host.strip("[]"), port, _guarded(make_wsgi_app(registry), authorize), Server,
                        handler_class=_QuietHandler)
    httpd.ssl_context = ssl_context
    threading.Thread(target=httpd.serve_forever, name="roiclass-metrics", daemon=True).start()
    return httpd
