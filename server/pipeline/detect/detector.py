"""detect(): a detector model on the whole image, its boxes as Detections.

One engine job (the letterboxed image as one ROI), so the item batches with
every other request for that detector; decoding and NMS run in a worker
thread, off the event loop.
"""
from __future__ import annotations

import asyncio

import numpy as np

from roiclass.server.images import DecodedImage
from roiclass.server.pipeline.detect.boxes import Detection, axis_aligned, oriented
from roiclass.server.pipeline.detect.decode import decode
from roiclass.server.pipeline.detect.letterbox import Letterbox, letterbox
from roiclass.server.pipeline.detect.nms import class_offset, nms, nms_rotated
from roiclass.server.pipeline.stage import engine_result


async def detect(engine, detector, image: DecodedImage, *, deadline: float | None, caller: str,
                 limit: int) -> list[Detection]:
    """Highest confidence first, at most min(limit, the detector's max_detections)."""
    spec = detector.spec
    box = letterbox(image.width, image.height, spec.input_width, spec.input_height, spec.detector.letterbox)
    rows = box.roi_rows(spec.input_width, spec.input_height)
    out = await engine_result(lambda is_cancelled: engine.classify(
        detector, image.array, image.pixel_format, rows,
        deadline=deadline, is_cancelled=is_cancelled, caller=caller))
    return await asyncio.get_running_loop().run_in_executor(
        None, postprocess, spec, out.probabilities[0], box, image.width, image.height, limit)


def postprocess(spec, row: np.ndarray, box: Letterbox, width: int, height: int,
                limit: int) -> list[Detection]:
    """One image's output row -> Detections (decode, confidence and class filter, NMS, limit)."""
    det = spec.detector
    c = decode(det, row, spec.input_width, spec.input_height)
    limit = max(0, min(limit, det.max_detections))
    off = class_offset(c.classes, det.agnostic)
    if c.angles is None:
        keep = nms(c.xyxy + off[:, None], c.scores, det.iou, limit)
    else:
        shifted = np.concatenate([c.xywh[:, :2] + off[:, None], c.xywh[:, 2:4], c.angles[:, None]], axis=1)
        keep = nms_rotated(shifted, c.scores, det.iou)[:limit]
    kept = type(c)(c.xywh[keep], c.scores[keep], c.classes[keep],
                   None if c.angles is None else c.angles[keep])
    if kept.angles is None:
        return axis_aligned(kept, box, width, height, spec.classes)
    return oriented(kept, box, spec.classes)
