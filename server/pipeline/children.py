"""Child classifiers ([[children]] of a model's config) on their parent's ROIs.

For each child, in config order, the ROIs whose parent result meets its
condition (the best class in `when`, empty = any; the score at least
`min_confidence`) go to the child model in ONE engine job, so they batch
with the child's other traffic. Its results nest in the parent's RoiResult
as ChildResults, and its own children start as soon as they are known.
Siblings and the children of different ROIs run concurrently.

A child fails only its subtree: when it cannot be resolved (unknown,
unloaded, FAILED) or its job fails (engine error, a poisoned ROI: the
whole job, so every ROI sent with it), each of those ROIs' ChildResult
holds the google.rpc.Status instead of a result. The call's deadline goes
with every job (an expired one is dropped by the engine, never run);
cancelling the request cancels the gathers and so the engine futures.

Each child is resolved when its job starts (its configured version or the
latest READY one), so a reload between two requests, or during one, never
fails a tree. A child uses its own config's defaults.tta and top_k /
min_confidence unless the request overrides the last two. `roi =
"expand:F"` grows the ROI F times about its centre (same angle); such an
ROI drops the parent's polygon mask (the context around the mask is the
point of growing it), "same" keeps it.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from roiclass.server.errors import status_from_exception
from roiclass.server.geometry import Rect, rect_rows
from roiclass.server.images import DecodedImage
from roiclass.server.models.pipeline import ChildSpec
from roiclass.server.models.spec import ModelSpec
from roiclass.server.pipeline.results import roi_result
from roiclass.server.pipeline.stage import classify_stage
from roiclass.v1 import classifier_pb2 as pb


@dataclass(frozen=True)
class ChildContext:
    """What every child job of one request shares."""
    engine: object
    manager: object  # .resolve(name, version) -> LoadedModel
    image: DecodedImage
    deadline: float | None
    caller: str
    top_k: int | None  # the request's; None = each model's default
    min_confidence: float | None
    max_depth: int  # levels below the request's model, 1..MAX_CHILD_DEPTH


async def run_children(ctx: ChildContext, parent_spec: ModelSpec, rects: Sequence[Rect], polygons,
                       results: Sequence[pb.RoiResult], depth: int = 1) -> None:
    """Fills results[i].children in place, `depth` levels below the request's model
    (nothing past ctx.max_depth). `polygons`: None or one entry per ROI."""
    if depth > ctx.max_depth or not parent_spec.children or not results:
        return
    jobs = []
    for child in parent_spec.children:
        picked = [i for i, r in enumerate(results) if triggers(child, r)]
        if not picked:
            continue
        # The slots are added now, in config order; the jobs fill them as they finish.
        slots = [results[i].children.add(model=child.model, model_version=child.version) for i in picked]
        child_rects = [expand(rects[i], child.expand) for i in picked]
        masks = None if polygons is None or child.expand != 1.0 else [polygons[i] for i in picked]
        ids = [results[i].roi_id for i in picked]
        jobs.append(_child_job(ctx, child, child_rects, masks, ids, slots, depth))
    if jobs:
        await asyncio.gather(*jobs)


def triggers(child: ChildSpec, result: pb.RoiResult) -> bool:
    """Whether the parent's result meets the child's condition."""
    if result.score < child.min_confidence:
        return False
    if not child.when:
        return True
    return any(ref == result.class_index if isinstance(ref, int) else ref == result.class_name
               for ref in child.when)


def expand(rect: Rect, factor: float) -> Rect:
    """`rect` grown `factor` times about its centre, same angle (origin: its top-left corner)."""
    if factor == 1.0:
        return rect
    c, s = math.cos(math.radians(rect.angle)), math.sin(math.radians(rect.angle))
    du, dv = (1.0 - factor) * rect.width / 2, (1.0 - factor) * rect.height / 2
    return Rect(rect.x + du * c - dv * s, rect.y + du * s + dv * c,
                rect.width * factor, rect.height * factor, rect.angle)


async def _child_job(ctx: ChildContext, child: ChildSpec, rects: list[Rect], polygons, roi_ids: list[str],
                     slots: list[pb.ChildResult], depth: int) -> None:
    try:
        model = ctx.manager.resolve(child.model, child.version)
        for slot in slots:
            slot.model_version = model.version
        stage = await classify_stage(ctx.engine, model, ctx.image, rect_rows(rects), polygons, tta=model.spec.tta,
                                     spread=False, deadline=ctx.deadline, caller=ctx.caller)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing child fails its subtree only
        status = status_from_exception(exc, "ClassifyObject child")
        for slot in slots:
            slot.error.CopyFrom(status)
        return
    spec = model.spec
    top_k = spec.top_k if ctx.top_k is None else ctx.top_k
    min_conf = spec.min_confidence if ctx.min_confidence is None else ctx.min_confidence
    for slot, rect, roi_id, probs in zip(slots, rects, roi_ids, stage.probabilities):
        slot.result.CopyFrom(roi_result(spec, rect, roi_id, probs, top_k, min_conf))
        if stage.tta.name != "none":
            slot.result.tta.mode, slot.result.tta.variants = stage.tta.text, stage.tta.variants
    await run_children(ctx, spec, rects, polygons, [slot.result for slot in slots], depth + 1)
