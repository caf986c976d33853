"""One classification stage: a model on ROI rows of an image, through the engine."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from roiclass.server.engine import InferenceOutput
from roiclass.server.images import DecodedImage
from roiclass.server.models.pipeline import TtaMode
from roiclass.server.pipeline.tta import average, variant_polygons, variant_rows


@dataclass(frozen=True)
class StageOutput:
    probabilities: np.ndarray  # (N, C) float32, one row per ROI
    spread: np.ndarray | None  # (N, C) float32 with tta and spread, else None
    tta: TtaMode  # what ran
    queue_us: int
    preprocess_us: int
    inference_us: int


async def engine_result(submit: Callable[[Callable[[], bool]], Future]) -> InferenceOutput:
    """Awaits the engine future that submit(is_cancelled) returns; when this task is
    cancelled (the client went away) the engine drops the request's queued items."""
    cancelled = False
    future = submit(lambda: cancelled)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        cancelled = True
        future.cancel()
        raise


async def classify_stage(engine, model, image: DecodedImage, rois: np.ndarray, polygons, *,
                         tta: TtaMode, spread: bool, deadline: float | None, caller: str) -> StageOutput:
    """`rois`: (N, 5) float64 rows in geometry.ROI_COLUMNS order, or (N, 6) with column 5
    the kernel's flags (bit 0: mirror). `polygons`: None or one entry per ROI.
    With a test-time augmentation, every ROI's variants (tta.py) are rows of the
    same engine call and each ROI's probabilities are its variants' mean."""
    if tta.name != "none":
        rois = variant_rows(rois, tta)
        polygons = variant_polygons(polygons, tta.variants)
    out = await engine_result(lambda is_cancelled: engine.classify(
        model, image.array, image.pixel_format, rois,
        deadline=deadline, is_cancelled=is_cancelled, caller=caller, polygons=polygons))
    probs, spread_ = out.probabilities, None
    if tta.name != "none":
        probs, spread_ = average(probs, tta.variants, spread)
    return StageOutput(probs, spread_, tta, out.queue_us, out.preprocess_us, out.inference_us)
