"""The one table of HTTP statuses: an exception's gRPC status code -> HTTP status.

Every layer raises roiclass.server.errors exceptions (gRPC status codes);
the REST API answers with the status of this table and the protocol's error
body `{"error": "<message>"}`, the same message the gRPC API sends.
"""
from __future__ import annotations

import json
import logging

import grpc

from roiclass.server.errors import RoiclassError, status_code

log = logging.getLogger(__name__)

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,  # e.g. a model not ready (Triton answers 400)
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,  # the client went away (nginx's code; nobody reads it)
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
DEFAULT_STATUS = 500  # INTERNAL, UNKNOWN, DATA_LOSS and anything not a RoiclassError


def http_status(exc: BaseException) -> int:
    return HTTP_STATUS.get(status_code(exc), DEFAULT_STATUS)


def error_message(exc: BaseException, where: str = "") -> str:
    """The message of a RoiclassError; for anything else the traceback is logged and the
    message says only its type (as status_from_exception does for gRPC)."""
    if isinstance(exc, RoiclassError):
        return exc.message
    log.error("unexpected error in %s", where or "HTTP request", exc_info=exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
