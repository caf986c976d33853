"""(N, 6) ROI rows (column 5: the kernel's flags, bit 0 mirror) through the
engine: Engine.preprocess, a batch shared with plain rows, and the
fault-injection hook (which sees rows in ROI_COLUMNS order, no flags)."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.data import chelsea

from roiclass.server import errors
from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.metrics import Metrics
from roiclass.server.models.spec import ModelSpec
from tests.unit.server.pipeline.tta_model import CLASSES, SIZE, make_orientation_onnx

IMG = chelsea()
ROIS = np.array([[120.3, 60.7, 70.2, 48.9, 17.0], [250.0, 150.0, 40.0, 40.0, 0.0]])
MIRRORED = np.hstack([ROIS, [[1.0], [0.0]]])


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    path = make_orientation_onnx(tmp_path_factory.mktemp("tta") / "orientation.onnx")
    e = Engine(EngineConfig(devices="cpu", cpu_threads=1, fault_injection=True), Metrics())
    e.load(ModelSpec(name="orient", version="1", onnx_path=path, classes=CLASSES, input_width=SIZE,
                     input_height=SIZE, channels=3, max_queue_delay_us=20000))
    yield e
    e.close(grace_s=1.0)


def test_preprocess_takes_the_mirror_flag(eng):
    model = eng.resolve("orient")
    plain = eng.preprocess(model, IMG, "RGB8", ROIS)
    mirrored = eng.preprocess(model, IMG, "RGB8", MIRRORED)
    assert np.array_equal(mirrored[0], np.flip(plain[0], -1))
    assert np.array_equal(mirrored[1], plain[1])


def test_mirrored_and_plain_rows_share_a_batch(eng):
    model = eng.resolve("orient")
    futures = [eng.classify(model, IMG, "RGB8", rows) for rows in (ROIS, MIRRORED, ROIS[::-1])]
    plain, mirrored, reversed_ = (f.result(10).probabilities for f in futures)
    assert not np.allclose(mirrored[0], plain[0], atol=1e-3)  # left and right swapped
    flipped = np.flip(eng.preprocess(model, IMG, "RGB8", ROIS[:1]), -1).copy()
    np.testing.assert_allclose(mirrored[0], eng.infer_tensors(model, flipped).result(10).probabilities[0],
                               rtol=1e-6)
    np.testing.assert_allclose(mirrored[1], plain[1], rtol=1e-6)
    np.testing.assert_allclose(reversed_[::-1], plain, rtol=1e-6)


def test_poison_hook_sees_rows_without_the_flags(eng):
    model = eng.resolve("orient")
    target = tuple(ROIS[0])
    eng.inject_fault("orient", "1", "preprocess", match=lambda row: tuple(row) == target)
    try:
        bad = eng.classify(model, IMG, "RGB8", MIRRORED)
        good = eng.classify(model, IMG, "RGB8", MIRRORED[1:])
        with pytest.raises(errors.InvalidArgument, match=r"rois\[0\].*poisoned"):
            bad.result(10)
        assert good.result(10).probabilities.shape == (1, len(CLASSES))
    finally:
        eng.inject_fault("orient", "1", "preprocess", match=None)
