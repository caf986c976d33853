"""classify_video's run: decoding beside sending, within a bounded window.

Three threads: the decoder puts frames on a FrameQueue; gRPC's request
thread (Classifier.stream reads our generator) takes one whenever fewer than
`window` frames are unanswered; the caller's thread reads the results. A
file's queue blocks the decoder when full, so no frame is lost; a live
source's drops its oldest unsent frame instead, so a result lags its frame
by about (window + 1) / throughput at most. Stream breaks are
resumed by Classifier.stream (resume.py): unanswered frames are sent again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any, Iterator

from ..errors import InvalidInputError
from ..types import Frame
from .errors import VideoSourceError
from .results import VideoFrameResult, VideoStats
from .sampling import FrameRange, Sampler
from .sources import DecodedFrame

logger = logging.getLogger(__name__)

# The server's default --stream-window (a test keeps the two equal): more
# frames in flight than the server reads only wait in transport buffers.
DEFAULT_WINDOW = 64
LIVE_BACKLOG = 1  # live frames waiting for a free slot: a newer one replaces it (the least lag)
READ_AHEAD = 4  # file frames decoded ahead of sending
_POLL_S = 0.05


class FrameQueue:
    """Decoded frames not yet sent, oldest first."""

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self.capacity, self.drop_oldest = capacity, drop_oldest
        self.dropped = 0
        self._items: deque[DecodedFrame] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, frame: DecodedFrame, stop: threading.Event) -> None:
        with self._cond:
            if self.drop_oldest and len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            while len(self._items) >= self.capacity and not stop.is_set():
                self._cond.wait(_POLL_S)
            self._items.append(frame)
            self._cond.notify_all()

    def take(self, stop: threading.Event) -> DecodedFrame | None:
        """The oldest frame; None once closed and empty, or stopped."""
        with self._cond:
            while not self._items and not self._closed and not stop.is_set():
                self._cond.wait(_POLL_S)
            if stop.is_set() or not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def check_window(window: Any) -> int:
    if window is None:
        return DEFAULT_WINDOW
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InvalidInputError("window", f"must be an integer >= 1 (frames in flight), got {window!r}")
    return window


class VideoRun:
    """An iterable of VideoFrameResults in frame order; `stats` fills as it goes.
    The source is opened (and the range checked) when the run is made."""

    def __init__(self, client: Any, source: Any, frames: FrameRange, sampler: Sampler, *,
                 rois: Any, live: bool, window: int, stream_options: dict[str, Any]) -> None:
        count, declared = source.frame_count, getattr(source, "declared_frames", None)
        damaged = count is not None and declared is not None and declared > count + 1
        if count is not None and (frames.start >= count or (frames.end or 0) > count):
            raise VideoSourceError("frames", source.name, f"range {frames} is past the end: the stream has "
                                   f"{count} frames (0..{count - 1})"
                                   + (f"; its container declares {declared} (a damaged file?)" if damaged else ""))
        if damaged:
            logger.warning("%s: %d frames can be read of the %d its container declares (a damaged file?)",
                           source.name, count, declared)
        self.source, self.frames, self.sampler = source, frames, sampler
        self.rois, self.live, self.window = rois, live, window
        self.stats = VideoStats()
        self._client, self._options = client, stream_options

    def __iter__(self) -> Iterator[VideoFrameResult]:
        stop = threading.Event()
        queue = FrameQueue(LIVE_BACKLOG if self.live else READ_AHEAD, drop_oldest=self.live)
        failure: list[BaseException] = []
        decoder = threading.Thread(target=self._decode, args=(queue, stop, failure),
                                   name="roiclass-video-decode", daemon=True)
        slots = threading.Semaphore(self.window)
        pending: deque[DecodedFrame] = deque()  # taken from the queue, results not yet yielded
        started = time.monotonic()
        decoder.start()
        results = self._client.stream(self._requests(queue, slots, pending, stop), **self._options)
        try:
            for answer in results:
                yield from self._skipped(pending)
                frame = pending.popleft()
                slots.release()
                yield self._result(frame, answer)
                self._update(queue, started)
            yield from self._skipped(pending)
            decoder.join()
            if failure:
                raise failure[0]
        finally:
            stop.set()
            results.close()
            decoder.join(5.0)
            self._update(queue, started)

    def _decode(self, queue: FrameQueue, stop: threading.Event, failure: list[BaseException]) -> None:
        try:
            frames = self.source.frames(self.frames.start, self.frames.stop(), self.sampler)
            if self.live and not self.source.live:
                frames = _paced(frames, stop)  # a file read as a camera
            for frame in frames:
                if stop.is_set():
                    break
                queue.put(frame, stop)
        except BaseException as error:  # handed to the caller's thread, raised after the frames before it
            failure.append(error)
        finally:
            queue.close()

    def _requests(self, queue: FrameQueue, slots: threading.Semaphore, pending: deque,
                  stop: threading.Event) -> Iterator[Frame]:
        """The stream's frames (runs on gRPC's request thread)."""
        while not stop.is_set():
            if not slots.acquire(timeout=_POLL_S):
                continue
            frame = queue.take(stop)
            if frame is None:
                slots.release()
                return
            pending.append(frame)
            if frame.image is None:  # skipped: reported in order, never sent
                slots.release()
                continue
            yield Frame(frame.image, self.rois, str(frame.index))

    def _skipped(self, pending: deque) -> Iterator[VideoFrameResult]:
        while pending and pending[0].image is None:
            frame = pending.popleft()
            self.stats.skipped += 1
            yield VideoFrameResult(frame.index, frame.time, skipped=True)

    def _result(self, frame: DecodedFrame, answer: Any) -> VideoFrameResult:
        lag = time.monotonic() - frame.captured
        if answer.error is not None:
            self.stats.failed += 1
            self.stats.first_error = self.stats.first_error or answer.error
            return VideoFrameResult(frame.index, frame.time, error=answer.error, lag=lag)
        self.stats.classified += 1
        self.stats.lags.append(lag)
        return VideoFrameResult(frame.index, frame.time, result=answer.result, lag=lag)

    def _update(self, queue: FrameQueue, started: float) -> None:
        stats = self.stats
        stats.decoded = self.source.decoded
        stats.dropped = queue.dropped
        stats.reconnects = getattr(self.source, "reconnects", 0)
        stats.elapsed_s = time.monotonic() - started


def _paced(frames: Iterator[DecodedFrame], stop: threading.Event) -> Iterator[DecodedFrame]:
    """Each frame when its timestamp comes, as a camera would deliver it."""
    origin = None
    for frame in frames:
        now = time.monotonic()
        if origin is None:
            origin = now - frame.time
        delay = origin + frame.time - now
        if delay > 0 and stop.wait(delay):
            return
        yield replace(frame, captured=time.monotonic())
