"""Test-time augmentation (server/pipeline/tta.py, stage.py): the variants'
geometry against the kernel's own output (np.rot90 / np.flip of the chip),
and classify_stage's averaged probabilities against the same model run on
the variants as plain ROIs (built here from Rect.corners, not from tta.py),
through a real engine and an orientation-dependent ONNX model."""
from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from skimage.data import chelsea

from roiclass.ext import preprocess_rois
from roiclass.server import formats
from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.geometry import Rect
from roiclass.server.images import DecodedImage
from roiclass.server.metrics import Metrics
from roiclass.server.models.pipeline import parse_tta
from roiclass.server.models.spec import ModelSpec
from roiclass.server.pipeline.stage import classify_stage
from roiclass.server.pipeline.tta import average, variant_rows
from tests.unit.server.pipeline.tta_model import CLASSES, SIZE, make_orientation_onnx

IMG = chelsea()  # (300, 451, 3) uint8
ROIS = np.array([[120.3, 60.7, 70.2, 48.9, 17.0],
                 [250.0, 150.0, 40.0, 40.0, 0.0],
                 [60.5, 180.2, 90.1, 55.3, -35.0]])


def corners(row) -> np.ndarray:
    return np.array(Rect(*map(float, row[:5])).corners())


def chips(rows, size=32) -> np.ndarray:
    out = np.zeros((len(rows), 3, size, size), np.float32)
    preprocess_rois(IMG, rows, out)
    return out


@pytest.mark.parametrize("i", range(len(ROIS)))
def test_dihedral_variants_are_rot90_and_flips_of_the_chip_on_a_square_input(i):
    base = chips(ROIS[i:i + 1])[0]
    var = chips(variant_rows(ROIS[i:i + 1], parse_tta("dihedral")))
    for k in range(4):
        # the ROI turned 90k degrees clockwise on the image: the chip turned
        # counter-clockwise, np.rot90(chip, k) over (H, W)
        np.testing.assert_allclose(var[2 * k], np.rot90(base, k, axes=(1, 2)), atol=2e-3)
        assert np.array_equal(var[2 * k + 1], np.flip(var[2 * k], -1))  # the kernel's mirror, exact
    assert not np.allclose(var[2], np.rot90(base, 3, axes=(1, 2)), atol=1.0)  # the direction matters


