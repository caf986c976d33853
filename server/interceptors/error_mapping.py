"""The error mapper: exceptions become gRPC statuses, calls become request metrics.

RoiclassError subclasses carry their status code; field violations go out as
a google.rpc.BadRequest detail; anything else is INTERNAL, logged with its
traceback (roiclass.server.errors.status_from_exception).
"""
from __future__ import annotations

import time

import grpc
from grpc_status import rpc_status

from roiclass.server.errors import status_code, status_from_exception
from roiclass.server.interceptors.wrapping import Call, ScopedInterceptor
from roiclass.server.observer import RequestObserver


class ErrorMapper(ScopedInterceptor):
    def __init__(self, service: str | tuple[str, ...], observer: RequestObserver | None = None):
        super().__init__(service)
        self._observer = observer

    def scope(self, call: Call) -> "_MapperScope":
        return _MapperScope(self, call)

    def _observe(self, call: Call, code: str, started: float) -> None:
        if self._observer is None or not self._observer.observes(call.method):
            return
        # The version that answered; "" when the call failed.
        version = getattr(call.response, "model_version", "") if code == "OK" else ""
        self._observer.observe(getattr(call.request, "model", ""), version, code,
                               time.perf_counter() - started)


class _MapperScope:
    """One call under the mapper (a class, not a generator: it runs per call)."""
    __slots__ = ("mapper", "call", "started")

    def __init__(self, mapper: ErrorMapper, call: Call):
        self.mapper, self.call = mapper, call

    async def __aenter__(self) -> None:
        self.started = time.perf_counter()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        call, mapper = self.call, self.mapper
        if exc is None:
            mapper._observe(call, grpc.StatusCode.OK.name, self.started)
        elif isinstance(exc, grpc.aio.AbortError):  # the handler set its own status
            mapper._observe(call, (call.context.code() or grpc.StatusCode.UNKNOWN).name, self.started)
        elif isinstance(exc, Exception):  # mapped to a status here, on purpose
            mapper._observe(call, status_code(exc).name, self.started)
            await call.context.abort_with_status(rpc_status.to_status(status_from_exception(exc, call.method)))
        return False
