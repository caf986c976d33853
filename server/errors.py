"""Exceptions that carry a gRPC status code, and the one mapping to statuses.

Every layer (domain conversion, model repository, engine) raises these;
status_from_exception turns them into a status with a message and, for wrong
fields, a google.rpc.BadRequest detail (the error-mapping interceptor for
calls, the servicer for stream frames). Anything else is INTERNAL and logged
with its traceback.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldViolation:
    field: str  # e.g. "rois[3].rect.width"
    description: str


@dataclass
class RoiclassError(Exception):
    message: str
    violations: list[FieldViolation] = field(default_factory=list)

    code = grpc.StatusCode.UNKNOWN

    def __str__(self) -> str:
        return self.message


class InvalidArgument(RoiclassError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    @classmethod
    def for_field(cls, field_path: str, description: str) -> "InvalidArgument":
        """One wrong field: the message names it and what is allowed."""
        return cls(f"{field_path}: {description}", [FieldViolation(field_path, description)])


class NotFound(RoiclassError):
    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(RoiclassError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(RoiclassError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(RoiclassError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(RoiclassError):
    code = grpc.StatusCode.CANCELLED


class FailedPrecondition(RoiclassError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(RoiclassError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Unimplemented(RoiclassError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(RoiclassError):
    code = grpc.StatusCode.INTERNAL


def status_code(exc: BaseException) -> grpc.StatusCode:
    """The status an exception maps to: its own code, INTERNAL for anything else."""
    return exc.code if isinstance(exc, RoiclassError) else grpc.StatusCode.INTERNAL


def status_from_exception(exc: BaseException, method: str = "") -> status_pb2.Status:
    """google.rpc.Status for an exception (a call's status or a stream frame's error)."""
    if isinstance(exc, RoiclassError):
        status = status_pb2.Status(code=exc.code.value[0], message=exc.message)
        if exc.violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in exc.violations
                ]
            )
            detail = any_pb2.Any()
            detail.Pack(bad)
            status.details.append(detail)
        return status
    log.error("unexpected error in %s", method or "request", exc_info=exc)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error: {type(exc).__name__}: {exc}")
