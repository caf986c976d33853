"""The error mapper: exceptions become gRPC statuses, calls become request metrics.

RoiclassError subclasses carry their status code; field violations go out as
a google.rpc.BadRequest detail; anything else is INTERNAL, logged with its
traceback (roiclass.server.errors.status_from_exception).
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

import grpc
from grpc_status import rpc_status

from roiclass.server.errors import status_code, status_from_exception
from roiclass.server.interceptors.wrapping import Call, wrap_handler
from roiclass.server.observer import RequestObserver


class ErrorMapper(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, observer: RequestObserver | None = None):
        self._prefix = f"/{service}/"  # other services (health, reflection) pass untouched
        self._observer = observer

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefix):
            return handler
        return wrap_handler(handler, method, self._scope)

    @asynccontextmanager
    async def _scope(self, call: Call):
        started = time.perf_counter()
        try:
            yield
        except grpc.aio.AbortError:  # the handler set its own status
            self._observe(call, (call.context.code() or grpc.StatusCode.UNKNOWN).name, started)
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status here, on purpose
            self._observe(call, status_code(exc).name, started)
            await call.context.abort_with_status(rpc_status.to_status(status_from_exception(exc, call.method)))
        else:
            self._observe(call, grpc.StatusCode.OK.name, started)

    def _observe(self, call: Call, code: str, started: float) -> None:
        if self._observer is None or not self._observer.observes(call.method):
            return
        # The version that answered; "" when the call failed.
        version = getattr(call.response, "model_version", "") if code == "OK" else ""
        self._observer.observe(getattr(call.request, "model", ""), version, code,
                               time.perf_counter() - started)
