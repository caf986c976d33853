"""Kept candidates -> Detections in image coordinates (geometry.Rect)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roiclass.server.geometry import Rect
from roiclass.server.pipeline.detect.decode import Candidates
from roiclass.server.pipeline.detect.letterbox import Letterbox


@dataclass(frozen=True)
class Detection:
    rect: Rect  # image coordinates; rotated for an oriented box
    class_index: int
    class_name: str
    confidence: float


def axis_aligned(c: Candidates, box: Letterbox, width: int, height: int, names) -> list[Detection]:
    """Boxes clipped to the image (Ultralytics' clip_boxes); one clipped to nothing is dropped."""
    xyxy = box.to_image(c.xyxy)
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
    out = []
    for (x1, y1, x2, y2), s, k in zip(xyxy.tolist(), c.scores.tolist(), c.classes.tolist()):
        if x2 > x1 and y2 > y1:
            out.append(Detection(Rect(x1, y1, x2 - x1, y2 - y1, 0.0), k, names[k], s))
    return out


def oriented(c: Candidates, box: Letterbox, names) -> list[Detection]:
    """xywhr as Ultralytics' regularize_rboxes leaves it (w, h swapped where the angle
    is past 90 degrees, angle in [0, 90)) -> Rect: origin corner, clockwise degrees.
    Ultralytics' angle turns the box's width axis from +x towards +y (image y down):
    clockwise on the image, as Rect's. Not clipped: a rotated ROI may leave the image."""
    centre = box.to_image(c.xywh[:, :2])
    wh = c.xywh[:, 2:4] / box.scale
    theta = np.asarray(c.angles, np.float64)
    swap = np.mod(theta, math.pi) >= math.pi / 2
    w, h = np.where(swap, wh[:, 1], wh[:, 0]), np.where(swap, wh[:, 0], wh[:, 1])
    theta = np.mod(theta, math.pi / 2)
    cos, sin = np.cos(theta), np.sin(theta)
    x0 = centre[:, 0] - w / 2 * cos + h / 2 * sin
    y0 = centre[:, 1] - w / 2 * sin - h / 2 * cos
    out = []
    for x, y, ww, hh, t, s, k in zip(x0.tolist(), y0.tolist(), w.tolist(), h.tolist(),
                                     np.degrees(theta).tolist(), c.scores.tolist(), c.classes.tolist()):
        if ww > 0 and hh > 0:
            out.append(Detection(Rect(x, y, ww, hh, t), k, names[k], s))
    return out
