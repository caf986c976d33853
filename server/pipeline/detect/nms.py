"""Non-maximum suppression as Ultralytics runs it, in NumPy.

Axis-aligned boxes: torchvision.ops.nms (greedy: the best box is kept, every
later box whose IoU with it is > iou goes; IoU without the +1 pixel).
Oriented boxes: Ultralytics' Fast-NMS over probiou (a box goes when any
better-scored box, kept or not, has probiou >= iou). Class-aware by default
by Ultralytics' offset trick (coordinates shifted by class * 7680); ties in
score keep the lower index first (a stable sort).
"""
from __future__ import annotations

import numpy as np

MAX_WH = 7680  # Ultralytics' class offset: larger than any box
_BLOCK = 512  # Fast-NMS columns per block (bounds the probiou matrix)


def class_offset(classes: np.ndarray, agnostic: bool) -> np.ndarray:
    return np.zeros(len(classes)) if agnostic else classes.astype(np.float64) * MAX_WH


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float, limit: int | None = None) -> np.ndarray:
    """Indices kept, best first (at most `limit`: greedy NMS keeps in that order)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (xyxy[:, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size and (limit is None or len(keep) < limit):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            over = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(over > iou)]  # NaN (two empty boxes) is not > iou: kept, as torchvision
    return np.asarray(keep, np.int64)


def probiou(a: np.ndarray, b: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Ultralytics' batch_probiou of xywhr boxes a (N, 5) and b (M, 5): (N, M)."""
    a1, b1, c1 = _covariance(a)
    a2, b2, c2 = (v[None, :] for v in _covariance(b))
    a1, b1, c1 = a1[:, None], b1[:, None], c1[:, None]
    dx = a[:, 0:1] - b[None, :, 0]
    dy = a[:, 1:2] - b[None, :, 1]
    den = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2 + eps
    t1 = ((a1 + a2) * dy ** 2 + (b1 + b2) * dx ** 2) / den * 0.25
    t2 = ((c1 + c2) * -dx * dy) / den * 0.5
    det1 = np.clip(a1 * b1 - c1 ** 2, 0, None)
    det2 = np.clip(a2 * b2 - c2 ** 2, 0, None)
    t3 = np.log(((a1 + a2) * (b1 + b2) - (c1 + c2) ** 2) / (4 * np.sqrt(det1 * det2) + eps) + eps) * 0.5
    bd = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1.0 - np.sqrt(1.0 - np.exp(-bd) + eps)


def _covariance(boxes: np.ndarray):
    a, b = boxes[:, 2] ** 2 / 12, boxes[:, 3] ** 2 / 12
    cos, sin = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    return a * cos ** 2 + b * sin ** 2, a * sin ** 2 + b * cos ** 2, (a - b) * cos * sin


def nms_rotated(xywhr: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Ultralytics' Fast-NMS with probiou: indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    boxes = xywhr[order]
    n = len(boxes)
    suppressed = np.zeros(n, bool)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        m = probiou(boxes[:stop], boxes[start:stop])  # rows: every better candidate
        m[np.arange(stop)[:, None] >= np.arange(start, stop)[None, :]] = 0.0  # strict upper triangle
        suppressed[start:stop] = (m >= iou).any(axis=0)
    return order[~suppressed]
