"""Frames to lanes and back: the one scheduler both backends run under.

A frame is one read window and the chips cut from it (one request). Lanes
take frames from a bounded queue as they have room (a stream to a server
with its window of frames in flight, or an in-process caller), so a fast
server takes more and memory holds at most the queue plus the windows.
A frame that fails with UNAVAILABLE or RESOURCE_EXHAUSTED goes back on the
queue after a backoff, up to `retries` times; then (or for any other error)
its chips get "failed: <reason>" and the run goes on.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import grpc

from roiclass.client.errors import ClassifierError

logger = logging.getLogger(__name__)

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0


@dataclass
class Work:
    """One frame: `request` is what the backend sends (built once), `key`
    says whose chips these are; `attempts` counts retries."""

    key: Any
    request: Any
    rois: int
    attempts: int = 0


@dataclass
class Outcome:
    key: Any
    result: Any = None  # roiclass.client ClassifyResult
    error: ClassifierError | None = None


@dataclass
class Dispatcher:
    """The queue between the reader and the lanes, and the retry policy."""

    retries: int
    queue_size: int
    queue: asyncio.Queue = field(init=False)
    _pending: int = field(init=False, default=0)
    _done: asyncio.Event = field(init=False)
    _reading: bool = field(init=False, default=True)
    outcomes: list[Outcome] = field(init=False, default_factory=list)
    on_done: Callable[[Outcome, int], None] | None = None

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)
        self._done = asyncio.Event()

    async def put(self, work: Work) -> None:
        self._pending += 1
        await self.queue.put(work)

    def reading_ended(self) -> None:
        self._reading = False
        self._check_done()

    async def take(self) -> Work | None:
        """The next frame, or None when every frame is answered."""
        while True:
            if self._done.is_set():
                return None
            getter = asyncio.ensure_future(self.queue.get())
            waiter = asyncio.ensure_future(self._done.wait())
            finished, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                waiter.cancel()
                return getter.result()
            getter.cancel()

    def answer(self, work: Work, result: Any = None, error: ClassifierError | None = None) -> None:
        """A lane's answer for a frame; a retryable error sends it round again."""
        if error is not None and error.code in RETRYABLE and work.attempts < self.retries:
            work.attempts += 1
            delay = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (work.attempts - 1))
            logger.info("frame %s: %s, retry %d of %d in %.1f s", work.key, error.code.name,
                        work.attempts, self.retries, delay)
            asyncio.get_running_loop().call_later(delay, self.queue.put_nowait, work)
            return
        outcome = Outcome(work.key, result, error)
        self.outcomes.append(outcome)
        if self.on_done is not None:
            self.on_done(outcome, work.rois)
        self._pending -= 1
        self._check_done()

    async def all_done(self) -> None:
        await self._done.wait()

    def _check_done(self) -> None:
        if not self._reading and self._pending == 0:
            self._done.set()


async def dispatch(works: AsyncIterator[Work] | Iterable[Awaitable[Work]], lanes: list[Callable],
                   dispatcher: Dispatcher) -> list[Outcome]:
    """Feeds `works` into the dispatcher while the lanes (each an async
    callable taking the dispatcher) drain it; returns every outcome."""

    async def feed() -> None:
        try:
            async for work in works:
                await dispatcher.put(work)
        finally:
            dispatcher.reading_ended()

    lane_tasks = {asyncio.ensure_future(lane(dispatcher)) for lane in lanes}
    feeder = asyncio.ensure_future(feed())
    finished_all = asyncio.ensure_future(dispatcher.all_done())
    waiting = {feeder, finished_all, *lane_tasks}
    try:
        while not finished_all.done():
            finished, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is not finished_all and task.exception() is not None:
                    raise task.exception()  # the reader failed (a bad file), or a lane's defect
            if not (waiting & lane_tasks) and not finished_all.done():
                raise RuntimeError("every lane ended before the frames were answered")
    finally:
        for task in (feeder, finished_all, *lane_tasks):
            task.cancel()
        await asyncio.gather(feeder, finished_all, *lane_tasks, return_exceptions=True)
    return dispatcher.outcomes
