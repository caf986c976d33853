"""Plain-loop references written from the makers' own postprocessing, for the
vectorized decode and NMS: Ultralytics' non_max_suppression (yolov5's and
ultralytics/utils/nms.py: best class per box, score > conf, class offset
7680, torchvision.ops.nms; rotated: TorchNMS.fast_nms over batch_probiou) and
YOLOX's demo_postprocess. One box at a time, scalars only."""
from __future__ import annotations

import math

import numpy as np

MAX_WH = 7680


def yolox_grid(rows, width, height, strides=(8, 16, 32)):
    """demo_postprocess, one row at a time."""
    out, k = [], 0
    for s in strides:
        for gy in range(height // s):
            for gx in range(width // s):
                r = list(rows[k])
                r[0], r[1] = (r[0] + gx) * s, (r[1] + gy) * s
                r[2], r[3] = math.exp(r[2]) * s, math.exp(r[3]) * s
                out.append(r)
                k += 1
    return out


def candidates(rows, nc, conf, *, objectness=False, angle=False, classes=()):
    """(xywh, score, class, angle) per kept row; rows are per box."""
    out = []
    for r in rows:
        if objectness and not np.float32(r[4]) > np.float32(conf):  # torch: a float32 tensor > a float
            continue
        first = 5 if objectness else 4
        cls = [r[first + k] * (r[4] if objectness else 1.0) for k in range(nc)]
        j = max(range(nc), key=lambda k: (cls[k], -k))  # the first of equal maxima
        if not np.float32(cls[j]) > np.float32(conf) or (classes and j not in classes):
            continue
        out.append((tuple(r[:4]), cls[j], j, r[-1] if angle else None))
    return out


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float("nan")


def torchvision_nms(boxes, scores, thr):
    """torchvision's nms_kernel: sorted by score, a kept box suppresses later ones with IoU > thr."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])  # sorted() is stable: ties by index
    removed, keep = set(), []
    for pos, i in enumerate(order):
        if i in removed:
            continue
        keep.append(i)
        for j in order[pos + 1:]:
            if _iou(boxes[i], boxes[j]) > thr:
                removed.add(j)
    return keep


def _cov(b):
    a, bb = b[2] ** 2 / 12, b[3] ** 2 / 12
    c, s = math.cos(b[4]), math.sin(b[4])
    return a * c * c + bb * s * s, a * s * s + bb * c * c, (a - bb) * c * s


def probiou(p, q, eps=1e-7):
    """Ultralytics' batch_probiou for one pair."""
    a1, b1, c1 = _cov(p)
    a2, b2, c2 = _cov(q)
    den = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2
    t1 = ((a1 + a2) * (p[1] - q[1]) ** 2 + (b1 + b2) * (p[0] - q[0]) ** 2) / (den + eps) * 0.25
    t2 = ((c1 + c2) * (q[0] - p[0]) * (p[1] - q[1])) / (den + eps) * 0.5
    d1, d2 = max(0.0, a1 * b1 - c1 ** 2), max(0.0, a2 * b2 - c2 ** 2)
    t3 = math.log(den / (4 * math.sqrt(d1 * d2) + eps) + eps) * 0.5
    bd = min(max(t1 + t2 + t3, eps), 100.0)
    return 1 - math.sqrt(1 - math.exp(-bd) + eps)


def fast_nms_rotated(boxes, scores, thr):
    """TorchNMS.fast_nms(iou_func=batch_probiou): a box goes when any better one has probiou >= thr."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    return [j for pos, j in enumerate(order)
            if not any(probiou(boxes[i], boxes[j]) >= thr for i in order[:pos])]


def non_max_suppression(cands, iou, *, agnostic=False, max_det=300, rotated=False):
    """-> kept (xyxy or regularized xywhr, score, class), best first."""
    boxes, scores = [], []
    for (cx, cy, w, h), s, j, t in cands:
        off = 0.0 if agnostic else j * MAX_WH
        if rotated:
            boxes.append((cx + off, cy + off, w, h, t))
        else:
            boxes.append((cx - w / 2 + off, cy - h / 2 + off, cx + w / 2 + off, cy + h / 2 + off))
        scores.append(s)
    keep = (fast_nms_rotated if rotated else torchvision_nms)(boxes, scores, iou)[:max_det]
    out = []
    for i in keep:
        (cx, cy, w, h), s, j, t = cands[i]
        if rotated:  # regularize_rboxes
            if t % math.pi >= math.pi / 2:
                w, h = h, w
            out.append(((cx, cy, w, h, t % (math.pi / 2)), s, j))
        else:
            out.append(((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), s, j))
    return out
