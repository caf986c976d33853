"""Preferred batch size of a CPU instance, measured at load.

On a CPU, batches past some size are slower per item (caches, no spare
cores), so the batcher should not wait for or form them: Triton's
"preferred batch sizes" idea, measured instead of configured.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger(__name__)


def probe_sizes(max_batch: int) -> list[int]:
    sizes, n = [], 1
    while n < max_batch:
        sizes.append(n)
        n *= 2
    sizes.append(max_batch)
    return sizes


def preferred_batch(run: Callable[[int], object], max_batch: int, tolerance: float = 0.2,
                    runs: int = 3, budget_s: float = 1.0, floor: int = 8) -> tuple[int, dict[int, float]]:
    """The largest batch size (>= floor) whose time per item is within `tolerance` of the
    best measured one, and the per-item seconds by size. Each size takes the fastest of
    `runs` runs (the least disturbed by other processes); sizes stop growing once
    one is clearly slower per item or the time budget is spent."""
    per_item: dict[int, float] = {}
    start = time.perf_counter()
    for n in probe_sizes(max_batch):
        best_run = float("inf")
        for _ in range(runs):
            t = time.perf_counter()
            run(n)
            best_run = min(best_run, time.perf_counter() - t)
        per_item[n] = best_run / n
        if per_item[n] > 1.5 * min(per_item.values()):
            break  # past the best size: bigger ones only get slower per item
        if time.perf_counter() - start > budget_s:
            break
    best = min(per_item.values())
    cap = max(n for n, t in per_item.items() if t <= best * (1.0 + tolerance))
    # At least `floor`: small sizes differ by less than the noise of a shared
    # machine, and one request's handful of ROIs should still run together.
    return max(cap, min(floor, max_batch)), per_item
