"""The bidirectional streams' pipeline, shared by roiclass.v1's
ClassifyObjectStream and the Open Inference Protocol's ModelStreamInfer.

Each request starts as soon as it arrives; results leave in request order;
`window` bounds the requests in flight (to window + 2: the queue, the one
being answered, the one waiting to be queued; the reader waits, so
a client that sends faster than the server answers is slowed by flow control,
not buffered without bound). `handle` turns one request into its response and
must not raise for a bad request (one bad frame fails only that frame).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

Request = TypeVar("Request")
Response = TypeVar("Response")


async def in_order(requests: AsyncIterator[Request], handle: Callable[[Request], Awaitable[Response]],
                   window: int) -> AsyncIterator[Response]:
    """Use with contextlib.aclosing, so that the stream's end (or the client's
    cancel) cancels the requests still in flight at once, not at garbage collection."""
    pending: asyncio.Queue = asyncio.Queue(maxsize=window)

    async def read() -> None:
        async for request in requests:
            await pending.put(asyncio.ensure_future(handle(request)))
        await pending.put(None)

    reader = asyncio.ensure_future(read())
    try:
        while True:
            getter = asyncio.ensure_future(pending.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                reader.result()  # the reader failed: re-raise its error
                continue  # the reader ended normally: its None is queued
            task = getter.result()
            if task is None:
                break
            yield await task
    finally:
        reader.cancel()
        while not pending.empty():
            task = pending.get_nowait()
            if task is not None:
                task.cancel()
