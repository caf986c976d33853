"""The one exception -> status mapping (calls and stream frames)."""
from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from roiclass.server import errors
from roiclass.server.errors import status_code, status_from_exception

CODES = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Cancelled, grpc.StatusCode.CANCELLED),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.Internal, grpc.StatusCode.INTERNAL),
]


@pytest.mark.parametrize(("cls", "code"), CODES, ids=[c.__name__ for c, _ in CODES])
def test_each_error_keeps_its_code_and_message(cls, code):
    exc = cls("model 'x' is gone")
    assert status_code(exc) == code
    status = status_from_exception(exc)
    assert (status.code, status.message, list(status.details)) == (code.value[0], "model 'x' is gone", [])


def test_a_wrong_field_goes_out_as_a_bad_request_detail():
    exc = errors.InvalidArgument.for_field("rois[3].rect.width", "-1 must be a finite number > 0")
    status = status_from_exception(exc, "/roiclass.v1.ObjectClassifier/ClassifyObject")
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "rois[3].rect.width: -1 must be a finite number > 0"
    (detail,) = status.details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("rois[3].rect.width", "-1 must be a finite number > 0")]


def test_anything_else_is_internal_and_logged_with_its_traceback(caplog):
    try:
        raise ValueError("boom")
    except ValueError as exc:
        err = exc
    assert status_code(err) == grpc.StatusCode.INTERNAL
    with caplog.at_level(logging.ERROR, logger="roiclass.server.errors"):
        status = status_from_exception(err, "ClassifyObjectStream")
    assert (status.code, status.message, list(status.details)) == (
        code_pb2.INTERNAL, "internal error: ValueError: boom", [])
    (record,) = caplog.records
    assert record.getMessage() == "unexpected error in ClassifyObjectStream"
    assert record.exc_info[1] is err


def test_roiclass_errors_are_not_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger="roiclass.server.errors"):
        status_from_exception(errors.NotFound("no such model"))
    assert caplog.records == []
