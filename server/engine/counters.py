"""Per-version event counts (tests and `Engine.counters`), safe across threads."""
from __future__ import annotations

import threading

COUNTER_NAMES = ("batches", "items", "runs", "max_batch", "warmup_runs", "dropped_deadline",
                 "dropped_cancelled", "rejected", "rejected_client_limit", "failed_items", "retries", "instance_failures")


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # workers, the event loop and the queue all count
        self._values = dict.fromkeys(COUNTER_NAMES, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def batch(self, items: int) -> None:
        """One batch of `items` ran."""
        v = self._values
        with self._lock:
            v["batches"] += 1
            v["runs"] += 1
            v["items"] += items
            if items > v["max_batch"]:
                v["max_batch"] = items

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
