"""Relevance heatmaps for create_relevance_heatmap (occlusion sensitivity).

For every ROI of a request, the preprocessed tensor (the one the servicer
classified: the kernel runs once per ROI) is copied once per patch position
with that patch filled (roiclass.server.heatmap.occlusion); all the copies go
through the engine's queue as ordinary batch items, so they share full
batches and the instance pool with every other request. A heatmap for
one ROI costs about ceil(occlusions / max_batch) runs. The drops of the
predicted class's probability become a relevance grid and a GRAY8 image of
the ROI (roiclass.server.heatmap.rendering). See docs/heatmap.md.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from roiclass.server.domain import ClassifyRequest, HeatmapRequest
from roiclass.server.heatmap.occlusion import HeatmapParams, occlude, relevance_grids, resolve
from roiclass.server.heatmap.rendering import heatmap_image, to_proto
from roiclass.server.models.spec import ModelSpec
from roiclass.v1 import classifier_pb2 as pb

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class HeatmapConfig:
    # Occluded tensors of one request alive at once. Above it the copies are
    # made and submitted in chunks (whole batches each), `window` at a time,
    # so 8 ROIs x 169 occlusions of a 224x224 model (~800 MB) do not sit in memory.
    max_inflight_bytes: int = 256 * MiB
    window: int = 2  # chunks in flight: the next one is built while one runs

    def __post_init__(self) -> None:
        if self.max_inflight_bytes < 1 or self.window < 1:
            raise ValueError(f"max_inflight_bytes and window must be >= 1, got "
                             f"{self.max_inflight_bytes} and {self.window}")


class HeatmapService:
    def __init__(self, engine, config: HeatmapConfig | None = None):
        self._engine = engine
        self._config = config or HeatmapConfig()

    def validate(self, spec: ModelSpec, options: HeatmapRequest) -> None:
        """Raises InvalidArgument (heatmap_options.<field>) before any work is done."""
        resolve(spec, options)

    async def compute(self, model, req: ClassifyRequest, base: np.ndarray, probabilities: np.ndarray,
                      deadline: float | None) -> list[pb.RelevanceHeatmap]:
        """One heatmap per ROI of `req`. base: its preprocessed ROIs (engine.preprocess),
        probabilities: their un-occluded (N, classes)."""
        spec = model.spec
        params = resolve(spec, req.heatmap or HeatmapRequest(None, None, None))
        drops = await self._drops(model, base, params, np.asarray(probabilities), deadline)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._render, spec, req, params, drops)

    def _chunk_items(self, model, base: np.ndarray) -> int:
        """Items per infer_tensors call: whole batches within the memory budget."""
        cfg, spec = self._config, model.spec
        max_batch = model.max_batch
        per_item = max(1, base[0].nbytes)
        items = max(1, cfg.max_inflight_bytes // cfg.window // per_item)
        if items >= max_batch:
            items -= items % max_batch
        # Leave room in the model's queue for the other requests.
        return max(1, min(items, spec.max_queue_size // (cfg.window + 1)))

    @staticmethod
    def _first_chunk(model, chunk: int) -> int:
        # One batch first, so the instances start running while the rest is built.
        return min(chunk, model.max_batch)

    async def _drops(self, model, base: np.ndarray, params: HeatmapParams, probs: np.ndarray,
                     deadline: float | None) -> np.ndarray:
        """(N, len(ys), len(xs)) drop of each ROI's predicted class per occlusion."""
        n, n_occ = len(base), params.occlusions
        total = n * n_occ
        best = probs.argmax(axis=1)
        p_best = probs[np.arange(n), best]
        fill = model.spec.normalized_fill
        chunk = self._chunk_items(model, base)
        drops = np.empty(total, np.float32)
        loop = asyncio.get_running_loop()
        cancelled = False
        inflight: deque = deque()
        # Reused chunk buffers: a chunk's buffer is free once its future is done
        # (the engine copied it into a batch), which saves the page faults of
        # fresh ~100 MB allocations.
        free: list[np.ndarray] = []
        log.debug("heatmap of %s/%s: %d ROIs x %d occlusions in chunks of %d", model.name,
                  model.version, n, n_occ, chunk)

        async def submit(start: int, stop: int) -> None:
            buf = free.pop() if free and stop - start == chunk else None
            tensors = await loop.run_in_executor(None, occlude, base, params, fill,
                                                 model.spec.layout, start, stop, buf)
            future = self._engine.infer_tensors(model, tensors, deadline=deadline,
                                                is_cancelled=lambda: cancelled)
            inflight.append((start, stop, future, buf if buf is not None else tensors))

        async def collect() -> None:
            start, stop, future, buf = inflight.popleft()
            out = await asyncio.wrap_future(future)
            if len(buf) == chunk:
                free.append(buf)
            roi = np.arange(start, stop) // n_occ
            got = out.probabilities[np.arange(stop - start), best[roi]]
            drops[start:stop] = np.maximum(p_best[roi] - got, 0.0)

        try:
            for start, stop in _chunks(total, chunk, self._first_chunk(model, chunk)):
                await submit(start, stop)
                if len(inflight) >= self._config.window:
                    await collect()
            while inflight:
                await collect()
        except BaseException:
            cancelled = True  # the engine drops the queued items of this request
            for _, _, future, _ in inflight:
                future.cancel()
            raise
        return drops.reshape(n, len(params.ys), len(params.xs))

    @staticmethod
    def _render(spec: ModelSpec, req: ClassifyRequest, params: HeatmapParams,
                drops: np.ndarray) -> list[pb.RelevanceHeatmap]:
        grids = relevance_grids(drops, params, spec.input_width, spec.input_height)
        out = []
        for rect, grid in zip(req.rects, grids):
            image = heatmap_image(grid, rect.width, rect.height, spec.input_width, spec.input_height,
                                  params.stride, spec.resize, spec.crop_fraction, params.max_side)
            out.append(to_proto(grid, image, params.patch, params.stride))
        return out


def _chunks(total: int, chunk: int, first: int) -> list[tuple[int, int]]:
    """(start, stop) of each submission: `first` items, then `chunk` at a time."""
    bounds = [0] + list(range(min(first, total), total, chunk)) + [total]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
