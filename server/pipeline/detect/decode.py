"""One image's detector output -> candidate boxes in input pixels, per format.

Each decoder keeps the boxes as Ultralytics' non_max_suppression does: the
best class per box (score = class score, times objectness for YOLOv5 and
YOLOX), strictly above the confidence threshold. Layouts: models/detector_spec.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roiclass.server.models.detector_spec import YOLOX_STRIDES
from roiclass.server.models.pipeline import DetectorSpec


@dataclass(frozen=True)
class Candidates:
    xywh: np.ndarray  # (N, 4) centre x, centre y, width, height in input pixels
    scores: np.ndarray  # (N,)
    classes: np.ndarray  # (N,) int64
    angles: np.ndarray | None  # (N,) radians (yolov8-obb), else None

    @property
    def xyxy(self) -> np.ndarray:
        c, half = self.xywh[:, :2], self.xywh[:, 2:4] / 2
        return np.concatenate([c - half, c + half], axis=1)


def decode(det: DetectorSpec, out: np.ndarray, input_width: int, input_height: int) -> Candidates:
    """`out`: the image's output in det.output_shape."""
    out = np.asarray(out).reshape(det.output_shape)
    if det.format in ("yolov8", "yolov8-obb"):
        obb = det.format == "yolov8-obb"
        # Ultralytics' candidates first (best class score > confidence): on the float32
        # output, so only the few boxes that pass are transposed and widened.
        best = out[4:-1 if obb else None].max(axis=0)
        rows = out[:, best > np.float32(det.confidence)].T.astype(np.float64)  # (n, 4+nc[+1])
        angle = rows[:, -1] if obb else None
        return _keep(rows[:, :4], rows[:, 4:-1] if obb else rows[:, 4:], None, angle, det)
    if det.format == "yolox":
        out = _yolox_grid(out.astype(np.float64), input_width, input_height)
    out = out[out[:, 4] > np.float32(det.confidence)].astype(np.float64)  # objectness first (score <= it)
    return _keep(out[:, :4], out[:, 5:], out[:, 4], None, det)


def _keep(xywh, cls, objectness, angle, det: DetectorSpec) -> Candidates:
    conf = np.float32(det.confidence)  # compared in float32, as torch compares a float32 tensor
    if objectness is not None:  # YOLOv5 first drops boxes by objectness alone
        first = objectness.astype(np.float32) > conf
        xywh, cls, objectness = xywh[first], cls[first] * objectness[first, None], None
        angle = None if angle is None else angle[first]
    best = np.argmax(cls, axis=1)
    score = np.take_along_axis(cls, best[:, None], axis=1)[:, 0]
    keep = score.astype(np.float32) > conf  # a float32 product rounds as torch's does
    if det.classes:
        keep &= np.isin(best, det.classes)
    return Candidates(xywh[keep], score[keep], best[keep].astype(np.int64),
                      None if angle is None else angle[keep])


def _yolox_grid(out: np.ndarray, width: int, height: int) -> np.ndarray:
    """YOLOX's demo_postprocess: xy = (xy + grid) * stride, wh = exp(wh) * stride."""
    grids, strides = [], []
    for s in YOLOX_STRIDES:
        ys, xs = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), float(s)))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    out = out.copy()
    out[:, :2] = (out[:, :2] + grid) * stride
    out[:, 2:4] = np.exp(out[:, 2:4]) * stride
    return out
