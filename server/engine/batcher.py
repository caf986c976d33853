"""Requests (jobs), their slices (chunks) and the bounded queue batches are cut from.

A job is one classify/infer_tensors call of N items. It is queued as one chunk
covering all its items; a worker cuts batches of up to max_batch items from the
queue head, splitting a chunk when a batch boundary falls inside it, so one
job's items may span batches and share them with other jobs.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from typing import Callable

import numpy as np

from roiclass.server import errors
from roiclass.server.engine.config import InferenceOutput


class Job:
    __slots__ = ("future", "image", "kargs", "rois", "tensors", "probs", "remaining", "lock",
                 "deadline", "is_cancelled", "submit_t", "queue_s", "pre_s", "inf_s", "done", "queue")

    def __init__(self, n: int, num_classes: int, deadline: float | None,
                 is_cancelled: Callable[[], bool] | None):
        self.future: Future = Future()
        self.image = None
        self.kargs = None  # channels.KernelArgs for ROI jobs
        self.rois = None
        self.tensors = None
        self.probs = np.empty((n, num_classes), np.float32)
        self.remaining = n
        self.lock = threading.Lock()
        self.deadline = deadline
        self.is_cancelled = is_cancelled
        self.submit_t = time.monotonic()
        self.queue_s = 0.0
        self.pre_s = 0.0
        self.inf_s = 0.0
        self.done = False
        self.queue = None  # the WorkQueue once queued, told when the job ends

    def drop_reason(self, now: float) -> errors.RoiclassError | None:
        """Why this job must not run any more (deadline, cancellation), else None."""
        if self.deadline is not None and now >= self.deadline:
            return errors.DeadlineExceeded(
                f"deadline expired after {1e3 * (now - self.submit_t):.1f} ms in the queue")
        if self.future.cancelled() or (self.is_cancelled is not None and self.is_cancelled()):
            return errors.Cancelled("call cancelled before its items ran")
        return None

    def fail(self, exc: BaseException) -> bool:
        """Fails the job once; True when this call did it."""
        with self.lock:
            if self.done:
                return False
            self.done = True
        if self.queue is not None:
            self.queue.job_done()
        try:
            self.future.set_exception(exc)
        except InvalidStateError:  # the caller cancelled the future
            pass
        return True

    def complete(self, start: int, probs: np.ndarray, queue_s: float, pre_s: float,
                 inf_s: float) -> None:
        """Stores the results of items [start, start+len(probs)); resolves when all are in."""
        with self.lock:
            if self.done:
                return
            self.probs[start:start + len(probs)] = probs
            self.queue_s = max(self.queue_s, queue_s)
            self.pre_s += pre_s
            self.inf_s += inf_s
            self.remaining -= len(probs)
            if self.remaining:
                return
            self.done = True
        if self.queue is not None:
            self.queue.job_done()
        out = InferenceOutput(self.probs, int(self.queue_s * 1e6), int(self.pre_s * 1e6),
                              int(self.inf_s * 1e6))
        try:
            self.future.set_result(out)
        except InvalidStateError:
            pass


class Chunk:
    __slots__ = ("job", "start", "count", "enq_t", "attempt")

    def __init__(self, job: Job, start: int, count: int, enq_t: float, attempt: int = 0):
        self.job = job
        self.start = start
        self.count = count
        self.enq_t = enq_t
        self.attempt = attempt


class WorkQueue:
    """Bounded FIFO of chunks, counted in items, shared by a model version's workers."""

    def __init__(self, max_items: int, max_batch: int, max_delay_s: float,
                 on_drop: Callable[[Job, errors.RoiclassError], None]):
        self.max_items = max_items
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.depth = 0  # items queued
        self.active = 0  # batches taken and not yet finished
        self.closed = False
        # Jobs queued or running, and the most seen at once lately (~1-2 s): a batch
        # is held open only while fewer are outstanding than that peak, i.e. while
        # more requests are expected. A lone client pays no batching delay; N
        # closed-loop clients get their batch of N as soon as the Nth arrives.
        self.outstanding = 0
        self._peak = 0
        self._peak_prev = 0
        self._peak_t = 0.0
        self.cond = threading.Condition()
        self._chunks: deque[Chunk] = deque()
        self._on_drop = on_drop

    def put(self, job: Job, n: int) -> None:
        with self.cond:
            if self.closed:
                raise errors.Unavailable("model version is unloading or has no instance left")
            if self.depth + n > self.max_items:
                raise errors.ResourceExhausted(
                    f"queue full: {self.depth} items waiting, {n} more would exceed "
                    f"max_queue_size={self.max_items}; retry later")
            now = time.monotonic()
            self.outstanding += 1
            if now - self._peak_t > 1.0:
                self._peak_prev, self._peak, self._peak_t = self._peak, 0, now
            if self.outstanding > self._peak:
                self._peak = self.outstanding
            job.queue = self
            self._chunks.append(Chunk(job, 0, n, now))
            self.depth += n
            self.cond.notify()

    def requeue_front(self, chunks: list[Chunk]) -> None:
        """Puts a failed batch's chunks back at the head (retry on another instance)."""
        with self.cond:
            for c in reversed(chunks):
                self._chunks.appendleft(c)
                self.depth += c.count
            self.cond.notify_all()

    def drain(self) -> list[Chunk]:
        with self.cond:
            chunks = list(self._chunks)
            self._chunks.clear()
            self.depth = 0
            return chunks

    def take(self, stop: Callable[[], bool]) -> list[Chunk] | None:
        """Blocks for the next batch: max_batch items, or fewer once the oldest waited
        max_delay. None when stop() says the worker must end."""
        cond = self.cond
        with cond:
            while True:
                if stop():
                    return None
                if not self._chunks:
                    cond.wait(0.5)
                    continue
                if self.depth >= self.max_batch or self.max_batch == 1 or self.closed:
                    break
                remaining = self._chunks[0].enq_t + self.max_delay_s - time.monotonic()
                if remaining <= 0 or self.outstanding >= max(self._peak, self._peak_prev):
                    break
                cond.wait(remaining)
            batch: list[Chunk] = []
            room = self.max_batch
            now = time.monotonic()
            chunks = self._chunks
            while chunks and room:
                c = chunks[0]
                job = c.job
                if job.done:
                    chunks.popleft()
                    self.depth -= c.count
                    continue
                why = job.drop_reason(now)
                if why is not None:
                    chunks.popleft()
                    self.depth -= c.count
                    self._on_drop(job, why)
                    continue
                if c.count <= room:
                    chunks.popleft()
                    batch.append(c)
                    room -= c.count
                    self.depth -= c.count
                else:  # split: the rest stays at the head for the next batch
                    batch.append(Chunk(job, c.start, room, c.enq_t, c.attempt))
                    c.start += room
                    c.count -= room
                    self.depth -= room
                    room = 0
            if chunks:
                cond.notify()  # another idle worker may start on the rest
            if batch:
                self.active += 1
            return batch

    def job_done(self) -> None:
        with self.cond:
            self.outstanding -= 1

    def finished(self) -> None:
        """A worker finished the batch take() gave it."""
        with self.cond:
            self.active -= 1
            if not self.active and not self.depth:
                self.cond.notify_all()

    def idle(self) -> bool:
        with self.cond:
            return not self.depth and not self.active
