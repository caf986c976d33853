"""Jobs, their slices (chunks) and the bounded queue batches are cut from.

A job is one call of N items with an opaque payload: the queue and the job
know only counts, times, the deadline and the future. It is queued as one
chunk covering all its items; a worker cuts batches of up to
`policy.max_batch` items from the queue head, splitting a chunk when a batch
boundary falls inside it, so one job's items may span batches and share them
with other jobs. When a batch closes is the policy's business (policy.py).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable

from roiclass.server import errors
from roiclass.server.engine.policy import PeakOutstandingPolicy


class Job:
    """N items of one call. `payload` is what the worker fills the batch from and
    gathers results into; `payload.result(queue_s, pre_s, inf_s)` is the value the
    future resolves with once all items are in."""

    __slots__ = ("future", "payload", "remaining", "lock", "deadline", "is_cancelled",
                 "submit_t", "queue_s", "pre_s", "inf_s", "done", "queue")

    def __init__(self, n: int, payload: Any, deadline: float | None,
                 is_cancelled: Callable[[], bool] | None):
        self.future: Future = Future()
        self.payload = payload
        self.remaining = n
        self.lock = threading.Lock()
        self.deadline = deadline
        self.is_cancelled = is_cancelled
        self.submit_t = time.monotonic()
        self.queue_s = 0.0
        self.pre_s = 0.0
        self.inf_s = 0.0
        self.done = False
        self.queue: WorkQueue | None = None  # once queued: told when the job ends

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

    def complete(self, count: int, queue_s: float, pre_s: float, inf_s: float) -> None:
        """`count` more items are in the payload; resolves the future when all are."""
        with self.lock:
            if self.done:
                return
            self.queue_s = max(self.queue_s, queue_s)
            self.pre_s += pre_s
            self.inf_s += inf_s
            self.remaining -= count
            if self.remaining:
                return
            self.done = True
        if self.queue is not None:
            self.queue.job_done()
        self.resolve()

    def resolve(self) -> None:
        try:
            self.future.set_result(self.payload.result(self.queue_s, self.pre_s, self.inf_s))
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

    def __init__(self, max_items: int, policy: PeakOutstandingPolicy,
                 on_drop: Callable[[Job, errors.RoiclassError], None]):
        self.max_items = max_items
        self.policy = policy
        self.depth = 0  # items queued
        self.active = 0  # batches taken and not yet finished
        self.closed = False
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
            self.policy.admitted(now)
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
        """Blocks for the next batch (when the policy closes it). None when stop()
        says the worker must end; [] when every job found had already ended."""
        cond = self.cond
        with cond:
            while True:
                if stop():
                    return None
                if not self._chunks:
                    cond.wait(0.5)
                    continue
                if self.closed:
                    break
                wait = self.policy.wait_s(self.depth, self._chunks[0].enq_t, time.monotonic())
                if wait <= 0:
                    break
                cond.wait(wait)
            batch = self._cut(self.policy.max_batch)
            if self._chunks:
                cond.notify()  # another idle worker may start on the rest
            if batch:
                self.active += 1
            return batch

    def _cut(self, room: int) -> list[Chunk]:
        """Up to `room` items from the head; ended, expired and cancelled jobs are dropped."""
        batch: list[Chunk] = []
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
        return batch

    def job_done(self) -> None:
        with self.cond:
            self.policy.finished()

    def finished(self) -> None:
        """A worker finished the batch take() gave it."""
        with self.cond:
            self.active -= 1
            if not self.active and not self.depth:
                self.cond.notify_all()

    def idle(self) -> bool:
        with self.cond:
            return not self.depth and not self.active
