"""ClassifyObject through a real server with the built-in model and real photos."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.v1 import classifier_pb2 as pb
from tests.conftest import CAT_CLASSES, COFFEE_CLASSES, png_bytes
from tests.integration.requests import raw_image, request, roi


def test_chelsea_is_a_cat_raw_rgb(stub, chelsea):
    resp = stub.ClassifyObject(request(raw_image(chelsea), request_id="r1"), timeout=30)
    assert resp.request_id == "r1"
    assert resp.model == "efficientnet_lite0" and resp.model_version == "1"
    (result,) = resp.results
    assert result.class_index in CAT_CLASSES, result.class_name
    assert result.confidences[0].class_index == result.class_index
    assert result.score == pytest.approx(result.confidences[0].confidence)
    assert resp.timing.total_us >= resp.timing.inference_us > 0


def test_coffee_is_espresso_or_cup_encoded_png(stub, coffee):
    resp = stub.ClassifyObject(request(pb.Image(encoded=png_bytes(coffee))), timeout=30)
    assert resp.results[0].class_index in COFFEE_CLASSES, resp.results[0].class_name


def test_bgr_and_gray_and_rgba_inputs(stub, chelsea):
    bgr = stub.ClassifyObject(request(raw_image(chelsea[:, :, ::-1], pb.BGR8)), timeout=30).results[0]
    rgb = stub.ClassifyObject(request(raw_image(chelsea)), timeout=30).results[0]
    assert bgr.class_index == rgb.class_index
    assert bgr.score == pytest.approx(rgb.score, abs=1e-5)
    rgba = np.dstack([chelsea, np.full(chelsea.shape[:2], 255, np.uint8)])
    res = stub.ClassifyObject(request(raw_image(rgba)), timeout=30).results[0]
    assert res.class_index == rgb.class_index
    bgra = rgba[:, :, [2, 1, 0, 3]]
    res = stub.ClassifyObject(request(raw_image(bgra, pb.BGRA8)), timeout=30).results[0]
    assert res.class_index == rgb.class_index
    gray = (chelsea @ np.array([0.299, 0.587, 0.114])).round().astype(np.uint8)
    res = stub.ClassifyObject(request(raw_image(gray)), timeout=30).results[0]
    assert 0 <= res.class_index < 1000 and 0 < res.score <= 1
    g16 = gray.astype(np.uint16) * 257
    res16 = stub.ClassifyObject(request(raw_image(g16)), timeout=30).results[0]
    assert res16.class_index == res.class_index
    assert res16.score == pytest.approx(res.score, abs=1e-4)


def test_row_stride_padding_is_honoured(stub, chelsea):
    h, w, _ = chelsea.shape
    padded = np.zeros((h, w * 3 + 13), np.uint8)
    padded[:, : w * 3] = chelsea.reshape(h, -1)
    img = pb.Image(raw=pb.RawImage(width=w, height=h, pixel_format=pb.RGB8, row_stride=w * 3 + 13,
                                   pixels=padded.tobytes()))
    strided = stub.ClassifyObject(request(img), timeout=30).results[0]
    packed = stub.ClassifyObject(request(raw_image(chelsea)), timeout=30).results[0]
    assert strided.class_index == packed.class_index
    assert strided.score == pytest.approx(packed.score, abs=1e-6)


def test_rois_in_order_with_ids_and_alignment(stub, chelsea):
    # The cat's head, then the same rectangle given in an aligned coordinate system.
    rois = [
        roi(140, 20, 200, 200, roi_id="head"),
        roi(10, 10, 100, 100, roi_id="aligned", alignment=(130, 10, 0.0, 2.0)),
        roi(400, 250, 40, 40, angle=30, roi_id="corner"),
    ]
    resp = stub.ClassifyObject(request(raw_image(chelsea), rois), timeout=30)
    assert [r.roi_id for r in resp.results] == ["head", "aligned", "corner"]
    head, aligned, _ = resp.results
    assert (aligned.aligned_roi.origin.x, aligned.aligned_roi.origin.y) == (150.0, 30.0)
    assert (aligned.aligned_roi.width, aligned.aligned_roi.height) == (200.0, 200.0)
    assert head.class_index in CAT_CLASSES


def test_alignment_rotation_moves_the_rect(stub, chelsea):
    # Local (10, 0) in a system at (100, 50) rotated 90 deg clockwise -> image (100, 60).
    r = roi(10, 0, 50, 30, angle=5, alignment=(100, 50, 90.0, 0.0))
    res = stub.ClassifyObject(request(raw_image(chelsea), [r]), timeout=30).results[0]
    assert res.aligned_roi.origin.x == pytest.approx(100.0)
    assert res.aligned_roi.origin.y == pytest.approx(60.0)
    assert res.aligned_roi.angle == pytest.approx(95.0)
    assert (res.aligned_roi.width, res.aligned_roi.height) == (50.0, 30.0)


def test_top_k_and_min_confidence(stub, chelsea):
    img = raw_image(chelsea)
    default = stub.ClassifyObject(request(img), timeout=30).results[0]
    assert len(default.confidences) == 5  # the model's default top_k
    every = stub.ClassifyObject(request(img, top_k=0), timeout=30).results[0]
    assert len(every.confidences) == 1000
    values = [c.confidence for c in every.confidences]
    assert values == sorted(values, reverse=True)
    assert sum(values) == pytest.approx(1.0, abs=1e-3)
    three = stub.ClassifyObject(request(img, top_k=3), timeout=30).results[0]
    assert [c.class_index for c in three.confidences] == [c.class_index for c in every.confidences[:3]]
    strict = stub.ClassifyObject(request(img, top_k=0, min_confidence=0.999), timeout=30).results[0]
    assert all(c.confidence >= 0.999 for c in strict.confidences)
    assert strict.class_index == every.class_index and strict.score == pytest.approx(every.score)


def test_roi_partly_outside_is_filled_not_rejected(stub, chelsea):
    res = stub.ClassifyObject(request(raw_image(chelsea), [roi(-50, -50, 200, 200, angle=20)]), timeout=30)
    assert 0 < res.results[0].score <= 1
