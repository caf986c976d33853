"""One call scope around every kind of gRPC method handler.

An interceptor gives a scope, an async context manager per call, and gets
the service's handlers back with each call run inside it: unary-unary and
stream-unary calls until their response, unary-stream and stream-stream
calls until their last response has left.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import grpc


@dataclass
class Call:
    method: str  # "/package.Service/Method"
    request: Any  # the request message; None when the client streams them
    context: grpc.aio.ServicerContext
    response: Any = None  # set once a unary response is ready


Scope = Callable[[Call], AbstractAsyncContextManager]


class ScopedInterceptor(grpc.aio.ServerInterceptor):
    """Runs every call of its services (ObjectClassifier, the Open Inference
    Protocol's; others, e.g. health and reflection, pass untouched) inside
    `self.scope(call)`. The wrapped handler is made once per method, not per
    call: a generic handler hands out the same object each time."""

    def __init__(self, service: str | tuple[str, ...]):
        services = (service,) if isinstance(service, str) else tuple(service)
        self._prefix = tuple(f"/{s}/" for s in services)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def scope(self, call: Call) -> AbstractAsyncContextManager:
        raise NotImplementedError

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefix):
            return handler
        hit = self._wrapped.get(method)
        if hit is None or hit[0] is not handler:
            hit = self._wrapped[method] = (handler, wrap_handler(handler, method, self.scope))
        return hit[1]


def wrap_handler(handler: grpc.RpcMethodHandler, method: str, scope: Scope) -> grpc.RpcMethodHandler:
    """The handler with its behaviour (whichever of the four kinds) run inside scope."""
    if handler.unary_unary is not None:
        return handler._replace(unary_unary=_unary_response(handler.unary_unary, method, scope, True))
    if handler.stream_unary is not None:
        return handler._replace(stream_unary=_unary_response(handler.stream_unary, method, scope, False))
    if handler.unary_stream is not None:
        return handler._replace(unary_stream=_stream_response(handler.unary_stream, method, scope, True))
    if handler.stream_stream is not None:
        return handler._replace(stream_stream=_stream_response(handler.stream_stream, method, scope, False))
    return handler


def _unary_response(behavior, method: str, scope: Scope, unary_request: bool):
    async def wrapper(request, context):
        call = Call(method, request if unary_request else None, context)
        async with scope(call):
            call.response = await behavior(request, context)
        return call.response

    return wrapper


def _stream_response(behavior, method: str, scope: Scope, unary_request: bool):
    async def wrapper(request, context):
        call = Call(method, request if unary_request else None, context)
        async with scope(call):
            responses = behavior(request, context)
            if hasattr(responses, "__aiter__"):
                async for response in responses:
                    yield response
            else:  # a coroutine that writes its responses with context.write()
                await responses

    return wrapper
