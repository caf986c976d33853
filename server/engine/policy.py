"""When a batch closes: the batch policy the queue asks, knowing nothing of payloads.

A policy sees only counts and times: jobs admitted and finished, items waiting,
the oldest item's arrival. `wait_s` answers "cut now (<= 0) or wait this long
for more". Another closing rule is another policy with the same three
methods; which items a batch takes (fair sharing between callers) is lanes.py's.
"""
from __future__ import annotations


class PeakOutstandingPolicy:
    """Close a batch at `max_batch` items, after `max_delay_s`, or at once while as
    many jobs are outstanding (queued or running) as the most seen at once lately
    (~1-2 s): then no more requests are expected. A lone client pays no batching
    delay; N closed-loop clients get their batch of N as soon as the Nth arrives.

    `max_batch` is an input (the model's, or the CPU cap measured at load).
    Called under the queue's lock: no locking of its own.
    """

    def __init__(self, max_batch: int, max_delay_s: float):
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.outstanding = 0
        self._peak = 0
        self._peak_prev = 0
        self._peak_t = 0.0

    def admitted(self, now: float) -> None:
        self.outstanding += 1
        if now - self._peak_t > 1.0:
            self._peak_prev, self._peak, self._peak_t = self._peak, 0, now
        if self.outstanding > self._peak:
            self._peak = self.outstanding

    def finished(self) -> None:
        self.outstanding -= 1

    def wait_s(self, depth: int, oldest_t: float, now: float) -> float:
        if depth >= self.max_batch or self.max_batch == 1:
            return 0.0
        if self.outstanding >= max(self._peak, self._peak_prev):
            return 0.0
        return oldest_t + self.max_delay_s - now
