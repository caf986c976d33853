"""detect() through a real engine: the ONNX detectors of tests/detector_models.py
on images with squares (YOLOv8 layout) and a rotated rectangle (YOLOv8-OBB),
letterboxed centred and at the top-left, boxes back in image coordinates."""
from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest

from roiclass.server.engine import Engine, EngineConfig
from roiclass.server import errors, formats
from roiclass.server.geometry import Rect
from roiclass.server.images import DecodedImage
from roiclass.server.metrics import Metrics
from roiclass.server.models.config import spec_from_config
from roiclass.server.pipeline.detect import detect
from tests.detector_models import cell_detector, constant_detector, moments_detector
from tests.unit.server.pipeline.detect import reference as ref

RGB8 = formats.by_name("RGB8")
# (x0, y0, x1, y1, rgb) on a 128 x 64 image; each lands inside one 16-pixel cell of
# the 64 x 64 input, centred (rows 16..48) or at the top-left (rows 0..32).
SQUARES = [(8, 6, 24, 22, (255, 0, 0)), (72, 36, 92, 60, (0, 230, 0)), (100, 40, 120, 56, (180, 0, 0))]


@pytest.fixture(scope="module")
def engine():
    eng = Engine(EngineConfig(devices="cpu", cpu_threads=1), Metrics())
    yield eng
    eng.close(grace_s=1.0)


def _load(engine, folder, name, writer, config):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(config)
    spec = spec_from_config(folder / "config.toml", writer(folder / "1" / "model.onnx"), "1", name)
    engine.load(spec)
    return engine.resolve(name)


@pytest.fixture(scope="module")
def squares_image() -> DecodedImage:
    img = np.zeros((64, 128, 3), np.uint8)
    for x0, y0, x1, y1, rgb in SQUARES:
        img[y0:y1, x0:x1] = rgb
    return DecodedImage(img, RGB8)


def _run(engine, model, image, limit=300):
    return asyncio.run(detect(engine, model, image, deadline=None, caller="", limit=limit))


@pytest.mark.parametrize("mode, fill", [("center", 114), ("topleft", 0)])
def test_each_square_is_detected_as_its_box_class_and_brightness(engine, tmp_path_factory, squares_image,
                                                                   mode, fill):
    model = _load(engine, tmp_path_factory.mktemp("cells"), f"cells_{mode}", cell_detector,
                  f'classes = ["red", "green"]\n[input]\nfill = {fill}\n'
                  f'[detector]\nformat = "yolov8"\nconfidence = 0.5\nletterbox = "{mode}"\n')
    got = _run(engine, model, squares_image)
    assert [(d.class_name, round(d.confidence, 4)) for d in got] == [
        ("red", 1.0), ("green", round(230 / 255, 4)), ("red", round(180 / 255, 4))]
    for d, (x0, y0, x1, y1, _) in zip(got, SQUARES):
        r = d.rect
        np.testing.assert_allclose([r.x, r.y, r.width, r.height, r.angle], [x0, y0, x1 - x0, y1 - y0, 0],
                                   atol=1e-4)
    assert [d.class_index for d in _run(engine, model, squares_image, limit=2)] == [0, 1]


def test_the_class_filter_and_max_detections_apply(engine, tmp_path_factory, squares_image):
    model = _load(engine, tmp_path_factory.mktemp("cells"), "cells_green", cell_detector,
                  'classes = ["red", "green"]\n[detector]\nformat = "yolov8"\nconfidence = 0.5\n'
                  'classes = ["green"]\n')
    assert [d.class_name for d in _run(engine, model, squares_image)] == ["green"]
    model = _load(engine, tmp_path_factory.mktemp("cells"), "cells_one", cell_detector,
                  '[detector]\nformat = "yolov8"\nconfidence = 0.5\nmax_detections = 1\n')
    assert [d.class_index for d in _run(engine, model, squares_image)] == [0]