def test_dihedral_variants_cover_the_same_rectangle():
    rows = variant_rows(ROIS, parse_tta("dihedral"))
    assert rows.shape == (len(ROIS) * 8, 6)
    for i, roi in enumerate(ROIS):
        quad = corners(roi)
        for k in range(8):
            r = rows[8 * i + k]
            # turn k//2: the variant's top-left corner is the ROI's corner k//2
            np.testing.assert_allclose(corners(r), np.roll(quad, -(k // 2), axis=0), atol=1e-9)
            assert r[5] == k % 2


def test_rotations_turn_about_the_centre_at_symmetric_offsets():
    rows = variant_rows(ROIS, parse_tta("rotations:4:7.5"))
    offsets = np.array([-11.25, -3.75, 3.75, 11.25])
    for i, roi in enumerate(ROIS):
        r = rows[4 * i:4 * i + 4]
        np.testing.assert_allclose(r[:, 4], roi[4] + offsets)
        np.testing.assert_allclose(r[:, 2:4], np.broadcast_to(roi[2:4], (4, 2)))
        for row in r:
            np.testing.assert_allclose(corners(row).mean(0), corners(roi).mean(0), atol=1e-9)
    odd = variant_rows(ROIS, parse_tta("rotations:3:10"))
    assert np.array_equal(odd[1::3, :5], ROIS)  # the middle variant is the ROI itself, bit for bit


def test_flip_keeps_the_row_and_xors_the_clients_mirror():
    mirrored = np.hstack([ROIS, [[0.0], [1.0], [0.0]]])
    rows = variant_rows(mirrored, parse_tta("flip"))
    assert np.array_equal(rows[0::2, :5], ROIS) and np.array_equal(rows[1::2, :5], ROIS)
    assert rows[:, 5].tolist() == [0, 1, 1, 0, 0, 1]


def test_average_is_the_mean_and_population_std_per_roi():
    p = np.random.default_rng(1).random((6, 4)).astype(np.float32)
    mean, std = average(p, 3, True)
    np.testing.assert_allclose(mean, p.reshape(2, 3, 4).mean(1), rtol=1e-6)
    np.testing.assert_allclose(std, p.reshape(2, 3, 4).std(1, ddof=0), rtol=1e-5)
    assert average(p, 3, False)[1] is None


# -- classify_stage through a real engine ---------------------------------------

@pytest.fixture(scope="module")
def engine_model(tmp_path_factory):
    path = make_orientation_onnx(tmp_path_factory.mktemp("tta") / "orientation.onnx")
    eng = Engine(EngineConfig(devices="cpu", cpu_threads=1), Metrics())
    eng.load(ModelSpec(name="orient", version="1", onnx_path=path, classes=CLASSES, input_width=SIZE,
                       input_height=SIZE, channels=3, max_queue_delay_us=2000))
    yield eng, eng.resolve("orient")
    eng.close(grace_s=1.0)


def stage(engine_model, rois, tta="none", spread=False, polygons=None):
    eng, model = engine_model
    image = DecodedImage(IMG, formats.by_name("RGB8"))
    return asyncio.run(classify_stage(eng, model, image, rois, polygons, tta=parse_tta(tta),
                                      spread=spread, deadline=None, caller=""))


def by_hand(roi, tta: str) -> list[list[float]]:
    """The variants as plain rows, from the ROI's corners and centre."""
    x, y, w, h, a = map(float, roi)
    if tta == "flip":
        return [[x, y, w, h, a, 0], [x, y, w, h, a, 1]]
    if tta == "dihedral":
        quad = corners(roi)
        return [[*quad[k], *((h, w) if k % 2 else (w, h)), a + 90 * k, m] for k in range(4) for m in (0, 1)]
    n, step = map(float, tta.split(":")[1:])
    cx, cy = corners(roi).mean(0)
    rows = []
    for k in range(int(n)):
        t = math.radians(a + (k - (n - 1) / 2) * step)
        c, s = math.cos(t), math.sin(t)
        rows.append([cx - (w * c - h * s) / 2, cy - (w * s + h * c) / 2, w, h, math.degrees(t), 0])
    return rows


@pytest.mark.parametrize("tta", ["flip", "dihedral", "rotations:5:12"])
def test_tta_is_the_mean_of_the_variants_classified_as_plain_rois(engine_model, tta):
    out = stage(engine_model, ROIS, tta, spread=True)
    assert out.tta == parse_tta(tta) and out.probabilities.shape == (len(ROIS), len(CLASSES))
    plain_rows = np.array([r for roi in ROIS for r in by_hand(roi, tta)])
    v = len(plain_rows) // len(ROIS)
    plain = stage(engine_model, plain_rows).probabilities.reshape(len(ROIS), v, -1)
    np.testing.assert_allclose(out.probabilities, plain.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.spread, plain.std(1), rtol=1e-4, atol=1e-6)
    assert (out.spread > 1e-3).any()  # the model does see the orientation
    single = stage(engine_model, ROIS).probabilities
    assert not np.allclose(out.probabilities, single, atol=1e-3)


def test_tta_keeps_each_rois_polygon(engine_model):
    ring = np.array([[100.0, 50.0], [200.0, 70.0], [150.0, 130.0]])
    polygons = [ring, None, [ring + [-50, 120]]]
    out = stage(engine_model, ROIS, "dihedral", polygons=polygons)
    plain_rows = np.array([r for roi in ROIS for r in by_hand(roi, "dihedral")])
    plain = stage(engine_model, plain_rows, polygons=[p for p in polygons for _ in range(8)])
    np.testing.assert_allclose(out.probabilities, plain.probabilities.reshape(3, 8, -1).mean(1),
                               rtol=1e-5, atol=1e-6)
    unmasked = stage(engine_model, ROIS, "dihedral")
    assert not np.allclose(out.probabilities[0], unmasked.probabilities[0], atol=1e-3)
    assert out.spread is None


def test_no_tta_is_one_row_per_roi(engine_model):
    out = stage(engine_model, ROIS)
    assert out.tta.name == "none" and out.spread is None and out.probabilities.shape == (3, len(CLASSES))
