"""One FIFO of chunks per caller and the round-robin cut between them.

Each caller (`Job.caller`) has its own lane; the ring holds the callers with
something queued, the next one to serve first. A cut gives each caller in turn
an equal share of the room (at least one item) and rotates the ring, so a
caller with one small request waits only for the batch already running, and
no caller starves however many there are. With `fill` the room a small caller
leaves goes to the others in more rounds (full batches: where a batch costs
about the same at any size, a GPU); without it a shared batch is one round
(on a CPU a batch's time grows with its items: the small caller's batch stays
short). A caller alone gets every batch filled from its FIFO, exactly as one
queue would (the fast path).
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from roiclass.server.engine.batcher import Chunk, Job


class Lanes:
    """Not thread-safe: the queue calls it under its lock."""

    __slots__ = ("items", "_lanes", "_ring")

    def __init__(self) -> None:
        self.items = 0  # items queued in all lanes
        self._lanes: dict[str, deque[Chunk]] = {}  # only callers with chunks queued
        self._ring: deque[str] = deque()

    def __bool__(self) -> bool:
        return bool(self._ring)

    def callers(self) -> int:
        return len(self._ring)

    def append(self, c: Chunk) -> None:
        caller = c.job.caller
        lane = self._lanes.get(caller)
        if lane is None:
            lane = self._lanes[caller] = deque()
            self._ring.append(caller)
        lane.append(c)
        self.items += c.count

    def appendleft(self, c: Chunk) -> None:
        """A retried chunk: back at its lane's head, and its caller served next."""
        caller, ring = c.job.caller, self._ring
        lane = self._lanes.get(caller)
        if lane is None:
            lane = self._lanes[caller] = deque()
        elif ring[0] != caller:
            ring.remove(caller)  # rare (a failed instance's batch): O(callers) is fine
        if not ring or ring[0] != caller:
            ring.appendleft(caller)
        lane.appendleft(c)
        self.items += c.count

    def oldest_t(self) -> float:
        """When the oldest queued item arrived (each lane's head is its oldest)."""
        ring, lanes = self._ring, self._lanes
        if len(ring) == 1:
            return lanes[ring[0]][0].enq_t
        return min(lanes[k][0].enq_t for k in ring)

    def drain(self) -> list[Chunk]:
        chunks = [c for k in self._ring for c in self._lanes[k]]
        self._lanes.clear()
        self._ring.clear()
        self.items = 0
        return chunks

    def cut(self, room: int, alive: Callable[[Job, float], bool], fill: bool = True
            ) -> list[Chunk]:
        """Up to `room` items, round-robin between the callers; chunks whose job is
        not alive(job, now) any more are removed on the way."""
        batch: list[Chunk] = []
        now = time.monotonic()
        ring, lanes = self._ring, self._lanes
        if len(ring) == 1:  # one caller: its FIFO, as a single queue
            lane = lanes[ring[0]]
            self._take(lane, room, now, alive, batch, None)
            if not lane:
                del lanes[ring.popleft()]
            return batch
        tails: dict[Job, Chunk] = {}  # each job's last chunk in this batch
        rounds = room if fill else 1
        while ring and room and rounds:  # a round: every caller once, an equal share each
            rounds -= 1
            share = max(1, room // len(ring))
            for _ in range(len(ring)):
                if not room:
                    break
                caller = ring[0]
                lane = lanes[caller]
                want = min(share, room)
                room -= want - self._take(lane, want, now, alive, batch, tails)
                if lane:
                    ring.rotate(-1)  # the next turn (or batch) starts with the next caller
                else:
                    ring.popleft()
                    del lanes[caller]
        return batch

    def _take(self, lane: deque[Chunk], share: int, now: float,
              alive: Callable[[Job, float], bool], batch: list[Chunk],
              tails: dict[Job, Chunk] | None) -> int:
        """Up to `share` items from the lane's head into batch; returns the share left."""
        while lane and share:
            c = lane[0]
            if not alive(c.job, now):
                lane.popleft()
                self.items -= c.count
                continue
            if c.count <= share:
                part = lane.popleft()
            else:  # split: the rest stays at the lane's head
                part = c.split(share)
            self.items -= part.count
            share -= part.count
            if tails is not None:  # a later turn of the same job extends its chunk
                t = tails.get(part.job)
                if t is not None and t.start + t.count == part.start and t.attempt == part.attempt:
                    t.count += part.count
                    continue
                tails[part.job] = part
            batch.append(part)
        return share
