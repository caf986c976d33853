"""server/streams.py: started on arrival, answered in order, bounded in flight, cancelled on close."""
from __future__ import annotations

import asyncio
from contextlib import aclosing

from roiclass.server.streams import in_order


async def _requests(n: int):
    for i in range(n):
        yield i


def test_results_leave_in_request_order_with_at_most_window_in_flight():
    active, peak = 0, 0

    async def handle(i: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001 * (10 - i % 10))  # later requests finish first
        active -= 1
        return i * i

    async def run() -> list[int]:
        async with aclosing(in_order(_requests(40), handle, window=4)) as results:
            return [r async for r in results]

    assert asyncio.run(run()) == [i * i for i in range(40)]
    # The window's queue, the one being answered and the one the reader waits to queue.
    assert 1 < peak <= 4 + 2


def test_closing_early_cancels_what_is_in_flight():
    cancelled = []

    async def handle(i: int) -> int:
        try:
            await asyncio.sleep(0 if i == 0 else 10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    async def run() -> int:
        async with aclosing(in_order(_requests(5), handle, window=8)) as results:
            async for first in results:
                return first

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 0
    assert sorted(cancelled) == [1, 2, 3, 4]


def test_a_failing_reader_ends_the_stream_with_its_error():
    async def broken():
        yield 1
        raise ValueError("client went away")

    async def handle(i: int) -> int:
        return i

    async def run():
        async with aclosing(in_order(broken(), handle, window=2)) as results:
            return [r async for r in results]

    try:
        asyncio.run(run())
    except ValueError as exc:
        assert "went away" in str(exc)
    else:
        raise AssertionError("the reader's error must reach the stream")
