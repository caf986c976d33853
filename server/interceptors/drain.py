"""The drain gate: while the server shuts down, new calls get UNAVAILABLE.

It also counts the calls in flight, so the shutdown can wait for them.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import grpc

from roiclass.server.errors import Unavailable
from roiclass.server.interceptors.wrapping import Call, wrap_handler


class DrainGate(grpc.aio.ServerInterceptor):
    def __init__(self, service: str):
        self._prefix = f"/{service}/"  # other services (health, reflection) pass untouched
        self.draining = False
        self.in_flight = 0  # calls of the service running now

    def start_draining(self) -> None:
        self.draining = True

    async def wait_idle(self, until: float) -> None:
        """Returns once no call is in flight, or at loop time `until`."""
        loop = asyncio.get_running_loop()
        while self.in_flight > 0 and loop.time() < until:
            await asyncio.sleep(0.02)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefix):
            return handler
        return wrap_handler(handler, method, self._scope)

    @asynccontextmanager
    async def _scope(self, call: Call):
        self.in_flight += 1
        try:
            if self.draining:
                raise Unavailable("the server is shutting down; retry on another instance")
            yield
        finally:
            self.in_flight -= 1
