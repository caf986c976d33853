"""ClassifierError: the one exception type the client raises.

A failed RPC becomes a ClassifierError carrying its gRPC status code, the
server's message and, when the server sent a google.rpc.BadRequest detail,
its field violations. Bad input found before anything is sent raises
InvalidInputError, a ClassifierError (INVALID_ARGUMENT) that is also a
ValueError, so callers can catch either.
"""
from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

# google.rpc.Code numbers -> grpc.StatusCode (grpc.StatusCode values are (int, name)).
_CODES = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class FieldViolation:
    """One wrong request field, e.g. ("rois[0].rect.width", "must be > 0")."""

    field: str
    description: str


class ClassifierError(Exception):
    """A failed call: `code` (grpc.StatusCode), `message`, `details`.

    `details` holds the decoded google.rpc.BadRequest field violations
    (empty when the server sent none).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: tuple[FieldViolation, ...] | list[FieldViolation] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details = tuple(details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r}, details={list(self.details)!r})"

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "ClassifierError":
        """Wraps a grpc.RpcError raised by a stub call."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        details: tuple[FieldViolation, ...] = ()
        try:
            status = rpc_status.from_call(error)
        except (ValueError, AttributeError):
            # A status detail that disagrees with the call's status: keep the call's.
            status = None
        if status is not None:
            details = _violations(status)
        return cls(code or grpc.StatusCode.UNKNOWN, message or "", details)

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> "ClassifierError":
        """Wraps a google.rpc.Status, e.g. the error of one stream frame."""
        code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
        return cls(code, status.message, _violations(status))


class InvalidInputError(ClassifierError, ValueError):
    """Bad input caught on the client, before a request was sent."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field}: {description}",
            (FieldViolation(field, description),),
        )


def _violations(status: status_pb2.Status) -> tuple[FieldViolation, ...]:
    found: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend(
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
    return tuple(found)
