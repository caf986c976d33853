"""Jobs, their slices (chunks) and the bounded queue batches are cut from.

A job is one call of N items with an opaque payload: the queue and the job
know only counts, times, the deadline, the caller and the future. It is
queued as one chunk covering all its items, in its caller's FIFO (lane); a
worker cuts batches of up to `policy.max_batch` items round-robin between
the callers' lanes (lanes.py), splitting a chunk when a batch boundary falls
inside it, so one job's items may span batches and share them with other
jobs. When a batch closes is the policy's business (policy.py).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable

from roiclass.server import errors
from roiclass.server.engine.lanes import Lanes
from roiclass.server.engine.policy import PeakOutstandingPolicy


class CallerLimit(errors.ResourceExhausted):
    """One caller already has its cap of items in flight (queued or running)."""


class Job:
    """N items of one call. `payload` is what the worker fills the batch from and
    gathers results into; `payload.result(queue_s, pre_s, inf_s)` is the value the
    future resolves with once all items are in. `caller` names whose lane it
    joins ("" = anonymous: one shared lane, no per-caller cap)."""

    __slots__ = ("future", "payload", "remaining", "lock", "deadline", "is_cancelled",
                 "submit_t", "queue_s", "pre_s", "inf_s", "done", "queue", "caller", "held")

    def __init__(self, n: int, payload: Any, deadline: float | None,
                 is_cancelled: Callable[[], bool] | None, caller: str = ""):
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
        self.caller = caller
        self.held = 0  # items counted against the caller's cap until the job ends

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
            self.queue.job_done(self)
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
            self.queue.job_done(self)
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

    def split(self, n: int) -> "Chunk":
        """The first n items as a chunk of their own; this one keeps the rest."""
        part = Chunk(self.job, self.start, n, self.enq_t, self.attempt)
        self.start += n
        self.count -= n
        return part


class WorkQueue:
    """Bounded queue of chunks, counted in items, shared by a model version's
    workers: one FIFO per caller, batches cut round-robin between them
    (`fill_shared`: see lanes.py). `max_per_caller` > 0 caps the items one
    caller has in flight."""

    def __init__(self, max_items: int, policy: PeakOutstandingPolicy,
                 on_drop: Callable[[Job, errors.RoiclassError], None], max_per_caller: int = 0):
        self.max_items = max_items
        self.max_per_caller = max_per_caller
        self.fill_shared = True  # the model clears it for CPU instances
        self.policy = policy
        self.active = 0  # batches taken and not yet finished
        self.closed = False
        self.cond = threading.Condition()
        self._lanes = Lanes()
        self._held: dict[str, int] = {}  # caller -> items in flight (only with a cap)
        self._on_drop = on_drop

    def put(self, job: Job, n: int) -> None:
        with self.cond:
            if self.closed:
                raise errors.Unavailable("model version is unloading or has no instance left")
            depth = self._lanes.items
            if depth + n > self.max_items:
                raise errors.ResourceExhausted(
                    f"queue full: {depth} items waiting, {n} more would exceed "
                    f"max_queue_size={self.max_items}; retry later")
            if self.max_per_caller and job.caller:
                self._hold(job, n)
            now = time.monotonic()
            self.policy.admitted(now)
            job.queue = self
            self._lanes.append(Chunk(job, 0, n, now))
            self.cond.notify()

    def _hold(self, job: Job, n: int) -> None:
        held, cap = self._held.get(job.caller, 0), self.max_per_caller
        if held + n > cap:
            raise CallerLimit(
                f"this client has {held} ROIs in flight on this model; {n} more would exceed "
                f"max_inflight_rois_per_client={cap} (--max-inflight-rois-per-client); "
                f"retry when some finish")
        self._held[job.caller] = held + n
        job.held = n

    @property
    def depth(self) -> int:
        """Items queued."""
        return self._lanes.items

    def held(self, caller: str) -> int:
        """Items `caller` has in flight (counted only while a cap is set)."""
        with self.cond:
            return self._held.get(caller, 0)

    def requeue_front(self, chunks: list[Chunk]) -> None:
        """Puts a failed batch's chunks back at the head of their lanes (retry on another instance)."""
        with self.cond:
            for c in reversed(chunks):
                self._lanes.appendleft(c)
            self.cond.notify_all()

    def drain(self) -> list[Chunk]:
        with self.cond:
            return self._lanes.drain()

    def take(self, stop: Callable[[], bool]) -> list[Chunk] | None:
        """Blocks for the next batch (when the policy closes it). None when stop()
        says the worker must end; [] when every job found had already ended."""
        cond = self.cond
        lanes = self._lanes
        with cond:
            while True:
                if stop():
                    return None
                if not lanes:
                    cond.wait(0.5)
                    continue
                if self.closed:
                    break
                wait = self.policy.wait_s(lanes.items, lanes.oldest_t(), time.monotonic())
                if wait <= 0:
                    break
                cond.wait(wait)
            batch = lanes.cut(self.policy.max_batch, self._alive, self.fill_shared)
            if lanes:
                cond.notify()  # another idle worker may start on the rest
            if batch:
                self.active += 1
            return batch

    def _alive(self, job: Job, now: float) -> bool:
        """False for a job whose chunks the cut removes unrun: it ended, or it
        expired or was cancelled (then it is dropped here)."""
        if job.done:
            return False
        why = job.drop_reason(now)
        if why is None:
            return True
        self._on_drop(job, why)
        return False

    def job_done(self, job: Job) -> None:
        with self.cond:
            self.policy.finished()
            if job.held:
                left = self._held[job.caller] - job.held
                if left:
                    self._held[job.caller] = left
                else:
                    del self._held[job.caller]
                job.held = 0

    def finished(self) -> None:
        """A worker finished the batch take() gave it."""
        with self.cond:
            self.active -= 1
            if not self.active and not self._lanes.items:
                self.cond.notify_all()

    def idle(self) -> bool:
        with self.cond:
            return not self.depth and not self.active