def _draw(rect: Rect, width: int, height: int, sub: int = 4) -> np.ndarray:
    """The rectangle as coverage (sub x sub samples a pixel), white on black."""
    ys, xs = np.mgrid[0:height * sub, 0:width * sub]
    px, py = (xs + 0.5) / sub - rect.x, (ys + 0.5) / sub - rect.y
    c, s = math.cos(math.radians(rect.angle)), math.sin(math.radians(rect.angle))
    u, v = px * c + py * s, -px * s + py * c  # in the rectangle's own axes
    inside = (u >= 0) & (u <= rect.width) & (v >= 0) & (v <= rect.height)
    cover = inside.reshape(height, sub, width, sub).mean(axis=(1, 3))
    return np.repeat(np.round(cover * 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("angle, want_angle", [(25.0, 25.0), (-30.0, 60.0)])
def test_an_oriented_box_is_a_rotated_roi_at_its_angle(engine, tmp_path_factory, angle, want_angle):
    model = _load(engine, tmp_path_factory.mktemp("obb"), f"obb{int(angle)}", moments_detector,
                  '[detector]\nformat = "yolov8-obb"\nconfidence = 0.5\n')
    cx, cy, w, h = 48.0, 34.0, 44.0, 18.0
    t = math.radians(angle)
    drawn = Rect(cx - w / 2 * math.cos(t) + h / 2 * math.sin(t), cy - w / 2 * math.sin(t) - h / 2 * math.cos(t),
                 w, h, angle)
    (got,) = _run(engine, model, DecodedImage(_draw(drawn, 96, 64), RGB8))
    # Ultralytics' regularize_rboxes: the angle in [0, 90), width and height swapped past 90.
    assert got.rect.angle == pytest.approx(want_angle, abs=1.0)
    sides = (w, h) if want_angle == angle else (h, w)
    np.testing.assert_allclose([got.rect.width, got.rect.height], sides, atol=1.0)
    want, have = np.array(drawn.corners()), np.array(got.rect.corners())
    nearest = np.min(np.linalg.norm(want[:, None] - have[None], axis=2), axis=1)
    assert nearest.max() < 1.0  # the same four corners, in image coordinates


def test_concurrent_requests_share_the_detectors_batches(engine, tmp_path_factory, squares_image):
    model = _load(engine, tmp_path_factory.mktemp("cells"), "cells_shared", cell_detector,
                  '[detector]\nformat = "yolov8"\nconfidence = 0.5\n[batching]\nmax_queue_delay_us = 50000\n')
    before = engine.counters(model.name, model.version)

    async def many():
        return await asyncio.gather(*(detect(engine, model, squares_image, deadline=None, caller="",
                                             limit=300) for _ in range(6)))

    results = asyncio.run(many())
    after = engine.counters(model.name, model.version)
    assert all(len(r) == 3 for r in results)
    assert after["items"] - before["items"] == 6
    assert after["batches"] - before["batches"] < 6  # one engine job each, batched together


def test_a_raw_yolox_output_is_decoded_on_its_grid_through_the_engine(engine, tmp_path_factory):
    cells, side = 8 * 8 + 4 * 4 + 2 * 2, 64
    raw = np.zeros((cells, 7), np.float32)  # 2 classes
    raw[:, 4] = 0.01
    raw[10] = [0.5, 0.25, 0.7, 0.3, 0.9, 0.2, 0.8]  # stride 8, cell (2, 1)
    raw[70] = [0.0, 0.5, 0.1, 0.2, 0.6, 0.9, 0.1]  # stride 16, cell (1, 1) of 4 x 4 (row 64 + 6)
    raw[82] = [0.3, 0.3, 0.2, 0.2, 0.95, 0.5, 0.5]  # stride 32, cell (0, 1), tied classes: the first
    model = _load(engine, tmp_path_factory.mktemp("yolox"), "yolox", lambda p: constant_detector(p, raw),
                  '[input]\nfill = 114\n[detector]\nformat = "yolox"\nconfidence = 0.3\nletterbox = "topleft"\n')
    image = DecodedImage(np.zeros((32, 32, 3), np.uint8), RGB8)  # scale 2: boxes halve
    got = _run(engine, model, image)
    rows = ref.yolox_grid(raw.astype(np.float64).tolist(), side, side)
    want = ref.non_max_suppression(ref.candidates(rows, 2, 0.3, objectness=True), 0.45)
    assert [(d.class_index, d.confidence) for d in got] == [(j, pytest.approx(s)) for _, s, j in want]
    assert [d.class_index for d in got] == [1, 0, 0]
    for d, (box, _, _) in zip(got, want):
        x1, y1, x2, y2 = np.clip(np.array(box) / 2, 0, 32)
        np.testing.assert_allclose([d.rect.x, d.rect.y, d.rect.width, d.rect.height],
                                   [x1, y1, x2 - x1, y2 - y1], atol=1e-5)



def test_a_detect_past_its_deadline_runs_nothing(engine, tmp_path_factory, squares_image):
    model = _load(engine, tmp_path_factory.mktemp("cells"), "cells_late", cell_detector,
                  '[detector]\nformat = "yolov8"\n')
    with pytest.raises(errors.DeadlineExceeded):
        asyncio.run(detect(engine, model, squares_image, deadline=time.monotonic() - 1, caller="", limit=300))
    counts = engine.counters(model.name, model.version)
    assert counts.get("dropped_deadline", 0) == 1 and counts.get("items", 0) == 0
