"""AsyncVideoRun: VideoRun for AsyncClassifier (`async for`).

The decoder is the same thread and FrameQueue; the request generator and
the window live on the event loop, and a frame is taken from the queue in
the loop's executor, so a blocking decoder never stalls the loop.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any, AsyncIterator

from ..types import Frame
from .pipeline import LIVE_BACKLOG, READ_AHEAD, FrameQueue, VideoRun
from .results import VideoFrameResult


class AsyncVideoRun(VideoRun):
    """An async iterable of VideoFrameResults in frame order; `stats` fills as it goes."""

    def __iter__(self):
        raise TypeError("an AsyncVideoRun is read with `async for`")

    async def __aiter__(self) -> AsyncIterator[VideoFrameResult]:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        queue = FrameQueue(LIVE_BACKLOG if self.live else READ_AHEAD, drop_oldest=self.live)
        failure: list[BaseException] = []
        decoder = threading.Thread(target=self._decode, args=(queue, stop, failure),
                                   name="roiclass-video-decode", daemon=True)
        slots = asyncio.Semaphore(self.window)
        pending: deque = deque()
        started = time.monotonic()
        decoder.start()
        results = self._client.stream(self._async_requests(loop, queue, slots, pending, stop), **self._options)
        try:
            async for answer in results:
                for skipped in self._skipped(pending):
                    yield skipped
                frame = pending.popleft()
                slots.release()
                yield self._result(frame, answer)
                self._update(queue, started)
            for skipped in self._skipped(pending):
                yield skipped
            await loop.run_in_executor(None, decoder.join)
            if failure:
                raise failure[0]
        finally:
            stop.set()
            await results.aclose()
            await loop.run_in_executor(None, decoder.join, 5.0)
            self._update(queue, started)

    async def _async_requests(self, loop: Any, queue: FrameQueue, slots: asyncio.Semaphore, pending: deque,
                              stop: threading.Event) -> AsyncIterator[Frame]:
        while not stop.is_set():
            await slots.acquire()
            frame = await loop.run_in_executor(None, queue.take, stop)
            if frame is None:
                slots.release()
                return
            pending.append(frame)
            if frame.image is None:  # skipped: reported in order, never sent
                slots.release()
                continue
            yield Frame(frame.image, self.rois, str(frame.index))
