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


def preferred_batch(run: Callable[[int], object], max_batch: int, tolerance: float = 0.1,
                    runs: int = 4, budget_s: float = 1.5, floor: int = 8) -> tuple[int, dict[int, float]]:
    """The largest batch size (>= floor) whose time per item is within `tolerance` of the
    best measured one, and the per-item seconds by size.

    A first round grows the size until one is clearly slower per item (1.5x the
    best) or the time budget is spent; then up to `runs - 1` more rounds run
    every kept size in turn, and each size takes its fastest run. Interleaving
    the rounds matters on a shared machine: a size measured only during a
    quiet (or busy) second would look faster (or slower) than it is. A size
    that takes more time per item is also worse for throughput on a busy CPU,
    hence the small tolerance (bigger batches only shave queue overhead)."""
    times: dict[int, list[float]] = {}
    start = time.perf_counter()

    def timed(n: int) -> None:
        t = time.perf_counter()
        run(n)
        times.setdefault(n, []).append(time.perf_counter() - t)

    for n in probe_sizes(max_batch):
        timed(n)
        if times[n][0] / n > 1.5 * min(ts[0] / k for k, ts in times.items()):
            break  # past the best size: bigger ones only get slower per item
        if time.perf_counter() - start > budget_s:
            break
    for _ in range(runs - 1):
        if time.perf_counter() - start > budget_s:
            break
        for n in list(times):
            timed(n)
    per_item = {n: min(ts) / n for n, ts in times.items()}
    best = min(per_item.values())
    cap = max(n for n, t in per_item.items() if t <= best * (1.0 + tolerance))
    # At least `floor`: small sizes differ by less than the noise of a shared
    # machine, and one request's handful of ROIs should still run together.
    return max(cap, min(floor, max_batch)), per_item
