"""One place where exceptions become gRPC statuses (and request metrics).

RoiclassError subclasses carry their status code; field violations go out as
a google.rpc.BadRequest detail. Anything else is INTERNAL, logged with its
traceback. While the server drains, new calls get UNAVAILABLE.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import grpc
from grpc_status import rpc_status

from roiclass.server.errors import Unavailable, status_code, status_from_exception

log = logging.getLogger(__name__)

_OBSERVED_PREFIX = "/roiclass.v1.ObjectClassifier/"


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, is_draining: Callable[[], bool],
                 observe: Callable[[str, str, str, str, float], None] | None = None):
        self._is_draining = is_draining
        self._observe = observe
        self.in_flight = 0  # classifier calls running now (read by the drain)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if not method.startswith(_OBSERVED_PREFIX):
            return handler  # health, reflection: untouched
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._wrap_unary(method, handler.unary_unary))
        if handler.stream_stream is not None:
            return handler._replace(stream_stream=self._wrap_stream(method, handler.stream_stream))
        return handler

    async def _abort(self, context, method: str, exc: BaseException) -> None:
        status = status_from_exception(exc, method)
        await context.abort_with_status(rpc_status.to_status(status))

    def _check_draining(self) -> None:
        if self._is_draining():
            raise Unavailable("the server is shutting down; retry on another instance")

    def _record(self, method: str, model: str, code: str, started: float, version: str = "") -> None:
        """observe(method name, requested model ("" = default), version that answered
        ("" when the call failed), status code name, seconds)."""
        if self._observe is not None:
            self._observe(method.rsplit("/", 1)[-1], model, version, code, time.perf_counter() - started)

    def _wrap_unary(self, method: str, behavior):
        async def wrapper(request, context):
            started = time.perf_counter()
            model = getattr(request, "model", "")
            self.in_flight += 1
            try:
                self._check_draining()
                response = await behavior(request, context)
            except grpc.aio.AbortError:
                self._record(method, model, (context.code() or grpc.StatusCode.UNKNOWN).name, started)
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status here, on purpose
                code = status_code(exc).name
                self._record(method, model, code, started)
                await self._abort(context, method, exc)
            else:
                self._record(method, model, "OK", started, getattr(response, "model_version", ""))
                return response
            finally:
                self.in_flight -= 1

        return wrapper

    def _wrap_stream(self, method: str, behavior):
        async def wrapper(request_iterator, context):
            started = time.perf_counter()
            self.in_flight += 1
            try:
                self._check_draining()
                async for response in behavior(request_iterator, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001
                code = status_code(exc).name
                self._record(method, "", code, started)
                await self._abort(context, method, exc)
            finally:
                self.in_flight -= 1

        return wrapper
