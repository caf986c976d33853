"""The drain gate: while the server shuts down, new calls get UNAVAILABLE.

It also counts the calls in flight, so the shutdown can wait for them.
"""
from __future__ import annotations

import asyncio

from roiclass.server.errors import Unavailable
from roiclass.server.interceptors.wrapping import Call, ScopedInterceptor


class DrainGate(ScopedInterceptor):
    def __init__(self, service: str | tuple[str, ...]):
        super().__init__(service)
        self.draining = False
        self.in_flight = 0  # calls of the service running now

    def start_draining(self) -> None:
        self.draining = True

    async def wait_idle(self, until: float) -> None:
        """Returns once no call is in flight, or at loop time `until`."""
        loop = asyncio.get_running_loop()
        while self.in_flight > 0 and loop.time() < until:
            await asyncio.sleep(0.02)

    def scope(self, call: Call) -> "_GateScope":
        return _GateScope(self)


class _GateScope:
    """One call's pass through the gate (a class, not a generator: it runs per call)."""
    __slots__ = ("gate",)

    def __init__(self, gate: DrainGate):
        self.gate = gate

    async def __aenter__(self) -> None:
        if self.gate.draining:
            raise Unavailable("the server is shutting down; retry on another instance")
        self.gate.in_flight += 1

    async def __aexit__(self, *exc_info) -> bool:
        self.gate.in_flight -= 1
        return False
