"""Closed-loop load generators on grpc.aio: N unary workers, or N streams with
a window of frames in flight each.

One asyncio event loop in one process drives every load: on 2 cores a thread
per worker would spend the client's core on GIL hand-offs, and asyncio keeps
the client to one core, leaving the other to the server.

Every measurement runs `warmup` seconds (discarded) and then `duration`
seconds; a call counts when it completes inside the measured window (also
when it started during the warm-up: with hundreds of frames in flight a
call can take longer than the window).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import numpy as np

log = logging.getLogger(__name__)

# Quantiles kept per measurement for latency CDF plots (0..100 %).
CDF_POINTS = np.linspace(0.0, 100.0, 201)


@dataclass
class Sample:
    """One measurement: calls completed in the window and their latencies (s)."""
    duration_s: float
    rois_per_call: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    # CPU seconds per wall second of this (client) process and of the server
    # process during the run: who is busy, independent of other load.
    client_cpu: float = float("nan")
    server_cpu: float = float("nan")

    @property
    def calls(self) -> int:
        return len(self.latencies)

    @property
    def rois_per_s(self) -> float:
        return self.calls * self.rois_per_call / self.duration_s

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1e3) if self.latencies else float("nan")

    def cdf_ms(self) -> list[float]:
        if not self.latencies:
            return []
        return [round(v * 1e3, 4) for v in np.percentile(self.latencies, CDF_POINTS)]


class _Window:
    """Counts what completes between start+warmup and start+warmup+duration."""

    def __init__(self, warmup: float, duration: float, sample: Sample):
        now = time.perf_counter()
        self.t0 = now + warmup
        self.t1 = self.t0 + duration
        self.sample = sample
        self.start = (now, time.process_time())

    def close(self) -> None:
        wall, cpu = self.start
        self.sample.client_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)

    def done(self, started: float, ended: float) -> None:
        if self.t0 <= ended <= self.t1:
            self.sample.latencies.append(ended - started)

    def error(self, exc: BaseException | str) -> None:
        if self.sample.errors == 0:
            self.sample.first_error = str(exc)[:300]
            log.warning("call failed: %s", self.sample.first_error)
        self.sample.errors += 1

    def over(self) -> bool:
        return time.perf_counter() >= self.t1


async def run_unary(call: Callable[[], Awaitable[Any]], concurrency: int, duration: float,
                    warmup: float, rois_per_call: int) -> Sample:
    """`concurrency` workers, each sending one call after the other."""
    sample = Sample(duration, rois_per_call)
    window = _Window(warmup, duration, sample)

    async def worker() -> None:
        while not window.over():
            started = time.perf_counter()
            try:
                await call()
            except Exception as exc:  # noqa: BLE001 - counted and reported, the load goes on
                window.error(exc)
                continue
            window.done(started, time.perf_counter())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    window.close()
    return sample


async def run_streams(open_stream: Callable[[], Any], request: Any, is_error: Callable[[Any], str],
                      streams: int, window_size: int, duration: float, warmup: float,
                      rois_per_call: int) -> Sample:
    """`streams` bidirectional streams, each keeping `window_size` frames in
    flight; a frame's latency runs from its write to its response (responses
    come in request order)."""
    sample = Sample(duration, rois_per_call)
    window = _Window(warmup, duration, sample)

    async def one_stream() -> None:
        call = open_stream()
        slots = asyncio.Semaphore(window_size)
        sent: collections.deque[float] = collections.deque()

        async def writer() -> None:
            try:
                while not window.over():
                    await slots.acquire()
                    sent.append(time.perf_counter())
                    await call.write(request)
            finally:
                await call.done_writing()

        async def reader() -> None:
            async for response in call:
                ended = time.perf_counter()
                started = sent.popleft()
                slots.release()
                problem = is_error(response)
                if problem:
                    window.error(problem)
                else:
                    window.done(started, ended)

        try:
            await asyncio.gather(writer(), reader())
        except Exception as exc:  # noqa: BLE001 - a broken stream is reported, not fatal
            window.error(exc)
            call.cancel()

    await asyncio.gather(*(one_stream() for _ in range(streams)))
    window.close()
    return sample


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """Medians over repeats of throughput and latency percentiles, plus the
    latency CDF of the median-throughput repeat."""
    good = [s for s in samples if s.latencies]
    out: dict[str, Any] = {
        "repeats": len(samples),
        "errors": sum(s.errors for s in samples),
        "calls": [s.calls for s in samples],
        "rois_per_s_repeats": [round(s.rois_per_s, 2) for s in samples],
    }
    for who in ("client", "server"):
        values = [getattr(s, f"{who}_cpu") for s in samples]
        if all(np.isfinite(values)):
            out[f"{who}_cores"] = round(float(np.median(values)), 3)
    if samples and samples[0].errors:
        out["first_error"] = samples[0].first_error
    if not good:
        out.update(rois_per_s=0.0, p50_ms=None, p90_ms=None, p99_ms=None, cdf_ms=[])
        return out
    out["rois_per_s"] = round(float(np.median([s.rois_per_s for s in samples])), 2)
    for q in (50, 90, 99):
        out[f"p{q}_ms"] = round(float(np.median([s.percentile_ms(q) for s in good])), 4)
    mid = sorted(good, key=lambda s: s.rois_per_s)[len(good) // 2]
    out["cdf_ms"] = mid.cdf_ms()
    return out
