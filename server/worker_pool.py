"""How many workers of `--workers N` serve: the parent writes it, each worker reads it.

With SO_REUSEPORT a health check lands on whichever worker the kernel picks,
so one worker's own state says nothing of the others: a pod whose second
worker is still loading (or restarting after a crash) would pass its
readiness probe and then fail the calls that land on the missing worker's
connections. Each worker therefore reports SERVING only when its own models
are ready and the parent says every worker serves.

The parent rewrites `pool.json` (atomically, in its 0700 state folder) when
the count changes; a worker polls its mtime, which costs a stat per tick.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

POLL_S = 0.2


def write_pool(path: Path, serving: int, workers: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"serving": serving, "workers": workers}))
    tmp.replace(path)


def read_pool(path: Path) -> tuple[int, int] | None:
    """(serving, workers), or None before the parent first wrote it."""
    try:
        data = json.loads(path.read_text())
        return int(data["serving"]), int(data["workers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pool_serving(path: Path) -> bool:
    state = read_pool(path)
    return state is not None and state[0] >= state[1]


async def watch_pool(path: Path, on_change: Callable[[bool], object]) -> None:
    """Calls on_change(all workers serving) at start and on every change (until cancelled)."""
    last_mtime: int | None = None
    last: bool | None = None
    while True:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        if mtime != last_mtime:
            last_mtime = mtime
            now = pool_serving(path)
            if now != last:
                last = now
                log.info("worker pool %s", "serving: all workers up" if now else "not serving: a worker is down")
                result = on_change(now)
                if asyncio.iscoroutine(result):
                    await result
        await asyncio.sleep(POLL_S)
