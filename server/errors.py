"""Exceptions that carry a gRPC status code.

Every layer (domain conversion, model repository, engine) raises these; one
server interceptor turns them into a status with a message and, for wrong
fields, a google.rpc.BadRequest detail. Anything else is INTERNAL and logged
with its traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import grpc


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


class Unimplemented(RoiclassError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(RoiclassError):
    code = grpc.StatusCode.INTERNAL
