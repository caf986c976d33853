"""Frame plans -> requests: the windows are read on a small thread pool
(GDAL releases the GIL), a few ahead of the lanes and in plan (tile)
order; a chip whose pixels are all nodata is answered "no data" here and
never sent.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import AsyncIterator

import numpy as np

from roiclass.client.images import to_image_proto
from roiclass.client.messages import roi_proto

from .dispatch import Work
from .plan import Chip, FramePlan
from .rasters import Raster, read_window

READ_AHEAD = 4  # windows being read at once (each holds one window's pixels)


@dataclass
class Sent:
    """Which chips a request carries (the others of its frame were no data)."""

    frame: int
    chips: list[int]


def build_work(index: int, plan: FramePlan, chips: list[Chip], raster: Raster, backend) -> tuple[Work | None,
                                                                                                   list[int]]:
    """Reads the window; (the request, or None when every chip is nodata;
    the chips found all nodata)."""
    col, row, width, height = plan.window
    pixels = read_window(raster, col, row, width, height, plan.scale)
    rois = plan.rois(chips)
    rings = plan.rings(chips)
    empty = [k for k, roi in enumerate(rois) if _all_nodata(pixels, roi, raster.nodata)]
    keep = [k for k in range(len(rois)) if k not in set(empty)]
    no_data = [plan.chips[k] for k in empty]
    if not keep:
        return None, no_data
    image = to_image_proto(pixels, "BANDS")
    protos = [roi_proto(tuple(rois[k]), polygon=rings[k], index=i) for i, k in enumerate(keep)]
    sent = Sent(index, [plan.chips[k] for k in keep])
    return Work(sent, backend.request(image, protos, index), len(keep)), no_data


def _all_nodata(pixels: np.ndarray, roi: np.ndarray, nodata: float | None) -> bool:
    """Every pixel of the chip's box is nodata (in every band)."""
    if nodata is None:
        return False
    x, y, w, h, a = roi
    c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
    xs = x + np.array([0, w * c, w * c - h * s, -h * s])
    ys = y + np.array([0, w * s, w * s + h * c, h * c])
    c0, c1 = max(0, int(np.floor(xs.min()))), min(pixels.shape[1], int(np.ceil(xs.max())))
    r0, r1 = max(0, int(np.floor(ys.min()))), min(pixels.shape[0], int(np.ceil(ys.max())))
    part = pixels[r0:r1, c0:c1]
    if part.size == 0:
        return True
    if np.isnan(nodata):
        return bool(np.isnan(part).all())
    return bool((part == nodata).all())


async def works(plans: list[FramePlan], chips: list[Chip], rasters: list[Raster], backend,
                pool: ThreadPoolExecutor, no_data: list[int]) -> AsyncIterator[Work]:
    """The requests of `plans`, read READ_AHEAD at a time, in order; chips
    found all nodata are appended to `no_data`."""
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future] = []
    try:
        for index, plan in enumerate(plans):
            pending.append(loop.run_in_executor(pool, build_work, index, plan, chips, rasters[plan.raster], backend))
            if len(pending) >= READ_AHEAD:
                work, empty = await pending.pop(0)
                no_data += empty
                if work is not None:
                    yield work
        while pending:
            work, empty = await pending.pop(0)
            no_data += empty
            if work is not None:
                yield work
    finally:
        for future in pending:
            future.cancel()
