"""Decode + NMS of every format against the plain-loop references (reference.py)
on random outputs with tied scores, class-aware and agnostic."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from roiclass.server.models.pipeline import DetectorSpec
from roiclass.server.models.spec import ModelSpec
from roiclass.server.pipeline.detect.detector import postprocess
from roiclass.server.pipeline.detect.letterbox import Letterbox
from roiclass.server.pipeline.detect.nms import nms, probiou
from tests.unit.server.pipeline.detect import reference as ref

NC, N, SIDE = 3, 84, 64  # 84 rows: YOLOX's grid of a 64 x 64 input
FAR = 10 ** 6  # an image this large clips only at 0
IDENTITY = Letterbox(1.0, 0.0, 0.0)


def _spec(fmt: str, **det) -> ModelSpec:
    shape = {"yolov8": (4 + NC, N), "yolov8-obb": (5 + NC, N)}.get(fmt, (N, 5 + NC))
    return ModelSpec(name="det", version="1", onnx_path=Path("det.onnx"), classes=("a", "b", "c"),
                     input_width=SIDE, input_height=SIDE, channels=3, softmax=False,
                     detector=DetectorSpec(fmt, output_shape=shape, **det))


def _rows(rng, fmt: str) -> np.ndarray:
    """Per-box rows (N, k): boxes crowded enough to overlap, scores from a few values (ties)."""
    xy = rng.uniform(0, 120, (N, 2))
    wh = rng.uniform(8, 60, (N, 2))
    levels = np.array([0.05, 0.3, 0.5, 0.5, 0.8, 0.95])
    scores = rng.choice(levels, (N, NC))
    if fmt == "yolox":  # raw: offsets in cells, log sizes in strides
        xy, wh = rng.uniform(-0.5, 1.5, (N, 2)), rng.uniform(0.5, 2.5, (N, 2))
    cols = [xy, wh]
    if fmt in ("yolov5", "yolox"):
        cols.append(rng.choice(levels, (N, 1)))
    cols.append(scores)
    if fmt == "yolov8-obb":
        cols.append(rng.uniform(-math.pi, math.pi, (N, 1)))
    return np.concatenate(cols, axis=1).astype(np.float32)


def _reference(fmt: str, rows: np.ndarray, det: DetectorSpec, limit: int):
    rows = rows.astype(np.float64).tolist()
    if fmt == "yolox":
        rows = ref.yolox_grid(rows, SIDE, SIDE)
    cands = ref.candidates(rows, NC, det.confidence, objectness=fmt in ("yolov5", "yolox"),
                           angle=fmt == "yolov8-obb", classes=det.classes)
    kept = ref.non_max_suppression(cands, det.iou, agnostic=det.agnostic, max_det=limit,
                                   rotated=fmt == "yolov8-obb")
    return kept, len(cands)


@pytest.mark.parametrize("fmt", ["yolov5", "yolov8", "yolox", "yolov8-obb"])
@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_and_nms_equal_the_reference(fmt, agnostic, seed):
    rng = np.random.default_rng(seed)
    spec = _spec(fmt, confidence=0.25, iou=0.45, agnostic=agnostic, classes=(0, 2) if seed == 2 else ())
    rows = _rows(rng, fmt)
    out = rows if fmt in ("yolov5", "yolox") else rows.T
    limit = 7 if seed == 1 else 300
    got = postprocess(spec, out.ravel(), IDENTITY, FAR, FAR, limit)
    want, candidates = _reference(fmt, rows, spec.detector, limit)
    assert 3 < len(want) < candidates and (limit == 300 or len(want) == limit)  # NMS removed some
    assert [(d.class_index, d.confidence) for d in got] == [(j, pytest.approx(s, abs=1e-12)) for _, s, j in want]
    for d, (box, _, _) in zip(got, want):
        if fmt == "yolov8-obb":
            cx, cy, w, h, t = box
            centre = np.mean(d.rect.corners(), axis=0)
            np.testing.assert_allclose([*centre, d.rect.width, d.rect.height, d.rect.angle],
                                       [cx, cy, w, h, math.degrees(t)], rtol=0, atol=1e-9)
        else:
            r = d.rect
            clipped = np.clip(box, 0, FAR)  # Ultralytics' clip_boxes after NMS
            np.testing.assert_allclose([r.x, r.y, r.x + r.width, r.y + r.height], clipped, rtol=0, atol=1e-9)


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    spec = _spec("yolov8", confidence=0.1, iou=0.5)
    rows = np.zeros((N, 4 + NC), np.float32)
    rows[:, :4] = [50, 50, 20, 20]  # every box the same
    rows[0, 4], rows[1, 5], rows[2, 5] = 0.9, 0.8, 0.7
    aware = postprocess(spec, rows.T.ravel(), IDENTITY, FAR, FAR, 300)
    agnostic = postprocess(_spec("yolov8", confidence=0.1, iou=0.5, agnostic=True), rows.T.ravel(),
                           IDENTITY, FAR, FAR, 300)
    assert [(d.class_index, d.confidence) for d in aware] == [(0, pytest.approx(0.9)), (1, pytest.approx(0.8))]
    assert [d.class_index for d in agnostic] == [0]


def test_ties_keep_the_lower_index_and_iou_at_the_threshold_is_kept():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 15, 10]], np.float64)
    scores = np.array([0.5, 0.5, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]  # IoU(0, 2) = 1/3
    assert nms(boxes, scores, 1 / 3).tolist() == [0, 2]  # not > threshold: kept, as torchvision
    assert nms(boxes, scores, 0.3).tolist() == [0]


def test_probiou_equals_the_reference_and_is_one_for_the_same_box():
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.uniform(0, 50, (20, 2)), rng.uniform(2, 30, (20, 2)),
                        rng.uniform(-3, 3, (20, 1))], axis=1)
    got = probiou(a, a)
    want = [[ref.probiou(p, q) for q in a.tolist()] for p in a.tolist()]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.allclose(np.diag(got), 1.0, atol=1e-3)


def test_the_threshold_compares_in_float32_as_torch_does():
    # float32(0.3) is above 0.3: a float64 comparison would keep a score of exactly that.
    spec = _spec("yolov8", confidence=0.3, iou=0.5)
    rows = np.zeros((N, 4 + NC), np.float32)
    rows[:, :2], rows[:, 2:4] = np.arange(N)[:, None] * 100 + 10, 20  # apart: no NMS
    rows[0, 4], rows[1, 4] = np.float32(0.3), np.nextafter(np.float32(0.3), np.float32(1))
    got = postprocess(spec, rows.T.ravel(), IDENTITY, FAR, FAR, 300)
    assert [round(d.rect.x) for d in got] == [100]
