"""errors.py: the one gRPC status -> HTTP status table and the error body."""
from __future__ import annotations

import json

import grpc
import pytest

from roiclass.server import errors
from roiclass.server.interceptors.auth import PermissionDenied, Unauthenticated
from roiclass.server.oip.http.errors import HTTP_STATUS, error_body, error_message, http_status


@pytest.mark.parametrize("exc, status", [
    (errors.InvalidArgument("x"), 400), (Unauthenticated("x"), 401), (PermissionDenied("x"), 403),
    (errors.NotFound("x"), 404), (errors.ResourceExhausted("x"), 429), (errors.Unavailable("x"), 503),
    (errors.DeadlineExceeded("x"), 504), (errors.Internal("x"), 500), (errors.Unimplemented("x"), 501),
    (ValueError("boom"), 500),
])
def test_status_of_each_exception(exc, status):
    assert http_status(exc) == status


def test_every_entry_is_a_client_or_server_error():
    assert all(isinstance(code, grpc.StatusCode) and 400 <= s < 600 for code, s in HTTP_STATUS.items())


def test_messages_and_body(caplog):
    assert error_message(errors.NotFound("model 'x' not found")) == "model 'x' not found"
    assert error_message(ValueError("boom"), "POST /v2") == "internal error: ValueError: boom"
    assert "unexpected error in POST /v2" in caplog.text  # logged with its traceback
    assert json.loads(error_body('say "hi"')) == {"error": 'say "hi"'}
