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
    out = np.asarray(out, np.float64).reshape(det.output_shape)
    if det.format in ("yolov8", "yolov8-obb"):
        rows = out.T  # (N, 4+nc[+1])
        angle = rows[:, -1] if det.format == "yolov8-obb" else None
        cls = rows[:, 4:-1] if angle is not None else rows[:, 4:]
        return _keep(rows[:, :4], cls, None, angle, det)
    if det.format == "yolox":
        out = _yolox_grid(out, input_width, input_height)
    return _keep(out[:, :4], out[:, 5:], out[:, 4], None, det)


def _keep(xywh, cls, objectness, angle, det: DetectorSpec) -> Candidates:
    if objectness is not None:  # YOLOv5 first drops boxes by objectness alone
        first = objectness > det.confidence
        xywh, cls, objectness = xywh[first], cls[first] * objectness[first, None], None
        angle = None if angle is None else angle[first]
    best = np.argmax(cls, axis=1)
    score = np.take_along_axis(cls, best[:, None], axis=1)[:, 0]
    keep = score > det.confidence
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
